#!/usr/bin/python3
"""Generate the linear-model, scaler and Pipeline fixtures under testdata/linear/.

Run with Debian's interpreter (scikit-learn 1.2.1, joblib 1.2.0, numpy 1.24):

    /usr/bin/python3 internal/formats/sklearn/testdata/gen_linear.py

For every case it trains a small model on synthetic data and writes

  <case>.joblib      joblib.dump, compress=0
  <case>.z3.joblib   joblib.dump, compress=3 (zlib)
  <case>.p2.pkl      pickle protocol 2
  <case>.p4.pkl      pickle protocol 4
  <case>.p5.pkl      pickle protocol 5 (numpy's out-of-band-capable reducer, in band)
  <case>.expected.json
                     the input X, sklearn's predict / predict_proba / transform
                     on it, decision_function for linear classifiers, and the
                     list of model files (not <case>.json: `tide serve` reads a
                     <stem>.json beside a model file as the model's config)

(the later cases, which add estimators rather than serialisations, are written
as .joblib and .p4.pkl only). The output is deterministic: rerunning the script
rewrites the same bytes.

and, for the tutorial's case, model.pkl exactly as the tutorial saves it
(joblib.dump(model, "model.pkl")). X has at least 200 rows drawn like the training
data plus rows of extreme values. The Go tests compare against the JSON: labels
exactly, numbers within 1e-12 relative (or 1e-15 absolute).

Feature names: sklearn records feature_names_in_ only for input that has a
`columns` attribute (a pandas DataFrame, normally). pandas is not installed here,
so the named case is fitted on a numpy array subclass that carries `columns`;
sklearn reads the names from it exactly as it would from a DataFrame.
"""
import json
import os
import pickle

# One BLAS thread: fitted coefficients then do not depend on the core count.
for _v in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_v, "1")

import joblib  # noqa: E402
import numpy as np  # noqa: E402
import sklearn  # noqa: E402
from sklearn.datasets import make_classification, make_regression  # noqa: E402
from sklearn.linear_model import (  # noqa: E402
    ElasticNet,
    Lasso,
    LinearRegression,
    LogisticRegression,
    LogisticRegressionCV,
    Ridge,
    RidgeClassifier,
    RidgeCV,
    SGDClassifier,
    SGDRegressor,
)
from sklearn.impute import SimpleImputer  # noqa: E402
from sklearn.naive_bayes import BernoulliNB, ComplementNB, GaussianNB, MultinomialNB  # noqa: E402
from sklearn.ensemble import BaggingClassifier, BaggingRegressor, VotingClassifier, VotingRegressor  # noqa: E402
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor  # noqa: E402
from sklearn.calibration import CalibratedClassifierCV  # noqa: E402
from sklearn.ensemble import StackingClassifier, StackingRegressor  # noqa: E402
from sklearn.ensemble import AdaBoostClassifier, AdaBoostRegressor  # noqa: E402
from sklearn.compose import ColumnTransformer  # noqa: E402
from sklearn.ensemble import HistGradientBoostingClassifier  # noqa: E402
from sklearn.pipeline import FeatureUnion  # noqa: E402
from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder  # noqa: E402
from sklearn.preprocessing import (  # noqa: E402
    Binarizer, KBinsDiscretizer, Normalizer, PolynomialFeatures, PowerTransformer, QuantileTransformer,
)
from sklearn.ensemble import GradientBoostingClassifier, RandomForestClassifier  # noqa: E402
from sklearn.pipeline import Pipeline  # noqa: E402
from sklearn.preprocessing import MaxAbsScaler, MinMaxScaler, RobustScaler, StandardScaler  # noqa: E402
from sklearn.svm import SVC, SVR, LinearSVC, NuSVC, NuSVR, OneClassSVM  # noqa: E402
from sklearn.neighbors import KNeighborsClassifier, KNeighborsRegressor  # noqa: E402
from sklearn.compose import TransformedTargetRegressor  # noqa: E402

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "linear")
SEED = 7


class Table(np.ndarray):
    """A numpy array with column names, which sklearn treats like a DataFrame."""


def table(X, columns):
    t = np.asarray(X, dtype=np.float64).view(Table)
    t.columns = list(columns)
    return t


def extremes(p, scale=1.0):
    """Rows of extreme but finite values that sklearn still accepts."""
    rows = [
        np.zeros(p),
        np.full(p, 1e-300),
        np.full(p, -1e-300),
        np.full(p, 1e6 * scale),
        np.full(p, -1e6 * scale),
        np.full(p, 1e12),
        np.full(p, -1e12),
        np.full(p, 1e100),
        np.full(p, -1e100),
        np.full(p, 5e-324),  # the smallest subnormal
    ]
    for j in range(p):  # one large coordinate at a time
        r = np.zeros(p)
        r[j] = 1e9
        rows.append(r)
        r = np.zeros(p)
        r[j] = -1e9
        rows.append(r)
    return np.array(rows)


def eval_rows(X_pool, p, rng, total=200):
    """total rows: held-in rows drawn like the training data, then extremes."""
    ext = extremes(p)
    need = total - len(ext)
    # A pool smaller than the rows asked for is sampled with replacement.
    X = X_pool[rng.choice(len(X_pool), size=need, replace=need > len(X_pool))]
    return np.vstack([X, ext])


def classification(n_classes, p, rng_seed, weights=None, n=600):
    X, y = make_classification(
        n_samples=n,
        n_features=p,
        n_informative=min(p, max(2, n_classes)),
        n_redundant=0,
        n_repeated=0,
        n_classes=n_classes,
        n_clusters_per_class=1,
        weights=weights,
        flip_y=0.01,
        random_state=rng_seed,
    )
    return X, y


ALL_FORMATS = (".joblib", ".z3.joblib", ".p2.pkl", ".p4.pkl", ".p5.pkl")


def json_safe(v):
    """Nested lists with NaN and ±Inf written as the strings "NaN", "Infinity" and
    "-Infinity", which strict JSON readers (Go's) accept where a bare NaN is an
    error. sklearn gives NaN probabilities when every one-vs-rest sigmoid of a
    row underflows to zero (0/0 in the normalisation)."""
    if isinstance(v, list):
        return [json_safe(x) for x in v]
    if isinstance(v, float) and not np.isfinite(v):
        return "NaN" if np.isnan(v) else ("Infinity" if v > 0 else "-Infinity")
    return v


def write_case(name, est, X, fit_kind, feature_input=None, formats=ALL_FORMATS):
    """Save est in the given formats and its outputs on X as JSON."""
    Xin = X if feature_input is None else feature_input(X)
    doc = {
        "class": type(est).__module__ + "." + type(est).__name__,
        "sklearn": sklearn.__version__,
        "n_features": int(X.shape[1]),
        "feature_names": None,
        "X": json_safe(X.tolist()),
    }
    names = getattr(est, "feature_names_in_", None)
    if names is not None:
        doc["feature_names"] = [str(s) for s in names]
    if fit_kind == "classifier":
        pred = est.predict(Xin)
        doc["predict"] = json_safe(pred.tolist())
        doc["label_type"] = {"i": "int", "f": "float", "U": "str", "O": "str", "b": "bool"}[pred.dtype.kind]
        if hasattr(est, "predict_proba"):  # LinearSVC, RidgeClassifier: predict only
            with np.errstate(invalid="ignore"):
                doc["predict_proba"] = json_safe(est.predict_proba(Xin).tolist())
        if hasattr(est, "decision_function") and not isinstance(est, Pipeline):
            doc["decision"] = json_safe(est.decision_function(Xin).tolist())
    elif fit_kind == "regressor":
        doc["predict"] = json_safe(est.predict(Xin).tolist())
    else:
        doc["transform"] = json_safe(est.transform(Xin).tolist())

    for suffix in formats:
        path = os.path.join(OUT, name + suffix)
        if suffix == ".joblib":
            joblib.dump(est, path, compress=0)
        elif suffix == ".z3.joblib":
            joblib.dump(est, path, compress=3)
        else:
            with open(path, "wb") as f:
                pickle.dump(est, f, protocol=int(suffix[2]))
    doc["files"] = [name + suffix for suffix in formats]
    with open(os.path.join(OUT, name + ".expected.json"), "w") as f:
        json.dump(doc, f, separators=(",", ":"))
        f.write("\n")
    return doc


def main():
    os.makedirs(OUT, exist_ok=True)
    for fn in os.listdir(OUT):
        os.remove(os.path.join(OUT, fn))
    rng = np.random.RandomState(SEED)

    # The tutorial's model: fraud-like imbalanced binary data on feature1/feature2,
    # fitted on a plain numpy array (so the file has no feature names).
    X, y = classification(2, 2, 42, weights=[0.97, 0.03], n=2000)
    lr = LogisticRegression(random_state=42).fit(X, y)
    write_case("lr_fraud", lr, eval_rows(X, 2, rng), "classifier")
    joblib.dump(lr, os.path.join(OUT, "model.pkl"))

    # The same, fitted on a table with column names: feature_names_in_ is set.
    named = LogisticRegression(random_state=42).fit(table(X, ["amount", "risk_score"]), y)
    write_case(
        "lr_fraud_named", named, eval_rows(X, 2, rng), "classifier",
        feature_input=lambda A: table(A, ["amount", "risk_score"]),
    )

    # Multiclass, lbfgs with multi_class='auto' → multinomial (softmax).
    X, y = classification(3, 4, 1)
    write_case("lr_multinomial", LogisticRegression(max_iter=500).fit(X, y), eval_rows(X, 4, rng), "classifier")

    # One-vs-rest with string labels.
    X, y = classification(4, 4, 2)
    ys = np.array(["cat", "dog", "eel", "fox"])[y]
    write_case(
        "lr_ovr_strings",
        LogisticRegression(multi_class="ovr", max_iter=500).fit(X, ys),
        eval_rows(X, 4, rng), "classifier",
    )

    # liblinear with multi_class='auto' → one-vs-rest; float labels (sklearn
    # takes floats as class labels only when they are whole numbers).
    X, y = classification(3, 3, 3)
    yf = np.array([1.0, 2.0, 4.0])[y]
    write_case(
        "lr_liblinear_floats",
        LogisticRegression(solver="liblinear").fit(X, yf),
        eval_rows(X, 3, rng), "classifier",
    )

    # Binary with multi_class='multinomial' (softmax of (-d, d)) and bool labels.
    X, y = classification(2, 3, 4)
    write_case(
        "lr_binary_multinomial_bool",
        LogisticRegression(multi_class="multinomial").fit(X, y.astype(bool)),
        eval_rows(X, 3, rng), "classifier",
    )

    # Binary without intercept, labels that are not 0/1.
    X, y = classification(2, 5, 5)
    write_case(
        "lr_no_intercept",
        LogisticRegression(fit_intercept=False).fit(X, np.array([-1, 7])[y]),
        eval_rows(X, 5, rng), "classifier",
    )

    # Regressors.
    X, y = make_regression(n_samples=400, n_features=3, noise=5.0, random_state=6)
    write_case("linreg", LinearRegression().fit(X, y), eval_rows(X, 3, rng), "regressor")
    write_case("linreg_column", LinearRegression().fit(X, y.reshape(-1, 1)), eval_rows(X, 3, rng), "regressor")

    X, Y = make_regression(n_samples=400, n_features=4, n_targets=3, noise=2.0, random_state=8)
    write_case("ridge_multi", Ridge(alpha=0.7).fit(X, Y), eval_rows(X, 4, rng), "regressor")
    write_case(
        "ridge_multi_no_intercept",
        Ridge(alpha=2.0, fit_intercept=False).fit(X, Y),
        eval_rows(X, 4, rng), "regressor",
    )
    write_case("ridge_single", Ridge().fit(X, Y[:, 0]), eval_rows(X, 4, rng), "regressor")

    # Scalers and pipelines. Shift and stretch the data so scaling matters.
    X, y = classification(3, 4, 9)
    X = X * np.array([1.0, 100.0, 0.01, 5.0]) + np.array([0.0, 1000.0, -3.0, 2.0])
    write_case(
        "pipe_std_lr",
        Pipeline([("scale", StandardScaler()), ("clf", LogisticRegression(max_iter=1000))]).fit(X, y),
        eval_rows(X, 4, rng), "classifier",
    )
    write_case(
        "pipe_nested_none",
        Pipeline([
            ("skip", None),
            ("pre", Pipeline([("scale", StandardScaler(with_std=False)), ("noop", "passthrough")])),
            ("clf", LogisticRegression(multi_class="ovr", max_iter=1000)),
        ]).fit(X, y),
        eval_rows(X, 4, rng), "classifier",
    )

    X, y = make_regression(n_samples=400, n_features=3, noise=1.0, random_state=10)
    X = X * np.array([3.0, 0.1, 50.0])
    write_case(
        "pipe_minmax_clip_ridge",
        Pipeline([
            ("mm", MinMaxScaler(feature_range=(-1, 2), clip=True)),
            ("id", "passthrough"),
            ("reg", Ridge(alpha=0.3)),
        ]).fit(X, y),
        eval_rows(X, 3, rng), "regressor",
    )
    write_case(
        "pipe_transform_only",
        Pipeline([("std", StandardScaler(with_mean=False)), ("mm", MinMaxScaler()), ("end", "passthrough")]).fit(X),
        eval_rows(X, 3, rng), "transform",
    )
    write_case("std_scaler", StandardScaler().fit(X), eval_rows(X, 3, rng), "transform")
    write_case("minmax_scaler", MinMaxScaler(feature_range=(2, 5)).fit(X), eval_rows(X, 3, rng), "transform")

    # More linear models that share the same decision function, in two
    # serialisations each (the decoder is exercised by the cases above).
    few = (".joblib", ".p4.pkl")
    X, y = classification(3, 3, 11)
    write_case(
        "logreg_cv", LogisticRegressionCV(cv=3, max_iter=1000).fit(X, y),
        eval_rows(X, 3, rng), "classifier", formats=few,
    )
    write_case("ridge_classifier", RidgeClassifier(alpha=0.5).fit(X, y), eval_rows(X, 3, rng), "classifier", formats=few)
    X, y = classification(2, 4, 12)
    write_case(
        "linear_svc", LinearSVC(max_iter=20000, random_state=0).fit(X, np.array([-1, 1])[y]),
        eval_rows(X, 4, rng), "classifier", formats=few,
    )
    write_case(
        "ridge_classifier_strings_no_intercept",
        RidgeClassifier(fit_intercept=False).fit(X, np.array(["ham", "spam"])[y]),
        eval_rows(X, 4, rng), "classifier", formats=few,
    )
    X, y = classification(3, 4, 13)
    write_case(
        "linear_svc_strings",
        LinearSVC(max_iter=20000, random_state=0).fit(X, np.array(["low", "mid", "high"])[y]),
        eval_rows(X, 4, rng), "classifier", formats=few,
    )
    X, Y = make_regression(n_samples=300, n_features=4, n_targets=2, noise=3.0, random_state=14)
    write_case("lasso", Lasso(alpha=0.1).fit(X, Y[:, 0]), eval_rows(X, 4, rng), "regressor", formats=few)
    write_case("elasticnet_multi", ElasticNet(alpha=0.1).fit(X, Y), eval_rows(X, 4, rng), "regressor", formats=few)
    write_case("ridge_cv", RidgeCV().fit(X, Y[:, 1]), eval_rows(X, 4, rng), "regressor", formats=few)
    write_case("sgd_regressor", SGDRegressor(random_state=0).fit(X, Y[:, 0]), eval_rows(X, 4, rng), "regressor", formats=few)

    # SimpleImputer: NaN (or a marker value) replaced by fitted statistics; a
    # column that was empty at fit time is dropped; add_indicator appends 0/1
    # columns. X carries missing values, so these fixtures hold NaN inputs.
    X, y = classification(2, 4, 17)
    X[:, 3] = np.nan  # empty at fit time: dropped
    X[rng.rand(len(X)) < 0.1, 0] = np.nan
    X[rng.rand(len(X)) < 0.2, 2] = np.nan
    Xe = eval_rows(X, 4, rng)
    Xe[::7, 1] = np.nan  # never missing at fit: imputed, but no indicator column
    Xe[::5, 0] = np.nan
    write_case(
        "pipe_impute_lr",
        Pipeline([
            ("impute", SimpleImputer(add_indicator=True)),
            ("scale", StandardScaler()),
            ("clf", LogisticRegression()),
        ]).fit(X, y),
        Xe, "classifier",
    )
    write_case(
        "imputer_constant",
        SimpleImputer(strategy="constant", fill_value=0.5).fit(X),
        Xe, "transform", formats=few,
    )
    Xm = np.round(X[:, :3] * 3)
    Xm[np.isnan(Xm)] = -1
    Xm[rng.rand(len(Xm)) < 0.15, 1] = -1
    Xme = np.round(eval_rows(Xm, 3, rng))
    Xme[::6, 2] = -1
    write_case(
        "imputer_median_marker",
        SimpleImputer(missing_values=-1, strategy="median", add_indicator=True).fit(Xm),
        Xme, "transform", formats=few,
    )

    # RobustScaler and MaxAbsScaler.
    X, y = make_regression(n_samples=300, n_features=3, noise=1.0, random_state=18)
    X = X * np.array([2.0, 0.05, 300.0]) + np.array([5.0, 0.0, -100.0])
    write_case(
        "pipe_robust_maxabs_ridge",
        Pipeline([("robust", RobustScaler()), ("maxabs", MaxAbsScaler()), ("reg", Ridge(alpha=0.2))]).fit(X, y),
        eval_rows(X, 3, rng), "regressor", formats=few,
    )
    write_case(
        "robust_scaler_no_centering",
        RobustScaler(with_centering=False, quantile_range=(10.0, 90.0)).fit(X),
        eval_rows(X, 3, rng), "transform", formats=few,
    )

    # SGDClassifier: what predict_proba is depends on the loss.
    X, y = classification(3, 3, 15)
    for loss in ("log_loss", "modified_huber", "hinge"):
        write_case(
            "sgd_" + loss + "_multi", SGDClassifier(loss=loss, random_state=0).fit(X, y),
            eval_rows(X, 3, rng), "classifier", formats=few,
        )
    X, y = classification(2, 3, 16)
    write_case(
        "sgd_modified_huber_binary",
        SGDClassifier(loss="modified_huber", random_state=0).fit(X, np.array(["no", "yes"])[y]),
        eval_rows(X, 3, rng), "classifier", formats=(".joblib", ".p2.pkl"),
    )

    # Every fixture from here on is checked on at least 500 rows.
    # Naive Bayes. Gaussian on real-valued features (with priors, string labels
    # and a large var_smoothing too); the discrete ones on counts.
    X, y = classification(3, 4, 19)
    write_case("gaussian_nb", GaussianNB().fit(X, y), eval_rows(X, 4, rng, total=500), "classifier", formats=few)
    write_case(
        "gaussian_nb_priors_strings",
        GaussianNB(priors=[0.2, 0.3, 0.5], var_smoothing=1e-3).fit(X, np.array(["low", "mid", "high"])[y]),
        eval_rows(X, 4, rng, total=500), "classifier", formats=few,
    )
    counts = rng.poisson(3.0, size=(600, 6)).astype(float)
    yc = (counts[:, 0] + counts[:, 1] > 6).astype(int) + (counts[:, 2] > 4).astype(int)
    counts_eval = np.vstack([rng.poisson(3.0, size=(490, 6)).astype(float), np.zeros((5, 6)), np.full((5, 6), 40.0)])
    write_case("multinomial_nb", MultinomialNB(alpha=0.5).fit(counts, yc), counts_eval, "classifier", formats=few)
    write_case("complement_nb", ComplementNB().fit(counts, yc), counts_eval, "classifier", formats=few)
    write_case("complement_nb_norm", ComplementNB(norm=True).fit(counts, yc), counts_eval, "classifier", formats=few)
    write_case("bernoulli_nb", BernoulliNB(binarize=2.5).fit(counts, yc), counts_eval, "classifier", formats=few)
    write_case(
        "bernoulli_nb_prebinarized",
        BernoulliNB(binarize=None, alpha=0.3).fit((counts > 2).astype(float), np.array(["no", "yes"])[(yc > 0).astype(int)]),
        (counts_eval > 2).astype(float), "classifier", formats=few,
    )


    # Voting and bagging over members of every kind (string labels: the
    # members see le_'s encoded ones).
    X, y = classification(3, 4, 21)
    ys = np.array(["blue", "green", "red"])[y]
    members = [
        ("lr", LogisticRegression(max_iter=500)),
        ("dt", DecisionTreeClassifier(max_depth=4, random_state=0)),
        ("nb", GaussianNB()),
    ]
    for name, est in [
        ("voting_soft", VotingClassifier(members, voting="soft")),
        ("voting_soft_weighted", VotingClassifier(members, voting="soft", weights=[2, 1, 0.5])),
        ("voting_hard", VotingClassifier(members + [("svc", LinearSVC(random_state=0, max_iter=5000))], voting="hard")),
        ("voting_hard_weighted", VotingClassifier(members, voting="hard", weights=[1, 2.5, 1])),
        ("voting_pipeline_member", VotingClassifier([
            ("p", Pipeline([("s", StandardScaler()), ("lr", LogisticRegression())])),
            ("dt", DecisionTreeClassifier(max_depth=3, random_state=0)),
        ], voting="soft")),
        ("bagging_trees", BaggingClassifier(DecisionTreeClassifier(random_state=0), n_estimators=15,
                                            max_samples=12, max_features=3, random_state=0)),
        ("bagging_lr_bootstrap_features", BaggingClassifier(LogisticRegression(max_iter=500), n_estimators=8,
                                                            bootstrap_features=True, random_state=1)),
        ("bagging_votes", BaggingClassifier(LinearSVC(max_iter=5000, random_state=0), n_estimators=6,
                                            max_samples=0.5, random_state=2)),
    ]:
        # Trees refuse values beyond float32: the extremes are clipped to 1e30.
        write_case(name, est.fit(X, ys), np.clip(eval_rows(X, 4, rng, total=500), -1e30, 1e30), "classifier", formats=few)
    X, y = make_regression(n_samples=400, n_features=4, noise=3.0, random_state=22)
    regs = [("lin", LinearRegression()), ("dt", DecisionTreeRegressor(max_depth=5, random_state=0)), ("ridge", Ridge())]
    for name, est in [
        ("voting_regressor", VotingRegressor(regs)),
        ("voting_regressor_weighted", VotingRegressor(regs, weights=[1, 3, 2])),
        ("bagging_regressor", BaggingRegressor(DecisionTreeRegressor(random_state=0), n_estimators=10,
                                               max_features=0.75, random_state=0)),
    ]:
        write_case(name, est.fit(X, y), np.clip(eval_rows(X, 4, rng, total=500), -1e30, 1e30), "regressor", formats=few)


    # Calibration: on decision functions (LinearSVC, a pipeline, gradient
    # boosting) and on probabilities (a forest), sigmoid and isotonic, binary
    # and multiclass, over the default five folds.
    X, y = classification(2, 4, 23)
    yb = np.array(["legit", "fraud"])[y]
    X3, y3 = classification(3, 4, 24)
    for name, est, data in [
        ("calibrated_svc_sigmoid", CalibratedClassifierCV(LinearSVC(max_iter=5000, random_state=0)), (X, yb)),
        ("calibrated_lr_isotonic", CalibratedClassifierCV(LogisticRegression(), method="isotonic"), (X, yb)),
        ("calibrated_forest_isotonic", CalibratedClassifierCV(
            RandomForestClassifier(n_estimators=10, max_depth=4, random_state=0), method="isotonic"), (X, yb)),
        ("calibrated_pipeline_multiclass", CalibratedClassifierCV(
            Pipeline([("s", StandardScaler()), ("svc", LinearSVC(max_iter=5000, random_state=0))])), (X3, y3)),
        ("calibrated_gb_multiclass_isotonic", CalibratedClassifierCV(
            GradientBoostingClassifier(n_estimators=10, max_depth=2, random_state=0), method="isotonic", cv=3), (X3, y3)),
    ]:
        Xf, yf = data
        write_case(name, est.fit(Xf, yf), np.clip(eval_rows(Xf, 4, rng, total=500), -1e30, 1e30), "classifier", formats=few)


    # Stacking: members by predict_proba, decision_function and predict,
    # with and without passthrough.
    stack_members = [
        ("rf", RandomForestClassifier(n_estimators=8, max_depth=4, random_state=0)),
        ("svc", LinearSVC(max_iter=5000, random_state=0)),
        ("nb", GaussianNB()),
    ]
    for name, est, data in [
        ("stacking_binary", StackingClassifier(stack_members, final_estimator=LogisticRegression()), (X, yb)),
        ("stacking_multiclass_passthrough", StackingClassifier(
            stack_members, final_estimator=LogisticRegression(max_iter=500), passthrough=True), (X3, y3)),
        ("stacking_predict_method", StackingClassifier(
            stack_members, final_estimator=DecisionTreeClassifier(max_depth=3, random_state=0),
            stack_method="predict"), (X3, y3)),
    ]:
        Xf, yf = data
        write_case(name, est.fit(Xf, yf), np.clip(eval_rows(Xf, 4, rng, total=500), -1e30, 1e30), "classifier", formats=few)
    X, y = make_regression(n_samples=400, n_features=4, noise=3.0, random_state=25)
    write_case("stacking_regressor", StackingRegressor(
        [("lin", LinearRegression()), ("dt", DecisionTreeRegressor(max_depth=4, random_state=0))],
        final_estimator=Ridge(alpha=0.5), passthrough=True).fit(X, y),
        np.clip(eval_rows(X, 4, rng, total=500), -1e30, 1e30), "regressor", formats=few)


    # AdaBoost: SAMME.R over stumps (the default), SAMME over deeper trees,
    # and the regressor's weighted median.
    Xa, ya = classification(2, 4, 27)
    for name, est, data in [
        ("adaboost_binary", AdaBoostClassifier(n_estimators=25, random_state=0), (Xa, np.array(["no", "yes"])[ya])),
        ("adaboost_multiclass", AdaBoostClassifier(n_estimators=20, random_state=0), (X3, y3)),
        ("adaboost_samme", AdaBoostClassifier(
            DecisionTreeClassifier(max_depth=2), n_estimators=15, algorithm="SAMME", random_state=0), (X3, y3)),
    ]:
        Xf, yf = data
        write_case(name, est.fit(Xf, yf), np.clip(eval_rows(Xf, 4, rng, total=500), -1e30, 1e30), "classifier", formats=few)
    X, y = make_regression(n_samples=400, n_features=4, noise=3.0, random_state=26)
    write_case("adaboost_regressor", AdaBoostRegressor(
        DecisionTreeRegressor(max_depth=3), n_estimators=30, random_state=0).fit(X, y),
        np.clip(eval_rows(X, 4, rng, total=500), -1e30, 1e30), "regressor", formats=few)


    # More transformers, alone (their transform) and in pipelines.
    X, y = classification(2, 4, 28)
    X = X * np.array([1.0, 3.0, 0.5, 10.0]) + np.array([0.0, 1.0, -2.0, 5.0])
    Xe = eval_rows(X, 4, rng, total=500)
    for name, est in [
        ("binarizer", Binarizer(threshold=0.3)),
        ("normalizer_l1", Normalizer(norm="l1")),
        ("normalizer_l2", Normalizer()),
        ("normalizer_max", Normalizer(norm="max")),
        ("poly3", PolynomialFeatures(degree=3)),
        ("poly_interaction", PolynomialFeatures(degree=3, interaction_only=True, include_bias=False)),
        ("poly_degrees_2_3", PolynomialFeatures(degree=(2, 3))),
        ("kbins_ordinal_uniform", KBinsDiscretizer(n_bins=5, encode="ordinal", strategy="uniform")),
        ("kbins_onehot_dense_quantile", KBinsDiscretizer(n_bins=4, encode="onehot-dense", strategy="quantile")),
        ("power_yeo_johnson", PowerTransformer()),
        ("power_no_standardize", PowerTransformer(standardize=False)),
        ("quantile_uniform", QuantileTransformer(n_quantiles=50)),
        ("quantile_normal", QuantileTransformer(n_quantiles=100, output_distribution="normal")),
    ]:
        write_case(name, est.fit(X), Xe, "transform", formats=few)
    Xpos = np.abs(X) + 0.1
    write_case("power_box_cox", PowerTransformer(method="box-cox").fit(Xpos),
               np.abs(eval_rows(Xpos, 4, rng, total=500)) + 0.1, "transform", formats=few)
    for name, est in [
        ("pipe_poly_lr", Pipeline([("poly", PolynomialFeatures(2)), ("s", StandardScaler()), ("lr", LogisticRegression(max_iter=1000))])),
        ("pipe_kbins_onehot_lr", Pipeline([("bins", KBinsDiscretizer(n_bins=6, encode="onehot")), ("lr", LogisticRegression(max_iter=1000))])),
        ("pipe_quantile_lr", Pipeline([("q", QuantileTransformer(n_quantiles=60, output_distribution="normal")), ("lr", LogisticRegression())])),
        ("pipe_power_lr", Pipeline([("p", PowerTransformer()), ("lr", LogisticRegression())])),
    ]:
        write_case(name, est.fit(X, y), np.clip(Xe, -1e6, 1e6), "classifier", formats=few)


    # Column-wise preprocessing with numeric categories: a column transformer
    # by index and by name, encoders alone, a feature union.
    n = 700
    amount = np.abs(rng.normal(50, 30, n))
    hour = rng.randint(0, 24, n).astype(float)
    merchant = rng.randint(0, 6, n).astype(float)
    age = rng.normal(40, 12, n)
    Xc = np.column_stack([amount, hour, merchant, age])
    yc = ((amount > 70) ^ (merchant == 3) ^ (hour < 5)).astype(int)
    Xce = Xc[rng.choice(n, 500, replace=False)].copy()
    Xce[:5, 2] = [7.0, -1.0, 2.5, 6.0, 100.0]  # merchants never seen
    ct = ColumnTransformer([
        ("num", StandardScaler(), [0, 3]),
        ("merchant", OneHotEncoder(handle_unknown="ignore", sparse_output=False), [2]),
    ], remainder="passthrough")
    write_case("ct_index_onehot_lr", Pipeline([("ct", ct), ("lr", LogisticRegression(max_iter=1000))]).fit(Xc, yc),
               Xce, "classifier", formats=few)
    # By column name (fitted on a table), NaN amounts imputed, an ordinal
    # encoder, a dropped column, HistGradientBoosting last.
    cols = ["amount", "hour", "merchant", "age"]
    Xn = Xc.copy()
    Xn[rng.rand(n) < 0.1, 0] = np.nan
    Xne = Xce.copy()
    Xne[::7, 0] = np.nan
    named = Pipeline([
        ("ct", ColumnTransformer([
            ("amount", Pipeline([("impute", SimpleImputer(strategy="median")), ("scale", StandardScaler())]), ["amount"]),
            ("merchant", OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1), ["merchant"]),
            ("hour", "passthrough", ["hour"]),
        ], remainder="drop")),
        ("hgb", HistGradientBoostingClassifier(max_iter=20, random_state=0)),
    ])
    import pandas as pd  # a ColumnTransformer selects names from a real DataFrame
    write_case("ct_names_ordinal_hgb", named.fit(pd.DataFrame(Xn, columns=cols), yc), Xne, "classifier",
               feature_input=lambda A: pd.DataFrame(A, columns=cols), formats=few)
    Xk = Xce[5:]  # known merchants only, for handle_unknown="error"
    write_case("onehot_drop_first", OneHotEncoder(drop="first", sparse_output=False).fit(Xc[:, [1, 2]]),
               Xk[:, [1, 2]], "transform", formats=few)
    write_case("onehot_if_binary", OneHotEncoder(drop="if_binary", sparse_output=False).fit(
        np.column_stack([merchant, (hour > 12).astype(float)])),
        np.column_stack([Xk[:, 2], (Xk[:, 1] > 12).astype(float)]), "transform", formats=few)
    Xo = np.column_stack([merchant, np.where(rng.rand(n) < 0.1, np.nan, hour)])
    Xoe = np.column_stack([Xce[:, 2], np.where(np.arange(500) % 9 == 0, np.nan, Xce[:, 1])])
    write_case("ordinal_nan_unknown", OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-2,
                                                     encoded_missing_value=-9).fit(Xo), Xoe, "transform", formats=few)
    # Infrequent categories grouped into one column (min_frequency,
    # max_categories), unknown values sent there or ignored.
    skewed = np.column_stack([rng.choice(8, n, p=[.4, .25, .15, .1, .04, .03, .02, .01]).astype(float), merchant])
    skewed_eval = np.column_stack([rng.choice(10, 500).astype(float), rng.choice(8, 500).astype(float)])
    write_case("onehot_infrequent_min_frequency", OneHotEncoder(
        min_frequency=0.05, handle_unknown="infrequent_if_exist", sparse_output=False).fit(skewed),
        skewed_eval, "transform", formats=few)
    write_case("onehot_infrequent_max_categories_drop", OneHotEncoder(
        max_categories=4, handle_unknown="ignore", drop="first", sparse_output=False).fit(skewed),
        skewed_eval, "transform", formats=few)
    write_case("feature_union", FeatureUnion([
        ("poly", PolynomialFeatures(2, include_bias=False)), ("scale", StandardScaler()), ("raw", "passthrough"),
    ], transformer_weights={"poly": 0.5, "raw": 2.0}).fit(Xc), Xce, "transform", formats=few)


    # Support vector machines: every kernel, two and three classes, ovr and
    # ovo shapes, Platt probabilities, regression and one-class.
    X2, y2 = classification(2, 4, 29)
    X3s, y3s = classification(3, 4, 30)
    for name, est, (Xf, yf) in [
        ("svc_rbf_binary", SVC(), (X2, np.array(["ok", "fraud"])[y2])),
        ("svc_rbf_probability", SVC(probability=True, random_state=0), (X2, y2)),
        ("svc_poly_multiclass", SVC(kernel="poly", degree=3, coef0=1.0), (X3s, y3s)),
        ("svc_linear_ovo", SVC(kernel="linear", decision_function_shape="ovo"), (X3s, y3s)),
        ("svc_sigmoid_multiclass_probability", SVC(kernel="sigmoid", gamma=0.05, probability=True, random_state=0), (X3s, y3s)),
        ("nusvc_rbf_break_ties", NuSVC(nu=0.3, break_ties=True), (X3s, y3s)),
    ]:
        write_case(name, est.fit(Xf, yf), np.clip(eval_rows(Xf, 4, rng, total=500), -1e3, 1e3), "classifier", formats=few)
    Xr, yr = make_regression(n_samples=300, n_features=4, noise=2.0, random_state=31)
    write_case("svr_rbf", SVR(C=10.0).fit(Xr, yr), np.clip(eval_rows(Xr, 4, rng, total=500), -1e3, 1e3), "regressor", formats=few)
    write_case("nusvr_poly", NuSVR(kernel="poly", degree=2).fit(Xr, yr), np.clip(eval_rows(Xr, 4, rng, total=500), -1e3, 1e3), "regressor", formats=few)


    # Nearest neighbours, on continuous features (no distance ties): the
    # tree searches and every supported metric and weighting.
    Xk2, yk2 = classification(3, 4, 32)
    for name, est in [
        ("knn_uniform_kdtree", KNeighborsClassifier()),
        ("knn_distance_balltree", KNeighborsClassifier(n_neighbors=7, weights="distance", algorithm="ball_tree")),
        ("knn_manhattan", KNeighborsClassifier(n_neighbors=4, metric="manhattan")),
        ("knn_chebyshev", KNeighborsClassifier(n_neighbors=6, metric="chebyshev", weights="distance")),
        ("knn_minkowski3", KNeighborsClassifier(n_neighbors=5, p=3, algorithm="ball_tree")),
    ]:
        write_case(name, est.fit(Xk2, np.array(["x", "y", "z"])[yk2]), np.clip(eval_rows(Xk2, 4, rng, total=500), -1e3, 1e3),
                   "classifier", formats=few)
    Xkr, ykr = make_regression(n_samples=300, n_features=4, noise=2.0, random_state=33)
    write_case("knn_regressor_uniform", KNeighborsRegressor().fit(Xkr, ykr),
               np.clip(eval_rows(Xkr, 4, rng, total=500), -1e3, 1e3), "regressor", formats=few)
    write_case("knn_regressor_distance", KNeighborsRegressor(n_neighbors=8, weights="distance").fit(Xkr, ykr),
               np.clip(eval_rows(Xkr, 4, rng, total=500), -1e3, 1e3), "regressor", formats=few)


    # Transformed targets: a regressor fitted on a scaled target.
    Xt, yt = make_regression(n_samples=300, n_features=4, noise=2.0, random_state=34)
    yt = yt * 1000 + 5e4
    for name, est in [
        ("ttr_standard_ridge", TransformedTargetRegressor(regressor=Ridge(), transformer=StandardScaler())),
        ("ttr_minmax_tree", TransformedTargetRegressor(
            regressor=DecisionTreeRegressor(max_depth=5, random_state=0), transformer=MinMaxScaler())),
        ("ttr_identity_linear", TransformedTargetRegressor(regressor=LinearRegression())),
    ]:
        write_case(name, est.fit(Xt, yt), np.clip(eval_rows(Xt, 4, rng, total=500), -1e30, 1e30), "regressor", formats=few)
    # The invertible non-linear transformers: a skewed positive target (a
    # price, a duration) through Yeo-Johnson, Box-Cox and quantiles; the
    # extreme rows take the inverses out of their domain (NaN, infinities),
    # where Tide must answer as sklearn does.
    ys = np.exp(yt / 4e4)
    Xin = np.clip(eval_rows(Xt, 4, rng, total=500), -1e30, 1e30)
    for name, est in [
        ("ttr_yeo_johnson_ridge", TransformedTargetRegressor(regressor=Ridge(), transformer=PowerTransformer())),
        ("ttr_box_cox_tree", TransformedTargetRegressor(
            regressor=DecisionTreeRegressor(max_depth=6, random_state=0),
            transformer=PowerTransformer(method="box-cox", standardize=False))),
        ("ttr_quantile_normal_tree", TransformedTargetRegressor(
            regressor=DecisionTreeRegressor(max_depth=6, random_state=0),
            transformer=QuantileTransformer(n_quantiles=100, output_distribution="normal"))),
        ("ttr_quantile_uniform_ridge", TransformedTargetRegressor(
            regressor=Ridge(), transformer=QuantileTransformer(n_quantiles=50))),
    ]:
        write_case(name, est.fit(Xt, ys), Xin, "regressor", formats=few)


if __name__ == "__main__":
    main()
