"""Train the candidate versions of the fraud model that the canary rollout tests
(test/e2e/rollout_test.go) and docs/rollouts.md use, beside model.pkl:

  model_v2.pkl        a retrained model (C=0.8, the first 500 rows left out): it
                      agrees with model.pkl on ~99.9 % of inputs drawn uniformly
                      from [-3, 3]^2, the load tests' range;
  model_shuffled.pkl  the same estimator trained on shuffled labels: it answers
                      200, fast, and wrongly (always class 0, so it agrees only
                      where model.pkl says 0, ~68 % of that range).

Run: /usr/bin/python3 train_candidates.py [OUTDIR]   (needs Debian's python3-sklearn)
"""
import os
import sys

for _v in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS"):
    os.environ.setdefault(_v, "1")

import joblib
import numpy as np
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression

out = sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.path.abspath(__file__))
X, y = make_classification(n_samples=10_000, n_features=2, n_informative=2, n_redundant=0,
                           n_repeated=0, n_clusters_per_class=1, weights=[0.97, 0.03],
                           class_sep=1.0, flip_y=0.01, random_state=42)
v2 = LogisticRegression(C=0.8, random_state=42).fit(X[500:], y[500:])
shuffled = LogisticRegression(random_state=42).fit(X, np.random.default_rng(0).permutation(y))
joblib.dump(v2, os.path.join(out, "model_v2.pkl"))
joblib.dump(shuffled, os.path.join(out, "model_shuffled.pkl"))

stable = joblib.load(os.path.join(os.path.dirname(os.path.abspath(__file__)), "model.pkl"))
U = np.random.default_rng(1).uniform(-3, 3, size=(100_000, 2))
s = stable.predict(U)
print(f"model_v2.pkl agrees with model.pkl on {(v2.predict(U) == s).mean():.4f} of [-3,3]^2")
print(f"model_shuffled.pkl agrees with model.pkl on {(shuffled.predict(U) == s).mean():.4f} of [-3,3]^2")
