"""The estimator's ``detector`` parameter: which rows the detector is fitted on, and that
calibration, p-values and decisions use its scores."""
import pickle

import numpy as np
import pytest
import torch

from skood import GradRegOODClassifier, GradRegOODDetector
from skood.data import ArrayDataset
from skood.detectors import KNN, BaseDetector, Fused
from skood.models import MLP

# The spy's networks are not meant to learn: only the rows they see matter.
SPY_FIT = pytest.mark.filterwarnings("ignore::skood.exceptions.ChanceLevelWarning")
BUILT_IN = ["msp", "maxlogit", "mahalanobis", "knn", "vim", "react"]


@pytest.fixture(scope="module")
def digit_data():
    """Digits shuffled, split into training and held-out ID rows, with uniform noise as
    outliers and as OOD test rows."""
    from sklearn.datasets import load_digits
    X, y = load_digits(return_X_y=True)
    X = (X / 16.0).astype(np.float32)
    order = np.random.RandomState(0).permutation(len(X))
    X, y = X[order], y[order]
    rng = np.random.RandomState(1)
    aux = rng.uniform(0, 1, size=(500, 64)).astype(np.float32)
    noise = rng.uniform(0, 1, size=(300, 64)).astype(np.float32)
    return X[:1200], y[:1200], X[1200:], aux, noise


def digits_clf(cls=GradRegOODClassifier, **params):
    defaults = dict(module=MLP, module__hidden=(32,), max_epochs=10, m_in=-12.0, m_out=-4.0,
                    random_state=0, verbose=0)
    defaults.update(params)
    return cls(**defaults)


class Spy(BaseDetector):
    """Records the rows given to fit and to score (the features of a network whose last
    layer is its only one are its input rows)."""

    needs = frozenset({"features", "logits"})

    def _fit(self, features, logits, y, last_layer):
        self.fit_rows_ = features.numpy().copy()
        self.scored_ = []

    def _score(self, features, logits):
        self.scored_.append(features.numpy().copy())
        return logits.max(dim=1).values


def row_ids(rows):
    """The first column holds each row's id."""
    return set(np.round(rows[:, 0] * 10_000).astype(int).tolist())


def spy_data(n=400):
    rng = np.random.RandomState(0)
    X = rng.normal(size=(n, 5)).astype(np.float32)
    X[:, 0] = np.arange(n) / 10_000                    # a unique id per row
    y = (X[:, 1] > 0).astype(int)
    X_aux = rng.uniform(-6, 6, size=(100, 5)).astype(np.float32)
    X_aux[:, 0] = -1.0                                  # ids -10000: never an ID row's
    return X, y, X_aux


@SPY_FIT
@pytest.mark.parametrize("train_split", ["default", None])
def test_the_detector_sees_the_training_rows_only(train_split):
    X, y, X_aux = spy_data()
    params = {} if train_split == "default" else {"train_split": None}
    clf = GradRegOODClassifier(torch.nn.Linear, module__in_features=5, module__out_features=2,
                               detector=Spy(), max_epochs=2,
                               random_state=0, verbose=0, **params)
    clf.fit(X, y, X_aux=X_aux)
    fitted = row_ids(clf.detector_.fit_rows_)
    calibration = row_ids(clf.detector_.scored_[0])     # the first rows scored: in fit
    assert len(clf.detector_.scored_) == 1
    assert fitted.isdisjoint(calibration)
    assert fitted | calibration == set(range(len(X)))  # no outlier row, no row twice
    assert len(clf.detector_.fit_rows_) == len(fitted)
    held_out = 0.2 if train_split == "default" else 0.1   # ValidSplit(5) / calibration_fraction
    assert len(calibration) == round(held_out * len(X))
    assert len(clf.calibration_scores_) == len(calibration)
    # scoring new rows does not refit it
    clf.score_samples(X[:7])
    assert row_ids(clf.detector_.fit_rows_) == fitted


@SPY_FIT
def test_dataset_X_trains_the_detector_on_its_training_rows():
    X, y, X_aux = spy_data()
    clf = GradRegOODClassifier(torch.nn.Linear, module__in_features=5, module__out_features=2,
                               detector=Spy(), max_epochs=1,
                               train_split=None, random_state=0, verbose=0)
    clf.fit(ArrayDataset(X, y), X_aux=X_aux)
    fitted = row_ids(clf.detector_.fit_rows_)
    calibration = row_ids(clf.detector_.scored_[0])
    assert fitted.isdisjoint(calibration) and fitted | calibration == set(range(len(X)))


def test_default_energy_fits_no_detector_and_computes_no_features(digit_data, monkeypatch):
    import skood._scoring as scoring

    def never(*args, **kwargs):
        raise AssertionError("features were computed for the default energy score")

    monkeypatch.setattr(scoring, "capture_features", never)
    X, y, X_test, aux, _ = digit_data
    clf = digits_clf().fit(X, y, X_aux=aux)
    assert clf.detector == "energy" and not hasattr(clf, "detector_")
    clf.module_.eval()
    with torch.no_grad():
        logits = clf.module_(torch.from_numpy(X_test))
    expected = torch.logsumexp(logits.double(), dim=1).numpy()   # -energy at T = 1
    scores = clf.score_samples(X_test)
    assert scores.dtype == np.float32
    np.testing.assert_allclose(scores, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", BUILT_IN)
def test_each_built_in_detector_scores_digits_above_noise(digit_data, name):
    X, y, X_test, aux, noise = digit_data
    clf = digits_clf(detector=name).fit(X, y, X_aux=aux)
    assert type(clf.detector_).__name__.lower() == name
    id_scores, noise_scores = clf.score_samples(X_test), clf.score_samples(noise)
    assert id_scores.dtype == np.float32
    assert np.median(id_scores) > np.median(noise_scores)
    # the threshold belongs to this score: the decision is score - offset_
    np.testing.assert_array_equal(clf.ood_decision_function(X_test),
                                  id_scores - np.float32(clf.offset_))
    assert np.mean(clf.predict_ood(noise) == -1) > 0.5


def test_offset_accepts_about_ood_tpr_of_held_out_digits_with_knn(digit_data):
    X, y, X_test, aux, noise = digit_data
    clf = digits_clf(detector="knn", ood_tpr=0.9).fit(X, y, X_aux=aux)
    accepted = np.mean(clf.predict_ood(X_test) == 1)
    assert 0.84 <= accepted <= 0.97, accepted
    # p-values, BH and the per-class thresholds read the same scores
    pvalues = clf.ood_pvalues(X_test)
    expected = (1 + np.searchsorted(clf.calibration_scores_, clf.score_samples(X_test),
                                    side="right")) / (len(clf.calibration_scores_) + 1)
    np.testing.assert_allclose(pvalues, expected)
    assert np.mean(clf.predict_ood(noise, fdr=0.1) == -1) > 0.5
    clf.set_params(calibration="class", reject_ood=True)
    predicted = clf.predict(X_test)
    assert np.mean(predicted == -1) == pytest.approx(np.mean(clf.predict_ood(X_test) == -1))


def test_joblib_round_trip_is_bit_equal(digit_data):
    X, y, X_test, aux, _ = digit_data
    clf = digits_clf(detector=KNN(k=3)).fit(X, y, X_aux=aux)
    copy = pickle.loads(pickle.dumps(clf))
    assert copy.detector_ is not clf.detector_
    np.testing.assert_array_equal(copy.score_samples(X_test), clf.score_samples(X_test))
    np.testing.assert_array_equal(copy.calibration_scores_, clf.calibration_scores_)
    assert copy.offset_ == clf.offset_


def test_outlier_detector_class_takes_a_detector(digit_data):
    X, y, X_test, aux, noise = digit_data
    det = digits_clf(GradRegOODDetector, detector="mahalanobis")
    det.fit(X, y, X_aux=aux)
    assert np.mean(det.predict(noise) == -1) > np.mean(det.predict(X_test) == -1)


def test_a_calibration_file_without_the_detector_file_is_refused(digit_data, tmp_path):
    X, y, _, aux, _ = digit_data
    clf = digits_clf(detector="knn").fit(X, y, X_aux=aux)
    with pytest.raises(ValueError, match="pass f_detector='detector.npz' too"):
        clf.save_params(f_params=tmp_path / "w.pt", f_calibration=tmp_path / "c.json")
    assert not (tmp_path / "c.json").exists() and not (tmp_path / "w.pt").exists()


@pytest.mark.parametrize("detector, error, match", [
    ("knn_1", ValueError, "(?=.*'mahalanobis')(?=.*'fused')"),
    (KNN, TypeError, "pass an instance such as KNN()"),
    (object(), ValueError, "'knn'"),
    # a detector's own parameters are checked before training too
    (KNN(k=0), ValueError, "'k' parameter of KNN"),
    (Fused(rule="max"), ValueError, "'rule' parameter of Fused"),
])
def test_bad_detectors_are_refused_before_training(blobs, detector, error, match):
    X, y, X_aux = blobs
    clf = GradRegOODClassifier(MLP, detector=detector, max_epochs=1, verbose=0)
    with pytest.raises(error, match=match):
        clf.fit(X, y, X_aux=X_aux)
    assert not hasattr(clf, "module_")
