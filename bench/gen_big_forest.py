#!/usr/bin/env python3
"""Writes a large RandomForest pickle for the start-up and memory benchmark
(bench/startup.sh): 200 trees of depth 16 on 30 features, about 56 MB with joblib.
Too big to commit, so it is made at benchmark time with Debian's python3-sklearn.

    /usr/bin/python3 bench/gen_big_forest.py OUT.pkl [COPIES]

COPIES > 1 (bench/load-p99.sh uses 4, about 225 MB) repeats the trained trees as
distinct objects, so that the file grows without training for minutes; the
forest's answers do not change, since it averages identical trees.
"""
import copy
import sys

import joblib
from sklearn.datasets import make_classification
from sklearn.ensemble import RandomForestClassifier

out = sys.argv[1]
X, y = make_classification(n_samples=30000, n_features=30, n_informative=12,
                           flip_y=0.15, random_state=7)
rf = RandomForestClassifier(n_estimators=200, max_depth=16, random_state=7, n_jobs=2)
rf.fit(X, y)
copies = int(sys.argv[2]) if len(sys.argv) > 2 else 1
if copies > 1:
    rf.estimators_ = [copy.deepcopy(e) for _ in range(copies) for e in rf.estimators_]
    rf.n_estimators = len(rf.estimators_)
joblib.dump(rf, out)
nodes = sum(e.tree_.node_count for e in rf.estimators_)
print(f"wrote {out}: {len(rf.estimators_)} trees, {nodes} nodes", file=sys.stderr)
