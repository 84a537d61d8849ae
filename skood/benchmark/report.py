"""The benchmark's report: markdown tables, summary sentences and the files of a run.

Nothing here computes statistics of its own: the tables and sentences are
made from the frames of :mod:`skood.benchmark.stats`, which callers may pass
in so that they are computed once.
"""
import os

import numpy as np
import pandas as pd

from .figures import write_figures, write_split_figure
from .methods import (BASELINES, CHOSEN, DETECTOR_OF, DETECTOR_ORDER, METHOD_LEGEND,
                      METHOD_SPECS, METHOD_WORDS, METHODS, METRICS, SAME_DETECTOR,
                      SCORED_METHODS, START_METHOD, TRAIN_METHOD, scored_name)
from .stats import (accuracy_gaps, finished, groups, in_group, paired_differences,
                    split_differences, summarize)

__all__ = ["detector_findings", "markdown_tables", "summary_sentences", "write_report"]


def _fmt(value):
    return f"{value:.2f}" if np.isfinite(value) else "n/a"


def _splits_words(row):
    n = int(row["n_splits"])
    return f"over {n} class split{'s' if n != 1 else ''}; better on {int(row['n_better'])} of {n}"


def _accuracy_sentences(gaps):
    lines = []
    for _, row in gaps.iterrows():
        who = METHOD_WORDS.get(row["method"], row["method"])
        mean, low, high = row["mean_diff_points"], row["ci_low_points"], row["ci_high_points"]
        where = (f"{who}'s ID accuracy is {row['method_mean_points']:.2f}% against CE's "
                 f"{row['ce_mean_points']:.2f}%")
        if row["n_splits"] < 2:
            lines.append(f"{where} (difference {_fmt(mean)} points, one class split: no "
                         "interval).")
        else:
            lines.append(f"{where}: difference {mean:+.2f} points (95% interval "
                         f"[{_fmt(low)}, {_fmt(high)}] {_splits_words(row)}).")
    return lines


def summary_sentences(paired, methods=("greg", "greg_plus", "energy_oe"), metric="fpr95", *,
                      baselines=("energy_oe", "ce_energy"), pairs=None):
    """One sentence per (group, method, baseline), from :func:`paired_differences`.

    Each says the mean difference over class splits, its 95% interval and on
    how many splits the method is better. A claim ("lowers" / "raises") only
    when the interval excludes 0; otherwise "no consistent difference"; with
    one split, no interval and no claim.

    Parameters
    ----------
    paired : pandas.DataFrame
        The output of :func:`paired_differences`.
    methods : tuple of str, default=("greg", "greg_plus", "energy_oe")
    metric : str, default="fpr95"
    baselines : tuple of str or None, default=("energy_oe", "ce_energy")
        The baselines whose rows get a sentence (None: every baseline of
        ``paired``).
    pairs : sequence of (method, baseline) or None, default=None
        The (method, baseline) rows to write, in this order within each group,
        instead of ``methods`` and ``baselines``.

    Returns
    -------
    list of str

    Examples
    --------
    >>> import pandas as pd
    >>> paired = pd.DataFrame([dict(group="near", method="greg", baseline="energy_oe",
    ...     metric="fpr95", n_splits=16, n_better=14, mean_diff_points=-4.0,
    ...     ci_low_points=-6.5, ci_high_points=-1.5)])
    >>> import textwrap
    >>> print(textwrap.fill(summary_sentences(paired)[0], 80))
    GReg lowers near-OOD FPR95 against energy-OE by 4.00 points (95% interval [1.50,
    6.50] over 16 class splits; better on 14 of 16).
    """
    label = {"fpr95": "FPR95", "auroc": "AUROC"}[metric]
    lines = []
    rows = paired[paired["metric"] == metric]
    if pairs is None:
        rows = rows[rows["method"].isin(methods)]
        if baselines is not None:
            rows = rows[rows["baseline"].isin(baselines)]
    else:
        rank = {pair: i for i, pair in enumerate(pairs)}
        keys = pd.Series(list(zip(rows["method"], rows["baseline"])), index=rows.index)
        rows = rows.assign(rank=keys.map(rank)).dropna(subset="rank")
        rows = rows.sort_values(["rank"], kind="stable").sort_values(
            "group", key=lambda g: g.map({"near": 0, "far": 1, "all": 2}), kind="stable")
    for _, row in rows.iterrows():
        who = METHOD_WORDS.get(row["method"], row["method"])
        base = METHOD_WORDS.get(row["baseline"], row["baseline"])
        if row["baseline"] == SAME_DETECTOR and row["method"] in DETECTOR_OF:
            base = METHOD_WORDS[scored_name(START_METHOD, DETECTOR_OF[row["method"]])]
        where = f"{row['group']}-OOD {label}" if row["group"] != "all" else label
        mean, low, high = row["mean_diff_points"], row["ci_low_points"], row["ci_high_points"]
        saturated = (metric == "fpr95" and row.get("baseline_mean_points", 1.0) == 0
                     and row.get("method_mean_points", 1.0) == 0)
        if saturated:
            lines.append(f"{who} against {base}, {where}: both at 0 on every class split "
                         "(saturated), so these sets cannot show a difference.")
        elif row["n_splits"] < 2:
            lines.append(f"{who} against {base}, {where}: one class split, so no interval and "
                         f"no claim (difference {_fmt(mean)} points).")
        elif high < 0:
            lines.append(f"{who} lowers {where} against {base} by {_fmt(-mean)} points (95% "
                         f"interval [{_fmt(-high)}, {_fmt(-low)}] {_splits_words(row)}).")
        elif low > 0:
            lines.append(f"{who} raises {where} against {base} by {_fmt(mean)} points (95% "
                         f"interval [{_fmt(low)}, {_fmt(high)}] {_splits_words(row)}).")
        else:
            lines.append(f"{who} against {base}, {where}: no consistent difference (mean "
                         f"{_fmt(mean)} points, 95% interval [{_fmt(low)}, {_fmt(high)}] "
                         f"{_splits_words(row)}).")
    return lines


def _questions(present):
    """(question, [(method, baseline), ...]) for the detector findings, among the scored
    methods ``present``: each question's comparisons, class split by class split."""
    outlier = [m for m in METHODS if METHOD_SPECS[m].uses_outliers]
    detectors = [d for d in DETECTOR_ORDER if any(DETECTOR_OF.get(m) == d for m in present)]
    features = [d for d in detectors if d not in ("msp", "energy", "maxlogit", "fused")]
    fused = [scored_name(m, "fused") for m in METHODS]
    return [
        ("Where training helps: each outlier method against cross-entropy with the same "
         "detector",
         [(scored_name(m, d), "ce_energy" if d == "energy" else SAME_DETECTOR)
          for d in detectors for m in outlier]),
        ("Where feature detectors help: each against the energy of the same network",
         [(scored_name(m, d), scored_name(m, "energy"))
          for m in (START_METHOD, "greg") for d in features]),
        ("Where fusion helps: the fused score against the energy of the same network and "
         "against cross-entropy with the chosen detector",
         [(f, b) for f in fused for b in (scored_name(f.rsplit("_", 1)[0], "energy"), CHOSEN)
          if b in BASELINES]),
        ("Choosing the detector on held-out classes (no OOD data)",
         [(CHOSEN, "ce_energy"), *[(m, CHOSEN) for m in outlier]]),
    ]


def detector_findings(paired, results, metric="fpr95"):
    """The report's findings on detectors, as (heading, sentences) pairs.

    Where training helps (each outlier method against cross-entropy with the same
    detector), where feature detectors help (a feature-space detector against the energy
    of the same network), where fusion helps (the fused score against the energy of the
    same network, where it is a baseline, and against CE with the chosen detector) and
    what choosing the detector on held-out classes gives, each a sentence of
    :func:`summary_sentences` (the class split as the unit); the last heading also
    says which detector the inner folds chose, split by split. Empty with one detector.

    Parameters
    ----------
    paired : pandas.DataFrame
        :func:`paired_differences` of ``results``.
    results : pandas.DataFrame
        As :func:`run_benchmark` returns.
    metric : str, default="fpr95"

    Returns
    -------
    list of (str, list of str)
    """
    done = finished(results)
    if "detector" not in done or done["detector"].nunique() < 2:
        return []
    found = []
    for heading, pairs in _questions(set(done["method"])):
        lines = summary_sentences(paired, metric=metric, pairs=pairs)
        if heading.startswith("Choosing"):
            lines = _choice_lines(done) + lines
        if lines:
            found.append((heading, lines))
    return found


def _choice_lines(done):
    chosen = done[done["method"] == CHOSEN].drop_duplicates(["split", "seed"])
    if not len(chosen):
        return []
    counts = chosen["detector"].value_counts()
    picks = ", ".join(f"{name} on {n}" for name, n in counts.items())
    return [f"The inner folds of held-out classes chose {picks} of {len(chosen)} runs (class "
            "split and seed); `ce_chosen` is cross-entropy scored by each run's choice."]


def _cell(mean, std, n, scale=100.0):
    if n < 2:
        return f"{scale * mean:.2f}"
    return f"{scale * mean:.2f} ± {scale * std:.2f}"


def _interval_cell(row):
    if not np.isfinite(row["ci_low_points"]):
        return f"{row['mean_diff_points']:+.2f} (one split: no interval)"
    return (f"{row['mean_diff_points']:+.2f} [{row['ci_low_points']:+.2f}, "
            f"{row['ci_high_points']:+.2f}]")


def _better_cell(row):
    return f"{int(row['n_better'])}/{int(row['n_splits'])}"


def _group_title(group, results):
    sets = sorted(set(in_group(results, group)["ood_set"]),
                  key=list(dict.fromkeys(results["ood_set"])).index)
    names = ", ".join(sets)
    if group is None:
        return f"Mean over all OOD sets ({names})"
    return f"**{group.capitalize()} OOD** (mean over {names})"


def _paired_lines(paired):
    lines = []
    for (baseline, group), frame in paired.groupby(["baseline", "group"], sort=False):
        lines += ["", f"Against {baseline}, {group} group:", "",
                  "| method | ΔFPR95 | better | SD between splits | ΔAUROC | better |",
                  "|---|---:|---:|---:|---:|---:|"]
        for method, rows in frame.groupby("method", sort=False):
            fpr = rows[rows["metric"] == "fpr95"].iloc[0]
            auroc = rows[rows["metric"] == "auroc"].iloc[0]
            lines.append(f"| {method} | {_interval_cell(fpr)} | {_better_cell(fpr)} | "
                         f"{_fmt(fpr['sd_between_splits_points'])} | {_interval_cell(auroc)} | "
                         f"{_better_cell(auroc)} |")
    return lines


def markdown_tables(results, *, paired=None, gaps=None):
    """Near- and far-group tables (mean over their sets; with the seconds each
    network trained and, when recorded, each detector's fit and scoring took),
    the paired differences against the baselines, the accuracy gaps, and one
    table per OOD set, as markdown. The class split is the unit: spreads and intervals are
    over splits, a split's value being the mean over its seeds.

    Parameters
    ----------
    results : pandas.DataFrame
        One row per split, seed, method and OOD set, as :func:`run_benchmark`
        returns (columns ``split, seed, method, ood_set, group`` and the
        metrics as fractions).
    paired, gaps : pandas.DataFrame or None
        :func:`paired_differences` and :func:`accuracy_gaps` of ``results``,
        when already computed (None: computed here).

    Returns
    -------
    str

    Examples
    --------
    >>> import pandas as pd
    >>> rows = [dict(split=k, seed=0, method=m, ood_set="x", group="near", fpr95=f,
    ...              auroc=0.9, aupr_in=0.9, aupr_out=0.9, accuracy=0.95, train_s=1.0)
    ...         for k, m, f in ((0, "energy_oe", 0.3), (0, "greg", 0.2),
    ...                         (1, "energy_oe", 0.4), (1, "greg", 0.2))]
    >>> print(markdown_tables(pd.DataFrame(rows)).splitlines()[7])
    | greg | 20.00 ± 0.00 | 90.00 ± 0.00 | 90.00 ± 0.00 | 90.00 ± 0.00 | 95.00 ± 0.00 | 1.0 |
    """
    results = finished(results)
    n_splits, n_seeds = results["split"].nunique(), results["seed"].nunique()
    spread = ("mean ± standard deviation between class splits (ddof=1)" if n_splits > 1
              else "the value (one class split: no spread)")
    lines = [f"{n_splits} class split(s) x {n_seeds} seed(s); a split's value is the mean over "
             f"its seeds; {spread}; metrics in %; ID is the positive class; FPR95 lower is "
             "better."]
    # score s: the detector's fit and scoring (ce_chosen: its whole choice), when recorded
    timed = "score_s" in results
    header = ["| method | FPR95 | AUROC | AUPR-In | AUPR-Out | ID accuracy | train s |"
              + (" score s |" if timed else ""), "|---|---:|---:|---:|---:|---:|---:|"
              + ("---:|" if timed else "")]
    # a method with failed runs is averaged over the splits it finished on: say how many
    counts = results.groupby("method")["split"].nunique()
    label = {m: m if k == n_splits else f"{m} ({k} of {n_splits} splits)"
             for m, k in counts.items()}
    for group in groups(results):
        mean, std = summarize(results, group)
        lines += ["", _group_title(group, results) + ":", "", *header]
        for method in mean.index:
            m, s = mean.loc[method], std.loc[method]
            cells = [_cell(m[k], s[k], counts[method]) for k in (*METRICS, "accuracy")]
            lines.append(f"| {label[method]} | " + " | ".join(cells)
                         + f" | {m['train_s']:.1f} |"
                         + (f" {m['score_s']:.2f} |" if timed else ""))
    if paired is None:
        paired = paired_differences(results)
    if len(paired):
        lines += ["", "Paired differences (method minus baseline, same split, seed, data and "
                      "batch order, averaged over the split's seeds; percentage points; mean "
                      "over class splits [95% t-interval over splits]; better: splits on which "
                      "the method is better; FPR95 below 0 and AUROC above 0 favour the "
                      "method):"]
        lines += _paired_lines(paired)
    else:
        lines += ["", f"No paired differences: none of {', '.join(BASELINES)} was run."]
    if gaps is None:
        gaps = accuracy_gaps(results) if "accuracy" in results else None
    if gaps is not None and len(gaps):
        lines += ["", "ID accuracy against CE (method minus ce, per class split; percentage "
                      "points; mean over splits [95% t-interval]; below 0: the method "
                      "classifies worse):",
                  "",
                  "| method | accuracy | ce accuracy | Δaccuracy | better | SD between splits |",
                  "|---|---:|---:|---:|---:|---:|"]
        for _, row in gaps.iterrows():
            lines.append(f"| {row['method']} | {row['method_mean_points']:.2f} | "
                         f"{row['ce_mean_points']:.2f} | {_interval_cell(row)} | "
                         f"{_better_cell(row)} | {_fmt(row['sd_between_splits_points'])} |")
    for ood_set, frame in results.groupby("ood_set", sort=False):
        per = frame.groupby(["method", "split"], sort=False)[list(METRICS)].mean()
        per = per.groupby(level="method", sort=False)
        m, s = per.mean(), per.std(ddof=1)
        group = f" ({frame['group'].iloc[0]})" if "group" in frame else ""
        lines += ["", f"OOD set **{ood_set}**{group}:", "",
                  "| method | FPR95 | AUROC | AUPR-In | AUPR-Out |", "|---|---:|---:|---:|---:|"]
        for method in [x for x in SCORED_METHODS if x in m.index]:
            cells = [_cell(m.loc[method, k], s.loc[method, k], counts[method])
                     for k in METRICS]
            lines.append(f"| {label[method]} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _splits_text(results):
    if "known_classes" not in results or not results["heldout_classes"].fillna("").any():
        return None
    per_split = results.drop_duplicates("split")[["split", "known_classes", "heldout_classes"]]
    return "\n".join(f"- split {r.split}: known {r.known_classes}, held out {r.heldout_classes}"
                      for r in per_split.itertuples())


def failed_runs(results):
    """One line per failed (split, seed, method) of ``results``: its scored methods and
    error, in run order (none without a ``status`` column)."""
    if "status" not in results:
        return []
    failed = results[results["status"] != "ok"]
    lines = []
    for (split, seed, error), rows in failed.groupby(["split", "seed", "error"], sort=False,
                                                     dropna=False):
        names = ", ".join(f"`{m}`" for m in dict.fromkeys(rows["method"]))
        lines.append(f"split {split}, seed {seed}: {names} failed: {error}")
    return lines


def write_report(results, scores, out, *, title="skood benchmark", command=None, skipped=None,
                 per_split=None, paired=None, gaps=None, tables=None, notes=None):
    """Write ``results.md``, the CSV files and the PNG figures into ``out``.

    ``results.csv`` has one row per (split, seed, method, OOD set),
    ``paired_splits.csv`` the output of :func:`split_differences` (one row per
    class split, method, baseline, group and metric), ``paired.csv`` that of
    :func:`paired_differences`. ``results.md`` has the summary in words (with
    :func:`detector_findings` when the run had several detectors), the class
    splits, the OOD sets skipped (``skipped``: dict name -> why), the
    legend of the method names, the runs that failed (rows with
    ``status="failed"``, left out of every table, statistic and figure), the
    tables and the figures:
    ``paired_splits.png`` (the per-split differences of GReg, sorted) and,
    from the first run, ``hist_<method>.png`` (score histograms, ID against
    each OOD set) and ``roc.png`` (ROC curves per OOD set, one line per method),
    for the methods :func:`~skood.benchmark.figures.drawn_methods` picks.

    Parameters
    ----------
    results : pandas.DataFrame
        As :func:`run_benchmark` returns.
    scores : dict
        The per-run scores :func:`run_benchmark` returns (figures use the first run).
    out : str
        Folder to write into (created if missing).
    title : str, default="skood benchmark"
    command : str or None
        The command line, written into the report.
    skipped : dict or None
        OOD set name -> why it is missing.
    per_split, paired, gaps : pandas.DataFrame or None
        :func:`split_differences`, :func:`paired_differences` and
        :func:`accuracy_gaps` of ``results``, when already computed (None:
        computed here).
    tables : str or None
        :func:`markdown_tables` of ``results``, when already made.
    notes : list of str or None
        Lines written after the skipped OOD sets, e.g. where ``n_train`` or
        ``n_test`` exceeded the rows available.

    Returns
    -------
    list of str
        The written paths.

    Raises
    ------
    ValueError
        When no run of ``results`` finished.

    Examples
    --------
    >>> import tempfile
    >>> from skood.benchmark import run_benchmark
    >>> results, scores, _ = run_benchmark("digits", epochs=1, methods=("ce",), progress=False,
    ...                                    detectors=("energy",), splits=1, n_train=100,
    ...                                    n_aux=100, n_ood=20)
    >>> paths = write_report(results, scores, tempfile.mkdtemp())
    >>> sorted(p.rsplit("/", 1)[-1] for p in paths)[:3]
    ['hist_ce_energy.png', 'paired.csv', 'paired_splits.csv']
    """
    os.makedirs(out, exist_ok=True)
    done = finished(results)
    if not len(done):
        raise ValueError("results has no finished run (every status is 'failed'): there is "
                         "nothing to report.")
    if per_split is None:
        per_split = split_differences(results)
    if paired is None:
        paired = paired_differences(results, per_split=per_split)
    if gaps is None:
        gaps = accuracy_gaps(results)
    if tables is None:
        tables = markdown_tables(results, paired=paired, gaps=gaps)
    written = []
    for name, frame in (("results.csv", results), ("paired.csv", paired),
                        ("paired_splits.csv", per_split)):
        path = os.path.join(out, name)
        frame.to_csv(path, index=False)
        written.append(path)
    split_figure = write_split_figure(per_split, out)
    figures = write_figures(scores, out) if scores else []
    md_path = os.path.join(out, "results.md")
    with open(md_path, "w") as f:
        f.write(f"# {title}\n\n")
        if command:
            f.write(f"Command: `{command}`\n\n")
        f.write("## Summary\n\n")
        sentences = summary_sentences(paired)
        for line in sentences or ["No comparison of GReg with a baseline: they were not run "
                                  "(or did not finish)."]:
            f.write(f"- {line}\n")
        for line in _accuracy_sentences(gaps):
            f.write(f"- {line}\n")
        f.write("\n")
        for heading, lines in detector_findings(paired, results):
            f.write(f"**{heading}.**\n\n" + "".join(f"- {line}\n" for line in lines) + "\n")
        failures = failed_runs(results)
        if failures:
            f.write(f"**Failed runs.** {len(failures)} run(s) failed; they are left out of "
                    "every table, statistic and figure: a method's means are over the class "
                    "splits it finished on, and a split is compared only on the methods that "
                    "finished on it.\n\n" + "".join(f"- {line}\n" for line in failures) + "\n")
        finetuned = (done[done["start"] != "scratch"] if "start" in done else done.iloc[:0])
        if len(finetuned):
            names = ", ".join(f"`{m}`" for m in dict.fromkeys(finetuned["method"].map(
                lambda m: TRAIN_METHOD.get(m, m))))
            start = finetuned["start"].iloc[0]
            epochs = "/".join(str(e) for e in sorted(set(finetuned["epochs"])))
            lrs = "/".join(f"{lr:g}" for lr in sorted(set(finetuned["lr"])))
            f.write(f"Fine-tuning protocol: each of {names} starts from the same run's "
                    f"`{start}` network and trains {epochs} epoch(s) at learning rate {lrs}; "
                    f"their `train s` is the fine-tuning time only (add `{start}`'s for the "
                    "total).\n\n")
        splits = _splits_text(results)
        if splits:
            f.write("Class splits (near OOD = test images of the held-out classes):\n\n"
                    f"{splits}\n\n")
        for name, why in (skipped or {}).items():
            f.write(f"OOD set {name} skipped: {why}.\n\n")
        for line in notes or []:
            f.write(f"{line}\n\n")
        f.write("Methods (same network, data, split, batch order and seed):\n\n")
        for method in [m for m in SCORED_METHODS if m in set(done["method"])]:
            f.write(f"- `{method}`: {METHOD_LEGEND[method]}\n")
        f.write("\n## Tables\n\n" + tables + "\n\n## Figures\n\n")
        if split_figure:
            f.write("![GReg minus each baseline, per class split, sorted]"
                    f"({os.path.basename(split_figure)})\n\n")
        if scores:
            split, seed = next(iter(scores))
            f.write(f"First run (split {split}, seed {seed}):\n\n")
        for path in figures:
            name = os.path.basename(path)
            what = ("ROC curves per OOD set" if name == "roc.png"
                    else f"score histograms, {name[5:-4]}")
            f.write(f"![{what}]({name})\n\n")
    written.append(md_path)
    written += ([split_figure] if split_figure else []) + figures
    return written
