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


# -- the rows a network trained on, and the nested selection of the method and detector ------

def _spy():
    """A detector that keeps the features it is fitted on (a one-layer network's features
    are its input rows)."""
    from skood.detectors import BaseDetector

    class Spy(BaseDetector):
        needs = frozenset({"features"})

        def _fit(self, features, logits, y, last_layer):
            self.rows_ = features.numpy().copy()

        def _score(self, features, logits):
            return features[:, 1]

    return Spy()


@pytest.mark.filterwarnings("ignore::skood.exceptions.ChanceLevelWarning")
def test_network_training_rows_are_those_the_estimator_fits_its_detector_on(script):
    import torch

    from skood import GradRegOODClassifier

    rng = np.random.RandomState(0)
    X = rng.normal(size=(300, 4)).astype(np.float32)
    X[:, 0] = np.arange(300)                           # each row's id
    y = rng.randint(0, 3, 300)
    X_aux = rng.uniform(-6, 6, size=(60, 4)).astype(np.float32)
    clf = GradRegOODClassifier(torch.nn.Linear, module__in_features=4, module__out_features=3,
                               detector=_spy(), max_epochs=1, random_state=0, verbose=0)
    clf.fit(X, y, X_aux=X_aux)
    rows = script.network_training_rows(clf, X, y)
    assert 0 < len(rows) < len(y)                      # the held-out rows are left out
    assert sorted(clf.detector_.rows_[:, 0].astype(int)) == sorted(rows.tolist())
    with pytest.raises(ValueError, match="train_split=None"):
        script.network_training_rows(clf.set_params(train_split=None), X, y)


@pytest.fixture(scope="module")
def detector_script():
    return load_benchmark_script("nested_detector_selection")


def test_held_out_photos_are_pool_rows_the_run_did_not_train_on(detector_script):
    pool = np.random.RandomState(0).uniform(size=(40, 1, 4, 4)).astype(np.float32)
    pool[1] = pool[0]                                  # a copy of a training outlier
    X_aux = pool[::2]
    photos = detector_script.held_out_photos(pool, X_aux, 30, random_state=0)
    assert photos.shape == (19, 1, 4, 4)               # the odd rows but the copy
    odd = {row.tobytes() for row in pool[3::2]}
    assert {row.tobytes() for row in photos} == odd
    with pytest.raises(ValueError, match="not rows of the outlier pool"):
        detector_script.held_out_photos(pool, X_aux + 1.0, 5, random_state=0)


@pytest.mark.filterwarnings("ignore:An input array is constant")
def test_one_split_scores_every_method_and_detector_on_one_network(detector_script, tmp_path):
    detectors = ["energy", "knn", "fused"]
    candidates, inner, timing = detector_script.main([
        "--splits", "1", "--epochs", "1", "--n-train", "120", "--n-aux", "50", "--n-ood", "30",
        "--n-jobs", "1", "--inner-folds", "2", "--n-generated", "20",
        "--detectors", *detectors, "--out", str(tmp_path)])
    assert sorted(candidates["candidate"]) == sorted(
        f"{m}+{d}" for m in ("ce", "greg") for d in detectors)
    # one network per (fold, method): 2 folds x 2 methods, then 2 refits
    assert len(timing) == 2 * 2 + 2
    assert len(inner) == 2 * 2 * len(detectors)
    for column in ("near_fpr95", "far_fpr95", "far_fpr95:textures", "inner_near",
                   "inner_generated", "inner_photos", "accuracy"):
        assert candidates[column].notna().all(), column
    # the inner means are the folds' means
    means = inner.groupby(["method", "detector"])["photos"].mean()
    for _, row in candidates.iterrows():
        assert row["inner_photos"] == pytest.approx(means[(row["method"], row["detector"])])
    chosen = detector_script.choices(candidates).set_index("model")
    assert chosen.loc["oracle", "near_fpr95"] == candidates["near_fpr95"].min()
    score = (candidates["inner_near"]
             + candidates[["inner_generated", "inner_photos"]].max(axis=1)) / 2
    assert chosen.loc["chosen:photos", "candidate"] == candidates["candidate"][score.idxmin()]
    assert (tmp_path / "report.md").exists() and (tmp_path / "candidates.csv").exists()


@pytest.mark.filterwarnings("ignore::skood.exceptions.ChanceLevelWarning")
def test_detector_scores_equal_the_detectors_fitted_by_hand_on_the_training_rows(
        script, detector_script):
    from sklearn.datasets import load_digits

    from skood import GradRegOODClassifier
    from skood.detectors import KNN, extract_features
    from skood.models import MLP

    X, y = load_digits(return_X_y=True)
    X = (X[:400] / 16.0).astype(np.float32)
    y = y[:400]
    clf = GradRegOODClassifier(MLP, max_epochs=2, lambda_grad=0.0, lambda_energy=0.0,
                               random_state=0, verbose=0).fit(X, y)
    energy = clf.score_samples(X[:50])
    scores = detector_script.detector_scores(clf, {"rows": X[:50]}, ["energy", "knn"])
    np.testing.assert_array_equal(scores["energy"]["rows"], energy)
    # the estimator's KNN is the detector fitted on the rows its network trained on
    rows = script.network_training_rows(clf, X, y)
    knn = KNN().fit(extract_features(clf.module_, X[rows])[0])
    np.testing.assert_allclose(scores["knn"]["rows"],
                               knn.score_samples(extract_features(clf.module_, X[:50])[0]),
                               rtol=1e-6, atol=1e-6)
    assert clf.detector == "energy"                   # left as it was


def _candidates(values):
    """candidates.csv-like rows from {split: {candidate: (inner near, inner generated,
    inner photos, outer near, outer far)}}; the synthesized guard at 0.5 for every one."""
    return pd.DataFrame([
        dict(split=split, seed=0, candidate=name, method=name.split("+")[0],
             detector=name.split("+")[1], inner_near=v[0], inner_generated=v[1],
             inner_photos=v[2], inner_synthesized=0.5, near_fpr95=v[3], far_fpr95=v[4])
        for split, cands in values.items() for name, v in cands.items()])


def test_the_rules_choose_and_the_targets_are_checked_by_hand(detector_script):
    cands = {
        # ce+vim wins on held-out classes; with the photos guard greg+vim wins:
        # classes: ce+vim 0.20; generated: ce+vim (0.20+0)/2 = 0.10 < greg+vim (0.30+0)/2;
        # photos: ce+vim (0.20+0.50)/2 = 0.35 > greg+vim (0.30+0.02)/2 = 0.16
        0: {"ce+energy": (0.60, 0.10, 0.40, 0.60, 0.15),
            "greg+energy": (0.55, 0.0, 0.0, 0.50, 0.02),
            "ce+vim": (0.20, 0.0, 0.50, 0.30, 0.08),
            "greg+vim": (0.30, 0.0, 0.02, 0.35, 0.03)},
        1: {"ce+energy": (0.60, 0.10, 0.40, 0.70, 0.15),
            "greg+energy": (0.55, 0.0, 0.0, 0.55, 0.02),
            "ce+vim": (0.20, 0.0, 0.50, 0.25, 0.08),
            "greg+vim": (0.30, 0.0, 0.02, 0.40, 0.02)},
    }
    chosen = detector_script.choices(_candidates(cands))
    picked = chosen.set_index(["model", "split"])["candidate"]
    assert picked[("chosen:classes", 0)] == "ce+vim"
    assert picked[("chosen:generated", 0)] == "ce+vim"
    assert picked[("chosen:photos", 0)] == "greg+vim"
    # synthesized: every candidate's worst guard is 0.5, so the best inner near wins
    assert picked[("chosen:synthesized", 0)] == "ce+vim"
    assert picked[("chosen:all", 0)] == "ce+vim"
    assert picked[("oracle", 1)] == "ce+vim"
    checks = detector_script.target_check(chosen, "photos")
    # near gain over ce+energy: 60-35 = 25 and 70-40 = 30 points, mean 27.5 (met);
    # better on 2 of 2; far over greg+energy: +1 and 0 points, mean 0.5 (met);
    # oracle gap: 35-30 = 5 and 40-25 = 15, mean 10, at most 15
    assert [met for _, _, met in checks] == [True, True, True, None]
    assert checks[0][1] == "+27.50 points"
    assert checks[2][1] == "+0.50 points"
    assert checks[3][1] == "+10.00 points on average, at most 15.00"
    table = detector_script.comparisons(chosen).set_index(["rule", "group", "against"])
    row = table.loc[("classes", "near", "ce+energy")]
    # ce+vim minus ce+energy: -30 and -45 points
    assert row["mean_diff"] == pytest.approx(-37.5) and row["n_better"] == 2
    fixed = detector_script.fixed_comparisons(_candidates(cands))
    assert fixed.loc["ce+vim", "near_diff"] == pytest.approx(-37.5)
    assert fixed.loc["ce+vim", "near_better"] == 2
    # greg+vim's far minus greg+energy's: +1 and 0 points
    assert fixed.loc["greg+vim", "far_diff"] == pytest.approx(0.5)
    assert fixed.loc["greg+vim", "far_better"] == 0
