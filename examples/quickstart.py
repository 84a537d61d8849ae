"""
Quickstart: train, evaluate, save, reload
=========================================

Train a GReg OOD detector on handwritten digits, report how well it tells them
from data it never saw, save it, load it back and score new data.

In-distribution: six classes of scikit-learn's 8x8 digits (2, 3, 4, 5, 8, 9).
Auxiliary outliers: crops of the photographs bundled with scikit-learn and
scikit-image. OOD test data the model never saw: the other four digit classes
(0, 1, 6, 7; *near* OOD, hard: they look like the training data) and
scikit-image's textures (*far* OOD, easy). About 10 seconds on 2 CPU cores.

Run: ``python examples/quickstart.py [--out DIR]`` (with ``--out``, keeps the saved
model as ``DIR/digits_greg.joblib``; without, it goes to a temporary folder
removed at the end)
"""
import argparse
import os
import tempfile

import joblib
import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from skood import GradRegOODClassifier
from skood.datasets import make_natural_image_outliers, make_noise_images, make_texture_images
from skood.metrics import ood_report_frame
from skood.models import MLP

parser = argparse.ArgumentParser(description="Quickstart: train a GReg OOD detector on "
                                 "handwritten digits, report, save, reload, score.")
parser.add_argument("--out", help="folder to keep the saved model in (default: a temporary "
                    "folder, removed at the end)")
args = parser.parse_args()

# %%
# Data
# ----
# The digits are scaled to [0, 1] and shaped as one-channel 8x8 images; the
# auxiliary outliers have the same shape. The four unseen classes are kept out
# of training entirely: they are OOD data of the hardest kind.
X, y = load_digits(return_X_y=True)
X = (X / 16.0).astype(np.float32).reshape(-1, 1, 8, 8)   # images in [0, 1]
known = np.isin(y, (2, 3, 4, 5, 8, 9))
X_train, X_test, y_train, y_test = train_test_split(X[known], y[known], test_size=0.3,
                                                    random_state=0, stratify=y[known])
X_unseen = X[~known]                                      # digits 0, 1, 6, 7
X_aux = make_natural_image_outliers(3000, (8, 8), random_state=0)

# %%
# Train
# -----
# ``offset_`` is the threshold on ``score_samples`` that accepts 95% of the
# held-out digits (skorch's validation split).
clf = GradRegOODClassifier(
    MLP,                             # its input and output sizes come from the data
    lambda_energy=0.1, lambda_grad=1.0,
    m_in=-12.0, m_out=-4.0,          # margins that suit a small MLP's energy range
    max_epochs=12, batch_size=64,    # SGD, lr 0.05, momentum 0.9 (the defaults)
    random_state=0, verbose=0,
)
clf.fit(X_train, y_train, X_aux=X_aux)

print(f"test accuracy: {clf.score(X_test, y_test):.3f}")
print(f"offset_ (accepts at least 95% of digits of the known classes): {clf.offset_:.2f}")

# %%
# Evaluate against OOD data
# -------------------------
# The in-distribution test digits against OOD sets the model never saw. The
# unseen digit classes are far from solved (compare with energy outlier
# exposure in the "Score histograms" example); textures and noise are easy.
ood = {"unseen digits": X_unseen,
       "textures": make_texture_images(500, (8, 8), random_state=1),
       "uniform noise": make_noise_images(500, (8, 8), kind="uniform", random_state=2)}
report = ood_report_frame(clf.score_samples(X_test),
                          {name: clf.score_samples(data) for name, data in ood.items()})
print("OOD detection (ID = positive class; FPR95 lower is better):")
print(report.round(4).to_string())

# %%
# The scores behind the table
# ---------------------------
# ``score_samples`` is higher for in-distribution data; ``predict_ood`` accepts
# the samples right of ``offset_``. Left: the unseen digit classes overlap the
# test digits (near OOD): those right of the line are accepted as digits.
# Right: textures and noise score far below the threshold (far OOD), where the
# margin ``m_out=-4`` trained the auxiliary outliers' scores to go (below 4).
id_scores = clf.score_samples(X_test)
ood_scores = {name: clf.score_samples(data) for name, data in ood.items()}
bins = np.linspace(min(id_scores.min(), *(s.min() for s in ood_scores.values())),
                   max(id_scores.max(), *(s.max() for s in ood_scores.values())), 60)
fig, (near, far) = plt.subplots(1, 2, figsize=(11, 3.6), sharex=True)
for ax, names in ((near, ["unseen digits"]), (far, ["textures", "uniform noise"])):
    ax.hist(id_scores, bins=bins, alpha=0.6, label="test digits (ID)")
    for name, style in zip(names, ({"alpha": 0.6}, {"histtype": "step", "lw": 2, "ls": ":"})):
        ax.hist(ood_scores[name], bins=bins, label=f"{name} (OOD)", **style)
    ax.axvline(clf.offset_, color="k", ls="--", label="offset_")
    ax.set_xlabel("score_samples: higher = more in-distribution")
    ax.set_ylabel("samples")
    ax.legend(fontsize=8)
near.set_title("near OOD: digit classes never trained on", fontsize=10)
far.set_title("far OOD: textures and noise", fontsize=10)
fig.tight_layout()

# %%
# Save, reload, score
# -------------------
# joblib (like pickle) runs code from the file it loads: only load files you trust.
with tempfile.TemporaryDirectory() as scratch:
    path = os.path.join(args.out or scratch, "digits_greg.joblib")
    joblib.dump(clf, path)
    loaded = joblib.load(path)
labels = loaded.predict(X_test)
print("labels of the first test digits:", labels[:10], "true:", y_test[:10])
accepted_digits = loaded.predict_ood(X_test) == 1
accepted_unseen = loaded.predict_ood(X_unseen) == 1
accepted_textures = loaded.predict_ood(ood["textures"]) == 1
print(f"reloaded from {path}: accepts {accepted_digits.mean():.1%} of test digits, "
      f"{accepted_unseen.mean():.1%} of unseen digits and {accepted_textures.mean():.1%} "
      "of textures")
