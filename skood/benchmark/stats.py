"""The benchmark's statistics: one t-interval, one paired difference, and the
tables built from them, with the class split as the unit.

A run is one (class split, seed). Per split, a method's value is the mean over
the split's seeds (of the mean over a group's OOD sets); differences between
methods are taken split by split, and intervals are over splits: the splits
are the independent draws, the seeds of one split are not.
"""
import numpy as np
import pandas as pd

from .methods import (BASELINES, DETECTOR_OF, METHOD_SPECS, METRICS, SAME_DETECTOR,
                      SCORED_METHODS, START_METHOD, TRAIN_METHOD, scored_name)

__all__ = ["t_interval", "paired_difference", "summarize", "split_differences",
           "paired_differences", "accuracy_gaps", "finished"]


def finished(results):
    """The rows of the runs that finished: every function here uses only these.

    A run whose fit failed has rows with ``status="failed"`` and no metrics
    (:func:`run_benchmark`); leaving them out means a split is compared only on
    the methods that finished on it. A table without a ``status`` column (made
    before the column existed) is taken as all finished.
    """
    if "status" not in results:
        return results
    return results[results["status"] == "ok"]


def t_interval(values, confidence=0.95):
    """The mean of ``values`` and the Student-t interval of that mean.

    ``mean ± t_{(1+confidence)/2, n-1} * sd / sqrt(n)`` with ``sd`` the
    standard deviation with ``ddof=1`` over the ``n`` values.

    Parameters
    ----------
    values : array-like of float
    confidence : float, default=0.95

    Returns
    -------
    mean, low, high : float
        ``low`` and ``high`` are NaN for fewer than two values.

    Examples
    --------
    >>> mean, low, high = t_interval([1.0, 2.0, 3.0])
    >>> mean, round(low, 4), round(high, 4)
    (2.0, -0.4841, 4.4841)
    """
    from scipy.stats import t

    values = np.asarray(values, dtype=float)
    mean = float(values.mean())
    if len(values) < 2:
        return mean, float("nan"), float("nan")
    half = float(t.ppf(0.5 + confidence / 2, len(values) - 1)
                 * values.std(ddof=1) / np.sqrt(len(values)))
    return mean, mean - half, mean + half


def paired_difference(method, baseline, *, scale=100.0, confidence=0.95, higher_is_better=False):
    """``method`` minus ``baseline``, unit by unit, with its t-interval.

    Parameters
    ----------
    method, baseline : pandas.Series
        One value per unit (index: the unit, e.g. a seed or a class split);
        only the units in both are compared, in ``method``'s order.
    scale : float, default=100.0
        Multiplies the values (100: fractions to percentage points).
    confidence : float, default=0.95
        Level of the t-interval (:func:`t_interval`).
    higher_is_better : bool, default=False
        Whether a positive difference favours the method (AUROC) or a
        negative one (FPR95); sets ``n_better``.

    Returns
    -------
    dict
        ``n`` (units compared), ``mean_diff``, ``ci_low``, ``ci_high``,
        ``sd`` (of the differences, ``ddof=1``; NaN for one unit),
        ``n_better`` (units where the method is better), ``method_mean``,
        ``baseline_mean`` (scaled) and ``diffs`` (the scaled differences, a
        Series indexed by unit).

    Examples
    --------
    >>> import pandas as pd
    >>> d = paired_difference(pd.Series([0.2, 0.3]), pd.Series([0.4, 0.3]))
    >>> d["mean_diff"], d["n_better"]
    (-10.0, 1)
    """
    units = [u for u in method.index if u in baseline.index]
    mine, base = method.loc[units], baseline.loc[units]
    diffs = scale * (mine - base)
    mean, low, high = t_interval(diffs.to_numpy(), confidence)
    better = diffs > 0 if higher_is_better else diffs < 0
    return dict(n=len(units), mean_diff=mean, ci_low=low, ci_high=high,
                sd=float(diffs.std(ddof=1)) if len(units) > 1 else float("nan"),
                n_better=int(better.sum()), method_mean=scale * float(mine.mean()),
                baseline_mean=scale * float(base.mean()), diffs=diffs)


def groups(results):
    """The OOD-set groups present, near first; ``None`` for a table without a group column."""
    if "group" not in results:
        return [None]
    return [g for g in ("near", "far") if g in set(results["group"])]


def in_group(results, group):
    return results if group is None else results[results["group"] == group]


def _per_split(results, columns):
    """Mean of ``columns`` per (method, split) over the split's seeds (and rows)."""
    return results.groupby(["method", "split"], sort=False)[list(columns)].mean()


def summarize(results, group=None):
    """Mean and standard deviation over class splits, per method, of the OOD-set
    average of each metric, with ID accuracy and training time.

    Per split, a method's value is its mean over the split's seeds and over
    the OOD sets of ``group`` (``"near"`` or ``"far"``; None: all sets). The
    standard deviation is between splits, ``ddof=1`` (NaN for one split).

    Parameters
    ----------
    results : pandas.DataFrame
        One row per split, seed, method and OOD set, as :func:`run_benchmark` returns.
    group : {"near", "far"} or None, default=None

    Returns
    -------
    mean, std : pandas.DataFrame
        One row per method (in table order), columns the metrics, ``accuracy``
        and ``train_s`` (and ``score_s`` when ``results`` has it).

    Examples
    --------
    >>> import pandas as pd
    >>> rows = [dict(split=k, seed=0, method="greg", ood_set=o, fpr95=f, auroc=0.9,
    ...              aupr_in=0.9, aupr_out=0.9, accuracy=0.95, train_s=1.0)
    ...         for k, f in ((0, 0.1), (1, 0.3)) for o in ("a", "b")]
    >>> mean, std = summarize(pd.DataFrame(rows))
    >>> round(float(mean.loc["greg", "fpr95"]), 3), round(float(std.loc["greg", "fpr95"]), 4)
    (0.2, 0.1414)
    """
    timings = ["train_s"] + (["score_s"] if "score_s" in results else [])
    per_split = _per_split(in_group(finished(results), group), [*METRICS, "accuracy", *timings])
    order = [m for m in SCORED_METHODS if m in per_split.index.get_level_values(0)]
    grouped = per_split.groupby(level="method", sort=False)
    return grouped.mean().reindex(order), grouped.std(ddof=1).reindex(order)


def _split_classes(results):
    """split -> (known classes, held-out classes) as written in the results."""
    if "known_classes" not in results:
        return {}
    first = results.drop_duplicates("split").set_index("split")
    return {k: (first.loc[k, "known_classes"], first.loc[k, "heldout_classes"])
            for k in first.index}


def _compared(baseline, present):
    """(method, the baseline's scored method for it) for each method of ``present`` that
    ``baseline`` is compared with: every other method, and for :data:`SAME_DETECTOR`
    every method but CE with a detector other than the energy (CE-energy is a baseline of
    its own), against CE with that detector."""
    for method in [m for m in SCORED_METHODS if m in present and m != baseline]:
        if baseline != SAME_DETECTOR:
            if baseline in present:
                yield method, baseline
            continue
        detector = DETECTOR_OF.get(method)
        if TRAIN_METHOD[method] == START_METHOD or detector in (None, "energy"):
            continue
        reference = scored_name(START_METHOD, detector)
        if reference in present:
            yield method, reference


def split_differences(results, baselines=BASELINES, metrics=("fpr95", "auroc")):
    """Every method minus each baseline, class split by class split, per OOD-set group.

    Per (split, seed) a method's metric is averaged over the group's OOD sets;
    the baseline's (same split, seed, data and batch order) is subtracted, and
    the differences are averaged over the split's seeds.

    Parameters
    ----------
    results : pandas.DataFrame
        As :func:`run_benchmark` returns (columns ``split, seed, method, group``).
    baselines : tuple of str, default=BASELINES
        Scored methods, or :data:`~skood.benchmark.methods.SAME_DETECTOR`:
        each method against cross-entropy scored by the method's own detector
        (for the methods with a detector other than the energy, cross-entropy's
        own rows aside).
    metrics : tuple of str, default=("fpr95", "auroc")

    Returns
    -------
    pandas.DataFrame
        One row per (group, method, baseline, metric, split): ``group, method,
        baseline, metric, split, known_classes, heldout_classes, n_seeds,
        diff_points, method_points, baseline_points``, in percentage points
        (100 x the metrics' fractions). A negative FPR95 difference and a
        positive AUROC difference favour the method. Baselines that were not
        run are left out.

    Examples
    --------
    >>> import pandas as pd
    >>> rows = [dict(split=k, seed=0, method=m, ood_set="x", group="near", fpr95=f, auroc=0.9)
    ...         for k, m, f in ((0, "energy_oe", 0.30), (0, "greg", 0.20),
    ...                         (1, "energy_oe", 0.40), (1, "greg", 0.45))]
    >>> table = split_differences(pd.DataFrame(rows), baselines=("energy_oe",))
    >>> [round(d, 6) for d in table.query("metric == 'fpr95'")["diff_points"]]
    [-10.0, 5.0]
    """
    columns = ["group", "method", "baseline", "metric", "split", "known_classes",
               "heldout_classes", "n_seeds", "diff_points", "method_points", "baseline_points"]
    results = finished(results)
    classes = _split_classes(results)
    out = []
    for group in groups(results):
        frame = in_group(results, group)
        per_run = frame.groupby(["method", "split", "seed"], sort=False)[list(metrics)].mean()
        present = set(per_run.index.get_level_values(0))
        for baseline in baselines:
            for method, reference in _compared(baseline, present):
                mine, base = per_run.loc[method], per_run.loc[reference]
                runs = [r for r in mine.index if r in base.index]
                for metric in metrics:
                    diffs = 100.0 * (mine.loc[runs, metric] - base.loc[runs, metric])
                    by_split = pd.DataFrame({"diff": diffs,
                                             "mine": 100.0 * mine.loc[runs, metric],
                                             "base": 100.0 * base.loc[runs, metric]}
                                            ).groupby(level="split", sort=False)
                    means, counts = by_split.mean(), by_split.size()
                    for split in means.index:
                        known, heldout = classes.get(split, ("", ""))
                        out.append(dict(group=group if group is not None else "all",
                                        method=method, baseline=baseline, metric=metric,
                                        split=split, known_classes=known,
                                        heldout_classes=heldout, n_seeds=int(counts[split]),
                                        diff_points=float(means.loc[split, "diff"]),
                                        method_points=float(means.loc[split, "mine"]),
                                        baseline_points=float(means.loc[split, "base"])))
    return pd.DataFrame(out, columns=columns)


def paired_differences(results, baselines=BASELINES, metrics=("fpr95", "auroc"),
                       confidence=0.95, *, per_split=None):
    """Every method against each baseline over class splits, per OOD-set group.

    The per-split differences (:func:`split_differences`, each the mean over
    the split's seeds) are the units: their mean gets a t-interval over the
    splits (:func:`t_interval`; none with one split), with their
    between-split standard deviation and the number of splits on which the
    method is better (lower FPR95, higher AUROC).

    Parameters
    ----------
    results : pandas.DataFrame
        As :func:`run_benchmark` returns.
    baselines : tuple of str, default=BASELINES
        As in :func:`split_differences`.
    metrics : tuple of str, default=("fpr95", "auroc")
    confidence : float, default=0.95
        Level of the t-interval.
    per_split : pandas.DataFrame or None
        :func:`split_differences` of ``results`` with these baselines and
        metrics, when already computed.

    Returns
    -------
    pandas.DataFrame
        One row per (group, method, baseline, metric): ``group, method,
        baseline, metric, n_splits, n_seeds`` (seeds per split),
        ``mean_diff_points, ci_low_points, ci_high_points,
        sd_between_splits_points, n_better, method_mean_points,
        baseline_mean_points``, in percentage points.

    Examples
    --------
    >>> import pandas as pd
    >>> rows = [dict(split=k, seed=0, method=m, ood_set="x", group="near", fpr95=f, auroc=0.9)
    ...         for k, m, f in ((0, "energy_oe", 0.30), (0, "greg", 0.20),
    ...                         (1, "energy_oe", 0.40), (1, "greg", 0.20))]
    >>> row = paired_differences(pd.DataFrame(rows)).iloc[0]
    >>> row["method"], row["baseline"], float(row["mean_diff_points"]), int(row["n_better"])
    ('greg', 'energy_oe', -15.0, 2)
    >>> round(float(row["ci_low_points"]), 3), round(float(row["ci_high_points"]), 3)
    (-78.531, 48.531)
    """
    columns = ["group", "method", "baseline", "metric", "n_splits", "n_seeds",
               "mean_diff_points", "ci_low_points", "ci_high_points",
               "sd_between_splits_points", "n_better", "method_mean_points",
               "baseline_mean_points"]
    if per_split is None:
        per_split = split_differences(results, baselines, metrics)
    out = []
    keys = ["group", "method", "baseline", "metric"]
    for key, frame in per_split.groupby(keys, sort=False):
        table = frame.set_index("split")
        # per split, method_points - baseline_points is the split's diff_points
        d = paired_difference(table["method_points"], table["baseline_points"], scale=1.0,
                              confidence=confidence, higher_is_better=key[3] != "fpr95")
        out.append(dict(zip(keys, key), n_splits=d["n"], n_seeds=int(table["n_seeds"].min()),
                        mean_diff_points=d["mean_diff"], ci_low_points=d["ci_low"],
                        ci_high_points=d["ci_high"], sd_between_splits_points=d["sd"],
                        n_better=d["n_better"], method_mean_points=d["method_mean"],
                        baseline_mean_points=d["baseline_mean"]))
    return pd.DataFrame(out, columns=columns)


def accuracy_gaps(results, confidence=0.95):
    """ID accuracy of every outlier method minus that of CE, over class splits.

    The ID accuracy depends on the network only, not on the OOD set or the
    score, so each run (split, seed) and training method has one, whichever
    detector scored its rows. Per split the accuracies are averaged over the
    split's seeds, and the per-split differences get a t-interval over splits,
    as in :func:`paired_differences`.

    Parameters
    ----------
    results : pandas.DataFrame
        As :func:`run_benchmark` returns.
    confidence : float, default=0.95
        Level of the t-interval.

    Returns
    -------
    pandas.DataFrame
        One row per outlier training method run: ``method`` (its name),
        ``n_splits, n_seeds, mean_diff_points, ci_low_points, ci_high_points,
        sd_between_splits_points, n_better, method_mean_points,
        ce_mean_points``, in percentage points; below 0: the method
        classifies worse than CE. Empty when CE was not run.

    Examples
    --------
    >>> import pandas as pd
    >>> rows = [dict(split=k, seed=0, method=m, ood_set="x", accuracy=a)
    ...         for k, m, a in ((0, "ce_msp", 0.96), (0, "greg", 0.95),
    ...                         (1, "ce_msp", 0.97), (1, "greg_knn", 0.95))]
    >>> row = accuracy_gaps(pd.DataFrame(rows)).iloc[0]
    >>> row["method"], round(float(row["mean_diff_points"]), 2), int(row["n_splits"])
    ('greg', -1.5, 2)
    """
    columns = ["method", "n_splits", "n_seeds", "mean_diff_points", "ci_low_points",
               "ci_high_points", "sd_between_splits_points", "n_better", "method_mean_points",
               "ce_mean_points"]
    results = finished(results)
    trained = results.assign(method=results["method"].map(TRAIN_METHOD))
    if START_METHOD not in set(trained["method"]):
        return pd.DataFrame(columns=columns)
    per_run = trained.groupby(["method", "split", "seed"], sort=False)["accuracy"].first()
    per_split = per_run.groupby(level=["method", "split"], sort=False).mean()
    n_seeds = int(per_run.loc[START_METHOD].groupby(level="split").size().min())
    ce = per_split.loc[START_METHOD]
    out = []
    for method in [m for m, spec in METHOD_SPECS.items()
                   if spec.uses_outliers and m in per_split.index.get_level_values(0)]:
        d = paired_difference(per_split.loc[method], ce, confidence=confidence,
                              higher_is_better=True)
        out.append(dict(method=method, n_splits=d["n"], n_seeds=n_seeds,
                        mean_diff_points=d["mean_diff"], ci_low_points=d["ci_low"],
                        ci_high_points=d["ci_high"], sd_between_splits_points=d["sd"],
                        n_better=d["n_better"], method_mean_points=d["method_mean"],
                        ce_mean_points=d["baseline_mean"]))
    return pd.DataFrame(out, columns=columns)
