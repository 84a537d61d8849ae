"""What separates the class splits where GReg helps from those where it hurts.

Reads a ``skood benchmark`` run's ``results.csv`` (one row per seed, split,
method and OOD set) and, per class split, relates GReg's paired near-OOD FPR95
difference (against energy-OE and against CE scored by energy) to properties
of the split:

- ``ce_accuracy``: CE's ID accuracy on the known classes;
- ``ce_energy_near_fpr95``: how hard the held-out classes are for plain CE;
- ``oe_minus_ce_near``: how much training on the photograph outliers moved
  energy-OE away from CE on the near set;
- ``closeness``: how often a linear classifier of all 10 classes confuses a
  held-out class with a known one (and back), from its cross-validated
  confusion matrix (row-normalised), summed over held-out x known pairs and
  divided by the number of held-out classes.

Each relation is a Spearman rank correlation over splits with its two-sided
p-value (no correction for the several tests: read small p-values with care).
``oe_minus_ce_near`` shares energy-OE's near FPR95 with the GReg-minus-energy-OE
difference, with opposite signs, so their correlation is negative by
construction (a split where energy-OE is unluckily bad makes both larger in
size); it says little about GReg itself.

    python benchmarks/split_analysis.py docs/results/digits/results.csv \
        --dataset digits --out docs/results/digits/split_analysis.md
"""
import argparse

import numpy as np
import pandas as pd
from scipy.stats import spearmanr
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import confusion_matrix
from sklearn.model_selection import cross_val_predict
from sklearn.preprocessing import StandardScaler
from sklearn.pipeline import make_pipeline


def class_confusion(dataset, data_home=None, n_rows=6000, random_state=0):
    """Row-normalised 10-class confusion matrix of a cross-validated linear model."""
    if dataset == "digits":
        X, y = load_digits(return_X_y=True)
    else:
        from skood.datasets import load_fashion_mnist
        fashion = load_fashion_mnist(data_home)
        rng = np.random.default_rng(random_state)
        pick = rng.choice(len(fashion.X_train), size=n_rows, replace=False)
        X = fashion.X_train[pick].reshape(n_rows, -1) / 255.0
        y = fashion.y_train[pick]
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    predicted = cross_val_predict(model, X, y, cv=5)
    return confusion_matrix(y, predicted, normalize="true")


def split_table(results, confusion):
    """One row per class split: GReg's paired near differences and the split's properties."""
    near = results[results["group"] == "near"]
    keys = ["known_classes", "seed"]
    fpr = near.pivot_table(index=keys, columns="method", values="fpr95", aggfunc="mean")
    accuracy = results.drop_duplicates(keys + ["method"]).pivot_table(
        index=keys, columns="method", values="accuracy")
    per_seed = pd.DataFrame({
        "greg_minus_oe": 100 * (fpr["greg"] - fpr["energy_oe"]),
        "greg_minus_ce": 100 * (fpr["greg"] - fpr["ce_energy"]),
        "oe_minus_ce_near": 100 * (fpr["energy_oe"] - fpr["ce_energy"]),
        "ce_energy_near_fpr95": 100 * fpr["ce_energy"],
        "ce_accuracy": 100 * accuracy["ce_msp"],
    })
    table = per_seed.groupby(level="known_classes").mean()
    closeness = []
    for known_text in table.index:
        known = [int(c) for c in known_text.split()]
        heldout = [c for c in range(confusion.shape[0]) if c not in known]
        pairs = confusion[np.ix_(heldout, known)].sum() + confusion[np.ix_(known, heldout)].sum()
        closeness.append(100 * pairs / len(heldout))
    table["closeness"] = closeness
    return table


def report(table, source):
    features = ["closeness", "ce_accuracy", "ce_energy_near_fpr95", "oe_minus_ce_near"]
    lines = [f"# What separates the class splits ({len(table)} splits, from `{source}`)", "",
             "Spearman rank correlation over splits between GReg's near-OOD FPR95 difference "
             "(points; below 0: GReg better) and each property of the split, with its "
             "two-sided p-value (uncorrected for the several tests).", "",
             "<!-- correlations -->", "",
             "| property | against energy-OE: rho (p) | against CE-energy: rho (p) |",
             "|---|---:|---:|"]
    for feature in features:
        cells = []
        for target in ("greg_minus_oe", "greg_minus_ce"):
            rho, p = spearmanr(table[feature], table[target])
            cells.append(f"{rho:+.2f} ({p:.3f})")
        lines.append(f"| {feature} | {cells[0]} | {cells[1]} |")
    helps = table["greg_minus_oe"] < 0
    lines += ["", "Means of each property where GReg beats energy-OE on near OOD and where it "
                  "does not:", "",
              f"| property | GReg better ({int(helps.sum())} splits) | "
              f"GReg not better ({int((~helps).sum())} splits) |", "|---|---:|---:|"]
    for feature in features:
        lines.append(f"| {feature} | {table.loc[helps, feature].mean():.2f} | "
                     f"{table.loc[~helps, feature].mean():.2f} |")
    lines += ["", "<!-- per split -->", "", "Per split (points; mean over the split's seeds):", "",
              "| known classes | GReg - energy-OE | GReg - CE-energy | " + " | ".join(features)
              + " |", "|---|" + "---:|" * (2 + len(features))]
    for known, row in table.sort_values("greg_minus_oe").iterrows():
        lines.append(f"| {known} | {row['greg_minus_oe']:+.2f} | {row['greg_minus_ce']:+.2f} | "
                     + " | ".join(f"{row[f]:.2f}" for f in features) + " |")
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", help="results.csv of a skood benchmark run")
    parser.add_argument("--dataset", choices=["digits", "fashion-mnist"], default="digits")
    parser.add_argument("--data-home", default=None)
    parser.add_argument("--out", required=True, help="markdown file to write")
    args = parser.parse_args(argv)
    results = pd.read_csv(args.results, dtype={"known_classes": str})
    table = split_table(results, class_confusion(args.dataset, args.data_home))
    text = report(table, args.results)
    with open(args.out, "w") as f:
        f.write(text)
    print(text)


if __name__ == "__main__":
    main()
