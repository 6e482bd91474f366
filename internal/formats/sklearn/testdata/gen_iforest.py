#!/usr/bin/env python3
"""Writes the IsolationForest fixtures: models fitted by Debian's scikit-learn 1.2
and what their score_samples, decision_function and predict give on 600 rows
(inliers, outliers and far-out finite values).

    /usr/bin/python3 internal/formats/sklearn/testdata/gen_iforest.py internal/formats/sklearn/testdata/iforest
"""
import json
import os
import sys

import joblib
import numpy as np
import sklearn
from sklearn.ensemble import IsolationForest
from sklearn.svm import OneClassSVM


def main(outdir):
    os.makedirs(outdir, exist_ok=True)
    rng = np.random.default_rng(11)
    n_features = 5
    # Transactions-like data: a dense cluster, a second smaller one, a few outliers.
    X_train = np.vstack([
        rng.normal(0, 1, size=(700, n_features)),
        rng.normal(4, 0.5, size=(80, n_features)),
        rng.uniform(-8, 8, size=(20, n_features)),
    ])
    X_eval = np.vstack([
        rng.normal(0, 1, size=(400, n_features)),
        rng.normal(4, 0.5, size=(80, n_features)),
        rng.uniform(-10, 10, size=(100, n_features)),
        rng.choice([-1e30, -1e6, 0.0, 1e6, 1e30], size=(20, n_features)),
    ])
    models = {
        # The defaults: 100 trees, max_samples=min(256, n), contamination "auto".
        "iforest_auto.joblib": IsolationForest(random_state=0),
        # A contamination offset (a percentile of the training scores) and a
        # feature subsample (trees see X[:, estimators_features_[i]]).
        "iforest_contamination.joblib": IsolationForest(
            n_estimators=40, max_samples=128, contamination=0.05, max_features=0.6, random_state=1),
        # Tiny samples: leaves of 2 samples, and depth limits hit early.
        "iforest_small.joblib": IsolationForest(n_estimators=25, max_samples=4, random_state=2),
        # Bootstrap sampling and a whole-number max_features below n_features.
        "iforest_bootstrap.joblib": IsolationForest(
            n_estimators=30, max_features=3, bootstrap=True, random_state=3),
        # The other outlier detector: a one-class SVM (score_samples adds its
        # offset_ to the decision function).
        "ocsvm_rbf.joblib": OneClassSVM(nu=0.1, gamma=0.2),
    }
    doc = {"sklearn_version": sklearn.__version__, "X": X_eval.tolist(), "models": []}
    for file, m in models.items():
        m.fit(X_train)
        joblib.dump(m, os.path.join(outdir, file), compress=3)
        doc["models"].append({
            "file": file,
            "score_samples": m.score_samples(X_eval).tolist(),
            "decision_function": m.decision_function(X_eval).tolist(),
            "predict": m.predict(X_eval).tolist(),
            "offset": float(m.offset_),
        })
    with open(os.path.join(outdir, "iforest.json"), "w") as f:
        json.dump(doc, f, separators=(",", ":"))


if __name__ == "__main__":
    main(sys.argv[1])
