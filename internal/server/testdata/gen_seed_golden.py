"""Golden answers for the tutorial's /predict contract, byte for byte.

For each model this trains on the tutorial's two-feature data, it writes the
joblib file and a golden file of (request body, the exact response bytes the
tutorial's FastAPI app returns), rendered as Starlette's JSONResponse renders:
json.dumps(content, ensure_ascii=False, allow_nan=False, separators=(",", ":")).

Run: cd internal/server/testdata && /usr/bin/python3 gen_seed_golden.py
"""
import json
import os

for _v in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS"):
    os.environ.setdefault(_v, "1")

import joblib
import numpy as np
from sklearn.datasets import make_classification
from sklearn.ensemble import GradientBoostingRegressor, RandomForestClassifier
from sklearn.linear_model import LogisticRegression

X, y = make_classification(n_samples=2000, n_features=2, n_informative=2, n_redundant=0,
                           n_clusters_per_class=1, weights=[0.97, 0.03], flip_y=0.01, random_state=42)
yreg = X[:, 0] * 3.5 - X[:, 1] ** 2 + 0.1
labels = np.where(y == 1, "fraud", "ok")
models = {
    "fraud_logreg": LogisticRegression(random_state=42).fit(X, y),
    "fraud_rf": RandomForestClassifier(n_estimators=10, max_depth=6, random_state=42).fit(X, y),
    "fraud_rf_labels": RandomForestClassifier(n_estimators=5, max_depth=4, random_state=1).fit(X, labels),
    "score_gbr": GradientBoostingRegressor(n_estimators=10, max_depth=3, random_state=42).fit(X, yreg),
}


def render(content):
    return json.dumps(content, ensure_ascii=False, allow_nan=False, indent=None, separators=(",", ":"))


rng = np.random.default_rng(0)
rows = [[0.5, -1.2], [1.0, 0.3], [0.6, 0.6], [0.0, 0.0], [-3.0, 3.0], [1e-7, -1e7]]
rows += rng.normal(0, 1.5, size=(40, 2)).tolist()
for name, model in models.items():
    joblib.dump(model, name + ".joblib", compress=3)
    cases = []
    for r in rows:
        body = json.dumps({"feature1": r[0], "feature2": r[1]})
        cases.append({"request": body, "response": render({"prediction": model.predict([r]).tolist()})})
    batch = rows[:7]
    cases.append({"request": json.dumps([{"feature1": a, "feature2": b} for a, b in batch]),
                  "response": render({"prediction": model.predict(batch).tolist()})})
    with open(name + ".golden.json", "w") as f:
        json.dump(cases, f, indent=1)
