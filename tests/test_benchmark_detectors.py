"""`skood benchmark --detectors`: one training, many scores; every detector fitted on the rows
its network trained on; the detector chosen on held-out classes; the paired comparisons."""
import numpy as np
import pandas as pd
import pytest
import torch

pytest.importorskip("skimage")

from sklearn.base import clone  # noqa: E402
from sklearn.utils import Bunch  # noqa: E402

from skood import GradRegOODClassifier  # noqa: E402
from skood.benchmark import (BenchmarkConfig, load_benchmark_data, paired_differences,  # noqa: E402
                             run_benchmark)
from skood.benchmark import runner  # noqa: E402
from skood.benchmark.detector_choice import N_FOLDS, N_HELDOUT  # noqa: E402
from skood.benchmark.methods import CHOSEN, SAME_DETECTOR, TRAIN_METHOD  # noqa: E402
from skood.detectors import DETECTORS  # noqa: E402
from skood.metrics import fpr_at_tpr  # noqa: E402
from skood.model_selection import HeldOutClassSplit  # noqa: E402
from helpers import SMOKE_RUN_WARNINGS  # noqa: E402

pytestmark = SMOKE_RUN_WARNINGS

#: one class split, networks that learn something in a second
SMALL = dict(splits=1, epochs=3, n_train=300, n_aux=60, n_ood=40, progress=False)


@pytest.fixture
def fits(monkeypatch):
    """The number of classes of every fit, in order (6: a run's network; 4: an inner fold's,
    2 of the 6 known classes held out)."""
    real_fit, seen = GradRegOODClassifier.fit, []

    def spy(self, X, y=None, **kwargs):
        seen.append(len(np.unique(y)))
        return real_fit(self, X, y, **kwargs)

    monkeypatch.setattr(GradRegOODClassifier, "fit", spy)
    return seen


def _run_data():
    """The data of SMALL's one run (split 0, seed 0), as the run loads it."""
    return load_benchmark_data(split=BenchmarkConfig(splits=1).known_splits[0], random_state=0,
                               n_train=SMALL["n_train"], n_aux=SMALL["n_aux"],
                               n_ood=SMALL["n_ood"])


class _OneThread:
    """Torch on one thread, as the digits benchmark trains: the same float results."""

    def __enter__(self):
        self.threads = torch.get_num_threads()
        torch.set_num_threads(1)

    def __exit__(self, *exc):
        torch.set_num_threads(self.threads)


def test_every_network_is_trained_once_whatever_the_number_of_detectors(fits):
    every = tuple(DETECTORS)
    results, scores, _ = run_benchmark(methods=("ce", "greg"), detectors=every, **SMALL)
    # ce, the inner folds' CE networks that choose ce_chosen's detector, then greg: no
    # training per detector
    assert fits == [6] + [4] * N_FOLDS + [6]
    assert (results["status"] == "ok").all()
    for method in ("ce", "greg"):
        rows = results[results["method"].map(TRAIN_METHOD) == method]
        assert set(rows["detector"]) == set(every)
        # the scores of one network: its accuracy and training time on every row
        assert rows["train_s"].nunique() == 1 and rows["accuracy"].nunique() == 1
    assert len(scores[(0, 0)]) == 2 * len(every)
    fits.clear()
    run_benchmark(methods=("ce", "greg"), detectors=("energy",), **SMALL)
    assert fits == [6, 6]                  # one detector: nothing to choose


def test_detectors_are_fitted_on_the_training_rows_and_fused_calibrated_on_held_out_ones(
        monkeypatch):
    """The benchmark's KNN holds the features of exactly the rows the estimator's own
    detector="knn" is fitted on (skorch's training split: never calibration, validation,
    test or OOD rows); its Fused is calibrated on exactly the estimator's calibration rows;
    its energy scores are the estimator's own score_samples."""
    captured, real = [], runner.fit_detectors

    def spy(clf, names, rows):
        fitted, seconds = real(clf, names, rows)
        captured.append((clf, fitted, len(rows.train_), len(rows.held_out_)))
        return fitted, seconds

    monkeypatch.setattr(runner, "fit_detectors", spy)
    _, scores, _ = run_benchmark(methods=("ce",), detectors=("energy", "knn", "fused"), **SMALL)
    (clf, fitted, n_train, n_held_out), = captured     # the inner folds' are not the run's
    data = _run_data()
    assert n_train + n_held_out == len(data.X_train)
    with _OneThread():
        own = clone(clf).set_params(detector="knn").fit(data.X_train, data.y_train,
                                                        X_aux=data.X_aux)
    knn = fitted["knn"]
    assert knn.train_features_.shape[0] == n_train
    np.testing.assert_array_equal(knn.train_features_, own.detector_.train_features_)
    # Fused's KNN member scored the calibration rows as the estimator's KNN scores them
    members = [type(member).__name__ for member in fitted["fused"].detectors_]
    calibration = fitted["fused"].calibration_scores_[:, members.index("KNN")]
    assert len(calibration) == n_held_out == len(own.calibration_scores_)
    np.testing.assert_array_equal(np.sort(calibration).astype(np.float32),
                                  own.calibration_scores_)
    np.testing.assert_array_equal(scores[(0, 0)]["ce_energy"]["id"],
                                  clf.score_samples(data.X_test).astype(np.float64))


def test_the_chosen_detector_is_the_lowest_inner_fpr95_of_the_estimators_own_scores():
    """ce_chosen's choice, recomputed with the estimator's own detector= on the same inner
    folds: the same mean FPR95 per candidate, the lowest chosen, CE's rows with it."""
    detectors = ("energy", "knn")
    results, _, _ = run_benchmark(methods=("ce",), detectors=detectors, **SMALL)
    chosen = results[results["method"] == CHOSEN]
    inner = {name: float(value) for name, value in
             (part.split() for part in chosen["choice"].iloc[0].split("; "))}
    data = _run_data()
    config = BenchmarkConfig(methods=("ce",), detectors=detectors, **SMALL)
    folds = HeldOutClassSplit(n_splits=N_FOLDS, n_heldout=N_HELDOUT,
                              random_state=data.estimator_seed)
    expected = {}
    with _OneThread():
        for detector in detectors:
            fprs = []
            for train, test in folds.split(data.X_train, data.y_train):
                fold = Bunch(**{**data, "n_classes": len(np.unique(data.y_train[train]))})
                clf = runner.make_estimator(config, "ce", fold).set_params(detector=detector)
                clf.fit(data.X_train[train], data.y_train[train])
                is_id = np.isin(data.y_train[test], np.unique(data.y_train[train]))
                fprs.append(fpr_at_tpr(is_id.astype(int), clf.score_samples(data.X_train[test])))
            expected[detector] = 100 * float(np.mean(fprs))
    assert inner == pytest.approx(expected, abs=0.006)      # written with 2 decimals
    best = min(detectors, key=expected.get)
    assert set(chosen["detector"]) == {best}
    columns = ["ood_set", "fpr95", "auroc", "aupr_in", "aupr_out", "accuracy"]
    pd.testing.assert_frame_equal(
        chosen[columns].reset_index(drop=True),
        results.loc[results["method"] == f"ce_{best}", columns].reset_index(drop=True))


def test_paired_differences_against_greg_the_chosen_detector_and_the_same_detector():
    """Made-up near FPR95 on 2 class splits; each baseline's differences by hand."""
    fpr = {("ce_energy", "energy"): (0.50, 0.60), ("ce_vim", "vim"): (0.20, 0.40),
           ("ce_chosen", "vim"): (0.20, 0.40), ("greg", "energy"): (0.45, 0.50),
           ("greg_vim", "vim"): (0.30, 0.20)}
    rows = [dict(split=k, seed=0, method=m, detector=d, ood_set="near", group="near",
                 fpr95=values[k], auroc=0.9, accuracy=0.9)
            for (m, d), values in fpr.items() for k in (0, 1)]
    paired = paired_differences(pd.DataFrame(rows))
    paired = paired[paired["metric"] == "fpr95"].set_index(["method", "baseline"])
    diff = paired["mean_diff_points"].to_dict()
    # against CE with the same detector: greg_vim - ce_vim = +10, -20
    assert diff[("greg_vim", SAME_DETECTOR)] == pytest.approx(-5.0)
    assert paired.loc[("greg_vim", SAME_DETECTOR), "n_better"] == 1
    # against CE with the chosen detector (here ViM on both splits): the same numbers
    assert diff[("greg_vim", CHOSEN)] == pytest.approx(-5.0)
    assert diff[("greg", CHOSEN)] == pytest.approx((25 + 10) / 2)
    # against GReg (with the energy) and against CE-energy
    assert diff[("greg_vim", "greg")] == pytest.approx((-15 - 30) / 2)
    assert diff[("ce_vim", "ce_energy")] == pytest.approx((-30 - 20) / 2)
    assert diff[("ce_chosen", "greg")] == pytest.approx((-25 - 10) / 2)
    # the same-detector baseline of an energy row would be CE-energy, a baseline already;
    # CE's own rows have none; energy-OE was not run
    same = {method for method, baseline in diff if baseline == SAME_DETECTOR}
    assert same == {"greg_vim"}
    assert "energy_oe" not in {baseline for _, baseline in diff}
    assert set(paired.index.get_level_values("baseline")) == {"ce_energy", "greg", CHOSEN,
                                                              SAME_DETECTOR}
