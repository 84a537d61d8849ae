"""What a torch Dataset as X costs against the array fit of the same in-memory data.

Fits ``GradRegOODClassifier`` (GReg, ``train_split=None``) on synthetic images
held in memory, once from the float32 array and once from
``skood.data.ArrayDataset`` of the same array (no transform), with the same seed,
so that both fits train on the same batches. The figure is the epoch time
(skorch's ``dur``, the training loop only; the first epoch of each fit is left
out), as the median over epochs of each fit. Repeats are interleaved (array,
Dataset, then Dataset, array, ...), so that a slow spell of a shared machine
hits both alike; the report gives the ratio of the medians, the median of the
per-pair ratios and every pair's ratio, and, as a figure that a slow spell of
the machine moves less, the ratio of the fastest epochs of all fits. It also
times the data path alone: one pass of skorch's DataLoader (same batch size,
shuffled) over the rows as the array fit reads them (a
``skorch.dataset.Dataset``) and as the Dataset fit reads them (the
estimator's own wrapper of the ``ArrayDataset``), interleaved the same way.

Run: python benchmarks/dataset_cost.py [--shape 1 28 28] [--n 4000] [--epochs 4]
     [--repeats 5] [--model mlp|cnn] [--batch-size 128] [--device cpu|cuda]
     [--num-workers 0] [--out report.md]
"""
import argparse
import platform
import statistics
import sys
import time
import warnings

import numpy as np
import torch

from skood import ChanceLevelWarning, GradRegOODClassifier
from skood.data import ArrayDataset, LabelledRows
from skood.models import MLP, SmallCNN


def make_data(shape, n, seed=0):
    """Ten classes of noise images that differ in mean, and uniform outliers."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 10, n)
    X = (0.5 * rng.normal(size=(n, *shape)) + 0.1 * y.reshape(-1, *[1] * len(shape))).astype(
        np.float32)
    X_aux = rng.uniform(-1, 1, size=(n, *shape)).astype(np.float32)
    return X, y, X_aux


def estimator(args):
    module = MLP if args.model == "mlp" else SmallCNN
    params = {} if args.model == "mlp" else {"module__in_channels": args.shape[0]}
    return GradRegOODClassifier(
        module, max_epochs=args.epochs, batch_size=args.batch_size, train_split=None,
        lr=0.01, m_in=-12.0, m_out=-4.0,
        random_state=0, verbose=0, device=args.device,
        iterator_train__num_workers=args.num_workers, **params)


def epoch_time(args, X, y, X_aux, as_dataset):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ChanceLevelWarning)
        model = estimator(args)
        if as_dataset:
            model.fit(ArrayDataset(X, y), X_aux=X_aux)
        else:
            model.fit(X, y, X_aux=X_aux)
    durations = model.history[1:, "dur"]
    return statistics.median(durations), min(durations)


def loader_time(args, X, y, as_dataset):
    """Seconds for one shuffled pass over the rows as the fit's DataLoader reads them."""
    model = estimator(args)
    dataset = (LabelledRows(ArrayDataset(X, y), np.arange(len(X)), y) if as_dataset
               else model.get_dataset(X, y))
    loader = model.get_iterator(dataset, training=True)
    start = time.perf_counter()
    for _ in loader:
        pass
    return time.perf_counter() - start


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", type=int, nargs="+", default=[1, 28, 28])
    parser.add_argument("--n", type=int, default=4000, help="training rows")
    parser.add_argument("--epochs", type=int, default=4, help="epochs per fit (at least 2)")
    parser.add_argument("--repeats", type=int, default=5, help="pairs of fits")
    parser.add_argument("--model", choices=["mlp", "cnn"], default="mlp")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--num-workers", type=int, default=0)
    parser.add_argument("--out", help="write the markdown report here too")
    args = parser.parse_args(argv)
    if args.epochs < 2:
        parser.error("--epochs must be at least 2 (the first epoch is left out)")
    X, y, X_aux = make_data(tuple(args.shape), args.n)
    pairs, fastest = [], []
    for repeat in range(args.repeats):
        order = (False, True) if repeat % 2 == 0 else (True, False)
        times = {as_dataset: epoch_time(args, X, y, X_aux, as_dataset) for as_dataset in order}
        pairs.append((times[False][0], times[True][0]))
        fastest.append((times[False][1], times[True][1]))
        print(f"repeat {repeat}: array {times[False][0]:.3f} s, Dataset {times[True][0]:.3f} s "
              f"per epoch", file=sys.stderr)
    loads = []
    for repeat in range(2 * args.repeats + 1):
        order = (False, True) if repeat % 2 == 0 else (True, False)
        times = {as_dataset: loader_time(args, X, y, as_dataset) for as_dataset in order}
        loads.append((times[False], times[True]))
    array_median = statistics.median(a for a, _ in pairs)
    dataset_median = statistics.median(d for _, d in pairs)
    ratios = [d / a for a, d in pairs]
    lines = [
        "# Dataset fit against array fit: epoch time",
        "",
        f"Command: `python benchmarks/{' '.join(['dataset_cost.py', *sys.argv[1:]])}`",
        "",
        f"Machine: {platform.processor() or platform.machine()}, torch {torch.__version__}, "
        f"{torch.get_num_threads()} torch threads, device {args.device}"
        + (f" ({torch.cuda.get_device_name()})" if args.device.startswith("cuda") else "")
        + ".",
        "",
        f"Data: {args.n} synthetic float32 samples of shape {tuple(args.shape)}, model "
        f"{args.model}, batch size {args.batch_size}, {args.epochs} epochs per fit (the "
        f"first left out), {args.repeats} interleaved pairs, num_workers={args.num_workers}.",
        "",
        "| | median epoch time (s) |",
        "|---|---|",
        f"| array | {array_median:.3f} |",
        f"| Dataset | {dataset_median:.3f} |",
        "",
        f"Ratio of medians (Dataset / array): **{dataset_median / array_median:.3f}**; "
        f"median of the per-pair ratios: {statistics.median(ratios):.3f}.",
        "",
        "Per-pair ratios: " + ", ".join(f"{ratio:.3f}" for ratio in ratios),
        "",
        f"Fastest epoch of all fits: array {min(a for a, _ in fastest):.3f} s, Dataset "
        f"{min(d for _, d in fastest):.3f} s; ratio "
        f"{min(d for _, d in fastest) / min(a for a, _ in fastest):.3f}.",
        "",
        f"Data path alone (one shuffled DataLoader pass, median of {len(loads)} interleaved "
        f"pairs): array {statistics.median(a for a, _ in loads):.4f} s, Dataset "
        f"{statistics.median(d for _, d in loads):.4f} s; median per-pair ratio "
        f"{statistics.median(d / a for a, d in loads):.3f}.",
    ]
    report = "\n".join(lines) + "\n"
    print(report)
    if args.out:
        with open(args.out, "w") as handle:
            handle.write(report)
    return report


if __name__ == "__main__":
    main()
