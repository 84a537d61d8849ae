"""What the feature-space detectors cost at CIFAR scale on the CPU, against reference tools.

Fits KNN, Mahalanobis and ViM of ``skood.detectors`` on N synthetic training features of
width D (default 50,000 x 512, the size of a ResNet-18's penultimate layer on CIFAR-10's
training set) and scores M new rows (default 10,000), timing fit and scoring separately.
The features are structured like a trained network's: 10 Gaussian classes with a decaying
spectrum of per-direction scales, passed through a ReLU; the logits are those of a linear
head (one row per class mean) on these features.

Each detector is timed against a reference that computes the same score with other tools:

- KNN (k-th nearest normalised training row, exact) against scikit-learn's
  ``NearestNeighbors(algorithm="brute")`` and, when ``faiss`` is installed
  (``pip install faiss-cpu``), faiss's exact ``IndexFlatIP``; skood's KNN runs with its
  built-in search (``backend="builtin"``) and, with faiss installed, with ``backend="faiss"``;
- Mahalanobis against scikit-learn's ``EmpiricalCovariance`` (tied covariance of the
  class-centred rows) and its ``mahalanobis`` method, once per class mean;
- ViM against the paper's recipe with scikit-learn and numpy (``EmpiricalCovariance`` of the
  rows centred at ``u = -pinv(W) b``, ``numpy.linalg.eigh``, residual norm, alpha).

Mahalanobis is also timed against ``NearestNeighbors(algorithm="brute",
metric="mahalanobis")`` over the class means (with the precision of ``EmpiricalCovariance``),
the nearest-neighbour route to the same score.

Repeats are interleaved (the order of the contenders rotates from one repeat to the next)
so that a slow spell of a shared machine hits all alike. For each repeat, the ratio of the
skood detector's total time (fit + score) to each reference's total time *in that repeat*
is taken; the report gives the median of these per-repeat ratios (with their range), the
median fit and scoring times, each fitted object's size (its pickle, or faiss's serialised
index), and how far the scores agree (largest absolute difference and Spearman rank
correlation with the first skood row). It names the machine: CPU, cores, the load average
before and after (other jobs on a shared machine), and the threads of torch, of numpy's
BLAS and of faiss.

faiss is optional. To time it without installing it into the environment the tests use:
``python -m pip install --target /some/dir faiss-cpu`` (then remove the numpy that pip puts
beside it, if the environment's numpy is the same version) and run with
``PYTHONPATH=/some/dir``.

Run: python benchmarks/detector_cost.py [--n-train 50000] [--n-test 10000] [--dim 512]
     [--classes 10] [--k 50] [--repeats 3] [--detectors KNN Mahalanobis ViM] [--threads N]
     [--seed 0] [--out report.md]
"""
import argparse
import importlib.util
import os
import pickle
import platform
import statistics
import sys
import time

import numpy as np
import torch
from scipy.stats import spearmanr
from sklearn.covariance import EmpiricalCovariance
from sklearn.neighbors import NearestNeighbors
from threadpoolctl import threadpool_info, threadpool_limits

from skood.detectors import KNN, Mahalanobis, ViM
from skood.detectors._vim import default_n_components  # ViM's rule, for the reference too

HAS_FAISS = importlib.util.find_spec("faiss") is not None
DETECTOR_NAMES = ("KNN", "Mahalanobis", "ViM")


def make_features(n_train, n_test, dim, n_classes, seed=0):
    """Class-structured non-negative features, labels and a linear head (weight, bias)."""
    rng = np.random.default_rng(seed)
    means = rng.normal(size=(n_classes, dim)) * 1.5
    scales = 1.0 / np.sqrt(1.0 + np.arange(dim))            # a decaying spectrum
    y = rng.integers(0, n_classes, n_train + n_test)
    rows = np.maximum(0.0, means[y] + rng.normal(size=(len(y), dim)) * scales * 4)
    weight = means / np.linalg.norm(means, axis=1, keepdims=True)
    bias = rng.normal(size=n_classes) * 0.1
    rows = rows.astype(np.float32)
    logits = (rows @ weight.T.astype(np.float32) + bias.astype(np.float32))
    return (rows[:n_train], logits[:n_train], y[:n_train], rows[n_train:], logits[n_train:],
            (weight, bias))


def normalise(rows):
    return rows / np.maximum(np.linalg.norm(rows, axis=1, keepdims=True), 1e-12)


# -- the contenders: each returns (fit seconds, score seconds, scores, fitted bytes) ----------

def pickled_size(state):
    return len(pickle.dumps(state, protocol=pickle.HIGHEST_PROTOCOL))


def timed(fit, score, size=pickled_size):
    """Time ``fit()`` then ``score(fitted)``; the fitted state's size is measured after."""
    start = time.perf_counter()
    state = fit()
    middle = time.perf_counter()
    scores = score(state)
    end = time.perf_counter()
    return middle - start, end - middle, np.asarray(scores, dtype=np.float64), size(state)


def skood_detector(detector, data):
    train, train_logits, y, test, test_logits, head = data
    return timed(lambda: detector.fit(train, train_logits, y, last_layer=head),
                 lambda fitted: fitted.score_samples(test, test_logits))


def sklearn_knn(data, k):
    train, _, _, test, _, _ = data
    fit = lambda: NearestNeighbors(n_neighbors=k, algorithm="brute").fit(normalise(train))  # noqa: E731
    return timed(fit, lambda nn: -nn.kneighbors(normalise(test))[0][:, -1])


def faiss_knn(data, k):
    import faiss
    train, _, _, test, _, _ = data

    def fit():
        index = faiss.IndexFlatIP(train.shape[1])
        index.add(np.ascontiguousarray(normalise(train), dtype=np.float32))
        return index

    def score(index):
        similarity, _ = index.search(np.ascontiguousarray(normalise(test), dtype=np.float32), k)
        return -np.sqrt(np.maximum(2.0 - 2.0 * similarity[:, -1], 0.0))

    return timed(fit, score, size=lambda index: faiss.serialize_index(index).nbytes)


def tied_covariance(train, y):
    """Class means and EmpiricalCovariance of the class-centred rows (Lee et al.'s estimate)."""
    train64 = train.astype(np.float64)
    means = np.stack([train64[y == c].mean(axis=0) for c in np.unique(y)])
    codes = np.searchsorted(np.unique(y), y)
    return means, EmpiricalCovariance(assume_centered=True).fit(train64 - means[codes])


def sklearn_mahalanobis(data):
    train, _, y, test, _, _ = data

    def fit():
        return tied_covariance(train, y)

    def score(state):
        means, covariance = state
        distances = []
        for mean in means:
            covariance.location_ = mean                    # mahalanobis() measures from here
            distances.append(covariance.mahalanobis(test.astype(np.float64)))
        return -np.min(distances, axis=0)

    return timed(fit, score)


def sklearn_neighbors_mahalanobis(data):
    """The nearest class mean under the Mahalanobis metric, by scikit-learn's brute search."""
    train, _, y, test, _, _ = data

    def fit():
        means, covariance = tied_covariance(train, y)
        return NearestNeighbors(n_neighbors=1, algorithm="brute", metric="mahalanobis",
                                metric_params={"VI": covariance.precision_}).fit(means)

    def score(nn):
        return -nn.kneighbors(test.astype(np.float64))[0][:, 0] ** 2

    return timed(fit, score)


def reference_vim(data, n_components):
    train, train_logits, _, test, test_logits, (weight, bias) = data

    def fit():
        origin = -np.linalg.pinv(weight) @ bias
        centred = train.astype(np.float64) - origin
        covariance = EmpiricalCovariance(assume_centered=True).fit(centred).covariance_
        values, vectors = np.linalg.eigh(covariance)
        residual_basis = vectors[:, np.argsort(values)[:train.shape[1] - n_components]]
        residual = np.linalg.norm(centred @ residual_basis, axis=1)
        alpha = train_logits.astype(np.float64).max(axis=1).mean() / residual.mean()
        return origin, residual_basis, alpha

    def score(state):
        origin, residual_basis, alpha = state
        residual = np.linalg.norm((test.astype(np.float64) - origin) @ residual_basis, axis=1)
        logits = test_logits.astype(np.float64)
        top = logits.max(axis=1)
        energy = top + np.log(np.exp(logits - top[:, None]).sum(axis=1))
        return energy - alpha * residual

    return timed(fit, score)


def contenders(args, n_components):
    """(detector, label, callable(data)) in a fixed order; skood's first for each detector."""
    runs = [("KNN", "skood KNN (built-in search)",
             lambda d: skood_detector(KNN(k=args.k, backend="builtin"), d))]
    if HAS_FAISS:
        runs.append(("KNN", "skood KNN (faiss search)",
                     lambda d: skood_detector(KNN(k=args.k, backend="faiss"), d)))
    runs.append(("KNN", "scikit-learn NearestNeighbors(brute)", lambda d: sklearn_knn(d, args.k)))
    if HAS_FAISS:
        runs.append(("KNN", "faiss IndexFlatIP (exact)", lambda d: faiss_knn(d, args.k)))
    runs += [
        ("Mahalanobis", "skood Mahalanobis", lambda d: skood_detector(Mahalanobis(), d)),
        ("Mahalanobis", "scikit-learn EmpiricalCovariance.mahalanobis", sklearn_mahalanobis),
        ("Mahalanobis", "scikit-learn NearestNeighbors(brute, mahalanobis)",
         sklearn_neighbors_mahalanobis),
        ("ViM", "skood ViM", lambda d: skood_detector(ViM(n_components=n_components), d)),
        ("ViM", "scikit-learn + numpy recipe", lambda d: reference_vim(d, n_components)),
    ]
    return [run for run in runs if run[0] in args.detectors]


def run(args):
    data = make_features(args.n_train, args.n_test, args.dim, args.classes, args.seed)
    n_components = default_n_components(args.dim)          # what ViM() picks for this width
    runs = contenders(args, n_components)
    times = {label: [] for _, label, _ in runs}
    scores, sizes = {}, {}
    load_before = os.getloadavg()
    for repeat in range(args.repeats):
        shift = repeat % len(runs)
        for _, label, call in runs[shift:] + runs[:shift]:
            fit_s, score_s, values, size = call(data)
            times[label].append((fit_s, score_s))
            scores[label], sizes[label] = values, size
            print(f"repeat {repeat}: {label}: fit {fit_s:.3f} s, score {score_s:.3f} s",
                  file=sys.stderr)
    return runs, times, scores, sizes, n_components, (load_before, os.getloadavg())


def cpu_name():
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine(loads):
    # every BLAS loaded (numpy's, torch's, faiss's), named by the package that ships it
    blas = ", ".join(f"{pool['internal_api']} {pool['version']} of "
                     f"{os.path.basename(os.path.dirname(pool['filepath'])).removesuffix('.libs')} "
                     f"with {pool['num_threads']} threads"
                     for pool in threadpool_info() if pool["user_api"] == "blas")
    threads = f"torch {torch.__version__} with {torch.get_num_threads()} threads"
    threads += f", numpy {np.__version__}" + (f"; BLAS: {blas}" if blas else "")
    if HAS_FAISS:
        import faiss
        threads += f", faiss {faiss.__version__} with {faiss.omp_get_max_threads()} threads"
    (before, _, _), (after, _, _) = loads
    return (f"{cpu_name()}, {os.cpu_count()} cores; {threads}. Load average (1 min) "
            f"{before:.2f} before and {after:.2f} after the run.")


def ratios(times, own, label):
    """Per-repeat ratios of the skood row's total time to this row's (same repeat)."""
    return [(fo + so) / (fl + sl) for (fo, so), (fl, sl) in zip(times[own], times[label])]


def report(args, runs, times, scores, sizes, n_components, loads):
    lines = [
        "# Feature-space detectors: fit and scoring time",
        "",
        f"Command: `python benchmarks/{' '.join(['detector_cost.py', *sys.argv[1:]])}`",
        "",
        f"Machine: {machine(loads)}",
        "",
        f"Data: {args.n_train} training rows and {args.n_test} new rows of width {args.dim}, "
        f"{args.classes} classes (synthetic, seed {args.seed}); KNN k={args.k}; ViM "
        f"n_components={n_components}. Medians over {args.repeats} interleaved repeats."
        + ("" if HAS_FAISS else " faiss is not installed: its rows are left out."),
        "",
        "| detector | implementation | fit (s) | score (s) | total (s) | skood / this "
        "(range) | fitted size (MB) | max abs score difference | Spearman |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for detector in dict.fromkeys(name for name, _, _ in runs):
        labels = [label for name, label, _ in runs if name == detector]
        own = labels[0]
        for label in labels:
            fit_s = statistics.median(f for f, _ in times[label])
            score_s = statistics.median(s for _, s in times[label])
            total = statistics.median(f + s for f, s in times[label])
            pair = ratios(times, own, label)
            difference = np.max(np.abs(scores[label] - scores[own]))
            rho = spearmanr(scores[label], scores[own]).statistic
            lines.append(f"| {detector} | {label} | {fit_s:.3f} | {score_s:.3f} | {total:.3f} "
                         f"| {statistics.median(pair):.2f} ({min(pair):.2f}-{max(pair):.2f}) "
                         f"| {sizes[label] / 1e6:.4g} | {difference:.2e} | {rho:.6f} |")
    lines += ["", "skood / this: the median over repeats of the first skood row's total time "
              "(fit + score) over this row's in the same repeat (below 1: skood is faster), "
              "with the range over repeats. Fitted size: the pickled fitted object (faiss: its "
              "serialised index). Score differences and rank correlations are against that "
              "first row."]
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-train", type=int, default=50_000, help="training rows")
    parser.add_argument("--n-test", type=int, default=10_000, help="rows scored")
    parser.add_argument("--dim", type=int, default=512, help="feature width")
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--k", type=int, default=50, help="KNN's k (the paper's on CIFAR-10)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--detectors", nargs="+", choices=DETECTOR_NAMES,
                        default=list(DETECTOR_NAMES), help="time only these")
    parser.add_argument("--threads", type=int,
                        help="threads of torch, of every BLAS and of faiss (default: theirs)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", help="write the markdown report here too")
    args = parser.parse_args(argv)
    if args.k > args.n_train:
        parser.error("--k must not exceed --n-train")
    if args.threads is not None:
        # every pool at once: torch's, every BLAS (numpy's, scipy's, faiss's), faiss's OpenMP
        if HAS_FAISS:
            import faiss                    # loads its BLAS, which the limits then reach
            faiss.omp_set_num_threads(args.threads)
        torch.set_num_threads(args.threads)
        threadpool_limits(args.threads)
    text = report(args, *run(args))
    print(text)
    if args.out:
        with open(args.out, "w") as handle:
            handle.write(text)
    return text


if __name__ == "__main__":
    main()
