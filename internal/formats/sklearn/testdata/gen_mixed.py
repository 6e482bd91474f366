#!/usr/bin/python3
"""Generate the string-column fixtures under testdata/mixed/.

Run with Debian's interpreter (scikit-learn 1.2.1, pandas, numpy 1.24):

    /usr/bin/python3 internal/formats/sklearn/testdata/gen_mixed.py

Each case is a model fitted on a pandas DataFrame that mixes numeric and string
columns, with missing values (NaN) in both, saved with joblib, and

  <case>.expected.json  the columns (name and kind), the evaluation rows as a
                        client sends them (strings, numbers, null for missing),
                        and sklearn's predict / predict_proba / transform on them.

The evaluation rows hold strings never seen in fit and missing values where
the estimator allows them. The output is deterministic: rerunning the script
rewrites the same bytes.
"""
import json
import math
import os

for _v in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_v, "1")

import joblib
import numpy as np
import pandas as pd
import sklearn
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "mixed")
SEED = 20261204

MERCHANTS = ["grocery", "electronics", "travel", "fuel", "restaurant", "online", "jewelry", "pharmacy"]
COUNTRIES = ["US", "GB", "DE", "FR", "NG", "BR", "IN", "CN", "CA", "ES", "IT", "MX"]
DEVICES = ["ios", "android", "web", "pos"]


def fraud_frame(rng, n, unseen):
    """Transactions: three numeric and three string columns with gaps; with
    unseen, some strings fit never saw. transaction_id is dropped by the models."""
    def pick(values, p_missing, extra):
        pool = values + (extra if unseen else [])
        col = np.array(rng.choice(pool, n), dtype=object)
        col[rng.rand(n) < p_missing] = np.nan
        return col
    amount = np.round(rng.lognormal(3.5, 1.2, n), 2)
    amount[rng.rand(n) < 0.05] = np.nan
    hour = rng.randint(0, 24, n).astype(float)
    hour[rng.rand(n) < 0.03] = np.nan
    age = rng.randint(18, 90, n).astype(float)
    age[rng.rand(n) < 0.08] = np.nan
    return pd.DataFrame({
        "transaction_id": ["t%06d" % i for i in rng.randint(0, 10**6, n)],
        "amount": amount,
        "hour": hour,
        "age": age,
        "merchant_category": pick(MERCHANTS, 0.04, ["crypto", "gambling"]),
        "country": pick(COUNTRIES, 0.06, ["ZZ", "Atlantis", "日本"]),
        "device": pick(DEVICES, 0.1, ["smart-tv"]),
    })


def fraud_label(rng, df):
    risk = (np.nan_to_num(df["amount"].to_numpy(float), nan=50.0) / 400
            + df["merchant_category"].isin(["electronics", "jewelry", "online"]) * 0.8
            + df["country"].isin(["NG", "BR"]) * 0.9
            + (df["device"] == "web") * 0.4
            + ((df["hour"] < 5) | (df["hour"] > 22)) * 0.6
            - 2.6)
    return (rng.rand(len(df)) < 1 / (1 + np.exp(-risk.to_numpy(float)))).astype(int)


def cell(v):
    if v is None:
        return None
    if isinstance(v, float) and math.isnan(v):
        return None
    if isinstance(v, (np.floating, float)):
        return None if math.isnan(float(v)) else float(v)
    if isinstance(v, (np.integer, int)):
        return int(v)
    return str(v)


def floats(a):
    return [[None if math.isnan(x) else x for x in r] if isinstance(r, list) else (None if math.isnan(r) else r)
            for r in a.tolist()]


def pick_numbers(df):
    return ["amount", "hour", "age"]


def write_case(name, est, df, kinds, fit_kind):
    doc = {
        "class": type(est).__module__ + "." + type(est).__name__,
        "sklearn": sklearn.__version__,
        "columns": [{"name": c, "kind": kinds[c]} for c in df.columns],
        "rows": [[cell(v) for v in row] for row in df.itertuples(index=False, name=None)],
    }
    if fit_kind == "classifier":
        doc["predict"] = est.predict(df).tolist()
        doc["predict_proba"] = floats(est.predict_proba(df))
    else:
        doc["transform"] = floats(np.asarray(est.transform(df), dtype=float))
    joblib.dump(est, os.path.join(OUT, name + ".joblib"), compress=0)
    doc["file"] = name + ".joblib"
    with open(os.path.join(OUT, name + ".expected.json"), "w") as f:
        json.dump(doc, f, separators=(",", ":"), ensure_ascii=False)
        f.write("\n")


def main():
    os.makedirs(OUT, exist_ok=True)
    for fn in os.listdir(OUT):
        os.remove(os.path.join(OUT, fn))
    rng = np.random.RandomState(SEED)
    train = fraud_frame(rng, 4000, unseen=False)
    y = fraud_label(rng, train)
    evals = fraud_frame(rng, 1000, unseen=True)
    numeric = ["amount", "hour", "age"]
    strings = ["merchant_category", "country", "device"]
    kinds = {"transaction_id": "unused", **{c: "number" for c in numeric}, **{c: "text" for c in strings}}

    # The realistic fraud pipeline: imputed numbers, imputed and one-hot
    # encoded strings (unseen ones ignored), HistGradientBoosting on top; the
    # transaction id is dropped.
    fraud = Pipeline([
        ("prep", ColumnTransformer([
            ("num", SimpleImputer(strategy="median"), numeric),
            ("cat", Pipeline([
                ("impute", SimpleImputer(strategy="constant", fill_value="missing")),
                ("onehot", OneHotEncoder(handle_unknown="ignore", sparse_output=False)),
            ]), strings),
        ], remainder="drop")),
        ("hgb", HistGradientBoostingClassifier(max_iter=60, random_state=0)),
    ]).fit(train, y)
    write_case("fraud_hgb", fraud, evals, kinds, "classifier")

    # Scaled numbers and ordinal-encoded strings into a LogisticRegression;
    # NaN in a string column is the encoder's own missing category.
    lr = Pipeline([
        ("prep", ColumnTransformer([
            ("num", Pipeline([("impute", SimpleImputer()), ("scale", StandardScaler())]), numeric),
            ("cat", OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1,
                                   encoded_missing_value=-2), strings),
        ])),
        ("lr", LogisticRegression(max_iter=1000)),
    ]).fit(train, y)
    write_case("ct_ordinal_lr", lr, evals, kinds, "classifier")

    # Categories given out of alphabetical order, as people list ordinal levels.
    levels = pd.DataFrame({
        "size": rng.choice(["small", "medium", "large", "huge"], 600),
        "tier": rng.choice(["bronze", "silver", "gold"], 600),
    })
    ordinal = OrdinalEncoder(categories=[["small", "medium", "large"], ["gold", "silver", "bronze"]],
                             handle_unknown="use_encoded_value", unknown_value=-1).fit(levels[levels["size"] != "huge"])
    write_case("ordinal_given_order", ordinal, levels, {"size": "text", "tier": "text"}, "transform")

    # The most frequent string, a missing indicator, then one-hot columns with
    # the first category dropped; unknown strings would be errors, so the
    # evaluation rows hold known ones (and gaps).
    known = fraud_frame(rng, 600, unseen=False)[strings]
    onehot = Pipeline([
        ("impute", SimpleImputer(strategy="most_frequent", add_indicator=True)),
        ("onehot", ColumnTransformer([
            ("enc", OneHotEncoder(drop="first", sparse_output=False), [0, 1, 2]),
        ], remainder="passthrough")),
    ]).fit(known)
    write_case("impute_frequent_onehot_drop", onehot, fraud_frame(rng, 500, unseen=False)[strings],
               {c: "text" for c in strings}, "transform")

    # Infrequent categories grouped, unknown strings sent to them; a string
    # marker ("?") for missing values imputed with a constant.
    marked = known.copy()
    marked[marked.isna()] = "?"
    infrequent = Pipeline([
        ("impute", SimpleImputer(missing_values="?", strategy="constant", fill_value="unknown")),
        ("onehot", OneHotEncoder(min_frequency=0.1, handle_unknown="infrequent_if_exist", sparse_output=False)),
    ]).fit(marked)
    evals_marked = fraud_frame(rng, 500, unseen=True)[strings]
    evals_marked[evals_marked.isna()] = "?"
    write_case("impute_marker_infrequent", infrequent, evals_marked, {c: "text" for c in strings}, "transform")

    # Columns chosen by position slices, a slice of names (inclusive, as
    # pandas' .loc) and make_column_selector by dtype.
    from sklearn.compose import make_column_selector
    sliced = Pipeline([
        ("prep", ColumnTransformer([
            ("num", SimpleImputer(strategy="median"), slice(1, 4)),
            ("cat", Pipeline([
                ("impute", SimpleImputer(strategy="most_frequent")),
                ("onehot", OneHotEncoder(handle_unknown="ignore", sparse_output=False)),
            ]), slice("merchant_category", "device")),
            ("hour_again", "passthrough", slice(-5, -4)),
        ])),
        ("lr", LogisticRegression(max_iter=2000)),
    ]).fit(train.fillna({"hour": 12.0}), y)
    write_case("ct_slices_lr", sliced, evals.fillna({"hour": 12.0}), kinds, "classifier")
    selected = Pipeline([
        ("prep", ColumnTransformer([
            ("num", SimpleImputer(strategy="median"), make_column_selector(dtype_include=np.number)),
            ("cat", Pipeline([
                ("impute", SimpleImputer(strategy="constant", fill_value="missing")),
                ("onehot", OneHotEncoder(handle_unknown="ignore", sparse_output=False)),
            ]), make_column_selector(pattern="^(?:merchant|country|device)", dtype_include=object)),
        ])),
        ("hgb", HistGradientBoostingClassifier(max_iter=30, random_state=0)),
    ]).fit(train, y)
    write_case("ct_selector_hgb", selected, evals, kinds, "classifier")

    # A function as the column selector: the pickle refers to the function by
    # name, code Tide will not run; refused by that name (no expected outputs).
    by_function = ColumnTransformer([("num", StandardScaler(), pick_numbers)]).fit(train.fillna(0))
    joblib.dump(by_function, os.path.join(OUT, "ct_callable_refused.joblib"), compress=0)

    # Python's own slice semantics over five columns, for the Go slice resolver.
    cases = []
    bounds = [None, -7, -3, -1, 0, 1, 2, 4, 5, 9]
    for a in bounds:
        for b in bounds:
            for c in [None, 1, 2, -1, -2, 3]:
                cases.append([a, b, c, list(range(5))[slice(a, b, c)]])
    with open(os.path.join(OUT, "slices.json"), "w") as f:
        json.dump(cases, f, separators=(",", ":"))
        f.write("\n")

    # String encoders inside an ensemble's members: the model's columns do not
    # lead to them, so Tide refuses the file (no expected outputs).
    from sklearn.ensemble import VotingClassifier
    member = Pipeline([
        ("prep", ColumnTransformer([("cat", OneHotEncoder(handle_unknown="ignore"), strings)])),
        ("lr", LogisticRegression(max_iter=1000)),
    ])
    voting = VotingClassifier([("a", member), ("b", member)], voting="soft").fit(train, y)
    joblib.dump(voting, os.path.join(OUT, "voting_members_with_strings.joblib"), compress=0)


if __name__ == "__main__":
    main()
