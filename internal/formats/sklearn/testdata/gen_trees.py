#!/usr/bin/python3
"""Writes the tree-model fixtures under testdata/trees/ for the Go tests.

Run with Debian's python3-sklearn (1.2.1):  /usr/bin/python3 gen_trees.py [outdir]

For each data set (binary, 3-class, regression) it trains small tree models,
saves each with joblib (compress=3), and writes one JSON file with the rows to
predict and sklearn's own outputs for every model. The rows include values
exactly at the models' split thresholds (and one float32 step either side),
extreme but float32-representable values, and, for HistGradientBoosting, NaN
and infinities. Floats are written with Python's repr, which round-trips
exactly; non-finite values are written as the strings "nan", "inf", "-inf".
It also writes exp.json: the C library's exp on inputs across its range, to
check the Go port of it.

  gen_trees.py --bench DIR  writes only bench_rf.joblib: a 100-tree, depth-8
  RandomForestClassifier trained as the serving tutorial's model_rf.pkl is
  (too large to commit; the Go benchmark generates it into a temp dir).
"""
import json
import math
import os
import sys
import warnings

# numpy's own AVX-512 exp and log round differently from the C library's (and
# only run on CPUs that have AVX-512), so sklearn's probabilities would depend
# on the machine that wrote the fixtures. Keep numpy on the C library's
# functions, as it is on every CPU without AVX-512; set before numpy loads,
# and only where there is AVX-512 to disable.
def _cpu_flags():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


if "avx512f" in _cpu_flags():
    os.environ.setdefault("NPY_DISABLE_CPU_FEATURES",
                          "AVX512F AVX512CD AVX512_SKX AVX512_CLX AVX512_CNL AVX512_ICL")

import joblib
import numpy as np
import sklearn
from sklearn.datasets import make_classification, make_regression
from sklearn.ensemble import (
    ExtraTreesClassifier,
    ExtraTreesRegressor,
    GradientBoostingClassifier,
    GradientBoostingRegressor,
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

N_TRAIN = 800
N_EVAL = 600
N_FEATURES = 5


def encode(v):
    v = float(v)
    if math.isnan(v):
        return "nan"
    if math.isinf(v):
        return "inf" if v > 0 else "-inf"
    return v


def encode_matrix(X):
    return [[encode(v) for v in row] for row in X]


def tree_thresholds(model):
    """Split thresholds of every sklearn.tree Tree inside model."""
    trees = []
    if hasattr(model, "tree_"):
        trees = [model.tree_]
    elif hasattr(model, "estimators_"):
        trees = [e.tree_ for e in np.asarray(model.estimators_, dtype=object).ravel()]
    out = []
    for t in trees:
        internal = t.children_left != -1
        out += list(zip(t.feature[internal], t.threshold[internal]))
    return out


def hist_thresholds(model):
    out = []
    for predictors in model._predictors:
        for p in predictors:
            n = p.nodes[p.nodes["is_leaf"] == 0]
            out += list(zip(n["feature_idx"], n["num_threshold"]))
    return out


def at_thresholds(X, thresholds, rng, start, count):
    """Overwrite rows start.. with threshold values: exact, and the float32
    neighbours around them (sklearn compares float32(x) <= threshold)."""
    X = X.copy()
    for i in range(count):
        f, t = thresholds[rng.integers(len(thresholds))]
        t32 = np.float32(t)
        choice = i % 4
        if choice == 0:
            v = t
        elif choice == 1:
            v = float(t32)
        elif choice == 2:
            v = float(np.nextafter(t32, np.float32(np.inf)))
        else:
            v = float(np.nextafter(t32, np.float32(-np.inf)))
        X[start + i, f] = v
    return X


def with_extremes(X, start, finite_only):
    X = X.copy()
    values = [3.0e38, -3.0e38, 1e30, -1e30, 1e-45, -1e-45, 0.0, -0.0, 1e-300, 65504.0]
    if not finite_only:
        values += [np.nan, np.inf, -np.inf, 1e300, -1e300]
    for i, v in enumerate(values):
        X[start + i, :] = v
        X[start + len(values) + i, i % X.shape[1]] = v
    return X


def with_nan(X, rng, frac):
    X = X.copy()
    X[rng.random(X.shape) < frac] = np.nan
    return X


def outputs(model, X, kind):
    out = {}
    pred = model.predict(X)
    out["predict"] = [encode(v) if kind == "regressor" else v for v in pred.tolist()] \
        if pred.ndim == 1 else [[encode(v) for v in row] for row in pred.tolist()]
    if kind == "classifier":
        out["proba"] = encode_matrix(model.predict_proba(X))
        if hasattr(model, "decision_function"):
            d = model.decision_function(X)
            out["decision"] = [encode(v) for v in d.ravel().tolist()]
    return out


def write_set(outdir, name, X_train, y_train, X_eval, models, rng):
    """Train models, build the eval rows from their thresholds, save everything."""
    for m in models.values():
        Xt = X_train
        if isinstance(m, (HistGradientBoostingClassifier, HistGradientBoostingRegressor)):
            Xt = with_nan(X_train, rng, 0.05)
        m.fit(Xt, y_train)
    tree_thr, hist_thr = [], []
    for m in models.values():
        if isinstance(m, (HistGradientBoostingClassifier, HistGradientBoostingRegressor)):
            hist_thr += hist_thresholds(m)
        else:
            tree_thr += tree_thresholds(m)
    finite = at_thresholds(X_eval, tree_thr or hist_thr, rng, 0, 200)
    finite = with_extremes(finite, 200, finite_only=True)
    doc = {
        "sklearn_version": sklearn.__version__,
        "X": {"finite": encode_matrix(finite)},
        "models": [],
    }
    missing = None
    if hist_thr:
        missing = at_thresholds(X_eval, hist_thr, rng, 0, 200)
        missing = with_extremes(missing, 200, finite_only=False)
        missing = with_nan(missing, rng, 0.05)
        doc["X"]["missing"] = encode_matrix(missing)
    for file, m in models.items():
        kind = "classifier" if hasattr(m, "classes_") else "regressor"
        hist = isinstance(m, (HistGradientBoostingClassifier, HistGradientBoostingRegressor))
        joblib.dump(m, os.path.join(outdir, file), compress=3)
        for xname in (["finite", "missing"] if hist else ["finite"]):
            X = finite if xname == "finite" else missing
            entry = {"file": file, "x": xname, "kind": kind}
            entry.update(outputs(m, X, kind))
            doc["models"].append(entry)
    with open(os.path.join(outdir, name + ".json"), "w") as f:
        json.dump(doc, f, separators=(",", ":"))


def split(X, y):
    return X[:N_TRAIN], y[:N_TRAIN], X[N_TRAIN:]


def main(outdir):
    os.makedirs(outdir, exist_ok=True)
    rng = np.random.default_rng(7)
    n = N_TRAIN + N_EVAL
    small = dict(n_estimators=12, max_depth=6, random_state=0)
    boost = dict(n_estimators=20, max_depth=3, random_state=0)
    hist = dict(max_iter=20, max_depth=5, random_state=0)

    X, y = make_classification(n_samples=n, n_features=N_FEATURES, n_informative=4,
                               n_redundant=1, random_state=1)
    X_train, y_train, X_eval = split(X, y)
    write_set(outdir, "binary", X_train, y_train, X_eval, {
        "dt_binary.joblib": DecisionTreeClassifier(max_depth=6, random_state=0),
        "rf_binary.joblib": RandomForestClassifier(**small),
        "et_binary.joblib": ExtraTreesClassifier(**small),
        "gb_binary.joblib": GradientBoostingClassifier(**boost),
        "gb_binary_exp.joblib": GradientBoostingClassifier(loss="exponential", **boost),
        "gb_binary_zero.joblib": GradientBoostingClassifier(init="zero", **boost),
        "hgb_binary.joblib": HistGradientBoostingClassifier(**hist),
    }, rng)

    X, y = make_classification(n_samples=n, n_features=N_FEATURES, n_informative=4,
                               n_redundant=1, n_classes=3, n_clusters_per_class=1,
                               random_state=2)
    labels = np.array(["ant", "bee", "cat"], dtype=object)
    X_train, y_train, X_eval = split(X, labels[y])
    write_set(outdir, "multiclass", X_train, y_train, X_eval, {
        "dt_multiclass.joblib": DecisionTreeClassifier(max_depth=6, random_state=0),
        "rf_multiclass.joblib": RandomForestClassifier(**small),
        "et_multiclass.joblib": ExtraTreesClassifier(**small),
        "gb_multiclass.joblib": GradientBoostingClassifier(**boost),
        "hgb_multiclass.joblib": HistGradientBoostingClassifier(**hist),
    }, rng)

    X, y = make_regression(n_samples=n, n_features=N_FEATURES, n_informative=4,
                           noise=5.0, random_state=3)
    X_train, y_train, X_eval = split(X, y)
    write_set(outdir, "regression", X_train, y_train, X_eval, {
        "dt_regression.joblib": DecisionTreeRegressor(max_depth=6, random_state=0),
        "rf_regression.joblib": RandomForestRegressor(**small),
        "et_regression.joblib": ExtraTreesRegressor(**small),
        "gb_regression.joblib": GradientBoostingRegressor(**boost),
        "gb_regression_huber.joblib": GradientBoostingRegressor(loss="huber", **boost),
        "gb_regression_zero.joblib": GradientBoostingRegressor(init="zero", **boost),
        "hgb_regression.joblib": HistGradientBoostingRegressor(**hist),
    }, rng)

    # Two targets: multi-output trees and forests.
    Y = np.column_stack([y, X[:, 0] * 3.0 - X[:, 1]])
    write_set(outdir, "multioutput", X_train, Y[:N_TRAIN], X_eval, {
        "dt_multioutput.joblib": DecisionTreeRegressor(max_depth=6, random_state=0),
        "rf_multioutput.joblib": RandomForestRegressor(**small),
    }, rng)

    # Counts: HistGradientBoosting with the Poisson loss (exp inverse link).
    counts = rng.poisson(np.exp(0.4 * X[:, 0] - 0.3 * X[:, 2]))
    X_train, y_train, X_eval = split(X, counts)
    write_set(outdir, "poisson", X_train, y_train, X_eval, {
        "hgb_poisson.joblib": HistGradientBoostingRegressor(loss="poisson", **hist),
    }, rng)

    write_categorical(outdir, rng)

    exp_reference(outdir)


def write_categorical(outdir, rng):
    """HistGradientBoosting with categorical features (bitset splits)."""
    n = N_TRAIN + N_EVAL
    c0 = rng.integers(0, 10, n).astype(float)
    c1 = rng.integers(0, 4, n).astype(float)
    num = rng.normal(size=(n, 2))
    X = np.column_stack([c0, num[:, 0], c1, num[:, 1]])
    effect0 = np.array([3, -2, 0.5, 4, -1, -3, 2, 0, 1, -4])
    score = effect0[c0.astype(int)] + np.array([1, -1, 2, -2])[c1.astype(int)] + num[:, 0]
    X_train, X_eval = X[:N_TRAIN].copy(), X[N_TRAIN:].copy()
    X_train[rng.random(N_TRAIN) < 0.05, 0] = np.nan
    # Raw values sklearn casts to a category code: negative (missing), fractional
    # (truncated), unknown, past 255 (wrapped by the C cast), huge, non-finite.
    specials = [-1, -0.5, -0.0, 0.5, 3.7, 9.99, 10, 12, 255, 255.5, 256, 258, 263,
                2.0**31, 2.0**31 + 3, 2.0**32 + 2, 1e300, np.inf, -np.inf, np.nan]
    for i in range(200):
        X_eval[i, 0 if i % 2 == 0 else 2] = specials[i % len(specials)]
    X_eval[200:260, 0] = np.nan
    models = {
        "hgb_categorical.joblib": HistGradientBoostingRegressor(
            max_iter=15, max_depth=4, categorical_features=[0, 2], random_state=0),
        "hgb_categorical_binary.joblib": HistGradientBoostingClassifier(
            max_iter=15, max_depth=4, categorical_features=[0, 2], random_state=0),
    }
    targets = {"hgb_categorical.joblib": score[:N_TRAIN],
               "hgb_categorical_binary.joblib": (score[:N_TRAIN] > 0).astype(int)}
    doc = {"sklearn_version": sklearn.__version__,
           "X": {"missing": encode_matrix(X_eval)}, "models": []}
    for file, m in models.items():
        m.fit(X_train, targets[file])
        joblib.dump(m, os.path.join(outdir, file), compress=3)
        kind = "classifier" if hasattr(m, "classes_") else "regressor"
        entry = {"file": file, "x": "missing", "kind": kind}
        entry.update(outputs(m, X_eval, kind))
        doc["models"].append(entry)
    with open(os.path.join(outdir, "categorical.json"), "w") as f:
        json.dump(doc, f, separators=(",", ":"))


def exp_reference(outdir):
    """math.exp calls the C library's exp, as scipy's expit does. glibc picks
    its FMA build on CPUs with FMA (x86-64 since Haswell, all arm64), which is
    the one the Go port follows; a CPU without FMA would write other values."""
    rng = np.random.default_rng(11)
    xs = np.concatenate([
        rng.uniform(-1, 1, 300), rng.uniform(-40, 40, 300), rng.normal(0, 1e-4, 50),
        rng.uniform(-745.2, -700, 100),  # results near and in the subnormal range
        rng.uniform(-1000, -512, 50), rng.uniform(512, 709.8, 50),  # rescaled paths
        [0.0, -0.0, 1e-300, -1e-300, 2.0**-54, -(2.0**-55), 709.78, 709.79, 710.0,
         -745.13, -745.14, -746.0, 1e308, -1e308, np.inf, -np.inf, np.nan],
    ])
    pairs = []
    for x in xs:
        try:
            y = math.exp(x)
        except OverflowError:
            y = math.inf
        pairs.append([encode(x), encode(y)])
    with open(os.path.join(outdir, "exp.json"), "w") as f:
        json.dump(pairs, f, separators=(",", ":"))


def bench(outdir):
    # The serving tutorial's model_rf.pkl (see baselines/train.py).
    X, y = make_classification(n_samples=10_000, n_features=2, n_informative=2,
                               n_redundant=0, n_clusters_per_class=1, weights=[0.97, 0.03],
                               flip_y=0.01, random_state=42)
    rf = RandomForestClassifier(n_estimators=100, max_depth=8, random_state=42).fit(X, y)
    joblib.dump(rf, os.path.join(outdir, "bench_rf.joblib"))
    hgb = HistGradientBoostingClassifier(max_iter=100, random_state=42).fit(X, y)
    joblib.dump(hgb, os.path.join(outdir, "bench_hgb.joblib"))
    with open(os.path.join(outdir, "bench.json"), "w") as f:
        json.dump({"X": X[:256].tolist(),
                   "rf_proba": rf.predict_proba(X[:256]).tolist(),
                   "hgb_proba": hgb.predict_proba(X[:256]).tolist()}, f)


if __name__ == "__main__":
    # numpy warns about NaN in reductions while HistGradientBoosting bins
    # features that have missing values; expected, and noisy.
    warnings.simplefilter("ignore", RuntimeWarning)
    here = os.path.dirname(os.path.abspath(__file__))
    if len(sys.argv) == 3 and sys.argv[1] == "--bench":
        bench(sys.argv[2])
    else:
        main(sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, "trees"))
