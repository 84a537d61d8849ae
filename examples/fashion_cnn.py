"""
An image CNN on Fashion-MNIST with GReg+
========================================

A small CNN trained on the real Fashion-MNIST with GReg+ (the energy sampler),
then tested against handwritten digits as OOD data.

Needs the dataset: ``apt-get install dataset-fashion-mnist``, or the four IDX
files in a folder given as ``--data-home`` (or ``$SKOOD_DATA``). Without it the
script says so and exits cleanly.

This example is not run when the documentation is built: it needs the dataset,
and a run with the defaults took 83 seconds of CPU time (about 35 seconds per
epoch, with one torch thread on an AMD EPYC core; 7 minutes of wall-clock time
on 2 cores shared with other jobs). With the defaults (5,000
training images, 2 epochs, CPU), ``OMP_NUM_THREADS=1 python
examples/fashion_cnn.py`` prints::

    test accuracy: 0.751
            fpr95   auroc  aupr_in  aupr_out
    digits    0.0  0.9959   0.9982    0.9893
    mean      0.0  0.9959   0.9982    0.9893

It also draws the scores of both sets with the model's threshold ``offset_``
(saved as ``DIR/fashion_cnn_scores.png`` with ``--out DIR``); the figure of
that run:

.. image:: /figures/fashion_cnn_scores.png
   :alt: Score histograms: Fashion-MNIST test images to the right of offset_, digits to the left

Run: ``python examples/fashion_cnn.py [--n-train 5000] [--epochs 2] [--device cpu] [--out DIR]``
"""
# sphinx_gallery_thumbnail_path = "figures/fashion_cnn_scores.png"
import argparse
import os
import sys

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits

from skood import EnergySampler, GradRegOODClassifier
from skood.datasets import load_fashion_mnist, make_natural_image_outliers, resize_images
from skood.metrics import ood_report_frame
from skood.models import SmallCNN

parser = argparse.ArgumentParser(description="An image CNN on the real Fashion-MNIST, with "
                                 "GReg+ (the energy sampler).")
parser.add_argument("--n-train", type=int, default=5000,
                    help="training images (default: %(default)s)")
parser.add_argument("--epochs", type=int, default=2, help="epochs (default: %(default)s)")
parser.add_argument("--device", default="cpu", help="torch device (default: %(default)s)")
parser.add_argument("--data-home", help="folder with the four IDX files "
                    "(default: $SKOOD_DATA, then Debian's location)")
parser.add_argument("--out", help="folder to save fashion_cnn_scores.png into "
                    "(default: the figure is drawn, not saved)")
args = parser.parse_args()

# %%
# Data
# ----
try:
    fashion = load_fashion_mnist(args.data_home)
except FileNotFoundError as exc:
    print(f"skipping: {exc}")
    sys.exit(0)

X_train = fashion.X_train[:args.n_train].reshape(-1, 1, 28, 28).astype(np.float32) / 255
y_train = fashion.y_train[:args.n_train].astype(np.int64)
X_test = fashion.X_test[:2000].reshape(-1, 1, 28, 28).astype(np.float32) / 255
y_test = fashion.y_test[:2000].astype(np.int64)
X_aux = make_natural_image_outliers(4 * args.n_train, (28, 28), random_state=0)

# %%
# GReg+: the energy sampler picks the outliers of each batch
# ----------------------------------------------------------
clf = GradRegOODClassifier(
    SmallCNN, module__in_channels=1, module__n_classes=10,
    sampler=EnergySampler(n_clusters=64, pool_factor=6),   # GReg+
    m_in=-12.0, m_out=-4.0, max_epochs=args.epochs, lr=0.05, optimizer__momentum=0.9,
    batch_size=64, device=args.device, random_state=0, verbose=1)   # one line per epoch
print(f"training on {len(X_train)} images for {args.epochs} epochs (about 35 s of CPU time "
      "per epoch at 5,000 images, one thread)", flush=True)
clf.fit(X_train, y_train, X_aux=X_aux)
print(f"test accuracy: {clf.score(X_test, y_test):.3f}")

# %%
# Handwritten digits as OOD data
# ------------------------------
digits = np.clip(resize_images(load_digits().images[:1000] / 16.0, (28, 28)), 0, 1)
report = ood_report_frame(clf.score_samples(X_test), {"digits": clf.score_samples(digits)})
print(report.round(4).to_string())

# %%
# The scores of both sets
# -----------------------
# Higher = more in-distribution; samples right of the dashed line are accepted.
id_scores, ood_scores = clf.score_samples(X_test), clf.score_samples(digits)
fig, ax = plt.subplots(figsize=(6, 3.2))
bins = np.linspace(min(id_scores.min(), ood_scores.min()),
                   max(id_scores.max(), ood_scores.max()), 40)
ax.hist(id_scores, bins=bins, alpha=0.6, label="Fashion-MNIST test images (ID)")
ax.hist(ood_scores, bins=bins, alpha=0.6, label="handwritten digits (OOD)")
ax.axvline(clf.offset_, color="k", ls="--", label="offset_")
ax.set_xlabel("score_samples: higher = more in-distribution")
ax.set_ylabel("images")
ax.legend(fontsize=8)
fig.tight_layout()
if args.out:
    path = os.path.join(args.out, "fashion_cnn_scores.png")
    fig.savefig(path, dpi=80)
    print("figure:", path)
