"""benchmarks/nested_selection.py: the nested run on tiny data, and its report's statistics."""

import numpy as np
import pandas as pd
import pytest
from helpers import SMOKE_RUN_WARNINGS, load_benchmark_script

pytestmark = SMOKE_RUN_WARNINGS

pytest.importorskip("skimage")


@pytest.fixture(scope="module")
def script():
    return load_benchmark_script("nested_selection")


# one epoch on 120 rows: candidates can tie on every FPR95, and a rank correlation of equal
# values is undefined (NaN, with scipy's warning)
@pytest.mark.filterwarnings("ignore:An input array is constant")
def test_one_split_writes_every_model_and_the_oracle_is_the_best_candidate(script, tmp_path):
    from skood.benchmark import BenchmarkConfig

    results, candidates = script.main([
        "--splits", "1", "--epochs", "1", "--n-train", "120", "--n-aux", "50", "--n-ood", "30",
        "--n-jobs", "1", "--inner-folds", "2", "--n-generated", "30", "--grid", "small",
        "--out", str(tmp_path)])
    written = pd.read_csv(tmp_path / "results.csv")
    assert sorted(written["model"]) == sorted(script.MODELS)
    for column in ("split", "seed", "known_classes", "heldout_classes", "model", "lambda_grad",
                   "source", "near_fpr95", "near_auroc", "far_fpr95", "far_max_fpr95",
                   "accuracy", "train_s", "far_fpr95:textures", "far_fpr95:gaussian-noise"):
        assert column in written.columns, column
    assert written["known_classes"].iloc[0] == " ".join(
        map(str, BenchmarkConfig(splits=1).known_splits[0]))
    grid = script.GRIDS["small"]
    assert len(candidates) == len(grid["lambda_grad"]) * len(grid["sources"])
    assert set(candidates["source"]) == set(grid["sources"])
    by_model = written.set_index("model")
    # the oracle is the best candidate on the outer near set, so never worse than any
    # candidate, the selected one included
    assert by_model.loc["oracle", "near_fpr95"] == candidates["near_fpr95"].min()
    assert (by_model.loc["oracle", "near_fpr95"] <= candidates["near_fpr95"]).all()
    assert by_model.loc["oracle", "near_fpr95"] <= by_model.loc["selected", "near_fpr95"]
    # the selected candidate is the search's best by the combined inner score
    chosen = candidates[candidates["chosen"]]
    assert len(chosen) == 1
    assert chosen["inner_selection"].iloc[0] == candidates["inner_selection"].max()
    assert by_model.loc["selected", "near_fpr95"] == chosen["near_fpr95"].iloc[0]
    # the combined score is the mean of the near and far inner FPR95 (negated)
    np.testing.assert_allclose(
        candidates["inner_selection"],
        -(candidates["inner_near_fpr95"] + candidates["inner_far_fpr95"]) / 2)
    # the photographs as a grid value (PhotoCrops) train exactly as X_aux does: the fixed
    # models equal their grid candidates
    for model, lambda_grad in (("greg", 1.0), ("energy_oe", 0.0)):
        same = candidates[(candidates["source"] == "photos")
                          & (candidates["lambda_grad"] == lambda_grad)]
        assert same["near_fpr95"].iloc[0] == by_model.loc[model, "near_fpr95"]
        assert same["far_fpr95"].iloc[0] == by_model.loc[model, "far_fpr95"]
    assert (tmp_path / "report.md").read_text().count("| 0 (seed 0) |") == 1


def _frame(values):
    """results.csv-like rows from {model: {(split, seed): (near, far)}}."""
    return pd.DataFrame([dict(split=split, seed=seed, model=model, near_fpr95=near,
                              far_fpr95=far)
                         for model, runs in values.items()
                         for (split, seed), (near, far) in runs.items()])


def test_report_statistics_match_a_hand_computation(script):
    results = _frame({
        # split 0 has two seeds: its value is their mean (0.10 near, 0.0 far)
        "selected": {(0, 0): (0.05, 0.0), (0, 1): (0.15, 0.0), (1, 0): (0.20, 0.01),
                     (2, 0): (0.30, 0.02)},
        "ce_energy": {(0, 0): (0.40, 0.5), (0, 1): (0.40, 0.5), (1, 0): (0.45, 0.5),
                      (2, 0): (0.50, 0.5)},
        "oracle": {(0, 0): (0.05, 0.0), (0, 1): (0.05, 0.0), (1, 0): (0.20, 0.0),
                   (2, 0): (0.25, 0.0)},
        "greg": {(0, 0): (0.10, 0.0), (0, 1): (0.10, 0.0), (1, 0): (0.10, 0.0),
                 (2, 0): (0.40, 0.0)},
        "energy_oe": {(0, 0): (0.6, 0.1), (0, 1): (0.6, 0.1), (1, 0): (0.6, 0.1),
                      (2, 0): (0.6, 0.1)},
    })
    table = script.comparisons(results).set_index(["group", "comparator"])
    # near, selected - ce_energy per split: -30, -25, -20 points; mean -25, sd 5,
    # t_{0.975, 2} = 4.302652729911275, half width 4.3027 * 5 / sqrt(3) = 12.4207
    row = table.loc[("near", "ce_energy")]
    assert row["n"] == 3 and row["n_better"] == 3
    assert row["mean_diff"] == pytest.approx(-25.0)
    half = 4.302652729911275 * 5 / np.sqrt(3)
    assert row["ci_low"] == pytest.approx(-25.0 - half)
    assert row["ci_high"] == pytest.approx(-25.0 + half)
    assert row["selected_mean"] == pytest.approx(20.0)
    assert row["comparator_mean"] == pytest.approx(45.0)
    # near, selected - greg: 0, +10, -10 points: better on 1 of 3
    assert table.loc[("near", "greg"), "n_better"] == 1
    assert table.loc[("near", "greg"), "mean_diff"] == pytest.approx(0.0)
    # far, selected - energy_oe: -10, -9, -8 points
    assert table.loc[("far", "energy_oe"), "mean_diff"] == pytest.approx(-9.0)
    checks = script.target_check(results)
    assert [met for _, _, met in checks] == [
        True,    # 25 points below CE-energy on average (>= 20)
        True,    # better on 3 of 3 splits (>= 90%)
        True,    # far: mean of 0, 1, 2 % = 1% (<= 1%)
        False]   # oracle gap: +5, 0, +5 points: 3.33 > 3
    assert checks[0][1] == "CE-energy minus selected: +25.00 points"
    assert checks[1][1].startswith("3 of 3 (100%)")
    assert checks[2][1] == "1.00%"
    assert checks[3][1] == "selected minus oracle: +3.33 points"


@pytest.mark.parametrize("argv, words", [
    (["--inner-folds", "16"], "--inner-folds must be in [1, 15]"),
    (["--epochs", "0"], "--epochs: epochs must be a positive integer"),
    (["--splits", "0"], "--splits: splits must be a positive integer")])
def test_bad_settings_are_usage_errors_before_any_work(script, argv, words, tmp_path, capsys,
                                                       monkeypatch):
    def never(*args, **kwargs):
        raise AssertionError("work started before the settings were checked")

    monkeypatch.setattr(script, "load_far", never)
    with pytest.raises(SystemExit) as info:
        script.main([*argv, "--out", str(tmp_path / "out")])
    assert info.value.code == 2
    assert words in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
