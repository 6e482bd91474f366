#!/usr/bin/env python3
"""Writes the fixtures for XGBoost's scikit-learn wrappers: XGBClassifier,
XGBRegressor, XGBRFClassifier and a Pipeline ending in one, fitted by Debian's
python3-xgboost 1.7.4 with python3-sklearn 1.2.1, saved with joblib, with their
predict and predict_proba on 500 rows (5% missing values).

    /usr/bin/python3 internal/formats/sklearn/testdata/gen_xgb_wrappers.py internal/formats/sklearn/testdata/xgb
"""
import json
import math
import os
import sys

import joblib
import numpy as np
import sklearn
import xgboost
from sklearn.datasets import make_classification, make_regression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler


def enc(v):
    v = float(v)
    return "nan" if math.isnan(v) else v


def with_nan(X, rng, frac):
    X = X.copy()
    X[rng.random(X.shape) < frac] = np.nan
    return X


def main(outdir):
    os.makedirs(outdir, exist_ok=True)
    rng = np.random.default_rng(5)
    cases = []

    X, y = make_classification(n_samples=1100, n_features=6, n_informative=4, random_state=1)
    X = with_nan(X, rng, 0.05)
    Xt, yt, Xe = X[:600], y[:600], X[600:]
    cases.append(("xgb_binary", xgboost.XGBClassifier(n_estimators=20, max_depth=3, random_state=0).fit(Xt, yt), Xe))
    cases.append(("pipe_std_xgb", Pipeline([
        ("scale", StandardScaler()),
        ("xgb", xgboost.XGBClassifier(n_estimators=15, max_depth=4, random_state=0)),
    ]).fit(Xt, yt), Xe))
    # Early stopping: predict uses the best iteration, not every tree.
    early = xgboost.XGBClassifier(n_estimators=200, max_depth=3, learning_rate=0.3,
                                  early_stopping_rounds=3, random_state=0)
    early.fit(Xt[:450], yt[:450], eval_set=[(Xt[450:], yt[450:])], verbose=False)
    cases.append(("xgb_early_stopped", early, Xe))
    cases.append(("xgbrf_binary", xgboost.XGBRFClassifier(n_estimators=10, max_depth=4, random_state=0).fit(Xt, yt), Xe))

    X, y = make_classification(n_samples=1100, n_features=6, n_informative=4, n_classes=3,
                               n_clusters_per_class=1, random_state=2)
    X = with_nan(X, rng, 0.05)
    cases.append(("xgb_multiclass", xgboost.XGBClassifier(n_estimators=15, max_depth=3, random_state=0).fit(X[:600], y[:600]), X[600:]))

    X, y = make_regression(n_samples=1100, n_features=6, noise=3.0, random_state=3)
    X = with_nan(X, rng, 0.05)
    cases.append(("xgb_regression", xgboost.XGBRegressor(n_estimators=25, max_depth=4, random_state=0).fit(X[:600], y[:600]), X[600:]))

    doc = {"sklearn": sklearn.__version__, "xgboost": xgboost.__version__, "cases": []}
    for name, est, Xe in cases:
        joblib.dump(est, os.path.join(outdir, name + ".joblib"), compress=3)
        case = {"file": name + ".joblib", "X": [[enc(v) for v in row] for row in Xe.tolist()],
                "predict": [enc(v) for v in est.predict(Xe).tolist()]}
        if hasattr(est, "predict_proba"):
            case["predict_proba"] = [[enc(v) for v in row] for row in est.predict_proba(Xe).tolist()]
        doc["cases"].append(case)
    with open(os.path.join(outdir, "xgb.json"), "w") as f:
        json.dump(doc, f, separators=(",", ":"))


if __name__ == "__main__":
    main(sys.argv[1])
