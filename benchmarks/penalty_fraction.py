"""Does computing GReg's penalty on a fraction of each step's rows change detection?

For every seed, trains GReg (or GReg+) once per ``penalty_fraction`` on the
benchmark's data (``skood.benchmark``: held-out-class near OOD and the far
sets), with the same seed, data, class split and batch order, plus energy-OE
(``lambda_grad=0``) as the reference the penalty is meant to improve on, and
compares each with ``penalty_fraction=1`` seed by seed: the mean difference in
FPR95 and AUROC over the seeds of the near and of the far group, with a 95%
t-interval, and the training time relative to the fraction-1 fit of the same
seed (the fits of one seed run back to back, so a slow spell of a shared
machine hits them alike; ``benchmarks/step_cost.py`` gives the cleaner cost).

Writes ``results.csv`` (one row per seed, fraction and OOD set),
``paired.csv``, ``report.md`` and ``penalty_fraction.png`` into ``--out``.

Run: python benchmarks/penalty_fraction.py [--dataset digits] [--model mlp]
     [--penalty fd] [--method greg] [--seeds 0 1 ... 9]
     [--fractions 0.1 0.25 0.5 1.0] [--threads 1] [--out DIR]
"""
import argparse
import os
import shlex
import sys

import numpy as np
import pandas as pd

from skood.benchmark import DEFAULTS, run_benchmark
# The benchmark's own t-interval, so that both reports compute intervals alike.
from skood.benchmark import _t_interval

METRICS = ("fpr95", "auroc")


#: the ``variant`` of the reference rows (energy-OE, no penalty)
REFERENCE = "energy-OE"


def run(dataset, model, penalty, method, seeds, fractions, threads, epochs=None):
    """One benchmark run per (seed, fraction), and one of energy-OE per seed; the
    results of all, concatenated, with a ``variant`` column (the fraction, or
    ``REFERENCE``)."""
    frames = []
    for seed in seeds:
        for fraction in [*fractions, REFERENCE]:
            reference = fraction == REFERENCE
            results, _, _ = run_benchmark(
                dataset, model=model, epochs=epochs, seeds=(seed,),
                methods=("energy_oe",) if reference else (method,), penalty=penalty,
                penalty_fraction=1.0 if reference else fraction, progress=False,
                n_threads=threads)
            results["variant"] = REFERENCE if reference else f"{fraction:g}"
            frames.append(results)
            print(f"seed {seed}, {results['variant'].iloc[0]}: "
                  f"FPR95 near {100 * results.loc[results.group == 'near', 'fpr95'].mean():.2f}, "
                  f"train {results['train_s'].iloc[0]:.1f} s", flush=True)
    return pd.concat(frames, ignore_index=True)


def paired(results, baseline="1", confidence=0.95):
    """Each variant minus ``baseline``, seed by seed, per OOD-set group, in points;
    and the per-seed training-time ratio to the baseline's fit."""
    per_seed = (results.groupby(["group", "variant", "seed"])[[*METRICS, "accuracy",
                                                                "train_s"]]
                .mean())
    variants = sorted((v for v in set(results["variant"]) if v != REFERENCE), key=float)
    variants += [REFERENCE] if REFERENCE in set(results["variant"]) else []
    rows = []
    for group in ("near", "far"):
        if group not in per_seed.index.get_level_values(0):
            continue
        base = per_seed.loc[(group, baseline)]
        for variant in variants:
            mine = per_seed.loc[(group, variant)]
            seeds = [s for s in mine.index if s in base.index]
            row = dict(group=group, variant=variant, n_seeds=len(seeds),
                       accuracy=100 * mine.loc[seeds, "accuracy"].mean(),
                       train_s=mine.loc[seeds, "train_s"].mean(),
                       time_ratio=float(np.median(mine.loc[seeds, "train_s"]
                                                  / base.loc[seeds, "train_s"])))
            for metric in METRICS:
                values = 100 * mine.loc[seeds, metric]
                diffs = values - 100 * base.loc[seeds, metric]
                mean, low, high = _t_interval(diffs.to_numpy(), confidence)
                row.update({f"{metric}_mean": values.mean(), f"{metric}_std": values.std(ddof=0),
                            f"{metric}_diff": mean, f"{metric}_low": low,
                            f"{metric}_high": high})
            rows.append(row)
    return pd.DataFrame(rows)


def _verdict(row, metric):
    low, high = row[f"{metric}_low"], row[f"{metric}_high"]
    if not np.isfinite(low):
        return "one seed: no interval"
    if low <= 0 <= high:
        return "no difference beyond the seed spread"
    better = high < 0 if metric == "fpr95" else low > 0
    return "better than fraction 1" if better else "worse than fraction 1"


def report(table, command, title):
    lines = [f"# {title}", "", f"Command: `{command}`", "",
             "Per group: mean ± std over seeds of the group's mean over its OOD sets (%), "
             "and the paired difference to `penalty_fraction=1` (points, mean and 95% "
             "t-interval over seeds; FPR95 lower is better, AUROC higher). `x time`: median "
             "over seeds of the training time over that seed's fraction-1 fit. "
             f"`{REFERENCE}`: the same seeds without the penalty (`lambda_grad=0`).", ""]
    for group in ("near", "far"):
        part = table[table.group == group]
        if part.empty:
            continue
        lines += [f"**{group} OOD**", "",
                  "| penalty_fraction | FPR95 | FPR95 diff [95% CI] | AUROC | "
                  "AUROC diff [95% CI] | ID acc. | train s | x time |",
                  "|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for _, r in part.iterrows():
            cells = []
            for metric in METRICS:
                cells.append(f"{r[f'{metric}_mean']:.2f} ± {r[f'{metric}_std']:.2f}")
                cells.append("—" if r.variant == "1" else
                             f"{r[f'{metric}_diff']:+.2f} [{r[f'{metric}_low']:+.2f}, "
                             f"{r[f'{metric}_high']:+.2f}]")
            lines.append(f"| {r.variant} | {' | '.join(cells)} | {r.accuracy:.2f} | "
                         f"{r.train_s:.2f} | {r.time_ratio:.2f} |")
        lines.append("")
        for _, r in part[part.variant != "1"].iterrows():
            name = r.variant if r.variant == REFERENCE else f"fraction {r.variant}"
            lines.append(f"- {group}, {name}: FPR95 "
                         f"{_verdict(r, 'fpr95')}; AUROC {_verdict(r, 'auroc')}.")
        lines.append("")
    return "\n".join(lines)


def figure(table, out, title):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4))
    for ax, metric, name in zip(axes, METRICS, ("FPR95 (points)", "AUROC (points)")):
        for group, marker in (("near", "o"), ("far", "s")):
            part = table[(table.group == group) & (table.variant != "1")
                         & (table.variant != REFERENCE)]
            if part.empty:
                continue
            mean = part[f"{metric}_diff"].to_numpy()
            err = np.vstack([mean - part[f"{metric}_low"], part[f"{metric}_high"] - mean])
            line = ax.errorbar(part.variant.astype(float), mean, yerr=err, marker=marker,
                               capsize=3, label=f"{group} OOD")
            reference = table[(table.group == group) & (table.variant == REFERENCE)]
            if not reference.empty:
                # energy-OE's difference: what the whole penalty buys, for scale
                ax.axhline(float(reference[f"{metric}_diff"].iloc[0]), ls=":",
                           color=line[0].get_color(), label=f"{group}: {REFERENCE}")
        ax.axhline(0, color="grey", lw=0.8)
        ax.set_xscale("log")
        ticks = sorted(float(v) for v in table.variant.unique() if v != REFERENCE)
        ax.set_xticks(ticks, [f"{t:g}" for t in ticks])
        ax.set_xlabel("penalty_fraction")
        ax.set_ylabel(f"{name}, minus fraction 1")
        ax.legend(fontsize=8)
    fig.suptitle(title + " (mean and 95% interval over seeds)", fontsize=9)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", choices=sorted(DEFAULTS), default="digits")
    parser.add_argument("--model", choices=["mlp", "cnn", "resnet18"],
                        help="default: the dataset's benchmark model")
    parser.add_argument("--epochs", type=int, help="default: the dataset's benchmark setting")
    parser.add_argument("--penalty", choices=["exact", "fd"], default="fd")
    parser.add_argument("--method", choices=["greg", "greg_plus"], default="greg")
    parser.add_argument("--seeds", type=int, nargs="+", default=list(range(10)))
    parser.add_argument("--fractions", type=float, nargs="+", default=[0.1, 0.25, 0.5, 1.0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default="penalty-fraction-results")
    args = parser.parse_args(argv)
    fractions = sorted(set(args.fractions) | {1.0})
    command = "python benchmarks/penalty_fraction.py " + " ".join(
        shlex.quote(a) for a in (sys.argv[1:] if argv is None else argv))
    results = run(args.dataset, args.model, args.penalty, args.method, args.seeds, fractions,
                  args.threads, epochs=args.epochs)
    table = paired(results)
    os.makedirs(args.out, exist_ok=True)
    model = args.model or DEFAULTS[args.dataset]["model"]
    title = (f"penalty_fraction: {args.method}, penalty={args.penalty}, {args.dataset} "
             f"({model}), {len(args.seeds)} seeds")
    results.to_csv(os.path.join(args.out, "results.csv"), index=False)
    table.to_csv(os.path.join(args.out, "paired.csv"), index=False)
    text = report(table, command, title)
    with open(os.path.join(args.out, "report.md"), "w") as f:
        f.write(text + "\n")
    figure(table, os.path.join(args.out, "penalty_fraction.png"), title)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
