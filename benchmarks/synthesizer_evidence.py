"""Each outlier synthesizer against the photograph crops, for energy-OE and GReg.

Reads the ``results.csv`` of one ``skood benchmark`` run trained on the
photograph crops (``aux`` = ``photos``; it must hold ``ce_energy``,
``energy_oe`` and ``greg``) and of one run per synthesizer (``--aux
<synthesizer> --methods energy_oe greg``; the synthesizer's name is read from
the ``aux`` column). A ``results.csv`` without an ``aux`` column was written
before the benchmark recorded it, when every run used the photographs.

The unit is the class split, matched between runs by its known classes (the
``known_classes`` column, not the split index); only the splits present in
every run, with every method needed, are used, and the report says how many.
Per split, a method's value is the mean over the split's seeds of its mean
FPR95 over the OOD sets of a group (near or far), as in
:mod:`skood.benchmark.stats`. For each synthesizer, method (``energy_oe``,
``greg``) and group it computes, over class splits:

- the paired difference of the method trained on the synthesizer minus the
  same method trained on the photographs (percentage points of FPR95): mean,
  95% t-interval (:func:`skood.benchmark.stats.paired_difference`) and on how
  many splits the synthesizer is better (lower FPR95);
- the same against CE scored by energy (``ce_energy`` of the photographs run:
  CE uses no outliers, so it is the same baseline for every source);
- the mean FPR95 and ID accuracy of the method per source;

and, for comparison, the photographs' own line against CE-energy.

Writes into ``--out``: ``synthesizers.csv`` (one row per source, method, group
and baseline: ``source, method, group, baseline, mean_diff, low, high,
n_better, n_splits, mean_fpr95, baseline_fpr95, mean_accuracy``, in
percentage points; a negative ``mean_diff`` favours the source),
``synthesizers_splits.csv`` (the per-split values and differences behind it),
``synthesizers.md`` (the command, the tables and the sentences) and
``synthesizers.png`` (one point per class split, against the photographs;
left out with ``--no-figure``).

The inputs are made by::

    python -m skood benchmark --quiet --out docs/results/digits
    python -m skood benchmark --quiet --aux class-mix --methods energy_oe greg \\
        --out runs/digits-class-mix
    # ... one run per synthesizer: patch-shuffle, class-mix, rotation, blur-noise,
    # feature-shuffle (same dataset and settings as the photographs run)

and this script by::

    python benchmarks/synthesizer_evidence.py --photos docs/results/digits \\
        --runs runs/digits-* --out runs/evidence-digits
"""
import argparse
import os
import shlex
import sys

import numpy as np
import pandas as pd

from skood.benchmark.methods import METHOD_WORDS
from skood.benchmark.outlier_sources import PHOTOS
from skood.benchmark.report import summary_sentences
from skood.benchmark.stats import paired_difference

#: the outlier methods compared across sources
METHODS = ("energy_oe", "greg")
#: the baseline without outliers, taken from the photographs run
CE = "ce_energy"
GROUPS = ("near", "far")
REQUIRED = ("split", "seed", "method", "ood_set", "group", "known_classes", "fpr95", "accuracy")
#: training settings that must agree between the runs compared (where written)
SETTINGS = ("protocol", "epochs", "lr", "penalty_fraction", "pool_factor", "start")
#: how the report names the sources
SOURCE_WORDS = {PHOTOS: "photographs"}


def read_run(folder):
    """The results of one benchmark run and the name of its outlier source.

    Parameters
    ----------
    folder : str
        A folder ``skood benchmark`` wrote (with ``results.csv``).

    Returns
    -------
    source : str
        The run's single ``aux`` value (``"photos"`` where the column is missing).
    results : pandas.DataFrame

    Raises
    ------
    ValueError
        If ``results.csv`` is missing, lacks a column, holds more than one
        ``aux`` value, or gives one split index two sets of known classes
        (or one set of known classes two split indices).
    """
    path = os.path.join(folder, "results.csv")
    if not os.path.isfile(path):
        raise ValueError(f"{folder} has no results.csv: pass the folder a 'skood benchmark "
                         "--out' run wrote (a run still in progress has none yet).")
    results = pd.read_csv(path, dtype={"known_classes": str, "heldout_classes": str,
                                       "aux": str})
    missing = [c for c in REQUIRED if c not in results]
    if missing:
        raise ValueError(f"{path} lacks the column(s) {', '.join(missing)}: rerun the "
                         "benchmark with the current skood to write them.")
    if "aux" not in results:
        results = results.assign(aux=PHOTOS)
    sources = list(dict.fromkeys(results["aux"]))
    if len(sources) != 1:
        raise ValueError(f"{path} has {len(sources)} aux values ({', '.join(map(str, sources))});"
                         " pass one run per outlier source.")
    splits = results.groupby("split")["known_classes"].nunique()
    known = results.groupby("known_classes")["split"].nunique()
    if (splits > 1).any() or (known > 1).any():
        raise ValueError(f"{path} does not map split indices one to one to known classes, so "
                         "its class splits cannot be matched with another run's.")
    return sources[0], results


def _check_settings(runs):
    """Refuse runs whose OOD sets per group or training settings differ."""
    (first, reference), *others = runs.items()
    for source, results in others:
        for group in GROUPS:
            mine = set(results.loc[results["group"] == group, "ood_set"])
            theirs = set(reference.loc[reference["group"] == group, "ood_set"])
            if mine != theirs:
                raise ValueError(f"the {group} OOD sets of the {source} run "
                                 f"({', '.join(sorted(mine))}) differ from those of the "
                                 f"{first} run ({', '.join(sorted(theirs))}): compare runs "
                                 "of the same dataset.")
        for column in [c for c in SETTINGS if c in results and c in reference]:
            mine, theirs = set(results[column]), set(reference[column])
            if mine != theirs:
                raise ValueError(f"the {source} run has {column} {sorted(mine)} but the "
                                 f"{first} run has {sorted(theirs)}: compare runs made with "
                                 "the same settings.")


def load_sources(photos, runs):
    """Read the photographs run and the synthesizer runs, and check they can be compared.

    Parameters
    ----------
    photos : str
        Folder of a run with ``aux`` = ``photos`` that holds ``ce_energy``,
        ``energy_oe`` and ``greg``.
    runs : list of str
        Folders of runs with one synthesizer each, holding ``energy_oe`` and ``greg``.

    Returns
    -------
    dict
        source name -> results, the photographs first.

    Raises
    ------
    ValueError
        If a folder cannot be read (:func:`read_run`), the photographs run is
        not one, a source appears twice, a method is missing, or the runs'
        OOD sets or training settings differ.
    """
    if not runs:
        raise ValueError("runs is empty: pass at least one synthesizer run.")
    source, results = read_run(photos)
    if source != PHOTOS:
        raise ValueError(f"photos must be a run with aux={PHOTOS!r}; {photos} has aux="
                         f"{source!r} (pass it in runs instead).")
    out, folders = {PHOTOS: results}, {PHOTOS: photos}
    for folder in runs:
        source, results = read_run(folder)
        if source in out:
            raise ValueError(f"the source {source!r} appears twice ({folders[source]} and "
                             f"{folder}): pass one run per source.")
        out[source], folders[source] = results, folder
    for source, results in out.items():
        needed = (CE, *METHODS) if source == PHOTOS else METHODS
        lacking = [m for m in needed if m not in set(results["method"])]
        if lacking:
            raise ValueError(f"the {source} run ({folders[source]}) lacks the method(s) "
                             f"{', '.join(lacking)}; rerun it with --methods including them.")
    _check_settings(out)
    return out


def split_values(results, method, group, metric="fpr95"):
    """Per class split (index: known classes), the mean over its seeds of the
    method's mean ``metric`` over the group's OOD sets (``group`` None: all sets)."""
    frame = results[results["method"] == method]
    if group is not None:
        frame = frame[frame["group"] == group]
    per_seed = frame.groupby(["known_classes", "seed"], sort=False)[metric].mean()
    return per_seed.groupby(level="known_classes", sort=False).mean()


def common_splits(sources):
    """The known classes of the splits every source has, for every method and group,
    in the photographs run's order; ValueError if there are fewer than two."""
    have = {}
    for source, results in sources.items():
        needed = (CE, *METHODS) if source == PHOTOS else METHODS
        sets = [set(split_values(results, m, g).index) for m in needed for g in GROUPS]
        have[source] = set.intersection(*sets)
    order = list(dict.fromkeys(sources[PHOTOS]["known_classes"]))
    common = [k for k in order if all(k in splits for splits in have.values())]
    if len(common) < 2:
        counts = ", ".join(f"{s}: {len(k)}" for s, k in have.items())
        raise ValueError(f"the runs share {len(common)} class split(s) (by known classes; "
                         f"splits per run: {counts}); an interval needs at least 2: pass "
                         "runs of the same class splits (same --splits and dataset).")
    return common


def evidence(sources):
    """The paired differences of every source against the photographs and CE-energy.

    Parameters
    ----------
    sources : dict
        As :func:`load_sources` returns.

    Returns
    -------
    table : pandas.DataFrame
        One row per (group, source, method, baseline): ``source, method,
        group, baseline, mean_diff, low, high, n_better, n_splits,
        mean_fpr95, baseline_fpr95, mean_accuracy``, in percentage points
        (FPR95: below 0 favours the source). The photographs are compared
        with CE-energy only.
    per_split : pandas.DataFrame
        One row per (group, source, method, baseline, split): ``known_classes,
        fpr95, baseline_fpr95, diff`` in points.
    common : list of str
        The known classes of the splits used.
    """
    common = common_splits(sources)
    photos = sources[PHOTOS]
    rows, split_rows = [], []
    for group in GROUPS:
        ce = split_values(photos, CE, group).loc[common]
        for source, results in sources.items():
            for method in METHODS:
                mine = split_values(results, method, group).loc[common]
                accuracy = split_values(results, method, None, "accuracy").loc[common]
                baselines = {CE: ce}
                if source != PHOTOS:
                    baselines = {PHOTOS: split_values(photos, method, group).loc[common], CE: ce}
                for baseline, base in baselines.items():
                    d = paired_difference(mine, base)
                    rows.append(dict(source=source, method=method, group=group,
                                     baseline=baseline, mean_diff=d["mean_diff"],
                                     low=d["ci_low"], high=d["ci_high"],
                                     n_better=d["n_better"], n_splits=d["n"],
                                     mean_fpr95=d["method_mean"],
                                     baseline_fpr95=d["baseline_mean"],
                                     mean_accuracy=100.0 * float(accuracy.mean())))
                    split_rows += [dict(group=group, source=source, method=method,
                                        baseline=baseline, known_classes=k,
                                        fpr95=100.0 * mine[k], baseline_fpr95=100.0 * base[k],
                                        diff=d["diffs"][k]) for k in common]
    return pd.DataFrame(rows), pd.DataFrame(split_rows), common


def _name(source):
    return SOURCE_WORDS.get(source, source)


def _cell(row):
    if not np.isfinite(row["low"]):
        return f"{row['mean_diff']:+.2f} (no interval)"
    return f"{row['mean_diff']:+.2f} [{row['low']:+.2f}, {row['high']:+.2f}]"


def sentences(table, baseline):
    """One sentence per row of ``table`` against ``baseline``, worded by
    :func:`skood.benchmark.report.summary_sentences`."""
    rows = table[table["baseline"] == baseline]
    words = {CE: METHOD_WORDS[CE]}
    labels = [f"{METHOD_WORDS[m]} on {_name(s)}" for s, m in zip(rows["source"], rows["method"])]
    against = [words.get(baseline, f"{METHOD_WORDS[m]} on {_name(baseline)}")
               for m in rows["method"]]
    paired = pd.DataFrame(dict(group=rows["group"].to_numpy(), method=labels, baseline=against,
                               metric="fpr95", n_splits=rows["n_splits"].to_numpy(),
                               n_better=rows["n_better"].to_numpy(),
                               mean_diff_points=rows["mean_diff"].to_numpy(),
                               ci_low_points=rows["low"].to_numpy(),
                               ci_high_points=rows["high"].to_numpy(),
                               method_mean_points=rows["mean_fpr95"].to_numpy(),
                               baseline_mean_points=rows["baseline_fpr95"].to_numpy()))
    return summary_sentences(paired, methods=tuple(labels), baselines=None)


def markdown(table, sources, common, command=None):
    """The report: splits used, one table per group and the sentences."""
    photos = sources[PHOTOS]
    n_photos = photos["known_classes"].nunique()
    seeds = sorted({int(n) for results in sources.values()
                    for n in results[results["known_classes"].isin(common)]
                    .groupby("known_classes")["seed"].nunique()})
    lines = ["# Outlier synthesizers against the photograph crops", ""]
    if command:
        lines += [f"Command: `{command}`", ""]
    left_out = [k for k in dict.fromkeys(photos["known_classes"]) if k not in common]
    lines += [f"{len(common)} class splits, matched between runs by their known classes "
              f"({'/'.join(map(str, seeds))} seed(s) per split); "
              + (f"{len(left_out)} of the photographs run's {n_photos} splits are not in every "
                 f"run and are left out (known classes: {'; '.join(left_out)})."
                 if left_out else "every run has all of them."),
              "",
              "Per split, a method's value is the mean over the split's seeds of its mean "
              "FPR95 over the group's OOD sets. Differences are the source's minus the "
              "baseline's, split by split, in percentage points: mean over splits [95% "
              "t-interval over splits]; K/N: the splits on which the source has the lower "
              "FPR95 (below 0 favours the source). *vs photos* compares the same method "
              "trained on the photograph crops; *vs CE-energy* compares CE scored by energy "
              "from the photographs run (CE uses no outliers, so it is the same for every "
              "source). ID accuracy in %, mean over splits. Each interval is for its own "
              "comparison, not corrected for the many made here: read an interval that just "
              "excludes 0 with care.", "",
              "Runs: " + ", ".join(f"{_name(s)} ({results['known_classes'].nunique()} splits)"
                                   for s, results in sources.items()) + ".", ""]
    for group in GROUPS:
        sets = ", ".join(dict.fromkeys(photos.loc[photos["group"] == group, "ood_set"]))
        frame = table[table["group"] == group]
        lines += [f"## {group.capitalize()} OOD (mean over {sets})", "",
                  "| source | method | FPR95 | ID accuracy | vs photos | K/N | vs CE-energy | "
                  "K/N |", "|---|---|---:|---:|---:|---:|---:|---:|"]
        for (source, method), rows in frame.groupby(["source", "method"], sort=False):
            ce = rows[rows["baseline"] == CE].iloc[0]
            cells = ["—", "—"]
            if source != PHOTOS:
                p = rows[rows["baseline"] == PHOTOS].iloc[0]
                cells = [_cell(p), f"{int(p['n_better'])}/{int(p['n_splits'])}"]
            lines.append(f"| {_name(source)} | {METHOD_WORDS[method]} | {ce['mean_fpr95']:.2f} | "
                         f"{ce['mean_accuracy']:.2f} | {cells[0]} | {cells[1]} | {_cell(ce)} | "
                         f"{int(ce['n_better'])}/{int(ce['n_splits'])} |")
        lines += ["", "Against the photographs:", ""]
        lines += [f"- {s}" for s in sentences(frame, PHOTOS)]
        lines += ["", "Against CE-energy:", ""]
        lines += [f"- {s}" for s in sentences(frame, CE)]
        lines.append("")
    return "\n".join(lines)


def write_figure(per_split, table, path):
    """One point per class split: each synthesizer's FPR95 minus the photographs',
    per method (rows) and group (columns), with the mean and its 95% interval."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    against = per_split[per_split["baseline"] == PHOTOS]
    synthesizers = list(dict.fromkeys(against["source"]))
    fig, axes = plt.subplots(len(METHODS), len(GROUPS), sharey="col", squeeze=False,
                             figsize=(3.0 + 1.2 * len(synthesizers), 6.5))
    for i, method in enumerate(METHODS):
        for j, group in enumerate(GROUPS):
            ax = axes[i, j]
            ax.axhline(0.0, color="0.6", lw=0.8)
            for x, source in enumerate(synthesizers):
                mine = ((against["source"] == source) & (against["method"] == method)
                        & (against["group"] == group))
                diffs = against.loc[mine, "diff"].to_numpy()
                jitter = np.linspace(-0.15, 0.15, len(diffs)) if len(diffs) > 1 else [0.0]
                ax.plot(x + np.asarray(jitter), diffs, "o", ms=3.5, alpha=0.6, color=f"C{x}")
                row = table[(table["source"] == source) & (table["method"] == method)
                            & (table["group"] == group) & (table["baseline"] == PHOTOS)].iloc[0]
                error = [[row["mean_diff"] - row["low"]], [row["high"] - row["mean_diff"]]]
                ax.errorbar([x + 0.3], [row["mean_diff"]], yerr=error, fmt="s", color="k", ms=4)
            ax.set_xticks(range(len(synthesizers)), synthesizers, rotation=30, ha="right")
            ax.set_title(f"{METHOD_WORDS[method]}, {group} OOD")
            if j == 0:
                ax.set_ylabel("FPR95 minus photographs' (points)")
    fig.suptitle("Per class split; black: mean and 95% t-interval; below 0: synthesizer better")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", required=True,
                        help="folder of a benchmark run with aux=photos (ce_energy, energy_oe, "
                             "greg)")
    parser.add_argument("--runs", required=True, nargs="+",
                        help="folders of runs with one synthesizer each (energy_oe, greg)")
    parser.add_argument("--out", required=True, help="folder to write into (created if missing)")
    parser.add_argument("--no-figure", action="store_true", help="do not draw synthesizers.png")
    args = parser.parse_args(argv)
    try:
        sources = load_sources(args.photos, args.runs)
        table, per_split, common = evidence(sources)
    except ValueError as error:
        parser.error(str(error))
    command = "python " + shlex.join([os.path.relpath(__file__) if argv is None
                                      else "benchmarks/synthesizer_evidence.py",
                                      *(sys.argv[1:] if argv is None else argv)])
    os.makedirs(args.out, exist_ok=True)
    table.to_csv(os.path.join(args.out, "synthesizers.csv"), index=False)
    per_split.to_csv(os.path.join(args.out, "synthesizers_splits.csv"), index=False)
    text = markdown(table, sources, common, command)
    if not args.no_figure:
        write_figure(per_split, table, os.path.join(args.out, "synthesizers.png"))
        text += ("\n![Per class split, each synthesizer's FPR95 minus the photographs'; mean "
                 "and 95% interval in black](synthesizers.png)\n")
    with open(os.path.join(args.out, "synthesizers.md"), "w") as f:
        f.write(text)
    print(text)


if __name__ == "__main__":
    main()
