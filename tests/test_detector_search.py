"""Choosing the detector without OOD data: GridSearchCV over ``detector`` with held-out
classes, and DetectorSearchCV, which trains one network per fold and gives the same
per-fold scores."""
import numpy as np
import pytest
from sklearn.model_selection import GridSearchCV

from skood import GradRegOODClassifier, make_ood_scorer
from skood.detectors import KNN
from skood.metrics import fpr_at_tpr
from skood.model_selection import DetectorSearchCV, FarGuardScorer, HeldOutClassSplit
from skood.models import MLP

CANDIDATES = ["energy", KNN(k=1), "vim", "fused", "mahalanobis"]


@pytest.fixture(scope="module")
def six_digits():
    """Six digit classes as 8x8 images, and photograph-free outliers (uniform noise)."""
    from sklearn.datasets import load_digits
    X, y = load_digits(return_X_y=True)
    known = np.isin(y, (2, 3, 4, 5, 8, 9))
    X = (X[known] / 16.0).astype(np.float32).reshape(-1, 1, 8, 8)
    aux = np.random.RandomState(3).uniform(0, 1, size=(300, 1, 8, 8)).astype(np.float32)
    return X, y[known], aux


def make():
    return GradRegOODClassifier(MLP, m_in=-12.0, m_out=-4.0, max_epochs=6, batch_size=32,
                                random_state=0, verbose=0)


def cv():
    return HeldOutClassSplit(n_splits=3, n_heldout=2, random_state=0)


def scoring():
    return {"fpr95": make_ood_scorer("fpr95"), "auroc": make_ood_scorer("auroc")}


@pytest.fixture(scope="module")
def grid(six_digits):
    X, y, aux = six_digits
    search = GridSearchCV(make(), {"detector": CANDIDATES}, cv=cv(), refit=False,
                          scoring={**scoring(), "far_fpr95": FarGuardScorer(n=150)})
    return search.fit(X, y, X_aux=aux)


@pytest.fixture(scope="module")
def helper(six_digits):
    X, y, aux = six_digits
    search = DetectorSearchCV(make(), CANDIDATES, cv=cv(), scoring=scoring(),
                              far_guard=FarGuardScorer(n=150))
    return search.fit(X, y, X_aux=aux)


def test_grid_search_over_the_detector_with_held_out_classes_works(grid):
    results = grid.cv_results_
    assert [params["detector"] for params in results["params"]][:1] == ["energy"]
    for name in ("fpr95", "auroc", "far_fpr95"):
        scores = np.array([results[f"split{i}_test_{name}"] for i in range(3)])
        assert np.isfinite(scores).all() and (scores <= 1).all()
    # near-OOD detection is measured: AUROC on held-out classes above chance for all
    assert (results["mean_test_auroc"] > 0.6).all(), results["mean_test_auroc"]


def test_per_fold_scores_equal_grid_search_bit_for_bit(grid, helper):
    for name in ("fpr95", "auroc", "far_fpr95"):
        for split in range(3):
            key = f"split{split}_test_{name}"
            np.testing.assert_array_equal(helper.cv_results_[key], grid.cv_results_[key])
        np.testing.assert_array_equal(helper.cv_results_[f"rank_test_{name}"],
                                      grid.cv_results_[f"rank_test_{name}"])
    assert [p["detector"] for p in helper.cv_results_["params"]] == CANDIDATES


def test_the_far_guard_ranks_by_near_and_far_together_and_refits_the_best(six_digits, grid,
                                                                          helper):
    X, y, aux = six_digits
    results = helper.cv_results_
    selection = (results["mean_test_fpr95"] + results["mean_test_far_fpr95"]) / 2
    np.testing.assert_allclose(results["mean_test_selection"], selection)
    assert helper.best_index_ == int(np.argmax(selection))
    assert helper.best_params_ == {"detector": CANDIDATES[helper.best_index_]}
    assert helper.best_score_ == pytest.approx(selection.max())
    # refit: one fit on all rows with the chosen detector
    fresh = make().set_params(detector=CANDIDATES[helper.best_index_]).fit(X, y, X_aux=aux)
    np.testing.assert_array_equal(helper.score_samples(X[:50]), fresh.score_samples(X[:50]))
    assert helper.best_estimator_.classes_.tolist() == [2, 3, 4, 5, 8, 9]
    # a table, as GridSearchCV's
    pandas = pytest.importorskip("pandas")
    table = pandas.DataFrame(helper.cv_results_)
    assert len(table) == len(CANDIDATES) and "mean_test_far_fpr95" in table


def test_the_far_guard_is_minus_the_worst_fpr95_over_generated_sets(six_digits):
    X, y, aux = six_digits
    clf = make().fit(X[y != 9], y[y != 9], X_aux=aux)
    guard = FarGuardScorer(n=100, random_state=4)
    sets = guard.images((1, 8, 8))
    assert sorted(sets) == ["gaussian-noise", "textures", "uniform-noise"]
    assert all(images.shape == (100, 1, 8, 8) for images in sets.values())
    scores_id = clf.score_samples(X)[y != 9]        # the rows of 9 are not the model's class
    by_hand = max(fpr_at_tpr(np.r_[np.ones(len(scores_id)), np.zeros(100)],
                             np.r_[scores_id, clf.score_samples(images)])
                  for images in sets.values())
    assert guard(clf, X, y) == -by_hand
    colour = guard.images((3, 8, 8))
    assert all(images.shape == (100, 3, 8, 8) for images in colour.values())


def test_clear_errors(six_digits):
    X, y, aux = six_digits
    flat = X.reshape(len(X), -1)
    search = DetectorSearchCV(make(), ["energy"], cv=cv(), far_guard=True, refit=False)
    with pytest.raises(ValueError, match=r"image rows of shape \(H, W\) or \(C, H, W\)"):
        search.fit(flat, y, X_aux=aux.reshape(len(aux), -1))
    with pytest.raises(ValueError, match="at least one candidate"):
        DetectorSearchCV(make(), [], cv=cv()).fit(X, y, X_aux=aux)
    with pytest.raises(TypeError, match=r"pass \['knn'\] for one candidate"):
        DetectorSearchCV(make(), "knn", cv=cv()).fit(X, y, X_aux=aux)
    with pytest.raises(ValueError, match="scoring must be None, a callable"):
        DetectorSearchCV(make(), ["energy"], cv=cv(), scoring="fpr95").fit(X, y, X_aux=aux)
    with pytest.raises(ValueError, match="'knn'"):
        DetectorSearchCV(make(), ["nearest"], cv=cv(), refit=False).fit(X, y, X_aux=aux)


@pytest.mark.filterwarnings("ignore::skood.exceptions.ChanceLevelWarning")  # one epoch
def test_the_cost_benchmark_runs(capsys):
    from helpers import load_benchmark_script
    script = load_benchmark_script("detector_selection_cost")
    ratio = script.main(["--repeats", "1", "--epochs", "1"])
    out = capsys.readouterr().out
    assert 0 < ratio < 10 and "DetectorSearchCV over 8 detectors" in out
    assert "fused" in out and "ratio per pair" in out
