#!/usr/bin/env python3
"""Writes a large RandomForest pickle for the start-up and memory benchmark
(bench/startup.sh): 200 trees of depth 16 on 30 features, about 56 MB with joblib.
Too big to commit, so it is made at benchmark time with Debian's python3-sklearn.

    /usr/bin/python3 bench/gen_big_forest.py OUT.pkl
"""
import sys

import joblib
from sklearn.datasets import make_classification
from sklearn.ensemble import RandomForestClassifier

out = sys.argv[1]
X, y = make_classification(n_samples=30000, n_features=30, n_informative=12,
                           flip_y=0.15, random_state=7)
rf = RandomForestClassifier(n_estimators=200, max_depth=16, random_state=7, n_jobs=2)
rf.fit(X, y)
joblib.dump(rf, out)
nodes = sum(e.tree_.node_count for e in rf.estimators_)
print(f"wrote {out}: {len(rf.estimators_)} trees, {nodes} nodes", file=sys.stderr)
