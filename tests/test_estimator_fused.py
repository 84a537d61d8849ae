"""``Fused`` as the estimator's detector: its members' p-values are calibrated on one random
half of the calibration rows, ``offset_`` and the estimator's p-values on the other half, so
that the conformal guarantees hold for the fused score."""
import warnings

import numpy as np
import pytest
import torch

from skood import GradRegOODClassifier
from skood._seeds import calibration_halves
from skood.detectors import Fused, extract_features
from skood.models import MLP

from test_estimator_detectors import Spy, row_ids, spy_data


@pytest.mark.filterwarnings("ignore::skood.exceptions.ChanceLevelWarning")  # not meant to learn
@pytest.mark.parametrize("train_split", ["default", None])
def test_no_member_sees_calibration_rows_and_the_halves_are_disjoint(train_split):
    X, y, X_aux = spy_data()
    params = {} if train_split == "default" else {"train_split": None,
                                                  "calibration_fraction": 0.25}
    clf = GradRegOODClassifier(torch.nn.Linear, module__in_features=5, module__out_features=2,
                               detector=Fused([Spy(), "energy"]), max_epochs=2,
                               random_state=0, verbose=0, **params)
    clf.fit(X, y, X_aux=X_aux)
    spy = clf.detector_.detectors_[0]
    fitted = row_ids(spy.fit_rows_)
    # scored twice in fit: the members' calibration half, then offset_'s half
    assert len(spy.scored_) == 2
    first, second = (row_ids(rows) for rows in spy.scored_)
    n_calibration = len(X) - len(fitted)
    assert n_calibration == (80 if train_split == "default" else 100)
    assert len(first) == n_calibration // 2 == len(clf.detector_.calibration_scores_)
    assert len(second) == n_calibration - n_calibration // 2 == len(clf.calibration_scores_)
    assert first.isdisjoint(second) and fitted.isdisjoint(first | second)
    assert fitted | first | second == set(range(len(X)))   # no outlier row, no row twice
    # the halves are drawn at random, not the first and last rows of the calibration
    ordered = sorted(first | second)
    assert first != set(ordered[:len(first)])


def test_the_halves_are_random_and_follow_the_seed():
    first, second = calibration_halves(101, seed=7)
    assert len(first) == 50 and len(second) == 51
    assert set(first).isdisjoint(second) and set(first) | set(second) == set(range(101))
    np.testing.assert_array_equal(calibration_halves(101, seed=7)[0], first)
    assert not np.array_equal(calibration_halves(101, seed=8)[0], first)


def test_the_fused_guarantees_hold_over_calibration_draws(digits):
    # Each draw: new training and calibration rows (and a new network); the rows scored are
    # digits from the same permutation, so exchangeable with the calibration rows. Per
    # draw, acceptance is conservative up to ties; over draws its mean must reach ood_tpr
    # within three standard errors, and not accept everything either. The FDR of
    # predict_ood(fdr=q) on batches of 100 digits and 100 noise rows must stay below q.
    X, y = digits
    noise = np.random.RandomState(5).uniform(0, 1, size=(100, 64)).astype(np.float32)
    acceptance, fdr = [], []
    for draw in range(60):
        order = np.random.RandomState(100 + draw).permutation(len(X))
        fit_rows, new = order[:400], order[400:]
        # cross-entropy only (no outliers): fast, and the guarantee needs no trained detector
        clf = GradRegOODClassifier(MLP, module__hidden=(16,), max_epochs=2, lambda_energy=0.0,
                                   lambda_grad=0.0, train_split=None, calibration_fraction=0.25,
                                   ood_tpr=0.9, detector="fused", random_state=draw, verbose=0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")     # two epochs of 300 rows can end near chance
            clf.fit(X[fit_rows], y[fit_rows])
        assert len(clf.calibration_scores_) == 50 and len(clf.detector_.calibration_scores_) == 50
        acceptance.append(np.mean(clf.predict_ood(X[new]) == 1))
        flagged = clf.predict_ood(np.r_[X[new[:100]], noise], fdr=0.2) == -1
        fdr.append(flagged[:100].sum() / max(flagged.sum(), 1))
    acceptance, fdr = np.array(acceptance), np.array(fdr)
    se = acceptance.std(ddof=1) / np.sqrt(len(acceptance))
    assert acceptance.mean() >= 0.9 - 3 * se, (acceptance.mean(), se)
    assert acceptance.mean() <= 0.97, acceptance.mean()     # calibrated, not accepting all
    assert fdr.mean() <= 0.2 + 3 * fdr.std(ddof=1) / np.sqrt(len(fdr)), fdr.mean()


def test_fused_by_name_and_object_score_offset_and_pvalues_on_the_second_half(digits):
    X, y = digits
    aux = np.random.RandomState(1).uniform(0, 1, size=(300, 64)).astype(np.float32)
    params = dict(module=MLP, module__hidden=(32,), max_epochs=10, m_in=-12.0, m_out=-4.0,
                  random_state=0, verbose=0)
    by_name = GradRegOODClassifier(detector="fused", **params).fit(X[:1000], y[:1000],
                                                                   X_aux=aux)
    by_object = GradRegOODClassifier(detector=Fused(["energy", "vim", "knn"]),
                                     **params).fit(X[:1000], y[:1000], X_aux=aux)
    X_test = X[1000:]
    scores = by_name.score_samples(X_test)
    np.testing.assert_array_equal(scores, by_object.score_samples(X_test))
    # the score is the fused p-value (of the members against the first half)
    np.testing.assert_array_equal(scores, by_name.detector_.score_samples(
        *extract_features(by_name.module_, X_test)).astype(np.float32))
    # offset_ and the p-values come from the second half's fused scores
    second = by_name.calibration_scores_
    assert len(second) == 200 - 100
    expected = (1 + np.searchsorted(second, scores, side="right")) / (len(second) + 1)
    np.testing.assert_allclose(by_name.ood_pvalues(X_test), expected)
    assert np.mean(by_name.predict_ood(aux) == -1) > 0.9

