"""Monte Carlo check of skood.conformal's guarantees on synthetic scores.

Scores: in-distribution (ID) ~ N(0, 1), OOD ~ N(-2, 1) (higher = more ID).
Each repetition draws a fresh calibration set and fresh new samples.

1. Acceptance: for each calibration size n and target tpr, the fraction of new
   ID samples with score >= conformal_threshold(calibration, tpr), averaged
   over repetitions, against the target and against the exact value
   1 - k / (n + 1), k = floor((n + 1)(1 - tpr)). For comparison, the same for
   skood.metrics.threshold_at_tpr (the empirical quantile of the calibration
   scores), which has no finite-sample guarantee.
2. False discovery rate: batches of m new samples, a fraction pi0 of them ID,
   flagged with benjamini_hochberg(conformal_pvalues(calibration, batch), q);
   the FDR is the mean over repetitions of (#ID flagged) / max(#flagged, 1).

Prints a table of both and saves a figure (acceptance - target, and FDR
against q, with 3-standard-error bars).

Run: python benchmarks/conformal_validity.py [--reps 2000] [--seed 0]
     [--out docs/figures/conformal_validity.png]
"""
import argparse
import time
import warnings
from pathlib import Path

import numpy as np

from skood.conformal import (SmallCalibrationWarning, benjamini_hochberg, conformal_pvalues,
                             conformal_threshold)
from skood.metrics import threshold_at_tpr

SIZES = (20, 50, 200, 1000)
TARGETS = (0.8, 0.9, 0.95, 0.99)
FDR_LEVELS = (0.05, 0.1, 0.2, 0.3)
ID_FRACTIONS = (1.0, 0.9, 0.5)
N_NEW = 100           # new ID samples per repetition (acceptance)
N_CAL_FDR = 1000      # calibration size for the FDR experiment
BATCH = 100           # batch size for the FDR experiment


def mean_se(values):
    values = np.asarray(values, dtype=float)
    return float(values.mean()), float(values.std(ddof=1) / np.sqrt(values.size))


def acceptance(rng, reps):
    rows = []
    for n in SIZES:
        calibration = rng.normal(size=(reps, n))
        new = rng.normal(size=(reps, N_NEW))
        for tpr in TARGETS:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", SmallCalibrationWarning)  # n=20 at 0.99: -inf
                conformal = np.array([conformal_threshold(c, tpr) for c in calibration])
            quantile = np.array([threshold_at_tpr(c, tpr) for c in calibration])
            k = int(np.floor((n + 1) * (1 - tpr) + 1e-9))
            rows.append({
                "n": n, "tpr": tpr, "k": k, "exact": 1 - k / (n + 1),
                "conformal": mean_se((new >= conformal[:, None]).mean(axis=1)),
                "quantile": mean_se((new >= quantile[:, None]).mean(axis=1)),
            })
    return rows


def false_discoveries(rng, reps):
    rows = []
    for pi0 in ID_FRACTIONS:
        n_id = round(pi0 * BATCH)
        is_id = np.arange(BATCH) < n_id
        calibration = rng.normal(size=(reps, N_CAL_FDR))
        batch = np.c_[rng.normal(size=(reps, n_id)),
                      rng.normal(-2.0, 1.0, size=(reps, BATCH - n_id))]
        pvalues = [conformal_pvalues(c, b) for c, b in zip(calibration, batch)]
        for q in FDR_LEVELS:
            flagged = np.array([benjamini_hochberg(p, q) for p in pvalues])
            fdp = (flagged & is_id).sum(axis=1) / np.maximum(flagged.sum(axis=1), 1)
            power = flagged[:, ~is_id].mean() if n_id < BATCH else float("nan")
            rows.append({"pi0": pi0, "q": q, "fdr": mean_se(fdp), "power": power})
    return rows


def print_tables(accept_rows, fdr_rows, reps, seconds):
    print(f"{reps} repetitions per row; {seconds:.1f} s\n")
    print("| n | tpr | k | exact 1-k/(n+1) | conformal acceptance | threshold_at_tpr acceptance |")
    print("|---:|---:|---:|---:|---:|---:|")
    for r in accept_rows:
        (c, cse), (q, qse) = r["conformal"], r["quantile"]
        print(f"| {r['n']} | {r['tpr']} | {r['k']} | {r['exact']:.4f} | {c:.4f} ± {cse:.4f} "
              f"| {q:.4f} ± {qse:.4f} |")
    print(f"\nBH on conformal p-values: n = {N_CAL_FDR} calibration scores, batches of "
          f"{BATCH}, ID fraction pi0, OOD ~ N(-2, 1)\n")
    print("| pi0 | q | FDR | power (OOD flagged) |")
    print("|---:|---:|---:|---:|")
    for r in fdr_rows:
        f, fse = r["fdr"]
        power = "-" if np.isnan(r["power"]) else f"{r['power']:.3f}"
        print(f"| {r['pi0']} | {r['q']} | {f:.4f} ± {fse:.4f} | {power} |")


def plot(accept_rows, fdr_rows, reps, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 5.2))
    colors = dict(zip(SIZES, plt.rcParams["axes.prop_cycle"].by_key()["color"]))
    for i, n in enumerate(SIZES):
        rows = [r for r in accept_rows if r["n"] == n]
        x = np.arange(len(rows)) + (i - 1.5) * 0.12
        for key, marker, fill, label in (("conformal", "o", colors[n], f"conformal, n={n}"),
                                         ("quantile", "s", "none", None)):
            mean = np.array([r[key][0] - r["tpr"] for r in rows])
            err = 3 * np.array([r[key][1] for r in rows])
            left.errorbar(x, mean, yerr=err, fmt=marker, color=colors[n], mfc=fill,
                          ms=5, capsize=2, label=label)
        left.plot(x, [r["exact"] - r["tpr"] for r in rows], "_", color="k", ms=9)
    left.plot([], [], "s", mfc="none", mec="grey", label="threshold_at_tpr (empirical quantile)")
    left.plot([], [], "_", color="k", ms=9, label="exact 1 - k/(n+1) - target")
    left.axhline(0.0, color="grey", lw=0.8)
    left.set_xticks(range(len(TARGETS)), [str(t) for t in TARGETS])
    left.set_xlabel("target tpr")
    left.set_ylabel("acceptance of new ID samples - target")
    left.set_title("Acceptance (>= 0: guarantee met)")
    left.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.15), ncol=2)

    for pi0, marker in zip(ID_FRACTIONS, "o^s"):
        rows = [r for r in fdr_rows if r["pi0"] == pi0]
        right.errorbar([r["q"] for r in rows], [r["fdr"][0] for r in rows],
                       yerr=[3 * r["fdr"][1] for r in rows], fmt=marker + "-", ms=5,
                       capsize=2, label=f"ID fraction {pi0}")
    right.plot([0, 0.32], [0, 0.32], color="grey", lw=0.8, label="FDR = q")
    right.set_xlabel("target FDR q")
    right.set_ylabel("empirical FDR")
    right.set_title(f"BH on conformal p-values (n={N_CAL_FDR}, batch {BATCH})")
    right.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.15), ncol=2)
    fig.suptitle(f"skood.conformal on synthetic scores (ID ~ N(0,1), OOD ~ N(-2,1)), "
                 f"{reps} repetitions; bars: 3 standard errors", fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("docs/figures/conformal_validity.png"))
    args = parser.parse_args(argv)
    rng = np.random.default_rng(args.seed)
    start = time.perf_counter()
    accept_rows = acceptance(rng, args.reps)
    fdr_rows = false_discoveries(rng, args.reps)
    seconds = time.perf_counter() - start
    print_tables(accept_rows, fdr_rows, args.reps, seconds)
    plot(accept_rows, fdr_rows, args.reps, args.out)
    print(f"\nfigure: {args.out}")


if __name__ == "__main__":
    main()
