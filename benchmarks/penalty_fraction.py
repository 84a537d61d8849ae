"""Does computing GReg's penalty on a fraction of each step's rows change detection?

On every class split of the benchmark (``skood.benchmark``: ``--splits N``
splits drawn by its generator, held-out-class near OOD and the far sets),
trains GReg (or GReg+) once per ``penalty_fraction``, with the same data, seed
and batch order, plus energy-OE (``lambda_grad=0``) as the reference the
penalty is meant to improve on, and compares each with ``penalty_fraction=1``
split by split (the class split is the unit): the mean difference in FPR95 and
AUROC over the splits of the near and of the far group, with a 95% t-interval,
and the training time relative to the fraction-1 fit of the same split
(``benchmarks/step_cost.py`` gives the cleaner cost).

With ``--method greg_plus --pool-factors 6 4 3``, GReg+ is trained at every
(fraction, ``pool_factor``) pair, and every pair is compared with fraction 1 at
the paper's pool of 6: the cost of GReg+ beyond GReg is mostly the scoring of
its candidate pool, so a smaller pool is the other lever.

Writes ``results.csv`` (one row per class split, variant and OOD set),
``paired.csv``, ``report.md`` and ``penalty_fraction.png`` into ``--out``.

Run: python benchmarks/penalty_fraction.py [--dataset digits] [--model mlp]
     [--penalty fd] [--method greg] [--splits 10] [--seed 0]
     [--fractions 0.1 0.25 0.5 1.0] [--pool-factors 6] [--threads 1] [--out DIR]
"""
import argparse
import os
import shlex
import sys

import numpy as np
import pandas as pd

from skood import EnergySampler
# The benchmark's own paired difference, so that both reports compute intervals alike.
from skood.benchmark import DEFAULTS, paired_difference, run_benchmark

METRICS = ("fpr95", "auroc")


#: the ``variant`` of the reference rows (energy-OE, no penalty)
REFERENCE = "energy-OE"
#: the ``variant`` of GReg's rows (random outliers, whole-batch penalty), a second
#: reference when the method is GReg+: what the sampler adds at all
GREG_REFERENCE = "GReg"
REFERENCES = (REFERENCE, GREG_REFERENCE)
#: GReg+'s pool factor when none is given (EnergySampler's default, the paper's 6)
PAPER_POOL_FACTOR = EnergySampler().pool_factor


def variant_name(fraction, pool_factor=PAPER_POOL_FACTOR):
    """``"0.25"`` for a fraction at the paper's pool, ``"0.25, pool 3"`` otherwise."""
    name = f"{fraction:g}"
    return name if pool_factor == PAPER_POOL_FACTOR else f"{name}, pool {pool_factor}"


def _variant_order(name):
    """Sort key: the paper's pool first, then larger pools; fractions ascending."""
    fraction, _, pool = name.partition(", pool ")
    pool = int(pool or PAPER_POOL_FACTOR)
    return (pool != PAPER_POOL_FACTOR, -pool, float(fraction))


def run(dataset, model, penalty, method, n_splits, seed, fractions, threads, epochs=None,
        pool_factors=(PAPER_POOL_FACTOR,)):
    """One benchmark run over ``n_splits`` class splits per (fraction, pool factor),
    and one of energy-OE; the results of all, concatenated, with a ``variant``
    column (:func:`variant_name`, or one of ``REFERENCES``); for GReg+, GReg at
    fraction 1 too. Every variant trains on the same splits, data and seed.
    Returns the results and the benchmark's lines about OOD sets it skipped (a
    missing dataset), each once."""
    frames, skipped = [], {}
    runs = [(method, fraction, pool, variant_name(fraction, pool))
            for pool in pool_factors for fraction in fractions]
    runs.append(("energy_oe", 1.0, PAPER_POOL_FACTOR, REFERENCE))
    if method == "greg_plus":
        runs.append(("greg", 1.0, PAPER_POOL_FACTOR, GREG_REFERENCE))
    for run_method, fraction, pool_factor, variant in runs:
        results, _, _ = run_benchmark(
            # the benchmark's split generator: distinct splits, the same for every variant
            dataset, model=model, epochs=epochs, splits=n_splits, seeds=(seed,),
            methods=(run_method,),
            penalty=penalty, penalty_fraction=fraction, pool_factor=pool_factor,
            progress=False, n_threads=threads,
            log=lambda line: skipped.setdefault(line, None))
        results["variant"] = variant
        frames.append(results)
        print(f"{variant}: FPR95 near "
              f"{100 * results.loc[results.group == 'near', 'fpr95'].mean():.2f}, "
              f"train {results['train_s'].sum():.1f} s", flush=True)
    return pd.concat(frames, ignore_index=True), list(skipped)


def unit(results):
    """The column of the independent runs: ``split`` (a class split), or ``seed`` in a
    results file from before the benchmark drew class splits."""
    return "split" if "split" in results else "seed"


def paired(results, baseline="1", confidence=0.95):
    """Each variant minus ``baseline``, class split by class split, per OOD-set group,
    in points; and the per-split training-time ratio to the baseline's fit."""
    per_seed = (results.groupby(["group", "variant", unit(results)])[[*METRICS, "accuracy",
                                                                       "train_s"]]
                .mean())
    variants = sorted((v for v in set(results["variant"]) if v not in REFERENCES),
                      key=_variant_order)
    variants += [v for v in REFERENCES if v in set(results["variant"])]
    rows = []
    for group in ("near", "far"):
        if group not in per_seed.index.get_level_values(0):
            continue
        base = per_seed.loc[(group, baseline)]
        for variant in variants:
            mine = per_seed.loc[(group, variant)]
            seeds = [s for s in mine.index if s in base.index]
            row = dict(group=group, variant=variant, n_splits=len(seeds),
                       accuracy=100 * mine.loc[seeds, "accuracy"].mean(),
                       train_s=mine.loc[seeds, "train_s"].mean(),
                       time_ratio=float(np.median(mine.loc[seeds, "train_s"]
                                                  / base.loc[seeds, "train_s"])))
            for metric in METRICS:
                values = 100 * mine.loc[seeds, metric]
                d = paired_difference(mine[metric], base[metric], confidence=confidence,
                                      higher_is_better=metric == "auroc")
                row.update({f"{metric}_mean": values.mean(), f"{metric}_std": values.std(ddof=0),
                            f"{metric}_diff": d["mean_diff"], f"{metric}_low": d["ci_low"],
                            f"{metric}_high": d["ci_high"], f"{metric}_better": d["n_better"]})
            rows.append(row)
    return pd.DataFrame(rows)


#: how the reports name the baseline variant ``"1"``
BASELINE_TEXT = "fraction 1"


def _verdict(row, metric):
    low, high = row[f"{metric}_low"], row[f"{metric}_high"]
    if not np.isfinite(low):
        return "one split: no interval"
    if low <= 0 <= high:
        return "no consistent difference over the splits"
    better = high < 0 if metric == "fpr95" else low > 0
    return f"better than {BASELINE_TEXT}" if better else f"worse than {BASELINE_TEXT}"


def report(table, command, title, skipped=()):
    pools = any(", pool " in v for v in table.variant)
    baseline = "`penalty_fraction=1`" + (f" at `pool_factor={PAPER_POOL_FACTOR}`" if pools else "")
    column = "penalty_fraction" + (", pool_factor" if pools else "")
    lines = [f"# {title}", "", f"Command: `{command}`", "",
             "Per group: mean ± std over class splits of the group's mean over its OOD sets "
             f"(%), and the paired difference to {baseline} (points, mean and 95% "
             "t-interval over splits; FPR95 lower is better, AUROC higher; `better`: the "
             "splits on which the variant is better). `x time`: median "
             "over splits of the training time over that split's baseline fit. "
             f"`{REFERENCE}`: the same splits without the penalty (`lambda_grad=0`)."
             + (f" `{GREG_REFERENCE}`: the same splits with random outliers instead of the "
                "sampler (fraction 1)." if GREG_REFERENCE in set(table.variant) else ""), ""]
    # a far group without a missing dataset is not the same comparison: say so
    lines += [f"- {line}" for line in skipped] + ([""] if skipped else [])
    for group in ("near", "far"):
        part = table[table.group == group]
        if part.empty:
            continue
        lines += [f"**{group} OOD**", "",
                  f"| {column} | FPR95 | FPR95 diff [95% CI] | better | AUROC | "
                  "AUROC diff [95% CI] | better | ID acc. | train s | x time |",
                  "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for _, r in part.iterrows():
            cells = []
            for metric in METRICS:
                cells.append(f"{r[f'{metric}_mean']:.2f} ± {r[f'{metric}_std']:.2f}")
                cells.append("—" if r.variant == "1" else
                             f"{r[f'{metric}_diff']:+.2f} [{r[f'{metric}_low']:+.2f}, "
                             f"{r[f'{metric}_high']:+.2f}]")
                cells.append("—" if r.variant == "1" else
                             f"{int(r[f'{metric}_better'])}/{int(r.n_splits)}")
            lines.append(f"| {r.variant} | {' | '.join(cells)} | {r.accuracy:.2f} | "
                         f"{r.train_s:.2f} | {r.time_ratio:.2f} |")
        lines.append("")
        for _, r in part[part.variant != "1"].iterrows():
            name = r.variant if r.variant in REFERENCES else f"fraction {r.variant}"
            lines.append(f"- {group}, {name}: FPR95 "
                         f"{_verdict(r, 'fpr95')}; AUROC {_verdict(r, 'auroc')}.")
        lines.append("")
    return "\n".join(lines)


def figure(table, out, title):
    """Each variant's paired difference to fraction 1, one panel per metric.

    With fractions alone the x axis is the fraction (log scale); with pool
    factors it lists the variants in the report's order.
    """
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    variants = [v for v in dict.fromkeys(table.variant) if v != "1" and v not in REFERENCES]
    by_fraction = not any(", pool " in v for v in variants)
    positions = ({v: float(v) for v in variants} if by_fraction
                 else {v: i for i, v in enumerate(variants)})
    fig, axes = plt.subplots(1, 2, figsize=(9 if by_fraction else 10, 3.4))
    for ax, metric, name in zip(axes, METRICS, ("FPR95 (points)", "AUROC (points)")):
        for shift, (group, marker) in zip((-0.08, 0.08), (("near", "o"), ("far", "s"))):
            part = table[(table.group == group) & table.variant.isin(variants)]
            if part.empty:
                continue
            mean = part[f"{metric}_diff"].to_numpy()
            err = np.vstack([mean - part[f"{metric}_low"], part[f"{metric}_high"] - mean])
            x = np.array([positions[v] for v in part.variant])
            line = ax.errorbar(x if by_fraction else x + shift, mean, yerr=err, marker=marker,
                               capsize=3, label=f"{group} OOD",
                               ls="-" if by_fraction else "none")
            for reference_name, style in ((REFERENCE, ":"), (GREG_REFERENCE, "--")):
                reference = table[(table.group == group) & (table.variant == reference_name)]
                if not reference.empty:
                    # energy-OE's difference: what the whole penalty buys, for
                    # scale; GReg's: what the sampler buys
                    ax.axhline(float(reference[f"{metric}_diff"].iloc[0]), ls=style,
                               color=line[0].get_color(), label=f"{group}: {reference_name}")
        ax.axhline(0, color="grey", lw=0.8)
        if by_fraction:
            ax.set_xscale("log")
            ticks = sorted(positions.values())
            ax.set_xticks(ticks, [f"{t:g}" for t in ticks])
            ax.set_xlabel("penalty_fraction")
        else:
            ax.set_xticks(list(positions.values()), list(positions), rotation=20, fontsize=8)
            ax.set_xlabel("penalty_fraction, pool_factor (6 unless named)")
        ax.set_ylabel(f"{name}, minus fraction 1")
        ax.legend(fontsize=8)
    fig.suptitle(title + " (mean and 95% interval over class splits)", fontsize=9)
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
    parser.add_argument("--splits", type=int, default=10,
                        help="class splits drawn by the benchmark's generator (default: 10)")
    parser.add_argument("--seed", type=int, default=0,
                        help="the seed of every split's run (default: 0)")
    parser.add_argument("--fractions", type=float, nargs="+", default=[0.1, 0.25, 0.5, 1.0])
    parser.add_argument("--pool-factors", type=int, nargs="+", default=[PAPER_POOL_FACTOR],
                        help="GReg+'s pool_factor values, each with every fraction "
                             f"(default: {PAPER_POOL_FACTOR})")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default="penalty-fraction-results")
    args = parser.parse_args(argv)
    fractions = sorted(set(args.fractions) | {1.0})
    pool_factors = sorted(set(args.pool_factors) | {PAPER_POOL_FACTOR}, reverse=True)
    if pool_factors != [PAPER_POOL_FACTOR] and args.method != "greg_plus":
        parser.error("--pool-factors is GReg+'s setting: add --method greg_plus")
    command = "python benchmarks/penalty_fraction.py " + " ".join(
        shlex.quote(a) for a in (sys.argv[1:] if argv is None else argv))
    if args.splits < 2:
        parser.error("--splits must be at least 2 (the interval is over class splits)")
    results, skipped = run(args.dataset, args.model, args.penalty, args.method, args.splits,
                           args.seed, fractions, args.threads, epochs=args.epochs,
                           pool_factors=pool_factors)
    table = paired(results)
    os.makedirs(args.out, exist_ok=True)
    model = args.model or DEFAULTS[args.dataset]["model"]
    title = (f"penalty_fraction: {args.method}, penalty={args.penalty}, {args.dataset} "
             f"({model}), {args.splits} class splits")
    results.to_csv(os.path.join(args.out, "results.csv"), index=False)
    table.to_csv(os.path.join(args.out, "paired.csv"), index=False)
    text = report(table, command, title, skipped)
    with open(os.path.join(args.out, "report.md"), "w") as f:
        f.write(text + "\n")
    figure(table, os.path.join(args.out, "penalty_fraction.png"), title)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
