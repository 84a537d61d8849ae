"""A model with a fitted detector saved and loaded: joblib, and ``save_params`` /
``load_params`` with ``f_detector`` (numpy arrays and JSON, no pickle), bit for bit."""
import json
import pickle

import joblib
import numpy as np
import pytest
from sklearn.exceptions import NotFittedError

from skood import GradRegOODClassifier
from skood.detectors import DETECTORS, KNN, Fused
from skood.models import MLP

from test_estimator_detectors import Spy


@pytest.fixture(scope="module")
def data():
    from sklearn.datasets import load_digits
    X, y = load_digits(return_X_y=True)
    X = (X / 16.0).astype(np.float32)
    aux = np.random.RandomState(1).uniform(0, 1, size=(300, 64)).astype(np.float32)
    return X[:800], y[:800], X[800:], aux


def make(**params):
    defaults = dict(module=MLP, module__hidden=(32,), max_epochs=12, m_in=-12.0, m_out=-4.0,
                    random_state=0, verbose=0)
    return GradRegOODClassifier(**{**defaults, **params})


def rebuilt(**params):
    """An estimator built in code as the saved one was, its network initialised."""
    new = make(module__n_features=64, module__n_classes=10, **params)
    new.initialize()
    return new


def assert_same(loaded, clf, X_test):
    np.testing.assert_array_equal(loaded.score_samples(X_test), clf.score_samples(X_test))
    np.testing.assert_array_equal(loaded.ood_pvalues(X_test), clf.ood_pvalues(X_test))
    np.testing.assert_array_equal(loaded.predict_ood(X_test, fdr=0.1),
                                  clf.predict_ood(X_test, fdr=0.1))
    np.testing.assert_array_equal(loaded.calibration_scores_, clf.calibration_scores_)
    assert loaded.offset_ == clf.offset_
    if hasattr(clf, "class_offsets_"):
        np.testing.assert_array_equal(loaded.class_offsets_, clf.class_offsets_)


@pytest.mark.parametrize("name", list(DETECTORS))
def test_every_detector_round_trips_bit_for_bit(data, name, tmp_path):
    X, y, X_test, aux = data
    clf = make(detector=name, calibration="class", ood_tpr=0.5).fit(X, y, X_aux=aux)
    files = dict(f_params=tmp_path / "w.pt", f_calibration=tmp_path / "c.json")
    if name != "energy":
        files["f_detector"] = tmp_path / "d.npz"
    clf.save_params(**files)
    loaded = rebuilt(detector=name, calibration="class", ood_tpr=0.5)
    loaded.load_params(**files)
    assert_same(loaded, clf, X_test)
    assert type(getattr(loaded, "detector_", None)) is type(getattr(clf, "detector_", None))
    if name != "energy":
        # plain arrays and JSON: numpy reads the file without pickle
        with np.load(files["f_detector"], allow_pickle=False) as archive:
            assert all(archive[key].dtype != object for key in archive.files)
            record = json.loads(str(archive["record"]))
        assert record["detector"]["class"] == type(clf.detector_).__name__
    # joblib too
    joblib.dump(clf, tmp_path / "m.joblib")
    assert_same(joblib.load(tmp_path / "m.joblib"), clf, X_test)


def test_the_detector_file_restores_its_fitted_arrays_exactly(data, tmp_path):
    X, y, _, aux = data
    clf = make(detector=Fused(["energy", KNN(k=2), "vim"])).fit(X, y, X_aux=aux)
    clf.save_params(f_params=tmp_path / "w.pt", f_calibration=tmp_path / "c.json",
                    f_detector=tmp_path / "d.npz")
    loaded = rebuilt(detector=Fused(["energy", KNN(k=2), "vim"]))
    loaded.load_params(f_params=tmp_path / "w.pt", f_calibration=tmp_path / "c.json",
                       f_detector=tmp_path / "d.npz")
    saved, back = clf.detector_, loaded.detector_
    np.testing.assert_array_equal(back.calibration_scores_, saved.calibration_scores_)
    for member, original in zip(back.detectors_, saved.detectors_):
        assert type(member) is type(original)
        assert member.get_params() == original.get_params()
        for attribute, value in vars(original).items():
            restored = getattr(member, attribute)
            assert type(restored) is type(value), attribute
            np.testing.assert_array_equal(restored, value)


def test_refusals_name_the_fix_and_load_nothing(data, tmp_path):
    X, y, X_test, aux = data
    clf = make(detector="knn").fit(X, y, X_aux=aux)
    files = dict(f_params=tmp_path / "w.pt", f_calibration=tmp_path / "c.json",
                 f_detector=tmp_path / "d.npz")
    clf.save_params(**files)
    with pytest.raises(ValueError, match="f_detector goes with f_calibration"):
        clf.save_params(f_params=tmp_path / "w2.pt", f_detector=tmp_path / "d2.npz")
    energy = make().fit(X, y, X_aux=aux)
    with pytest.raises(ValueError, match="there is no f_detector file"):
        energy.save_params(**files)

    # another detector, or the same with other parameters, is refused before loading
    for detector, match in (("vim", "scored by KNN"), (KNN(k=3), "scored by KNN"),
                            ("energy", "scored by KNN")):
        other = rebuilt(detector=detector)
        weights = {k: v.clone() for k, v in other.module_.state_dict().items()}
        with pytest.raises(ValueError, match=match):
            other.load_params(**(files if detector != "energy" else
                                 {k: v for k, v in files.items() if k != "f_detector"}))
        assert all((other.module_.state_dict()[k] == v).all() for k, v in weights.items())
        with pytest.raises(NotFittedError):
            other.score_samples(X_test)
    with pytest.raises(ValueError, match="pass f_detector='detector.npz' too"):
        rebuilt(detector="knn").load_params(f_params=files["f_params"],
                                            f_calibration=files["f_calibration"])


def test_a_detector_file_is_checked_against_the_estimator_and_runs_no_pickle(data, tmp_path):
    X, y, _, aux = data
    clf = make(detector=KNN(k=2)).fit(X, y, X_aux=aux)
    clf.save_params(f_params=tmp_path / "w.pt", f_calibration=tmp_path / "c.json",
                    f_detector=tmp_path / "d.npz")
    other = make(detector=KNN(k=3)).fit(X, y, X_aux=aux)
    other.save_params(f_params=tmp_path / "w3.pt", f_calibration=tmp_path / "c3.json",
                      f_detector=tmp_path / "d3.npz")
    # the calibration of k=2 with the detector file of k=3: refused by the detector file
    with pytest.raises(ValueError, match=r"holds KNN\(k=3\)"):
        rebuilt(detector=KNN(k=2)).load_params(
            f_params=tmp_path / "w.pt", f_calibration=tmp_path / "c.json",
            f_detector=tmp_path / "d3.npz")
    # an archive holding a pickled object is refused unread
    np.savez(tmp_path / "evil.npz", record=np.array([{"format": "skood detector"}],
                                                    dtype=object))
    with pytest.raises(ValueError, match="not a detector file"):
        rebuilt(detector=KNN(k=2)).load_params(
            f_params=tmp_path / "w.pt", f_calibration=tmp_path / "c.json",
            f_detector=tmp_path / "evil.npz")
    with pytest.raises(ValueError, match="not a detector file"):
        rebuilt(detector=KNN(k=2)).load_params(
            f_params=tmp_path / "w.pt", f_calibration=tmp_path / "c.json",
            f_detector=tmp_path / "c.json")


@pytest.mark.filterwarnings("ignore::skood.exceptions.ChanceLevelWarning")
def test_detectors_that_are_not_plain_data_are_refused_before_writing(data, tmp_path):
    X, y, _, aux = data
    for detector, match in ((Spy(), "Spy detector cannot be written"),
                            (KNN(random_state=np.random.RandomState(0)), "random_state")):
        clf = make(detector=detector, max_epochs=1).fit(X, y, X_aux=aux)
        with pytest.raises(TypeError, match=match):
            clf.save_params(f_params=tmp_path / "w.pt", f_calibration=tmp_path / "c.json",
                            f_detector=tmp_path / "d.npz")
        assert not list(tmp_path.iterdir())
        pickle.loads(pickle.dumps(clf))         # such a model still pickles
