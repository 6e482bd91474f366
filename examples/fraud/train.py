"""Train the tutorial's fraud model and save it exactly as the tutorial does:
joblib.dump(model, "model.pkl"). Two float features, feature1 and feature2.

Run: /usr/bin/python3 train.py          (needs Debian's python3-sklearn)
Writes model.pkl (LogisticRegression) and model_rf.pkl (100-tree RandomForest).
"""
import os

for _v in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS"):
    os.environ.setdefault(_v, "1")

import joblib
from sklearn.datasets import make_classification
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression

X, y = make_classification(n_samples=10_000, n_features=2, n_informative=2, n_redundant=0,
                           n_repeated=0, n_clusters_per_class=1, weights=[0.97, 0.03],
                           class_sep=1.0, flip_y=0.01, random_state=42)
joblib.dump(LogisticRegression(random_state=42).fit(X, y), "model.pkl")
joblib.dump(RandomForestClassifier(n_estimators=100, max_depth=8, random_state=42).fit(X, y), "model_rf.pkl")
print("wrote model.pkl and model_rf.pkl")
