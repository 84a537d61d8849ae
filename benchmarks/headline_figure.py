"""The documentation's headline figure: FPR95 per method, near against far OOD data.

Reads the ``results.csv`` that ``skood benchmark`` wrote for each in-distribution
set trained from scratch, ``docs/results/digits/results.csv`` and
``docs/results/fashion-mnist/results.csv`` (the fine-tuning runs in
``docs/results/*-finetune`` are not drawn), and draws, per dataset, one pair of
bars per method: FPR95 on the *near* OOD sets and on the *far* ones, each the
mean over class splits of the mean over the sets in that group (and over the
split's seeds), with the standard deviation over splits as error bar. Lower is
better. A CSV without a ``split`` column (written before the benchmark drew
class splits) takes the seed as its unit.

Which set is near and which far is the CSV's ``group`` column, as the benchmark
wrote it (under the held-out-class protocol, the test images of the 4 classes
left out of training are near; the other image dataset, textures and noise are
far); a CSV without that column (written before the benchmark recorded it) is
refused, with the command that rewrites it.

The docs build calls :func:`write_figure` (docs/_ext/skood_docs.py), so the figure
always shows the CSV files in the tree: rerunning the benchmark is enough.

Run: python benchmarks/headline_figure.py [--results docs/results] [--out fpr95.png]
"""
import argparse
from pathlib import Path

#: display names of the datasets (the folders read under the results folder), in panel order
DATASETS = {"digits": "ID: digits (8x8, MLP)", "fashion-mnist": "ID: Fashion-MNIST (small CNN)"}
LABELS = {"ce_msp": "CE (MSP)", "ce_energy": "CE (energy)", "energy_oe": "energy-OE",
          "greg": "GReg", "greg_plus": "GReg+"}


def check_groups(results, path="results.csv"):
    """Raise ValueError unless ``results`` says which OOD sets are near and which far.

    Parameters
    ----------
    results : pandas.DataFrame
        A ``results.csv`` of ``skood benchmark``.
    path : str or Path
        Where it was read from (for the message).
    """
    if "group" not in results:
        raise ValueError(
            f"{path} has no 'group' column (near/far per OOD set); it was written by an "
            "older skood benchmark. Rerun the benchmark to rewrite it, e.g. skood benchmark "
            f"--threads 1 --quiet --out {Path(path).parent} (the docs/results_*.md pages "
            "give the command of each folder).")
    unknown = sorted(set(results["group"].dropna()) - {"near", "far"})
    if unknown or results["group"].isna().any():
        raise ValueError(f"{path}: the 'group' column must be 'near' or 'far' on every row, "
                         f"found {unknown or 'empty cells'}.")


def unit(results):
    """The column whose values are the independent runs: ``split`` (a class split,
    its seeds averaged), or ``seed`` in a CSV written before the benchmark had splits."""
    return "split" if "split" in results else "seed"


def near_far(results):
    """FPR95 in % per method and group: (mean, std) frames indexed by method,
    columns ``near`` and ``far`` (those present), from the ``group`` column; the
    mean and standard deviation (``ddof=0``) are over class splits, each split's
    value the mean over its seeds and over the group's sets."""
    check_groups(results)
    per_unit = (results.groupby(["method", unit(results), "group"], sort=False)["fpr95"].mean()
                .unstack("group") * 100)
    grouped = per_unit.groupby(level="method", sort=False)
    columns = [c for c in ("near", "far") if c in per_unit.columns]
    return grouped.mean()[columns], grouped.std(ddof=0)[columns]


def write_figure(results_dir, out):
    """Draw the figure from ``results_dir/<dataset>/results.csv`` into ``out`` (PNG).

    Parameters
    ----------
    results_dir : str or Path
        Folder with ``digits/results.csv`` and/or ``fashion-mnist/results.csv``.
    out : str or Path
        The PNG file to write (its folder is created).

    Returns
    -------
    Path or None
        The path written, or None when no results file is there.

    Raises
    ------
    ValueError
        When a ``results.csv`` has no ``group`` column (see :func:`check_groups`).
    """
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np
    import pandas as pd

    results_dir = Path(results_dir)
    found = [(d, results_dir / d / "results.csv") for d in DATASETS]
    found = [(d, p) for d, p in found if p.is_file()]
    if not found:
        return None
    tables = {}
    for dataset, path in found:       # every file checked before anything is drawn
        tables[dataset] = pd.read_csv(path)
        check_groups(tables[dataset], path)
    fig, axes = plt.subplots(1, len(found), figsize=(5.2 * len(found), 3.6), squeeze=False,
                             sharey=True)
    for ax, (dataset, _) in zip(axes[0], found):
        results = tables[dataset]
        mean, std = near_far(results)
        x = np.arange(len(mean))
        width = 0.38
        n_units = results[unit(results)].nunique()
        what = "class split(s)" if unit(results) == "split" else "seed(s)"
        for i, (group, colour) in enumerate((("near", "#d62728"), ("far", "#1f77b4"))):
            if group not in mean:
                continue
            sets = ", ".join(results.loc[results["group"] == group, "ood_set"].unique())
            offset = x + (i - 0.5) * width
            ax.bar(offset, mean[group], width, yerr=std[group], capsize=2, color=colour,
                   label=f"{group}: {sets}")
            for xi, m, s in zip(offset, mean[group], std[group].fillna(0)):
                ax.annotate(f"{m:.1f}", (xi, m + s), xytext=(0, 2), textcoords="offset points",
                            ha="center", va="bottom", fontsize=7)
        ax.set_xticks(x, [LABELS.get(m, m) for m in mean.index], fontsize=8)
        ax.set_title(f"{DATASETS[dataset]}, {n_units} {what}", fontsize=9)
        ax.set_ylim(0, 135)           # room above 100% + error bars for the legend
        ax.set_yticks(range(0, 101, 20))
        ax.legend(fontsize=7, loc="upper right")
        ax.grid(axis="y", lw=0.3)
    axes[0][0].set_ylabel("FPR95 in % (lower is better)", fontsize=8)
    fig.tight_layout()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--results", default=str(Path(__file__).resolve().parent.parent
                                                 / "docs" / "results"),
                        help="folder with one <dataset>/results.csv per dataset")
    parser.add_argument("--out", default="fpr95_near_far.png", help="PNG file to write")
    args = parser.parse_args()
    path = write_figure(args.results, args.out)
    print("wrote", path if path else "nothing: no results.csv found")


if __name__ == "__main__":
    main()
