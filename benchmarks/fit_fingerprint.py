"""Fingerprint of skood's training: fixed-seed fits whose outputs a refactor must not change.

Fits small digits models in every training mode (cross-entropy only, energy
outlier exposure, GReg exact and fd, GReg+, bf16 and fp16, calibration without
a validation split) with ``random_state=0`` on one CPU thread, and saves each
model's ``score_samples`` on held-out digits, its ``offset_`` and its last
history row. Run it before and after a change that should not change
behaviour, then compare the two files bit for bit:

    python benchmarks/fit_fingerprint.py before.npz     # on the old commit
    python benchmarks/fit_fingerprint.py after.npz      # on the new one
    python benchmarks/fit_fingerprint.py --compare before.npz after.npz

Takes about 10 seconds on a 2-core CPU.
"""
import argparse
import sys

import numpy as np
import torch
from sklearn.datasets import load_digits

from skood import EnergySampler, GradRegOODClassifier
from skood.models import MLP

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


def fingerprint():
    torch.set_num_threads(1)
    X, y = load_digits(return_X_y=True)
    X = (X / 16).astype("float32")
    aux = np.random.RandomState(0).uniform(0, 1, size=(600, 64)).astype("float32")
    out = {}
    for name, params in CONFIGS.items():
        clf = GradRegOODClassifier(MLP, module__n_features=64, module__n_classes=10, m_in=-12.0,
                                   m_out=-4.0, lr=0.05, optimizer__momentum=0.9, max_epochs=3,
                                   verbose=0, random_state=0, **params)
        clf.fit(X[:800], y[:800], X_aux=aux)
        out[name] = clf.score_samples(X[800:])
        out[name + "_offset"] = np.array([clf.offset_])
        out[name + "_history"] = np.array([clf.history[-1, key] for key in HISTORY_KEYS])
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
