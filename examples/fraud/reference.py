"""Write reference.csv: the tutorial's fraud training data, the reference that
`tide profile` describes for drift monitoring (docs/monitoring.md).

The same generator and seed as train.py, so these are the rows the model was
trained on. Columns feature1, feature2 and is_fraud (the label, which tide profile
ignores: it profiles the model's features and its own predictions).

Run: /usr/bin/python3 reference.py          (needs Debian's python3-sklearn)
"""
import os

for _v in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS"):
    os.environ.setdefault(_v, "1")

from sklearn.datasets import make_classification

X, y = make_classification(n_samples=10_000, n_features=2, n_informative=2, n_redundant=0,
                           n_repeated=0, n_clusters_per_class=1, weights=[0.97, 0.03],
                           class_sep=1.0, flip_y=0.01, random_state=42)
with open("reference.csv", "w") as f:
    f.write("feature1,feature2,is_fraud\n")
    for (a, b), label in zip(X, y):
        f.write(f"{a!r},{b!r},{label}\n")
print(f"wrote reference.csv: {len(y)} rows")
