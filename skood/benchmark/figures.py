"""The benchmark's figures; the only module of :mod:`skood.benchmark` that imports matplotlib."""
import os

import numpy as np

from ..metrics import fpr_at_tpr, threshold_at_tpr
from .methods import BASELINES, DETECTOR_OF, START_METHOD, TRAIN_METHOD

__all__ = ["write_figures", "write_split_figure", "histogram_figure", "roc_figure",
           "drawn_methods"]


def _fpr95(sets, name):
    y_true = np.r_[np.ones(len(sets["id"])), np.zeros(len(sets[name]))]
    return fpr_at_tpr(y_true, np.r_[sets["id"], sets[name]])


def run_label(scores):
    """The words naming the run that :func:`write_figures` draws: the first of ``scores``
    (split and seed), and how many class splits the benchmark ran in all."""
    split, seed = next(iter(scores))
    n_splits = len({key[0] for key in scores})
    if len(scores) == 1:
        return f"class split {split}, seed {seed} (the only run)"
    return (f"class split {split}, seed {seed}: the first of {len(scores)} runs "
            f"({n_splits} class splits); paired_splits.png has every split")


def histogram_figure(sets, method, where):
    """Score histograms of one method: in-distribution against each OOD set, one panel each.

    The two histograms of a panel share their bins; their heights are the fraction of each
    set per bin on a log scale, so that a set piled into a few bins (typical of far OOD)
    does not flatten the other. The dashed line is the threshold that accepts 95% of the ID
    scores (FPR95's operating point); a panel's title gives its FPR95, and says
    "separated" when the two sets do not overlap at that threshold (FPR95 0).

    Parameters
    ----------
    sets : dict
        ``"id"`` and one entry per OOD set: score arrays (higher = more in-distribution).
    method : str
        The scored method's name, for the title.
    where : str
        Which run the scores are from (e.g. :func:`run_label`), for the title.

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib.pyplot as plt

    ood_names = [name for name in sets if name != "id"]
    fig, axes = plt.subplots(1, len(ood_names), figsize=(4 * len(ood_names), 3.6),
                             squeeze=False)
    threshold = threshold_at_tpr(sets["id"])
    for ax, name in zip(axes[0], ood_names):
        both = np.r_[sets["id"], sets[name]]
        bins = np.linspace(both.min(), both.max(), 50)
        for label, values in (("in-distribution", sets["id"]), (name, sets[name])):
            ax.hist(values, bins=bins, alpha=0.55, weights=np.full(len(values), 1 / len(values)),
                    label=f"{label} ({len(values)})")
        ax.set_yscale("log")
        ax.axvline(threshold, color="k", lw=0.8, ls="--", label="accepts 95% of ID")
        fpr = _fpr95(sets, name)
        state = "separated, FPR95 0%" if fpr == 0 else f"FPR95 {100 * fpr:.1f}%"
        ax.set_title(f"ID vs {name}: {state}", fontsize=9)
        ax.set_xlabel("score (higher = more in-distribution)", fontsize=8)
        ax.set_ylabel("fraction of the set per bin (log)", fontsize=8)
        ax.legend(fontsize=7)
    fig.suptitle(f"{method}, {where}", fontsize=9)
    fig.tight_layout()
    return fig


def roc_figure(per_method, where):
    """ROC curves of every method, one panel per OOD set.

    A panel where every method has FPR95 0 is saturated (the set cannot tell the methods
    apart): its title says so and its background is grey. The legend gives each method's
    FPR95 on the set.

    Parameters
    ----------
    per_method : dict
        Scored method -> ``sets`` as in :func:`histogram_figure`.
    where : str
        Which run the scores are from, for the title.

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib.pyplot as plt
    from sklearn.metrics import roc_curve

    ood_names = [name for name in next(iter(per_method.values())) if name != "id"]
    fig, axes = plt.subplots(1, len(ood_names), figsize=(4 * len(ood_names), 3.8),
                             squeeze=False)
    for ax, name in zip(axes[0], ood_names):
        fprs = {}
        for method, sets in per_method.items():
            y_true = np.r_[np.ones(len(sets["id"])), np.zeros(len(sets[name]))]
            fpr, tpr, _ = roc_curve(y_true, np.r_[sets["id"], sets[name]])
            fprs[method] = _fpr95(sets, name)
            ax.plot(fpr, tpr, label=f"{method} (FPR95 {100 * fprs[method]:.1f}%)")
        ax.axhline(0.95, color="grey", lw=0.5, ls="--")
        if all(value == 0 for value in fprs.values()):
            ax.set_facecolor("0.92")
            ax.set_title(f"ID vs {name}: saturated, every method at FPR95 0", fontsize=9)
        else:
            ax.set_title(f"ROC, ID vs {name}", fontsize=9)
        ax.set_xlabel("FPR (OOD accepted)", fontsize=8)
        ax.set_ylabel("TPR (ID accepted)", fontsize=8)
        ax.legend(fontsize=7, loc="lower right")
    fig.suptitle(f"ROC curves, {where}", fontsize=9)
    fig.tight_layout()
    return fig


def drawn_methods(names):
    """The scored methods of ``names`` that the figures draw: (histograms, ROC curves).

    Histograms: the rows scored by the energy or MSP (every training method's energy row
    and MSP row), or, when neither was run, by the first detector of ``names``. ROC curves:
    those, and cross-entropy with every detector. Each histogram is a figure of its own
    and costs about a second to draw, so a run with many detectors does not draw all.

    Parameters
    ----------
    names : sequence of str
        Scored methods (the keys of a run's scores), in table order.

    Returns
    -------
    histograms, roc : list of str
        In the order of ``names``.

    Examples
    --------
    >>> from skood.benchmark.figures import drawn_methods
    >>> drawn_methods(["ce_energy", "ce_vim", "greg", "greg_vim"])
    (['ce_energy', 'greg'], ['ce_energy', 'ce_vim', 'greg'])
    """
    detector = {name: DETECTOR_OF.get(name, name) for name in names}
    drawn = [d for d in ("msp", "energy") if d in detector.values()]
    drawn = drawn or [next(iter(detector.values()), None)]
    histograms = [name for name in names if detector[name] in drawn]
    roc = [name for name in names
           if name in histograms or TRAIN_METHOD.get(name) == START_METHOD]
    return histograms, roc


def write_figures(scores, out):
    """Score histograms per method (``hist_<method>.png``) and ROC curves per OOD set
    (``roc.png``), of the methods :func:`drawn_methods` picks, for the first run in
    ``scores`` (the first split and seed, in run order), as PNG files in ``out``; returns
    their paths.

    Each figure's title names the run it shows and how many runs there were: one split's
    scores, not a pool over splits (each split trains its own models, whose scores are
    not on a common scale). The figures are drawn by :func:`histogram_figure` and
    :func:`roc_figure`.

    Parameters
    ----------
    scores : dict
        ``scores[(split, seed)][method]`` = ``{"id": ..., <OOD set>: ...}``, as
        :func:`skood.benchmark.run_benchmark` returns.
    out : str
        Folder to write into.

    Returns
    -------
    list of str
    """
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    per_method = scores[next(iter(scores))]
    where = run_label(scores)
    histograms, roc = drawn_methods(list(per_method))
    paths = []
    for method in histograms:
        fig = histogram_figure(per_method[method], method, where)
        paths.append(os.path.join(out, f"hist_{method}.png"))
        fig.savefig(paths[-1], dpi=90)
        plt.close(fig)
    fig = roc_figure({method: per_method[method] for method in roc}, where)
    paths.append(os.path.join(out, "roc.png"))
    fig.savefig(paths[-1], dpi=90)
    plt.close(fig)
    return paths


def write_split_figure(per_split, out, method="greg", metric="fpr95",
                       baselines=BASELINES):
    """``paired_splits.png``: ``method`` minus each baseline, one point per class
    split, sorted, in a grid of baselines (rows) by OOD-set group (columns).

    ``per_split`` is :func:`skood.benchmark.split_differences`'s table. Returns
    the path, or None when the method or both baselines were not run.
    """
    frame = per_split[(per_split["method"] == method) & (per_split["metric"] == metric)]
    rows = [b for b in baselines if b in set(frame["baseline"])]
    columns = [g for g in ("near", "far", "all") if g in set(frame["group"])]
    if not rows or not columns:
        return None
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(rows), len(columns), figsize=(4.2 * len(columns),
                                                               3.0 * len(rows)),
                             squeeze=False)
    for i, baseline in enumerate(rows):
        for j, group in enumerate(columns):
            ax = axes[i][j]
            cell = frame[(frame["baseline"] == baseline) & (frame["group"] == group)]
            diffs = np.sort(cell["diff_points"].to_numpy())
            better = diffs < 0 if metric == "fpr95" else diffs > 0
            ax.axhline(0.0, color="grey", lw=0.8)
            ax.scatter(np.arange(len(diffs)), diffs, c=np.where(better, "tab:green", "tab:red"),
                       s=18)
            ax.set_title(f"{method} - {baseline}, {group} OOD ({int(better.sum())} of "
                         f"{len(diffs)} better)", fontsize=9)
            ax.set_xlabel("class split (sorted by difference)", fontsize=8)
            ax.set_ylabel(f"Δ{metric.upper()} (points)", fontsize=8)
    fig.tight_layout()
    path = os.path.join(out, "paired_splits.png")
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path
