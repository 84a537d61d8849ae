"""What choosing the detector costs: DetectorSearchCV over 8 detectors against GridSearchCV
over one.

On scikit-learn's digits (the six classes 2, 3, 4, 5, 8, 9, as 8x8 images, as the search
of ``docs/selection.md``), with photograph crops as auxiliary outliers and
``HeldOutClassSplit(n_splits=3, n_heldout=2)``, both searches score the held-out-class
FPR95 and the far guard (:class:`skood.model_selection.FarGuardScorer`: the worst FPR95
against generated textures and noise), the criterion of ``docs/selection.md``:

- ``GridSearchCV(clf, {"detector": ["energy"]})``: one network per fold, one detector;
- ``DetectorSearchCV(clf, 8 detectors)``: one network per fold, every detector of
  :data:`skood.detectors.DETECTORS` fitted on it with ``set_params(detector=...)``
  (no retraining), each scored.

Neither refits on all rows. The two run in turn, ``--repeats`` times (the order
alternates, so that a slow spell of a shared machine hits both), one torch thread; the
report gives each pair's ratio (helper / grid) and their median, with the median times.

Run: python benchmarks/detector_selection_cost.py [--repeats 5] [--epochs 10] [--seed 0]
"""
import argparse
import platform
import statistics
import time
import warnings

import numpy as np
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import GridSearchCV

from skood import GradRegOODClassifier, make_ood_scorer
from skood.datasets import make_natural_image_outliers
from skood.detectors import DETECTORS
from skood.model_selection import DetectorSearchCV, FarGuardScorer, HeldOutClassSplit
from skood.models import MLP


def data(seed):
    X, y = load_digits(return_X_y=True)
    known = np.isin(y, (2, 3, 4, 5, 8, 9))
    X = (X[known] / 16.0).astype(np.float32).reshape(-1, 1, 8, 8)
    return X, y[known], make_natural_image_outliers(2000, (8, 8), random_state=seed)


def searches(epochs, seed):
    clf = GradRegOODClassifier(MLP, m_in=-12.0, m_out=-4.0, max_epochs=epochs, batch_size=32,
                               random_state=seed, verbose=0)
    cv = HeldOutClassSplit(n_splits=3, n_heldout=2, random_state=seed)
    scoring = {"fpr95": make_ood_scorer("fpr95")}
    # a far guard each: each search makes its generated images once, inside its time
    grid = GridSearchCV(clf, {"detector": ["energy"]}, cv=cv, refit=False,
                        scoring={**scoring, "far_fpr95": FarGuardScorer(random_state=seed)})
    helper = DetectorSearchCV(clf, list(DETECTORS), cv=cv, scoring=scoring,
                              far_guard=FarGuardScorer(random_state=seed), refit=False)
    return grid, helper


def cpu_name():
    try:
        with open("/proc/cpuinfo") as info:
            return next(line.split(":", 1)[1].strip() for line in info
                        if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or platform.machine()


def timed(search, X, y, aux):
    start = time.perf_counter()
    search.fit(X, y, X_aux=aux)
    return time.perf_counter() - start


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    X, y, aux = data(args.seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")         # one epoch ends near chance: no matter here
        for search in searches(1, args.seed):   # untimed: imports and first calls warm up
            search.fit(X, y, X_aux=aux)
    grid_times, helper_times, ratios = [], [], []
    for repeat in range(args.repeats):
        grid, helper = searches(args.epochs, args.seed)
        order = [("grid", grid), ("helper", helper)]
        times = dict((name, timed(search, X, y, aux))
                     for name, search in (order if repeat % 2 == 0 else order[::-1]))
        grid_times.append(times["grid"])
        helper_times.append(times["helper"])
        ratios.append(times["helper"] / times["grid"])
        print(f"repeat {repeat}: GridSearchCV (1 detector) {times['grid']:.2f} s, "
              f"DetectorSearchCV ({len(DETECTORS)} detectors) {times['helper']:.2f} s, "
              f"ratio {ratios[-1]:.3f}", flush=True)
    results = helper.cv_results_
    lines = [
        f"digits, 6 classes ({len(X)} rows), {args.epochs} epochs, HeldOutClassSplit(3, 2), "
        f"far guard; {args.repeats} interleaved repeats, 1 torch thread; "
        f"{cpu_name()}, torch {torch.__version__}",
        f"GridSearchCV over 1 detector: median {statistics.median(grid_times):.2f} s",
        f"DetectorSearchCV over {len(DETECTORS)} detectors: median "
        f"{statistics.median(helper_times):.2f} s",
        f"ratio per pair: {', '.join(f'{r:.3f}' for r in ratios)}; "
        f"median {statistics.median(ratios):.3f}",
        "last run's mean held-out-class FPR95 / far FPR95 per detector: " + ", ".join(
            f"{params['detector']} {0.0 - near:.3f}/{0.0 - far:.3f}" for params, near, far in zip(
                results["params"], results["mean_test_fpr95"], results["mean_test_far_fpr95"])),
    ]
    print("\n".join(lines))
    return statistics.median(ratios)


if __name__ == "__main__":
    main()
