"""The benchmark's figures; the only module of :mod:`skood.benchmark` that imports matplotlib."""
import os

import numpy as np

from .methods import BASELINES

__all__ = ["write_figures", "write_split_figure"]


def write_figures(scores, out):
    """Score histograms per method and ROC curves per OOD set, of the first run
    in ``scores`` (the first split and seed, in run order), as PNG files in
    ``out``; returns their paths."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.metrics import roc_curve

    per_method = scores[next(iter(scores))]
    paths = []
    for method, sets in per_method.items():
        ood_names = [name for name in sets if name != "id"]
        fig, axes = plt.subplots(1, len(ood_names), figsize=(4 * len(ood_names), 3.2),
                                 squeeze=False)
        for ax, name in zip(axes[0], ood_names):
            both = np.r_[sets["id"], sets[name]]
            bins = np.linspace(both.min(), both.max(), 50)
            ax.hist(sets["id"], bins=bins, alpha=0.6, density=True, label="in-distribution")
            ax.hist(sets[name], bins=bins, alpha=0.6, density=True, label=name)
            ax.set_title(f"{method}: ID vs {name}", fontsize=9)
            ax.set_xlabel("score (higher = more in-distribution)", fontsize=8)
            ax.legend(fontsize=7)
        fig.tight_layout()
        path = os.path.join(out, f"hist_{method}.png")
        fig.savefig(path, dpi=90)
        plt.close(fig)
        paths.append(path)
    ood_names = [name for name in next(iter(per_method.values())) if name != "id"]
    fig, axes = plt.subplots(1, len(ood_names), figsize=(4 * len(ood_names), 3.6), squeeze=False)
    for ax, name in zip(axes[0], ood_names):
        for method, sets in per_method.items():
            y_true = np.r_[np.ones(len(sets["id"])), np.zeros(len(sets[name]))]
            fpr, tpr, _ = roc_curve(y_true, np.r_[sets["id"], sets[name]])
            ax.plot(fpr, tpr, label=method)
        ax.axhline(0.95, color="grey", lw=0.5, ls="--")
        ax.set_title(f"ROC, ID vs {name}", fontsize=9)
        ax.set_xlabel("FPR (OOD accepted)", fontsize=8)
        ax.set_ylabel("TPR (ID accepted)", fontsize=8)
        ax.legend(fontsize=7)
    fig.tight_layout()
    path = os.path.join(out, "roc.png")
    fig.savefig(path, dpi=90)
    plt.close(fig)
    paths.append(path)
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
