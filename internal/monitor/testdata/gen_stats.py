"""Write stats.json: the drift and quality statistics as numpy, scipy and
sklearn compute them, for stats_test.go to match within 1e-12.

Run: /usr/bin/python3 gen_stats.py   (Debian's python3-numpy, -scipy, -sklearn)
Deterministic: the same file on every run.
"""
import json

import numpy as np
from scipy.spatial.distance import jensenshannon
from scipy.stats import ks_2samp
from sklearn import metrics

rng = np.random.default_rng(20261205)
FLOOR = 1e-4  # the PSI floor Tide uses for empty bins


def psi(e, a):
    e, a = np.maximum(e, FLOOR), np.maximum(a, FLOOR)
    return float(np.sum((a - e) * np.log(a / e)))


def shares(x, edges):
    counts = np.bincount(np.searchsorted(edges, x, side="left"), minlength=len(edges) + 1)
    return counts / counts.sum()


drift = []
for case in range(25):
    n_ref, n_live = int(rng.integers(200, 1500)), int(rng.integers(50, 800))
    bins = int(rng.integers(2, 21))
    ref = np.round(rng.normal(0, 1, n_ref), 5)  # short decimals keep the file small
    shift, scale = rng.choice([0.0, 0.0, 0.3, 1.0, 3.0]), rng.choice([1.0, 1.0, 0.5, 2.0])
    live = np.round(rng.normal(shift, scale, n_live), 5)
    if case % 5 == 0:  # ties: values on a grid, edges repeat
        ref, live = np.round(ref * 2) / 2, np.round(live * 2) / 2
    q = np.quantile(np.sort(ref), [k / bins for k in range(1, bins)])
    edges = []
    for e in q:
        if not edges or e > edges[-1]:
            edges.append(float(e))
    while edges and edges[-1] >= ref.max():
        edges.pop()
    edges = np.array(edges)
    p, a = shares(ref, edges), shares(live, edges)
    binned_ks = float(np.max(np.abs(np.cumsum(p)[:-1] - np.cumsum(a)[:-1]))) if len(edges) else 0.0
    drift.append({
        "reference": ref.tolist(), "live": live.tolist(), "bins": bins, "edges": edges.tolist(),
        "ref_shares": p.tolist(), "live_shares": a.tolist(),
        "psi": psi(p, a), "js": float(jensenshannon(p, a, base=2)),
        "binned_ks": binned_ks, "exact_ks": float(ks_2samp(ref, live).statistic),
    })

classif = []
for case in range(20):
    n = int(rng.integers(5, 600))
    y = rng.random(n) < rng.uniform(0.05, 0.6)
    if case == 0:
        y[:] = False
        y[0] = True
    s = np.round(np.clip(rng.normal(0.35 + 0.3 * y, 0.2), 0, 1), 5)
    if case % 4 == 0:
        s = np.round(s, 1)  # ties
    pred = s >= 0.5
    c = {"scores": s.tolist(), "positive": y.tolist(),
         "accuracy": float(metrics.accuracy_score(y, pred)),
         "recall": float(metrics.recall_score(y, pred, zero_division=0)),
         "f1": float(metrics.f1_score(y, pred, zero_division=0)),
         "roc_auc": float(metrics.roc_auc_score(y, s)),
         "log_loss": float(metrics.log_loss(y, np.column_stack([1 - s, s]), labels=[False, True])),
         "brier": float(metrics.brier_score_loss(y, s))}
    if pred.any():
        c["precision"] = float(metrics.precision_score(y, pred))
    classif.append(c)

multi = []
for case in range(10):
    n, k = int(rng.integers(20, 300)), int(rng.integers(3, 6))
    truth = rng.integers(0, k, n)
    logits = rng.normal(0, 1, (n, k))
    logits[np.arange(n), truth] += rng.uniform(0, 2)
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    probs = np.round(probs, 6)
    pred = probs.argmax(1)
    labels = sorted(set(truth.tolist()) | set(pred.tolist()))
    multi.append({"probs": probs.tolist(), "truth": truth.tolist(), "classes": k,
                  "accuracy": float(metrics.accuracy_score(truth, pred)),
                  "precision": float(metrics.precision_score(truth, pred, labels=labels, average="macro", zero_division=0)),
                  "recall": float(metrics.recall_score(truth, pred, labels=labels, average="macro", zero_division=0)),
                  "f1": float(metrics.f1_score(truth, pred, labels=labels, average="macro", zero_division=0)),
                  "log_loss": float(metrics.log_loss(truth, probs, labels=list(range(k))))})

regress = []
for case in range(10):
    n = int(rng.integers(1, 500))
    truth = np.round(rng.normal(10, 5, n), 4)
    pred = np.round(truth + rng.normal(rng.uniform(-1, 1), 2, n), 4)
    regress.append({"pred": pred.tolist(), "truth": truth.tolist(),
                    "mae": float(metrics.mean_absolute_error(truth, pred)),
                    "rmse": float(np.sqrt(metrics.mean_squared_error(truth, pred))),
                    "mean_error": float(np.mean(pred - truth))})

with open("stats.json", "w") as f:
    json.dump({"drift": drift, "binary": classif, "multiclass": multi, "regression": regress}, f)
print("wrote stats.json")
