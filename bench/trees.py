#!/usr/bin/env python3
"""The libraries' side of bench/trees.sh: the three tree ensembles of
docs/performance.md's batch table, and how long their own libraries take to
predict a batch on one thread.

    /usr/bin/python3 bench/trees.py gen DIR     # models, rows and expected answers
    /usr/bin/python3 bench/trees.py time DIR    # one line per model: NAME ROWS NS_PER_BATCH

gen writes, trained on 20,000 rows of 30 features (make_classification, fixed
seeds):
  rf.pkl   RandomForestClassifier, 200 trees, max_depth 16
  hgb.pkl  HistGradientBoostingClassifier, 300 iterations (no early stopping)
  xgb.json XGBClassifier, 300 trees, max_depth 8 (Booster.save_model)
X.f64 (1,000 rows × 30, float64 little-endian, from the same distribution but
not trained on) and NAME.expect.f64, the library's predict_proba of those rows
(XGBoost's raw margins for xgb, which Tide reproduces bit for bit; its
probabilities are float32 transforms of them).

time loads each model and times the call a user makes, predict_proba, on the
first ROWS rows with one thread (n_jobs=1, nthread=1, OpenMP limited to one
thread by threadpoolctl), median of REPEATS calls after two warm-ups. ROWS and
REPEATS come from the environment (default 1000 and 15).
"""
import os
import pickle
import sys
import time

import numpy as np


def gen(d):
    from sklearn.datasets import make_classification
    from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
    import xgboost

    X, y = make_classification(n_samples=21000, n_features=30, n_informative=12,
                               flip_y=0.1, random_state=11)
    Xtr, ytr, Xte = X[:20000], y[:20000], X[20000:]
    models = {
        "rf": RandomForestClassifier(n_estimators=200, max_depth=16, random_state=11, n_jobs=2),
        "hgb": HistGradientBoostingClassifier(max_iter=300, early_stopping=False, random_state=11),
        "xgb": xgboost.XGBClassifier(n_estimators=300, max_depth=8, tree_method="hist",
                                     random_state=11, n_jobs=2),
    }
    os.makedirs(d, exist_ok=True)
    np.ascontiguousarray(Xte, dtype="<f8").tofile(os.path.join(d, "X.f64"))
    for name, m in models.items():
        t = time.time()
        m.fit(Xtr, ytr)
        if name == "xgb":
            m.get_booster().save_model(os.path.join(d, "xgb.json"))
            expect = m.predict(Xte, output_margin=True)
        else:
            # With n_jobs > 1 sklearn's forest adds the trees' outputs in the
            # order its threads finish; one thread adds them in tree order.
            m.n_jobs = 1
            with open(os.path.join(d, name + ".pkl"), "wb") as f:
                pickle.dump(m, f, protocol=4)
            expect = m.predict_proba(Xte)
        np.ascontiguousarray(expect, dtype="<f8").tofile(os.path.join(d, name + ".expect.f64"))
        print(f"trained {name} in {time.time() - t:.1f} s", file=sys.stderr)


def timed(d):
    from threadpoolctl import threadpool_limits
    import xgboost

    rows = int(os.environ.get("ROWS", "1000"))
    repeats = int(os.environ.get("REPEATS", "15"))
    X = np.fromfile(os.path.join(d, "X.f64"), dtype="<f8").reshape(-1, 30)[:rows]
    models = {}
    for name in ("rf", "hgb"):
        with open(os.path.join(d, name + ".pkl"), "rb") as f:
            models[name] = pickle.load(f)
    models["rf"].n_jobs = 1
    xgb = xgboost.XGBClassifier(n_jobs=1)
    xgb.load_model(os.path.join(d, "xgb.json"))
    models["xgb"] = xgb
    with threadpool_limits(limits=1):
        for name, m in models.items():
            for _ in range(2):
                m.predict_proba(X)
            samples = []
            for _ in range(repeats):
                t = time.perf_counter_ns()
                m.predict_proba(X)
                samples.append(time.perf_counter_ns() - t)
            print(f"{name} {rows} {int(np.median(samples))}", flush=True)


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] not in ("gen", "time"):
        sys.exit(__doc__)
    (gen if sys.argv[1] == "gen" else timed)(sys.argv[2])
