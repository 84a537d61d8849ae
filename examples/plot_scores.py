"""
Score histograms and ROC curves
===============================

Plot the scores of a fitted detector on in-distribution (ID) digits and on two
OOD sets, with the threshold ``offset_``, and the ROC curves (ID positive).

Run: ``python examples/plot_scores.py [--out DIR]`` (writes ``DIR/scores.png``)
"""
import argparse
import os
import tempfile

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.metrics import RocCurveDisplay
from sklearn.model_selection import train_test_split

from skood import GradRegOODClassifier
from skood.datasets import make_natural_image_outliers, make_noise_images, make_texture_images
from skood.models import MLP

parser = argparse.ArgumentParser(description="Plot score histograms (ID vs OOD) and ROC "
                                 "curves of a fitted detector.")
parser.add_argument("--out", default=tempfile.mkdtemp(),
                    help="folder for scores.png (default: a new temporary folder)")
args = parser.parse_args()

# %%
# Fit a detector on digits
# ------------------------
X, y = load_digits(return_X_y=True)
X = (X / 16.0).astype(np.float32).reshape(-1, 1, 8, 8)
X_train, X_test, y_train, _ = train_test_split(X, y, stratify=y, random_state=0)
clf = GradRegOODClassifier(MLP, module__n_features=64, module__n_classes=10,
                           m_in=-12.0, m_out=-4.0, max_epochs=8, lr=0.05,
                           optimizer__momentum=0.9, batch_size=64, random_state=0, verbose=0)
clf.fit(X_train, y_train, X_aux=make_natural_image_outliers(2000, (8, 8), random_state=0))
ood = {"textures": make_texture_images(400, (8, 8), random_state=1),
       "noise": make_noise_images(400, (8, 8), random_state=2)}

# %%
# Scores and ROC curves
# ---------------------
# Left: the scores (higher = more in-distribution); samples right of the dashed
# line are accepted. Right: ROC curves with ID as the positive class.
id_scores = clf.score_samples(X_test)
fig, axes = plt.subplots(1, 2, figsize=(10, 3.5))
for name, data in ood.items():
    axes[0].hist(clf.score_samples(data), bins=40, alpha=0.5, density=True, label=name)
    scores = np.r_[id_scores, clf.score_samples(data)]
    labels = np.r_[np.ones(len(id_scores)), np.zeros(len(data))]   # ID is the positive class
    RocCurveDisplay.from_predictions(labels, scores, name=name, ax=axes[1])
axes[0].hist(id_scores, bins=40, alpha=0.5, density=True, label="digits (ID)")
axes[0].axvline(clf.offset_, color="k", ls="--", label="offset_ (accepts 95% of ID)")
axes[0].set_xlabel("score_samples: higher = more in-distribution")
axes[0].legend(fontsize=8)
axes[1].set_title("ROC: ID positive")
fig.tight_layout()
path = os.path.join(args.out, "scores.png")
fig.savefig(path, dpi=90)
print("wrote", path)
