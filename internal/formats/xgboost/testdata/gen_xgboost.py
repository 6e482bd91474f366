#!/usr/bin/python3
"""Generates the XGBoost fixtures: small models (<= 20 trees, depth <= 4) for each
objective and booster the Go reader serves, with XGBoost's own margins and
predictions on 1000 rows that include missing values (NaN).

Run with Debian's python3-xgboost 1.7.4:  /usr/bin/python3 gen_xgboost.py
(from this directory). Everything is seeded and single-threaded, so the files
regenerate byte for byte.

Files written:
  X_<dataset>.json     {"rows": n, "cols": m, "data": base64 of n*m float32 LE}
  <case>.json / .ubj   the model, as Booster.save_model writes it
  legacy_binary.model  a tiny model in the old binary format (to be refused)
  <case>.expect.json   {"model": file name, "dataset": name, "objective": name,
                        "groups": margins per row,
                        "margin": base64 float32 LE, predict(output_margin=True),
                        "predict": base64 float32 LE, predict(),
                        both up to best_iteration for early-stopped models
                        "predict_cols": values per row in "predict"}

The inputs are stored as float32 because XGBoost converts every input to
float32 before predicting; the margins are float32 as XGBoost returns them.
"""
import base64
import json

import numpy as np
import xgboost as xgb

assert xgb.__version__ == "1.7.4", xgb.__version__

ROWS = 1000
TRAIN_ROWS = 600


def b64(a):
    return base64.b64encode(np.ascontiguousarray(a, dtype="<f4").tobytes()).decode()


def dense_dataset(rng):
    """Six features: three continuous, three on a coarse grid so that many
    inputs equal a split threshold exactly; about 10% NaN."""
    X = np.empty((ROWS, 6), dtype=np.float32)
    X[:, 0:3] = rng.normal(size=(ROWS, 3))
    X[:, 3] = rng.integers(-3, 4, ROWS)
    X[:, 4] = np.round(rng.normal(size=ROWS) * 4) / 4
    X[:, 5] = rng.integers(0, 2, ROWS)
    X[rng.random(X.shape) < 0.1] = np.nan
    return X


def categorical_dataset(rng):
    """Feature 0 is a category 0..9, feature 1 a category 0..2, the rest
    continuous; some rows carry categories never seen in training, negative
    ones and fractional ones."""
    X = np.empty((ROWS, 4), dtype=np.float32)
    X[:, 0] = rng.integers(0, 10, ROWS)
    X[:, 1] = rng.integers(0, 3, ROWS)
    X[:, 2:] = rng.normal(size=(ROWS, 2))
    X[rng.random(X.shape) < 0.1] = np.nan
    tail = np.arange(TRAIN_ROWS, ROWS)
    X[tail[::10], 0] = 12  # unseen category
    X[tail[1::10], 0] = -1  # invalid category: goes left
    X[tail[2::10], 0] = 3.7  # truncated to 3
    X[tail[3::10], 0] = 1e9  # beyond XGBoost's category range
    return X


def nanfill(X):
    return np.where(np.isnan(X), 0, X)


def labels(kind, X, rng):
    Z = nanfill(X)
    score = Z[:, 0] + 0.5 * Z[:, 1] * Z[:, 2] + 0.3 * Z[:, 3] + 0.2 * rng.normal(size=len(X))
    if X.shape[1] == 4:  # categorical dataset
        score = np.isin(Z[:, 0], [1, 3, 4, 8]) * 1.5 + (Z[:, 1] == 2) + 0.5 * Z[:, 2] + 0.3 * rng.normal(size=len(X)) - 1
    if kind == "binary":
        return (score > 0).astype(np.float32)
    if kind.startswith("multi"):
        k = int(kind[5:])
        return np.digitize(score, np.quantile(score, np.linspace(0, 1, k + 1)[1:-1])).astype(np.float32)
    if kind == "unit":
        return 1 / (1 + np.exp(-score))
    if kind == "positive":
        return np.exp(0.5 * score)
    if kind == "count":
        return rng.poisson(np.exp(0.5 * score)).astype(np.float32)
    if kind == "tweedie":
        return np.where(rng.random(len(X)) < 0.3, 0, np.exp(0.5 * score))
    if kind == "rank":
        return np.clip(np.round(score + 1), 0, 3)
    if kind == "cox":  # survival times, negative when censored
        t = np.exp(0.5 * score)
        return np.where(rng.random(len(X)) < 0.3, -t, t)
    if kind == "aft":  # survival times; the upper bound is set apart
        return np.exp(0.5 * score)
    if kind == "2targets":
        return np.stack([score, Z[:, 4] - score], axis=1)
    return score


# name, dataset, label kind, params, rounds, also write .ubj
CASES = [
    ("binary_logistic", "dense", "binary", {"objective": "binary:logistic", "base_score": 0.3}, 20, True),
    ("binary_logitraw", "dense", "binary", {"objective": "binary:logitraw"}, 15, False),
    ("binary_hinge", "dense", "binary", {"objective": "binary:hinge"}, 10, False),
    ("multi_softprob", "dense", "multi4", {"objective": "multi:softprob", "num_class": 4}, 5, True),
    ("multi_softmax", "dense", "multi3", {"objective": "multi:softmax", "num_class": 3}, 5, False),
    ("reg_squarederror", "dense", "real", {"objective": "reg:squarederror", "base_score": 0.25}, 20, True),
    ("reg_logistic", "dense", "unit", {"objective": "reg:logistic"}, 15, False),
    ("reg_squaredlogerror", "dense", "positive", {"objective": "reg:squaredlogerror"}, 15, False),
    ("reg_pseudohubererror", "dense", "real", {"objective": "reg:pseudohubererror"}, 15, False),
    ("reg_absoluteerror", "dense", "real", {"objective": "reg:absoluteerror"}, 10, False),
    ("count_poisson", "dense", "count", {"objective": "count:poisson", "base_score": 1.7}, 15, False),
    ("reg_gamma", "dense", "positive", {"objective": "reg:gamma", "base_score": 0.8}, 15, False),
    ("reg_tweedie", "dense", "tweedie", {"objective": "reg:tweedie", "tweedie_variance_power": 1.4}, 15, False),
    ("rank_pairwise", "dense", "rank", {"objective": "rank:pairwise"}, 10, False),
    ("rank_ndcg", "dense", "rank", {"objective": "rank:ndcg"}, 10, False),
    ("dart_binary", "dense", "binary",
     {"booster": "dart", "objective": "binary:logistic", "rate_drop": 0.3, "skip_drop": 0.0}, 12, True),
    ("dart_regression", "dense", "real",
     {"booster": "dart", "objective": "reg:squarederror", "rate_drop": 0.2, "normalize_type": "forest"}, 12, False),
    ("linear_regression", "dense", "real", {"booster": "gblinear", "objective": "reg:squarederror", "base_score": 0.1}, 10, True),
    ("linear_binary", "dense", "binary", {"booster": "gblinear", "objective": "binary:logistic"}, 10, False),
    ("linear_multi", "dense", "multi3", {"booster": "gblinear", "objective": "multi:softprob", "num_class": 3}, 10, False),
    ("forest_multi", "dense", "multi3",
     {"objective": "multi:softprob", "num_class": 3, "num_parallel_tree": 3, "subsample": 0.8, "colsample_bynode": 0.8}, 2, False),
    ("multi_target", "dense", "2targets", {"objective": "reg:squarederror", "tree_method": "hist"}, 8, False),
    ("lossguide", "dense", "real",
     {"objective": "reg:squarederror", "tree_method": "hist", "grow_policy": "lossguide", "max_leaves": 10}, 10, False),
    # Pruning (gamma) leaves deleted nodes, unreachable from the root, in
    # exact trees; hist trees are grown pruned.
    ("pruned_exact", "dense", "real", {"objective": "reg:squarederror", "tree_method": "exact", "gamma": 3.0}, 10, True),
    ("pruned_hist", "dense", "real", {"objective": "reg:squarederror", "tree_method": "hist", "gamma": 3.0}, 10, False),
    # Early stopping: the served model stops at best_iteration, as
    # XGBClassifier.predict does, though the file holds later rounds too.
    ("survival_cox", "dense", "cox", {"objective": "survival:cox", "base_score": 2.0}, 10, False),
    ("survival_aft", "dense", "aft", {"objective": "survival:aft", "base_score": 2.0}, 10, False),
    ("early_stopped", "dense", "multi3",
     {"objective": "multi:softprob", "num_class": 3, "eta": 1.0, "early_stopping_rounds": 2}, 6, False),
    ("categorical_partition", "categorical", "binary",
     {"objective": "binary:logistic", "tree_method": "hist", "max_cat_to_onehot": 1}, 10, True),
    ("categorical_onehot", "categorical", "real",
     {"objective": "reg:squarederror", "tree_method": "hist", "max_cat_to_onehot": 16}, 10, False),
]


def main():
    rng = np.random.default_rng(20240611)
    datasets = {"dense": dense_dataset(rng), "categorical": categorical_dataset(rng)}
    for name, X in datasets.items():
        with open(f"X_{name}.json", "w") as f:
            json.dump({"rows": X.shape[0], "cols": X.shape[1], "data": b64(X)}, f)
            f.write("\n")

    for name, ds, kind, params, rounds, ubj in CASES:
        X = datasets[ds]
        y = labels(kind, X, rng)
        dm_args = {}
        if ds == "categorical":
            dm_args = {"feature_types": ["c", "c", "q", "q"], "enable_categorical": True}
        elif name == "reg_squarederror":
            dm_args = {"feature_names": ["age", "income", "score", "grade", "rate", "flag"]}
        if kind == "aft":
            # Interval-censored: every fourth time is only a lower bound.
            train = xgb.DMatrix(X[:TRAIN_ROWS], **dm_args)
            upper = y[:TRAIN_ROWS].copy()
            upper[::4] = np.inf
            train.set_float_info("label_lower_bound", y[:TRAIN_ROWS])
            train.set_float_info("label_upper_bound", upper)
        else:
            train = xgb.DMatrix(X[:TRAIN_ROWS], label=y[:TRAIN_ROWS], **dm_args)
        if kind == "rank":
            train.set_group([20] * (TRAIN_ROWS // 20))
        p = {"max_depth": 4, "eta": 0.3, "seed": 7, "nthread": 1}
        p.update(params)
        train_args = {}
        if "early_stopping_rounds" in p:
            train_args["early_stopping_rounds"] = p.pop("early_stopping_rounds")
            train_args["evals"] = [(xgb.DMatrix(X[TRAIN_ROWS:], label=y[TRAIN_ROWS:], **dm_args), "eval")]
            train_args["verbose_eval"] = False
        if p.get("booster") == "gblinear":
            del p["max_depth"]  # trees only
        booster = xgb.train(p, train, num_boost_round=rounds, **train_args)
        # What XGBModel.predict uses: every round up to the best one.
        best = {}
        if train_args:
            assert booster.best_iteration + 1 < rounds, (name, booster.best_iteration)
            best = {"iteration_range": (0, booster.best_iteration + 1)}
        # Trained with its parameters, predicted with the saved file: what is
        # checked is exactly what a user would serve.
        booster.save_model(f"{name}.json")
        if ubj:
            booster.save_model(f"{name}.ubj")
        loaded = xgb.Booster(model_file=f"{name}.json")
        full = xgb.DMatrix(X, **dm_args)
        margin = loaded.predict(full, output_margin=True, **best)
        pred = loaded.predict(full, **best)
        groups = 1 if margin.ndim == 1 else margin.shape[1]
        cols = 1 if pred.ndim == 1 else pred.shape[1]
        expect = {
            "model": f"{name}.json",
            "dataset": ds,
            "objective": params["objective"],
            "groups": groups,
            "margin": b64(margin),
            "predict": b64(pred),
            "predict_cols": cols,
        }
        if ubj:
            ubj_margin = xgb.Booster(model_file=f"{name}.ubj").predict(full, output_margin=True)
            assert np.array_equal(ubj_margin.view(np.uint32), margin.view(np.uint32)), name
        with open(f"{name}.expect.json", "w") as f:
            json.dump(expect, f, indent=1)
            f.write("\n")
        print(f"{name}: {len(booster.get_dump())} trees, margin groups {groups}")

    # The old binary format, which the reader refuses with advice to re-save
    # as JSON: what save_model writes in 1.7 for a name without .json/.ubj.
    X = datasets["dense"]
    tiny = xgb.train({"max_depth": 2, "seed": 7, "nthread": 1},
                     xgb.DMatrix(X[:100], label=labels("real", X[:100], rng)), num_boost_round=2)
    tiny.save_model("legacy_binary.model")


if __name__ == "__main__":
    main()
