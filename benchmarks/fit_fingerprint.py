"""Fingerprint of skood's training: fixed-seed fits whose outputs a refactor must not change.

Fits small digits models in every training mode (cross-entropy only, energy
outlier exposure, GReg exact and fd, GReg+, bf16 and fp16, calibration without
a validation split) with ``random_state=0`` on one CPU thread, and saves each
model's ``score_samples`` on held-out digits, its ``offset_`` and its last
history row. The fit paths beyond the training modes are covered too: outliers
made by a ``synthesizer``, per-class calibration (``class_offsets_``), a torch
Dataset ``X`` with an augmenting transform and a clean ``X_eval``, a
``partial_fit`` sequence, GReg+ with ``penalty_fraction``, and ``set_params`` on
a fitted model (recalibration, then unfitting and refitting) followed by scoring.
Run it before and after a change that should not change behaviour, then compare
the two files bit for bit:

    python benchmarks/fit_fingerprint.py before.npz     # on the old commit
    python benchmarks/fit_fingerprint.py after.npz      # on the new one
    python benchmarks/fit_fingerprint.py --compare before.npz after.npz

Takes about 10 seconds on a 2-core CPU (51 entries).
"""
import argparse
import sys

import numpy as np
import torch
from sklearn.datasets import load_digits

from skood import EnergySampler, GradRegOODClassifier
from skood.data import ArrayDataset
from skood.models import MLP
from skood.synthesis import FeatureShuffle
from skood.transforms import RandomHorizontalFlip

HISTORY_KEYS = ("train_loss", "train_ce", "train_energy_loss", "train_grad_penalty",
                "train_energy_in", "train_energy_aux")

CONFIGS = {
    "ce": dict(lambda_energy=0.0, lambda_grad=0.0),
    "energy_oe": dict(lambda_grad=0.0),
    "exact": dict(penalty="exact"),
    "fd": dict(penalty="fd"),
    "greg_plus_fd": dict(penalty="fd", sampler=EnergySampler(n_clusters=8)),
    "greg_plus_exact_bf16": dict(penalty="exact", sampler="energy", amp="bf16"),
    "exact_fp16": dict(penalty="exact", amp="fp16"),
    "fd_fp16": dict(penalty="fd", amp="fp16"),
    "fd_train_split_none": dict(penalty="fd", train_split=None),
}


def make_classifier(**params):
    params = {"max_epochs": 3, **params}
    return GradRegOODClassifier(MLP, module__n_features=64, module__n_classes=10, m_in=-12.0,
                                m_out=-4.0, lr=0.05, optimizer__momentum=0.9, verbose=0,
                                random_state=0, **params)


def make_learning_classifier(**params):
    """Smaller batches and more epochs than the training modes' fits, which end at chance:
    per-class calibration and the other fit paths need a model that predicts every class."""
    return make_classifier(batch_size=32, max_epochs=5, **params)


def record(out, name, clf, X_test):
    """Store what a refactor must not change: scores, thresholds and the last history row."""
    out[name] = clf.score_samples(X_test)
    out[name + "_offset"] = np.array([clf.offset_])
    out[name + "_history"] = np.array([clf.history[-1, key] for key in HISTORY_KEYS])


def fit_paths(X, y, aux):
    """Fits through the paths that are not a training mode; yields (name, model, X_test)."""
    X_fit, y_fit, X_test = X[:800], y[:800], X[800:]
    clf = make_learning_classifier(synthesizer=FeatureShuffle(n_outliers=600)).fit(X_fit, y_fit)
    yield "synthesizer", clf, X_test

    clf = make_learning_classifier(calibration="class").fit(X_fit, y_fit, X_aux=aux)
    yield "class_calibration", clf, X_test

    # A Dataset whose transform augments training images, read clean for calibration.
    images = X.reshape(-1, 1, 8, 8)
    flip = RandomHorizontalFlip(generator=torch.Generator().manual_seed(0))
    clf = make_learning_classifier(train_split=None).fit(
        ArrayDataset(images[:800], y_fit, transform=flip), X_aux=aux.reshape(-1, 1, 8, 8),
        X_eval=ArrayDataset(images[:800], y_fit))
    yield "dataset_eval", clf, ArrayDataset(images[800:])

    clf = make_learning_classifier().fit(X[:400], y[:400], X_aux=aux)
    clf.partial_fit(X[400:800], y[400:800], X_aux=aux)
    clf.partial_fit(X[:800], y_fit, X_aux=aux, epochs=2)
    yield "partial_fit", clf, X_test

    clf = make_learning_classifier(penalty="exact", sampler="energy", penalty_fraction=0.5)
    yield "greg_plus_fraction", clf.fit(X_fit, y_fit, X_aux=aux), X_test

    clf = make_learning_classifier().fit(X_fit, y_fit, X_aux=aux)
    clf.set_params(ood_tpr=0.9, calibration="class")      # recalibrates from stored scores
    yield "set_params_recalibrate", clf, X_test
    clf.set_params(temperature=2.0, lambda_grad=0.5)      # unfits; the refit uses both
    yield "set_params_refit", clf.fit(X_fit, y_fit, X_aux=aux), X_test


def fingerprint():
    torch.set_num_threads(1)
    X, y = load_digits(return_X_y=True)
    X = (X / 16).astype("float32")
    aux = np.random.RandomState(0).uniform(0, 1, size=(600, 64)).astype("float32")
    out = {}
    for name, params in CONFIGS.items():
        clf = make_classifier(**params)
        clf.fit(X[:800], y[:800], X_aux=aux)
        record(out, name, clf, X[800:])
    for name, clf, X_test in fit_paths(X, y, aux):
        record(out, name, clf, X_test)
        if clf.calibration == "class":
            out[name + "_class_offsets"] = clf.class_offsets_.copy()
    return out


def compare(before, after):
    a, b = np.load(before), np.load(after)
    differ = [key for key in sorted(set(a) | set(b))
              if key not in a or key not in b or not np.array_equal(a[key], b[key],
                                                                     equal_nan=True)]
    for key in sorted(a):
        print(f"{key}: {'equal' if key not in differ else 'DIFFERENT'}")
    return 1 if differ else 0


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", nargs="?", help="write the fingerprint here (.npz)")
    parser.add_argument("--compare", nargs=2, metavar=("BEFORE", "AFTER"))
    args = parser.parse_args()
    if args.compare:
        sys.exit(compare(*args.compare))
    if not args.out:
        parser.error("give an output file or --compare BEFORE AFTER")
    np.savez(args.out, **fingerprint())
    print("saved", args.out)


if __name__ == "__main__":
    main()
