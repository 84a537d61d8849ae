"""Random crops and flips through the Dataset path against no augmentation, paired by split.

Fashion-MNIST held-out classes (the benchmark's ``heldout`` protocol: 6 known
classes per split, the test images of the other 4 are the near OOD set; far
sets: digits, textures, noise), ``--splits`` class splits drawn by
``skood.benchmark.draw_class_splits``, the data of each split from
``skood.benchmark.load_benchmark_data``. Per split and method (GReg, and CE
for reference) the same estimator (the benchmark's small CNN and settings, the
split's seed) is fitted twice through the Dataset path
(``skood.data.ArrayDataset``):

- ``none``: the training images as they are;
- ``crop+flip``: ``RandomCrop(side, padding=2)`` then ``RandomHorizontalFlip()``
  on every training image as it is read, with ``X_eval`` the same images
  without augmentation (skorch's validation split and the calibration of
  ``offset_`` read those);
- ``crop+flip-no-eval`` (only with ``--conditions``): the same without
  ``X_eval``, so that ``offset_`` is calibrated on augmented images.

All are scored by ``score_samples`` (minus the energy) on the clean test images.
Per fit: ID accuracy, the FPR at 95% TPR on the near set, the mean FPR95
over the far sets, and the acceptance: the fraction of clean ID test images
that ``predict_ood`` accepts (``ood_tpr`` is 0.95). The report gives each
condition's mean and, per method and condition, the paired difference to
``none`` over splits with its 95% t interval (``skood.benchmark.t_interval``).
It writes ``augmentation.csv`` (one row per fit and OOD set) and
``augmentation.md`` into ``--out``.

Run: python benchmarks/augmentation.py [--splits 3] [--n-train 10000] [--epochs 5]
     [--out augmentation-results] [--data-home DIR] [--dataset fashion-mnist|digits]
     [--conditions none crop+flip crop+flip-no-eval]
"""
import argparse
import os
import sys
import time
import warnings

import numpy as np
import pandas as pd

from skood import ChanceLevelWarning, GradRegOODClassifier
from skood.benchmark import DEFAULTS, draw_class_splits, load_benchmark_data, t_interval
from skood.benchmark.methods import METHOD_SPECS, module_params
from skood.data import ArrayDataset
from skood.metrics import fpr_at_tpr
from skood.transforms import Compose, RandomCrop, RandomHorizontalFlip

CONDITIONS = ("none", "crop+flip", "crop+flip-no-eval")
METRICS = (("accuracy", "ID accuracy"), ("near_fpr95", "near FPR95"),
           ("far_fpr95", "far FPR95 (mean over far sets)"),
           ("acceptance", "clean ID accepted by predict_ood"))


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", choices=["fashion-mnist", "digits"],
                        default="fashion-mnist")
    parser.add_argument("--splits", type=int, default=3, help="class splits (at least 2)")
    parser.add_argument("--n-train", type=int, default=10000)
    parser.add_argument("--n-test", type=int, default=None)
    parser.add_argument("--n-aux", type=int, default=20000)
    parser.add_argument("--n-ood", type=int, default=1000)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--methods", nargs="+", choices=["greg", "ce"], default=["greg", "ce"])
    parser.add_argument("--model", choices=["cnn", "mlp"], default="cnn")
    parser.add_argument("--split-seed", type=int, default=0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data-home", default=None)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--conditions", nargs="+", choices=CONDITIONS,
                        default=["none", "crop+flip"],
                        help="training conditions; 'none' is the reference of the pairs")
    parser.add_argument("--out", default="augmentation-results")
    args = parser.parse_args(argv)
    if "none" not in args.conditions or len(set(args.conditions)) < 2:
        parser.error("--conditions must hold 'none' and at least one other condition")
    if args.splits < 2:
        parser.error("--splits must be at least 2 (the interval needs two pairs)")
    return args


def estimator(args, method, data):
    defaults = DEFAULTS[args.dataset]
    return GradRegOODClassifier(
        **module_params(args.model, data.image_shape, data.n_classes),
        **METHOD_SPECS[method].estimator_params(pool_factor=6),
        m_in=defaults["m_in"], m_out=defaults["m_out"], lr=defaults["lr"],
        optimizer__weight_decay=5e-4, batch_size=defaults["batch_size"],
        max_epochs=args.epochs, device=args.device, random_state=data.estimator_seed,
        verbose=0)


def fit_one(args, method, condition, data):
    """Fit through the Dataset path; return the fitted estimator and its training time."""
    side = data.image_shape[-1]
    transform = (None if condition == "none"
                 else Compose([RandomCrop(side, padding=2), RandomHorizontalFlip()]))
    train = ArrayDataset(data.X_train, data.y_train, transform=transform)
    clean = (ArrayDataset(data.X_train, data.y_train) if condition == "crop+flip" else None)
    clf = estimator(args, method, data)
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ChanceLevelWarning)
        clf.fit(train, X_aux=data.X_aux, X_eval=clean)
    return clf, time.perf_counter() - start


def run(args, log=print):
    splits = draw_class_splits(10, 4, args.splits, random_state=args.split_seed)
    rows = []
    for split, known in enumerate(splits):
        data = load_benchmark_data(args.dataset, split=known, n_train=args.n_train,
                                   n_test=args.n_test, n_aux=args.n_aux, n_ood=args.n_ood,
                                   data_home=args.data_home, random_state=args.seed)
        for method in args.methods:
            for condition in args.conditions:
                clf, train_s = fit_one(args, method, condition, data)
                accuracy = clf.score(data.X_test, data.y_test)
                acceptance = float(np.mean(clf.predict_ood(data.X_test) == 1))
                id_scores = clf.score_samples(data.X_test)
                for name, X_ood in data.ood.items():
                    scores = np.r_[id_scores, clf.score_samples(X_ood)]
                    y_true = np.r_[np.ones(len(id_scores)), np.zeros(len(X_ood))]
                    rows.append(dict(split=split, known_classes=" ".join(map(str, known)),
                                     method=method, augmentation=condition, ood_set=name,
                                     group=data.groups[name], accuracy=accuracy,
                                     acceptance=acceptance, fpr95=fpr_at_tpr(y_true, scores),
                                     train_s=train_s))
                log(f"split {split} {known}: {method}, {condition}: accuracy {accuracy:.3f} "
                    f"({train_s:.0f} s)")
    return pd.DataFrame(rows)


def per_fit(results):
    """One row per (split, method, augmentation): accuracy, near and far FPR95, acceptance."""
    keys = ["split", "method", "augmentation"]
    first = results.groupby(keys)[["accuracy", "acceptance"]].first()
    near = results[results.group == "near"].groupby(keys)["fpr95"].mean()
    far = results[results.group == "far"].groupby(keys)["fpr95"].mean()
    return pd.DataFrame({"accuracy": first["accuracy"], "near_fpr95": near,
                         "far_fpr95": far, "acceptance": first["acceptance"]}).reset_index()


def report(results, args, command):
    fits = per_fit(results)
    lines = [
        "# Augmentation through the Dataset path, paired by class split",
        "",
        f"Command: `{command}`",
        "",
        f"{args.dataset}, held-out classes, {args.splits} class splits "
        f"(draw_class_splits, seed {args.split_seed}), run seed {args.seed}, model "
        f"{args.model}, {args.epochs} epochs, n_train={args.n_train}, n_aux={args.n_aux}, "
        f"n_ood={args.n_ood}. crop+flip: RandomCrop(side, padding=2) + "
        "RandomHorizontalFlip() on the training images, X_eval without augmentation; "
        "crop+flip-no-eval: the same without X_eval (offset_ calibrated on augmented "
        "images). Scores: -energy on clean test images. Far sets: "
        + ", ".join(sorted(results[results.group == "far"].ood_set.unique())) + ".",
        "",
        "## Means over splits",
        "",
        "| method | augmentation | " + " | ".join(label for _, label in METRICS) + " |",
        "|---|---|" + "---|" * len(METRICS),
    ]
    means = fits.groupby(["method", "augmentation"])[[m for m, _ in METRICS]].mean()
    for (method, condition), row in means.iterrows():
        lines.append(f"| {method} | {condition} | "
                     + " | ".join(f"{100 * row[m]:.1f}" for m, _ in METRICS) + " |")
    lines += ["", "## Paired by split: each condition minus none (percentage points, 95% t "
              "interval)", "",
              "| method | condition | " + " | ".join(label for _, label in METRICS) + " |",
              "|---|---|" + "---|" * len(METRICS)]
    paired = {}
    for method in fits.method.unique():
        table = fits[fits.method == method].pivot(index="split", columns="augmentation")
        for condition in [c for c in CONDITIONS if c != "none" and c in set(fits.augmentation)]:
            cells = []
            for metric, _ in METRICS:
                differences = table[(metric, condition)] - table[(metric, "none")]
                mean, low, high = t_interval(100 * differences.to_numpy())
                paired[(method, condition, metric)] = (mean, low, high)
                cells.append(f"{mean:+.1f} [{low:+.1f}, {high:+.1f}]")
            lines.append(f"| {method} | {condition} | " + " | ".join(cells) + " |")
    lines += ["", "Lower FPR95 is better; a difference whose interval excludes 0 is "
              "distinguishable at this number of splits.", ""]
    return "\n".join(lines), paired


def main(argv=None):
    args = parse_args(argv)
    command = "python benchmarks/augmentation.py " + " ".join(
        sys.argv[1:] if argv is None else argv)
    os.makedirs(args.out, exist_ok=True)
    results = run(args, log=lambda text: print(text, file=sys.stderr))
    results.to_csv(os.path.join(args.out, "augmentation.csv"), index=False)
    text, _ = report(results, args, command)
    with open(os.path.join(args.out, "augmentation.md"), "w") as handle:
        handle.write(text)
    print(text)
    return results


if __name__ == "__main__":
    main()
