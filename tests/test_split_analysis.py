"""benchmarks/split_analysis.py: a split's properties and GReg's paired differences."""

import numpy as np
import pandas as pd
import pytest
from helpers import load_benchmark_script


def split_analysis():
    return load_benchmark_script("split_analysis")


def test_split_table_pairs_by_split_and_measures_closeness_by_hand():
    script = split_analysis()
    # 3 classes, known (0, 1), held out 2; two seeds of the one split
    rows = []
    for seed, (ce, oe, greg) in enumerate(((0.50, 0.60, 0.40), (0.70, 0.80, 0.50))):
        for method, fpr in (("ce_msp", 0.9), ("ce_energy", ce), ("energy_oe", oe),
                            ("greg", greg)):
            rows.append(dict(known_classes="0 1", seed=seed, method=method, group="near",
                             ood_set="x", fpr95=fpr, accuracy=0.9 if method == "ce_msp" else 0.8))
    confusion = np.array([[0.8, 0.1, 0.1],
                          [0.0, 0.7, 0.3],
                          [0.2, 0.2, 0.6]])
    table = script.split_table(pd.DataFrame(rows), confusion)
    row = table.loc["0 1"]
    assert row["greg_minus_oe"] == pytest.approx(-25.0)        # (-20 - 30) / 2
    assert row["greg_minus_ce"] == pytest.approx(-15.0)        # (-10 - 20) / 2
    assert row["oe_minus_ce_near"] == pytest.approx(10.0)
    assert row["ce_accuracy"] == pytest.approx(90.0)
    # held out 2: confused with 0 and 1 (0.2 + 0.2), and 0, 1 with 2 (0.1 + 0.3)
    assert row["closeness"] == pytest.approx(80.0)


def test_report_names_the_markers_the_results_page_includes():
    script = split_analysis()
    table = pd.DataFrame({name: np.arange(4.0) * (i + 1) for i, name in enumerate(
        ["greg_minus_oe", "greg_minus_ce", "closeness", "ce_accuracy", "ce_energy_near_fpr95",
         "oe_minus_ce_near"])}, index=[f"{k} 1 2" for k in range(4)])
    text = script.report(table, "results.csv")
    assert "<!-- correlations -->" in text and "<!-- per split -->" in text
    assert text.index("<!-- correlations -->") < text.index("<!-- per split -->")
    assert "| closeness | +1.00 (0.000) |" in text
