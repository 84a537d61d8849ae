"""``set_params(detector=...)`` on a fitted model: the detector is fitted again and the
thresholds recalibrated without training, and the model equals a fresh fit with that
detector and the same ``random_state``."""
import pickle
import warnings

import numpy as np
import pytest
import torch
from sklearn.exceptions import NotFittedError

from skood import GradRegOODClassifier, GradRegOODDetector
from skood.data import ArrayDataset
from skood.detectors import KNN, ViM
from skood.models import MLP
from skood.transforms import RandomHorizontalFlip

from test_estimator_detectors import Spy, row_ids, spy_data


@pytest.fixture(scope="module")
def data():
    from sklearn.datasets import load_digits
    X, y = load_digits(return_X_y=True)
    X = (X / 16.0).astype(np.float32)
    order = np.random.RandomState(0).permutation(len(X))
    X, y = X[order], y[order]
    aux = np.random.RandomState(1).uniform(0, 1, size=(400, 64)).astype(np.float32)
    return X[:900], y[:900], X[900:1300], aux


def make(cls=GradRegOODClassifier, **params):
    defaults = dict(module=MLP, module__hidden=(32,), max_epochs=8, m_in=-12.0, m_out=-4.0,
                    random_state=0, verbose=0)
    defaults.update(params)
    return cls(**defaults)


def assert_same_model(refit, fresh, X_test):
    """Scores, thresholds, p-values and decisions all equal, bit for bit."""
    np.testing.assert_array_equal(refit.score_samples(X_test), fresh.score_samples(X_test))
    np.testing.assert_array_equal(refit.calibration_scores_, fresh.calibration_scores_)
    np.testing.assert_array_equal(refit.calibration_classes_, fresh.calibration_classes_)
    assert refit.offset_ == fresh.offset_
    np.testing.assert_array_equal(refit.ood_pvalues(X_test), fresh.ood_pvalues(X_test))
    np.testing.assert_array_equal(refit.predict_ood(X_test), fresh.predict_ood(X_test))
    np.testing.assert_array_equal(refit.predict(X_test), fresh.predict(X_test))
    for name in ("class_offsets_",):
        assert hasattr(refit, name) == hasattr(fresh, name)
        if hasattr(fresh, name):
            np.testing.assert_array_equal(getattr(refit, name), getattr(fresh, name))


def test_each_detector_in_turn_equals_a_fresh_fit_with_it(data):
    X, y, X_test, aux = data
    clf = make().fit(X, y, X_aux=aux)
    weights = {k: v.clone() for k, v in clf.module_.state_dict().items()}
    epochs = len(clf.history_)
    for detector in ("knn", ViM(n_components=8), "fused", "mahalanobis", "msp", "energy"):
        clf.set_params(detector=detector)
        fresh = make(detector=detector).fit(X, y, X_aux=aux)
        assert_same_model(clf, fresh, X_test)
        assert type(getattr(clf, "detector_", None)) is type(getattr(fresh, "detector_", None))
    # no training happened: the same weights and history
    assert len(clf.history_) == epochs
    for name, value in clf.module_.state_dict().items():
        assert torch.equal(value, weights[name])
    assert not hasattr(clf, "detector_")        # back to the energy: nothing fitted


def test_per_class_calibration_and_the_outlier_detector_class(data):
    X, y, X_test, aux = data
    det = make(GradRegOODDetector, calibration="class", ood_tpr=0.5).fit(X, y, X_aux=aux)
    det.set_params(detector="knn")
    fresh = make(GradRegOODDetector, calibration="class", ood_tpr=0.5,
                 detector="knn").fit(X, y, X_aux=aux)
    assert_same_model(det, fresh, X_test)
    assert det.class_offsets_.shape == (10,)
    np.testing.assert_array_equal(det.decision_function(X_test),
                                  fresh.decision_function(X_test))
    # with the thresholds' parameters in the same call
    det.set_params(detector="mahalanobis", ood_tpr=0.9, calibration="marginal")
    fresh = make(GradRegOODDetector, detector="mahalanobis", ood_tpr=0.9).fit(X, y, X_aux=aux)
    assert_same_model(det, fresh, X_test)


def test_a_dataset_whose_transform_draws_from_torch_reads_the_same_augmentations(data):
    # Training, the detector's rows and the calibration rows are all read through the
    # flip, which draws from torch's global generator: the refit must draw the same flips
    # (torch's state at the end of training is replayed).
    X, y, X_test, aux = data
    images = X.reshape(-1, 1, 8, 8)
    train = ArrayDataset(images, y, transform=RandomHorizontalFlip())
    aux_images = aux.reshape(-1, 1, 8, 8)
    clf = make(module__n_features=64).fit(train, X_aux=aux_images)
    before = torch.get_rng_state()
    clf.set_params(detector="knn")
    assert torch.equal(torch.get_rng_state(), before)    # the caller's stream is untouched
    fresh = make(module__n_features=64, detector="knn").fit(train, X_aux=aux_images)
    assert_same_model(clf, fresh, X_test.reshape(-1, 1, 8, 8))


def test_greg_plus_train_split_none_and_from_pretrained(data):
    X, y, X_test, aux = data
    params = dict(sampler="energy", train_split=None, max_epochs=4)
    clf = make(**params).fit(X, y, X_aux=aux)
    clf.set_params(detector=KNN(k=2))
    assert_same_model(clf, make(detector=KNN(k=2), **params).fit(X, y, X_aux=aux), X_test)

    def tuned(**extra):
        return GradRegOODClassifier.from_pretrained(clf, lr=0.01, max_epochs=2, m_in=-12.0,
                                                    m_out=-4.0, random_state=1, verbose=0,
                                                    **extra)

    fine = tuned().fit(X, y, X_aux=aux)
    fine.set_params(detector="vim")
    assert_same_model(fine, tuned(detector="vim").fit(X, y, X_aux=aux), X_test)


def test_after_partial_fit_the_detector_reads_the_last_calls_rows(data):
    # partial_fit fits the detector on the training rows of its own call (the network has
    # changed since the earlier calls' rows were read): a refit does the same, so it
    # equals the same calls made with that detector.
    X, y, X_test, aux = data
    clf = make().fit(X[:500], y[:500], X_aux=aux)
    clf.partial_fit(X[500:], y[500:], X_aux=aux)
    clf.set_params(detector="knn")
    fresh = make(detector="knn").fit(X[:500], y[:500], X_aux=aux)
    fresh.partial_fit(X[500:], y[500:], X_aux=aux)
    assert_same_model(clf, fresh, X_test)
    assert clf.detector_.train_features_.shape[0] == round(0.8 * 400)  # the last call's rows


@pytest.mark.filterwarnings("ignore::skood.exceptions.ChanceLevelWarning")
def test_the_new_detector_sees_the_training_rows_only():
    X, y, X_aux = spy_data()
    clf = GradRegOODClassifier(torch.nn.Linear, module__in_features=5, module__out_features=2,
                               max_epochs=2, random_state=0, verbose=0).fit(X, y, X_aux=X_aux)
    clf.set_params(detector=Spy())
    fitted = row_ids(clf.detector_.fit_rows_)
    calibration = row_ids(clf.detector_.scored_[0])
    assert fitted.isdisjoint(calibration) and fitted | calibration == set(range(len(X)))
    assert len(calibration) == len(clf.calibration_scores_) == 80


def test_the_rows_are_not_pickled_and_a_loaded_model_is_left_unfitted_with_a_warning(data):
    X, y, X_test, aux = data
    clf = make(detector="knn").fit(X, y, X_aux=aux)
    saved = pickle.dumps(clf)
    loaded = pickle.loads(saved)
    # the loaded model keeps no rows (below), and pickles to the same size (within pickle's
    # bookkeeping): the rows, X alone 230 kB, were never in the file
    assert abs(len(pickle.dumps(loaded)) - len(saved)) < 1000 and len(saved) < X.nbytes
    np.testing.assert_array_equal(loaded.score_samples(X_test), clf.score_samples(X_test))
    with pytest.warns(UserWarning, match=r"set_params\(detector='vim'\) left the model unfitted"):
        loaded.set_params(detector="vim")
    with pytest.raises(NotFittedError, match="does not keep them"):
        loaded.score_samples(X_test)
    # a fit makes it whole again
    assert_same_model(loaded.fit(X, y, X_aux=aux), make(detector="vim").fit(X, y, X_aux=aux),
                      X_test)
    # the same value again changes nothing, loaded or not
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        pickle.loads(saved).set_params(detector="knn")


def test_a_refused_detector_changes_nothing(data):
    X, y, X_test, aux = data
    clf = make().fit(X, y, X_aux=aux)
    scores, offset = clf.score_samples(X_test), clf.offset_
    with pytest.raises(ValueError, match="k=100000"):
        clf.set_params(detector=KNN(k=100_000))
    assert clf.detector == "energy" and not hasattr(clf, "detector_")
    np.testing.assert_array_equal(clf.score_samples(X_test), scores)
    assert clf.offset_ == offset
    with pytest.raises(ValueError, match="'knn'"):
        clf.set_params(detector="nearest")
    assert clf.detector == "energy"


def test_other_refit_parameters_in_the_same_call_still_unfit(data):
    X, y, X_test, aux = data
    clf = make().fit(X, y, X_aux=aux)
    clf.set_params(detector="knn", temperature=2.0)
    assert not hasattr(clf, "offset_") and not hasattr(clf, "detector_")
    with pytest.raises(NotFittedError, match="temperature=2.0"):
        clf.predict_ood(X_test)


def test_the_accelerate_class_refits_the_detector_alone(data):
    accelerate = pytest.importorskip("accelerate")
    from skood.distributed import AcceleratedGradRegOODClassifier
    X, y, X_test, aux = data

    def accelerated(**params):
        return make(AcceleratedGradRegOODClassifier, penalty="fd", max_epochs=5,
                    accelerator=accelerate.Accelerator(cpu=True), **params)

    clf = accelerated().fit(X, y, X_aux=aux)
    clf.set_params(detector="fused")
    assert_same_model(clf, accelerated(detector="fused").fit(X, y, X_aux=aux), X_test)
