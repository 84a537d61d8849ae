"""Per-step cost of the outliers of a torch Dataset ``X_aux``: read in the training process,
or read ahead by DataLoader worker processes.

The outliers are those of the paper's CIFAR recipe
(``skood.benchmark.recipe.PAPER_CIFAR_RECIPE``): an ``ArrayDataset`` of 32x32 colour
images augmented as they are read (a random horizontal flip and a random crop after
padding by 4 pixels), drawn ``--pool`` at a time (384: GReg+'s candidate pool, 6 times
the ID batch of 64) through the estimator's outlier stream
(``AuxiliaryData.take_next``), as a fit reads them with ``iterator_train__num_workers=0``
(in the training process, item by item) and with ``--workers`` worker processes. The
figure is the time a step waits for its outliers in the training process, the median
over the ``--steps`` steps of a run (after ``--warmup`` steps, which include the
workers' start). Between two draws the training process sleeps ``--step-ms``
milliseconds: the rest of a step on a GPU, where the host waits for the device
(``--step-ms 0``: draws back to back, the reading alone). Runs alternate (in-process
then workers, workers then in-process, ...), so that a slow spell of a shared machine
hits both; the report gives each pair's ratio and their median.

Before timing, it checks that the workers read the same outliers in the same order as
the training process (the images without the augmentation, whose draws the workers
make from copies of its generator).

Run: python benchmarks/outlier_stream.py [--pool 384] [--workers 2] [--step-ms 20]
     [--steps 40] [--warmup 5] [--repeats 5] [--n 5000] [--device cpu|cuda] [--out FILE]
"""
import argparse
import os
import platform
import statistics
import sys
import time
import warnings

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from skood._outliers import AuxiliaryData, OutlierStream  # noqa: E402
from skood.benchmark.recipe import PAPER_CIFAR_RECIPE  # noqa: E402
from skood.data import ArrayDataset  # noqa: E402


def outliers(n, transform=True):
    """``n`` made-up 32x32 colour images, augmented as the CIFAR recipe's outliers are."""
    images = np.random.default_rng(0).uniform(-1, 1, size=(n, 3, 32, 32)).astype(np.float32)
    if not transform:
        return ArrayDataset(images)
    return ArrayDataset(images, transform=PAPER_CIFAR_RECIPE.augmentation((32, 32), seed=1))


def loader_params(workers, device):
    """What ``skood._validation.loader_params`` hands the stream for
    ``iterator_train__num_workers=workers`` (and pinned memory on CUDA)."""
    params = {"num_workers": workers}
    if torch.device(device).type == "cuda":
        params["pin_memory"] = True
    return params


def check_same_outliers(args):
    """The workers' draws are the training process's, draw for draw."""
    data = outliers(args.n, transform=False)
    by_workers = AuxiliaryData(data).read_with(loader_params(args.workers, args.device))
    in_process = AuxiliaryData(data).read_with(loader_params(0, args.device))
    streams = OutlierStream(len(data), seed=0), OutlierStream(len(data), seed=0)
    try:
        for _ in range(3):
            got = by_workers.take_next(streams[0], args.pool, args.device)
            expected = in_process.take_next(streams[1], args.pool, args.device)
            if not torch.equal(got, expected):
                sys.exit("the workers read other outliers than the training process")
    finally:
        by_workers.close()
        in_process.close()


def step_waits(args, workers):
    """Seconds each step waits for its outliers (after the warm-up steps)."""
    data = outliers(args.n)
    aux = AuxiliaryData(data).read_with(loader_params(workers, args.device))
    stream = OutlierStream(len(data), seed=0)
    waits = []
    try:
        for step in range(args.warmup + args.steps):
            start = time.perf_counter()
            batch = aux.take_next(stream, args.pool, args.device)
            if batch.device.type == "cuda":
                torch.cuda.synchronize()
            if step >= args.warmup:
                waits.append(time.perf_counter() - start)
            time.sleep(args.step_ms / 1000)
    finally:
        aux.close()
    return waits


def processor():
    """The CPU's model name (from /proc/cpuinfo on Linux), else what platform says."""
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pool", type=int, default=384, help="outliers drawn per step")
    parser.add_argument("--workers", type=int, default=2, help="worker processes")
    parser.add_argument("--step-ms", type=float, default=20.0,
                        help="sleep between draws, standing for the rest of a GPU step")
    parser.add_argument("--steps", type=int, default=40, help="timed steps per run")
    parser.add_argument("--warmup", type=int, default=5, help="untimed first steps per run")
    parser.add_argument("--repeats", type=int, default=5, help="pairs of runs")
    parser.add_argument("--n", type=int, default=5000, help="images in X_aux")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", help="write the markdown report here too")
    args = parser.parse_args(argv)
    if args.workers < 1 or args.steps < 1 or args.repeats < 1 or args.pool < 1:
        parser.error("--workers, --steps, --repeats and --pool must be at least 1")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)   # pin_memory without an accelerator
        check_same_outliers(args)
        pairs = []
        for repeat in range(args.repeats):
            order = (0, args.workers) if repeat % 2 == 0 else (args.workers, 0)
            medians = {workers: statistics.median(step_waits(args, workers))
                       for workers in order}
            pairs.append((medians[0], medians[args.workers]))
            print(f"repeat {repeat}: in-process {1e3 * medians[0]:.2f} ms, "
                  f"{args.workers} workers {1e3 * medians[args.workers]:.2f} ms per step",
                  file=sys.stderr)
    ratios = [w / p for p, w in pairs]
    in_process = statistics.median(p for p, _ in pairs)
    by_workers = statistics.median(w for _, w in pairs)
    device = args.device + (f" ({torch.cuda.get_device_name()})"
                            if args.device.startswith("cuda") else "")
    lines = [
        "# Outliers of a Dataset X_aux: the wait per step, in-process against workers",
        "",
        f"Command: `python benchmarks/{' '.join(['outlier_stream.py', *sys.argv[1:]])}`",
        "",
        f"Machine: {processor()}, {os.cpu_count()} CPUs, "
        f"torch {torch.__version__}, {torch.get_num_threads()} torch threads, device "
        f"{device}.",
        "",
        f"{args.pool} outliers per step from {args.n} 32x32 colour images with the CIFAR "
        f"recipe's flip and crop; {args.steps} timed steps per run after {args.warmup}, "
        f"{args.step_ms:g} ms of sleep between draws; {args.repeats} interleaved pairs. "
        "The workers read the same outliers in the same order: checked.",
        "",
        "| outliers read | median wait per step (ms) |",
        "|---|---:|",
        f"| in the training process | {1e3 * in_process:.2f} |",
        f"| by {args.workers} DataLoader workers | {1e3 * by_workers:.2f} |",
        "",
        "Per-pair ratios (workers / in-process): " + ", ".join(f"{r:.3f}" for r in ratios),
        "",
        # last, and whole on one line: benchmarks/gpu_checks.sh puts it in its summary
        f"Wait per step for {args.pool} outliers: {1e3 * in_process:.2f} ms in the training "
        f"process, {1e3 * by_workers:.2f} ms with {args.workers} worker"
        f"{'s' if args.workers > 1 else ''}; median per-pair "
        f"ratio **{statistics.median(ratios):.3f}**.",
    ]
    report = "\n".join(lines) + "\n"
    print(report)
    if args.out:
        with open(args.out, "w") as handle:
            handle.write(report)
    return report


if __name__ == "__main__":
    main()
