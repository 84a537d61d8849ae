"""
Decisions with guarantees: conformal p-values and false-discovery-rate control
==============================================================================

A fitted skood model keeps the scores of its held-out calibration rows. From
them it gives three kinds of decisions, each with a finite-sample guarantee
when new in-distribution (ID) data is exchangeable with those rows:

- ``predict_ood(X)``: each ID sample is accepted with probability at least
  ``ood_tpr``;
- ``ood_pvalues(X)``: conformal p-values, ``P(p <= a) <= a`` for ID samples;
- ``predict_ood(X, fdr=q)``: a whole batch at once, with at most a fraction
  ``q`` of ID samples among the flagged ones on average (Benjamini-Hochberg).

This example trains a small network on 8x8 digits with natural-image
outliers, then checks the three guarantees empirically over many random
batches of test digits mixed with textures. Under a minute on 2 CPU cores.

Run: ``python examples/plot_guarantees.py [--out DIR]`` (with ``--out``, saves
``DIR/guarantees.png``)
"""
# %%
# Train on digits, with natural-image outliers
# --------------------------------------------
import argparse
import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from sklearn.datasets import load_digits  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402

from skood import GradRegOODClassifier  # noqa: E402
from skood.conformal import benjamini_hochberg, conformal_pvalues  # noqa: E402
from skood.datasets import make_natural_image_outliers, make_texture_images  # noqa: E402
from skood.models import MLP  # noqa: E402

parser = argparse.ArgumentParser()
parser.add_argument("--out", help="folder to save guarantees.png into "
                    "(default: the figure is drawn, not saved)")
args, _ = parser.parse_known_args()

X, y = load_digits(return_X_y=True)
X = (X / 16.0).astype(np.float32).reshape(-1, 1, 8, 8)
X_train, X_test, y_train, y_test = train_test_split(X, y, stratify=y, random_state=0)
clf = GradRegOODClassifier(MLP, m_in=-12.0, m_out=-4.0, max_epochs=10, lr=0.05,
                           optimizer__momentum=0.9, batch_size=64, random_state=0, verbose=0)
clf.fit(X_train, y_train, X_aux=make_natural_image_outliers(2000, (8, 8), random_state=0))
print(f"ID test accuracy: {clf.score(X_test, y_test):.3f}; "
      f"{len(clf.calibration_scores_)} calibration rows")

# %%
# Acceptance of ID samples and p-values
# -------------------------------------
# ``offset_`` is the conformal threshold: test digits (exchangeable with the
# calibration rows) are accepted at least 95% of the time on average.
textures = make_texture_images(450, (8, 8), random_state=1)
id_scores, ood_scores = clf.score_samples(X_test), clf.score_samples(textures)
print(f"accepted: {np.mean(clf.predict_ood(X_test) == 1):.1%} of test digits "
      f"(target >= {clf.ood_tpr:.0%}), {np.mean(clf.predict_ood(textures) == 1):.1%} of textures")
id_p = conformal_pvalues(clf.calibration_scores_, id_scores)
ood_p = conformal_pvalues(clf.calibration_scores_, ood_scores)
for a in (0.05, 0.1, 0.2):
    print(f"P(p <= {a}) for test digits: {np.mean(id_p <= a):.3f} (guarantee: <= {a})")

# %%
# These rates come from one calibration set, so they scatter around their
# targets: the guarantees are on average over the draw of the calibration rows
# *and* the new samples (the Guarantees page of the documentation shows them
# over 2,000 calibration draws).
#
# False discovery rate over random batches
# ----------------------------------------
# Each batch mixes 90 test digits with 10 textures; ``predict_ood(X, fdr=q)``
# flags the Benjamini-Hochberg selection of its p-values. The fraction of
# digits among the flagged samples, averaged over 500 batches, stays at or
# below ``q``.
rng = np.random.RandomState(0)
levels = [0.05, 0.1, 0.2, 0.3]
fdr, power = {q: [] for q in levels}, {q: [] for q in levels}
for _ in range(500):
    ids = rng.choice(len(id_p), 90, replace=False)
    oods = rng.choice(len(ood_p), 10, replace=False)
    pvalues = np.r_[id_p[ids], ood_p[oods]]
    for q in levels:
        flagged = benjamini_hochberg(pvalues, q)
        fdr[q].append(flagged[:90].sum() / max(flagged.sum(), 1))
        power[q].append(flagged[90:].mean())
for q in levels:
    print(f"q={q}: empirical FDR {np.mean(fdr[q]):.3f}, textures flagged {np.mean(power[q]):.1%}")

# %%
# The figure: p-values of both sets, and FDR against its target
fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
bins = np.linspace(0, 1, 21)
left.hist(id_p, bins=bins, alpha=0.6, density=True, label="test digits (ID)")
left.hist(ood_p, bins=bins, alpha=0.6, density=True, label="textures (OOD)")
left.set_xlabel("conformal p-value")
left.set_ylabel("density")
left.legend()
left.set_title("ID p-values are uniform, OOD ones small")
right.plot(levels, [np.mean(fdr[q]) for q in levels], "o-", label="empirical FDR")
right.plot([0, 0.35], [0, 0.35], "k--", label="target q")
right.set_xlabel("q")
right.set_ylabel("fraction of digits among the flagged")
right.legend()
right.set_title("Benjamini-Hochberg over 500 batches")
fig.tight_layout()
if args.out:
    path = os.path.join(args.out, "guarantees.png")
    fig.savefig(path, dpi=100)
    print("figure:", path)
