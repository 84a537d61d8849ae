"""The benchmark's statistics: one t-interval, one paired difference, and the
tables of paired differences built from them."""
import numpy as np
import pandas as pd

from .methods import ACCURACY_REFERENCE, BASELINE, METRICS, OUTLIER_SCORED_METHODS, SCORED_METHODS

__all__ = ["t_interval", "paired_difference", "summarize", "paired_differences",
           "accuracy_gaps"]


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


def summarize(results, group=None):
    """Mean and standard deviation over seeds, per method, of the OOD-set average
    of each metric, with ID accuracy and training time.

    ``group`` (``"near"`` or ``"far"``) averages over that group's sets only;
    None over all sets. The standard deviation is over seeds with ``ddof=0``.

    Parameters
    ----------
    results : pandas.DataFrame
        One row per seed, method and OOD set, as :func:`run_benchmark` returns.
    group : {"near", "far"} or None, default=None

    Returns
    -------
    mean, std : pandas.DataFrame
        One row per method (in table order), columns the metrics, ``accuracy``
        and ``train_s``.

    Examples
    --------
    >>> import pandas as pd
    >>> rows = [dict(seed=s, method="greg", ood_set=o, fpr95=f, auroc=0.9, aupr_in=0.9,
    ...              aupr_out=0.9, accuracy=0.95, train_s=1.0)
    ...         for s, f in ((0, 0.1), (1, 0.3)) for o in ("a", "b")]
    >>> mean, std = summarize(pd.DataFrame(rows))
    >>> round(float(mean.loc["greg", "fpr95"]), 3), round(float(std.loc["greg", "fpr95"]), 3)
    (0.2, 0.1)
    """
    results = in_group(results, group)
    per_seed = results.groupby(["method", "seed"], sort=False)[
        [*METRICS, "accuracy", "train_s"]].mean()
    order = [m for m in SCORED_METHODS if m in per_seed.index.get_level_values(0)]
    grouped = per_seed.groupby(level="method", sort=False)
    mean = grouped.mean().reindex(order)
    std = grouped.std(ddof=0).reindex(order)
    return mean, std


def paired_differences(results, baseline=BASELINE, metrics=("fpr95", "auroc"),
                       confidence=0.95):
    """Every method minus ``baseline``, seed by seed, per OOD-set group.

    For each group (near, far) and seed, a method's metric is averaged over the
    group's sets, and the baseline's (same seed, data, split and batch order)
    is subtracted. The mean of those per-seed differences gets a t-interval
    (:func:`t_interval`) over the seeds; with one seed there is no interval (NaN).

    Parameters
    ----------
    results : pandas.DataFrame
        As :func:`run_benchmark` returns (with a ``group`` column).
    baseline : str, default="energy_oe"
        The method every other one is compared with.
    metrics : tuple of str, default=("fpr95", "auroc")
    confidence : float, default=0.95
        Level of the t-interval.

    Returns
    -------
    pandas.DataFrame
        One row per (group, method, metric): ``group, method, baseline, metric,
        n_seeds, mean_diff_points, ci_low_points, ci_high_points,
        method_mean_points, baseline_mean_points`` and one
        ``diff_points_seed<k>`` column per seed, in percentage points (100 x
        the metrics' fractions). A negative FPR95 difference and a positive
        AUROC difference favour the method. Empty when ``baseline`` was not run.

    Examples
    --------
    >>> import pandas as pd
    >>> rows = [dict(seed=s, method=m, ood_set="x", group="near", fpr95=f, auroc=0.9)
    ...         for s, m, f in ((0, "energy_oe", 0.30), (0, "greg", 0.20),
    ...                         (1, "energy_oe", 0.40), (1, "greg", 0.20))]
    >>> row = paired_differences(pd.DataFrame(rows)).iloc[0]
    >>> row["method"], row["metric"], float(row["mean_diff_points"])
    ('greg', 'fpr95', -15.0)
    >>> round(float(row["ci_low_points"]), 3), round(float(row["ci_high_points"]), 3)
    (-78.531, 48.531)
    """
    columns = ["group", "method", "baseline", "metric", "n_seeds", "mean_diff_points",
               "ci_low_points", "ci_high_points", "method_mean_points", "baseline_mean_points"]
    out = []
    if baseline not in set(results["method"]):
        return pd.DataFrame(columns=columns)
    for group in groups(results):
        frame = in_group(results, group)
        per_seed = frame.groupby(["method", "seed"], sort=False)[list(metrics)].mean()
        base = per_seed.loc[baseline]
        for method in [m for m in SCORED_METHODS
                       if m != baseline and m in per_seed.index.get_level_values(0)]:
            mine = per_seed.loc[method]
            for metric in metrics:
                d = paired_difference(mine[metric], base[metric], confidence=confidence,
                                      higher_is_better=metric != "fpr95")
                out.append(dict(group=group if group is not None else "all", method=method,
                                baseline=baseline, metric=metric, n_seeds=d["n"],
                                mean_diff_points=d["mean_diff"], ci_low_points=d["ci_low"],
                                ci_high_points=d["ci_high"],
                                method_mean_points=d["method_mean"],
                                baseline_mean_points=d["baseline_mean"],
                                **{f"diff_points_seed{s}": float(v)
                                   for s, v in d["diffs"].items()}))
    return pd.DataFrame(out) if out else pd.DataFrame(columns=columns)


def accuracy_gaps(results, confidence=0.95):
    """ID accuracy of every outlier method minus that of CE, seed by seed.

    The ID accuracy depends on the network only, not on the OOD set or the
    score, so each (seed, method) has one; CE's is that of ``ce_msp`` (the same
    network as ``ce_energy``). The mean of the per-seed differences gets a
    t-interval as in :func:`paired_differences`.

    Parameters
    ----------
    results : pandas.DataFrame
        As :func:`run_benchmark` returns.
    confidence : float, default=0.95
        Level of the t-interval.

    Returns
    -------
    pandas.DataFrame
        One row per outlier method run: ``method, n_seeds, mean_diff_points,
        ci_low_points, ci_high_points, method_mean_points, ce_mean_points`` and
        one ``diff_points_seed<k>`` column per seed, in percentage points;
        below 0: the method classifies worse than CE. Empty when CE was not run.

    Examples
    --------
    >>> import pandas as pd
    >>> rows = [dict(seed=s, method=m, ood_set="x", accuracy=a)
    ...         for s, m, a in ((0, "ce_msp", 0.96), (0, "greg", 0.95),
    ...                         (1, "ce_msp", 0.97), (1, "greg", 0.95))]
    >>> row = accuracy_gaps(pd.DataFrame(rows)).iloc[0]
    >>> row["method"], round(float(row["mean_diff_points"]), 2)
    ('greg', -1.5)
    """
    columns = ["method", "n_seeds", "mean_diff_points", "ci_low_points", "ci_high_points",
               "method_mean_points", "ce_mean_points"]
    if ACCURACY_REFERENCE not in set(results["method"]):
        return pd.DataFrame(columns=columns)
    per_seed = results.groupby(["method", "seed"], sort=False)["accuracy"].first()
    ce = per_seed.loc[ACCURACY_REFERENCE]
    out = []
    for method in [m for m in OUTLIER_SCORED_METHODS
                   if m in per_seed.index.get_level_values(0)]:
        d = paired_difference(per_seed.loc[method], ce, confidence=confidence,
                              higher_is_better=True)
        out.append(dict(method=method, n_seeds=d["n"], mean_diff_points=d["mean_diff"],
                        ci_low_points=d["ci_low"], ci_high_points=d["ci_high"],
                        method_mean_points=d["method_mean"], ce_mean_points=d["baseline_mean"],
                        **{f"diff_points_seed{s}": float(v) for s, v in d["diffs"].items()}))
    return pd.DataFrame(out) if out else pd.DataFrame(columns=columns)
