"""The benchmark's figures; the only module of :mod:`skood.benchmark` that imports matplotlib."""
import os

import numpy as np

__all__ = ["write_figures"]


def write_figures(scores, out):
    """Score histograms per method and ROC curves per OOD set, of the first run
    in ``scores``, as PNG files in ``out``; returns their paths."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.metrics import roc_curve

    # the first run: the first seed listed (scores keep the run order)
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
