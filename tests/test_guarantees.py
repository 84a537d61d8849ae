"""The estimator's conformal decisions: p-values, FDR control over a batch, per-class
thresholds, and their life through pickling, cloning and searches.

The statistical validity of the rules themselves (Monte Carlo over many
calibration draws) is tested on the pure functions in test_conformal.py.
"""
import pickle
import re
import warnings

import joblib
import numpy as np
import pytest
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV, StratifiedKFold

from skood import GradRegOODDetector, make_ood_scorer
from skood.conformal import SmallCalibrationWarning, benjamini_hochberg


@pytest.fixture
def fitted(make_clf, blobs):
    X, y, X_aux = blobs
    return make_clf(max_epochs=5).fit(X, y, X_aux=X_aux)


def test_pvalues_equal_a_brute_force_count(fitted, blobs):
    X, _, X_aux = blobs
    data = np.r_[X[:40], X_aux[:40]]
    scores = fitted.score_samples(data)
    calibration = fitted.calibration_scores_
    assert calibration.dtype == np.float32 and np.all(np.diff(calibration) >= 0)
    expected = np.array([(1 + sum(c <= s for c in calibration)) / (len(calibration) + 1)
                         for s in scores])
    np.testing.assert_array_equal(fitted.ood_pvalues(data), expected)


def test_threshold_and_pvalues_agree(fitted, blobs):
    # offset_ rejects exactly the samples whose p-value is at most k / (n + 1)
    X, _, X_aux = blobs
    data = np.r_[X, X_aux]
    n = len(fitted.calibration_scores_)
    k = int(np.floor((n + 1) * 0.05 + 1e-9))
    rejected = fitted.predict_ood(data) == -1
    np.testing.assert_array_equal(rejected, fitted.ood_pvalues(data) <= k / (n + 1))


def test_fdr_flags_the_benjamini_hochberg_selection(make_clf, blobs):
    X, y, X_aux = blobs
    clf = make_clf(max_epochs=10).fit(X, y, X_aux=X_aux)
    far = X_aux[np.abs(X_aux).max(1) > 6][:100]
    data = np.r_[X[::3][:100], far]
    for q in (0.05, 0.2):
        flagged = clf.predict_ood(data, fdr=q) == -1
        np.testing.assert_array_equal(flagged, benjamini_hochberg(clf.ood_pvalues(data), q))
    # far-away outliers are what gets flagged (the smallest p-value is 1 / (n + 1))
    assert flagged[100:].mean() > 0.3 and flagged[:100].mean() < 0.1
    detector = GradRegOODDetector(**clf.get_params()).fit(X, y, X_aux=X_aux)
    np.testing.assert_array_equal(detector.predict(data, fdr=0.2), clf.predict_ood(data, fdr=0.2))


@pytest.mark.parametrize("fdr", [0.0, 1.0, -0.1, "0.1"])
def test_bad_fdr_is_refused(fitted, blobs, fdr):
    with pytest.raises(ValueError, match="fdr"):
        fitted.predict_ood(blobs[0], fdr=fdr)


def test_bad_calibration_is_refused(make_clf, blobs):
    with pytest.raises(ValueError, match=r"'calibration' parameter .*'class'"):
        make_clf(calibration="per-class").fit(*blobs[:2], X_aux=blobs[2])


def test_class_calibration_keeps_each_class_acceptance(make_clf, blobs):
    # imbalanced: 270 rows of class 0, 30 of class 1
    X, y, X_aux = blobs
    keep = np.r_[np.flatnonzero(y == 0), np.flatnonzero(y == 1)[:30]]
    Xi, yi = X[keep], y[keep]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", SmallCalibrationWarning)
        clf = make_clf(train_split=None, calibration_fraction=0.5, calibration="class").fit(
            Xi[np.r_[:150, 150:180]], yi[np.r_[:150, 150:180]], X_aux=X_aux)
    small = " ".join(str(w.message) for w in caught if w.category is SmallCalibrationWarning)
    assert clf.class_offsets_.shape == (2,)
    assert clf.calibration_classes_.dtype == np.int32
    assert clf.calibration_classes_.shape == clf.calibration_scores_.shape
    # on the calibration rows themselves, each predicted class accepts at least ood_tpr
    for c in range(2):
        scores = clf.calibration_scores_[clf.calibration_classes_ == c]
        if len(scores) >= 19:
            assert np.mean(scores >= clf.class_offsets_[c]) >= 0.95
        else:   # too few rows for a class threshold: the marginal one, and a warning
            assert clf.class_offsets_[c] == clf.offset_
            assert re.search(rf"Too few calibration rows .*\b{c} \({len(scores)} rows\)", small)
    # decisions use the predicted class's threshold
    logits = clf.forward(X).numpy()
    expected = clf.score_samples(X) - clf.class_offsets_[logits.argmax(1)].astype(np.float32)
    np.testing.assert_allclose(clf.ood_decision_function(X), expected, rtol=1e-6)


def test_too_few_calibration_rows_warn_and_accept_everything(make_clf, blobs):
    X, y, X_aux = blobs
    with pytest.warns(SmallCalibrationWarning, match="at least 19"):
        clf = make_clf(train_split=None, calibration_fraction=0.1).fit(X[::3], y[::3],
                                                                       X_aux=X_aux)
    assert clf.offset_ == -np.inf
    assert np.all(clf.predict_ood(X_aux) == 1)


# calibration='class' on half of the rows: 15 of each class, fewer than tpr=0.95 needs
@pytest.mark.filterwarnings("ignore:Too few calibration rows:"
                            "skood.conformal.SmallCalibrationWarning")
def test_pickle_joblib_clone_and_search_keep_the_calibration(fitted, blobs, tmp_path):
    X, y, X_aux = blobs
    data = np.r_[X[:50], X_aux[:50]]
    expected = fitted.ood_pvalues(data)
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(fitted)).ood_pvalues(data), expected)
    joblib.dump(fitted, tmp_path / "model.joblib")
    np.testing.assert_array_equal(joblib.load(tmp_path / "model.joblib").ood_pvalues(data),
                                  expected)
    cloned = clone(fitted)
    assert not hasattr(cloned, "calibration_scores_")
    labels = np.r_[y, -np.ones(len(X_aux), dtype=int)]
    search = GridSearchCV(clone(fitted).set_params(max_epochs=2),
                          {"calibration": ["marginal", "class"]}, cv=StratifiedKFold(2),
                          scoring=make_ood_scorer("auroc"), error_score="raise")
    search.fit(np.r_[X, X_aux], labels)
    assert hasattr(search.best_estimator_, "calibration_scores_")
