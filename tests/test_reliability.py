"""A fitted model stays consistent; bad input gets a clear error; quiet problems warn.

Each test names the behaviour it pins down: what ``set_params`` does to a fitted
model for each kind of parameter, refused refits that leave the model as it
was, diverging fits, and the edge cases of labels, samplers and input arrays.
"""
import inspect
import json
import pathlib
import warnings

import numpy as np
import pytest
from sklearn.exceptions import NotFittedError
from sklearn.utils.validation import check_is_fitted

from skood import (
    ChanceLevelWarning,
    EnergySampler,
    GradRegOODClassifier,
    NonFiniteLossError,
)
from skood.conformal import class_conditional_thresholds, conformal_threshold
from skood.models import MLP

DOCS = pathlib.Path(__file__).resolve().parents[1] / "docs"


def fitted_state(clf, X):
    """Everything a fitted model answers with, to compare bit for bit."""
    return {"score_samples": clf.score_samples(X), "predict_proba": clf.predict_proba(X),
            "predict_ood": clf.predict_ood(X), "offset_": np.float64(clf.offset_),
            "calibration_scores_": clf.calibration_scores_.copy(),
            "n_features_in_": clf.n_features_in_, "input_shape_": clf.input_shape_}


def assert_same_state(before, after):
    assert before.keys() == after.keys()
    for name in before:
        np.testing.assert_array_equal(after[name], before[name], err_msg=name)


# -------------------------------------------------- set_params on a fitted model


@pytest.mark.parametrize("params, named", [
    (dict(module__hidden=(8,)), "module__hidden"),
    (dict(temperature=5.0), "temperature"),
    (dict(classes=["a", "b"]), "classes"),
])
def test_set_params_that_change_the_network_or_the_scores_unfit_the_model(
        make_clf, blobs, params, named):
    X, y, X_aux = blobs
    clf = make_clf().fit(X, y, X_aux=X_aux)
    clf.set_params(**params)
    for attribute in ("offset_", "calibration_scores_"):
        assert not hasattr(clf, attribute)
    with pytest.raises(NotFittedError, match=f"set_params.*{named}.*fit"):
        clf.predict_ood(X)
    for method in (clf.score_samples, clf.predict, clf.predict_proba, clf.ood_pvalues):
        with pytest.raises(NotFittedError, match=named):
            method(X)
    with pytest.raises(NotFittedError):
        check_is_fitted(clf)
    # a fit makes it whole again, with its own threshold
    clf.set_params(classes=None).fit(X, y, X_aux=X_aux)
    assert clf.offset_ == conformal_threshold(clf.calibration_scores_, clf.ood_tpr)
    check_is_fitted(clf)


class WideMLP(MLP):
    """An MLP with one hidden layer of 32 units, whatever ``hidden`` says."""

    def __init__(self, n_features, n_classes, hidden=None):
        super().__init__(n_features, n_classes, hidden=(32,))


def test_set_params_module_unfits_and_the_next_partial_fit_builds_it(make_clf, blobs):
    X, y, X_aux = blobs
    clf = make_clf().fit(X, y, X_aux=X_aux)
    clf.set_params(module=WideMLP)
    with pytest.raises(NotFittedError, match="module"):
        clf.score_samples(X)
    clf.partial_fit(X, y, X_aux=X_aux)
    assert isinstance(clf.module_, WideMLP)
    assert clf.offset_ == conformal_threshold(clf.calibration_scores_, clf.ood_tpr)


def test_ood_tpr_on_a_fitted_model_recomputes_the_threshold(make_clf, blobs):
    X, y, X_aux = blobs
    clf = make_clf().fit(X, y, X_aux=X_aux)
    scores = clf.score_samples(X)
    clf.set_params(ood_tpr=0.8)
    assert clf.offset_ == conformal_threshold(clf.calibration_scores_, 0.8)
    # the same as a model fitted with ood_tpr=0.8 from the start
    direct = make_clf(ood_tpr=0.8).fit(X, y, X_aux=X_aux)
    assert clf.offset_ == direct.offset_
    np.testing.assert_array_equal(clf.score_samples(X), scores)
    np.testing.assert_array_equal(clf.predict_ood(X), direct.predict_ood(X))


def test_calibration_on_a_fitted_model_recomputes_the_class_thresholds(make_clf, blobs):
    X, y, X_aux = blobs
    clf = make_clf().fit(X, y, X_aux=X_aux)
    clf.set_params(calibration="class")
    direct = make_clf(calibration="class").fit(X, y, X_aux=X_aux)
    np.testing.assert_array_equal(clf.class_offsets_, direct.class_offsets_)
    np.testing.assert_array_equal(clf.class_offsets_, class_conditional_thresholds(
        clf.calibration_scores_, clf.calibration_classes_, 2, clf.ood_tpr,
        small_class="marginal"))
    np.testing.assert_array_equal(clf.ood_pvalues(X), direct.ood_pvalues(X))
    np.testing.assert_array_equal(clf.predict_ood(X), direct.predict_ood(X))
    # and back: one marginal threshold again
    clf.set_params(calibration="marginal")
    assert not hasattr(clf, "class_offsets_")
    marginal = make_clf().fit(X, y, X_aux=X_aux)
    np.testing.assert_array_equal(clf.ood_pvalues(X), marginal.ood_pvalues(X))
    np.testing.assert_array_equal(clf.predict_ood(X), marginal.predict_ood(X))


@pytest.mark.parametrize("params", [
    # prediction-only
    dict(reject_ood=True), dict(batch_size=7), dict(verbose=1), dict(device="cpu"),
    dict(callbacks__chance_level_check=None),
    # training-only: they take effect at the next fit
    dict(lr=0.5), dict(max_epochs=9), dict(lambda_energy=0.5), dict(lambda_grad=0.0),
    dict(m_in=-9.0, m_out=-1.0), dict(sampler=EnergySampler(n_clusters=3)),
    dict(penalty="fd", fd_step=0.1, penalty_fraction=0.5), dict(aux_batch_ratio=2.0),
    dict(optimizer__momentum=0.5), dict(criterion__label_smoothing=0.1),
    dict(calibration_fraction=0.3), dict(random_state=3),
])
def test_other_parameters_leave_the_fitted_state_alone(make_clf, blobs, params):
    X, y, X_aux = blobs
    clf = make_clf().fit(X, y, X_aux=X_aux)
    before = fitted_state(clf, X)
    clf.set_params(**params)
    assert_same_state(before, fitted_state(clf, X))


def test_set_params_during_fit_keeps_the_fit_going(make_clf, blobs):
    from skorch.callbacks import Callback

    class LowerLr(Callback):
        def on_epoch_end(self, net, **kwargs):
            net.set_params(lr=0.01, temperature=1.0)

    X, y, X_aux = blobs
    clf = make_clf(callbacks=[("lower", LowerLr())]).fit(X, y, X_aux=X_aux)
    clf.partial_fit(X, y, X_aux=X_aux)
    assert clf.offset_ == conformal_threshold(clf.calibration_scores_, clf.ood_tpr)


# ------------------------------------------------------ refused refits, diverging fits


def test_a_refit_refused_by_the_input_checks_leaves_the_model_as_it_was(make_clf, blobs):
    X, y, X_aux = blobs
    clf = make_clf().fit(X, y, X_aux=X_aux)
    before = fitted_state(clf, X)
    wider = np.c_[X, X[:, :2]]
    with pytest.raises(ValueError, match="labels but X has"):
        clf.fit(wider, y[:-1], X_aux=np.c_[X_aux, X_aux[:, :2]])
    assert_same_state(before, fitted_state(clf, X))
    with pytest.raises(ValueError, match="not supported"):
        clf.fit(wider, y, X_aux=np.c_[X_aux, X_aux[:, :2]], sample_weight=np.ones(len(y)))
    assert_same_state(before, fitted_state(clf, X))


@pytest.mark.parametrize("lr", [1e20, float("nan")])
def test_a_diverging_fit_raises_non_finite_loss_error_and_leaves_the_documented_state(
        make_clf, blobs, lr):
    X, y, X_aux = blobs
    clf = make_clf(lr=lr)
    with pytest.raises(NonFiniteLossError) as info:
        clf.fit(X, y, X_aux=X_aux)
    assert info.value.__cause__ is None and info.value.__context__ is None
    if hasattr(clf, "offset_"):        # the last finite weights calibrate: a usable model
        assert np.isfinite(clf.offset_)
        assert np.all(np.isfinite(clf.score_samples(X)))
        assert "unfitted" not in str(info.value)
    else:                              # they do not: unfitted, and the error says so
        assert "unfitted" in str(info.value)
        with pytest.raises(NotFittedError, match="non-finite"):
            clf.predict(X)


def test_nan_learning_rate_leaves_the_model_unfitted(make_clf, blobs):
    X, y, X_aux = blobs
    clf = make_clf(lr=float("nan"))
    with pytest.raises(NonFiniteLossError, match="unfitted"):
        clf.fit(X, y, X_aux=X_aux)
    assert not hasattr(clf, "offset_")


# ------------------------------------------------------------ crashes made clear


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.uint32, np.uint64])
def test_unsigned_labels_can_be_rejected(make_clf, blobs, dtype):
    X, y, X_aux = blobs
    clf = make_clf(reject_ood=True).fit(X, y.astype(dtype) + 3, X_aux=X_aux)
    predicted = clf.predict(np.r_[X, X_aux])
    assert predicted.dtype.kind == "i"
    assert set(np.unique(predicted)) == {-1, 3, 4}


def test_energy_sampler_accepts_numpy_integers_and_random_states(make_clf, blobs):
    X, y, X_aux = blobs
    sampler = EnergySampler(n_clusters=np.int64(4), pool_factor=np.int32(3), n_init=np.int64(2),
                            max_iter=np.int16(5), random_state=np.random.RandomState(0))
    clf = make_clf(max_epochs=1, sampler=sampler).fit(X, y, X_aux=X_aux)
    assert np.isfinite(clf.offset_)
    for name in ("n_clusters", "pool_factor"):
        with pytest.raises(ValueError, match=name):
            make_clf(max_epochs=1, sampler=EnergySampler(**{name: True})).fit(
                X, y, X_aux=X_aux)
    with pytest.raises(ValueError, match="random_state"):
        make_clf(max_epochs=1, sampler=EnergySampler(random_state="zero")).fit(
            X, y, X_aux=X_aux)


def test_sample_weight_is_refused_by_name(make_clf, blobs):
    X, y, X_aux = blobs
    with pytest.raises(ValueError, match="sample_weight is not supported"):
        make_clf().fit(X, y, X_aux=X_aux, sample_weight=np.ones(len(y)))


def test_a_module_too_narrow_for_the_samples_names_module_n_features(digits):
    X, y = digits
    X_aux = np.random.RandomState(0).uniform(size=(100, 64)).astype(np.float32)
    clf = GradRegOODClassifier(MLP, module__n_features=32, module__n_classes=10, max_epochs=1,
                               verbose=0, random_state=0)
    with pytest.raises(ValueError, match=r"module__n_features=32.*64"):
        clf.fit(X[:200], y[:200], X_aux=X_aux)


# one epoch: the message is checked, not the fit
@pytest.mark.filterwarnings("ignore::skood.exceptions.ChanceLevelWarning")
def test_messages_write_the_sample_shape_as_a_tuple(digits):
    X, y = digits
    images = X[:300].reshape(-1, 8, 8)
    X_aux = np.random.RandomState(0).uniform(size=(100, 8, 8)).astype(np.float32)
    clf = GradRegOODClassifier(MLP, max_epochs=1, verbose=0, random_state=0)
    clf.fit(images, y[:300], X_aux=X_aux)
    with pytest.raises(ValueError, match=r"expects samples of shape \(8, 8\)"):
        clf.predict(X[:5])


def test_labels_mixing_numbers_and_strings_are_named(make_clf, blobs):
    X, y, X_aux = blobs
    mixed = np.array(["cat" if label == 0 else 1 for label in y], dtype=object)
    with pytest.raises(ValueError, match=r"mixes label types.*int.*str"):
        make_clf().fit(X, mixed, X_aux=X_aux)
    # -1, the outlier marker, may sit among string labels
    labels = np.r_[np.where(y == 0, "cat", "dog").astype(object), -np.ones(10, dtype=int)]
    make_clf(max_epochs=1).fit(np.r_[X, X_aux[:10]], labels, X_aux=X_aux)


# -------------------------------------------------------------- quieter problems


def test_max_epochs_zero_warns(make_clf, blobs):
    X, y, X_aux = blobs
    with pytest.warns(UserWarning, match="max_epochs=0") as record:
        make_clf(max_epochs=0).fit(X, y, X_aux=X_aux)
    assert {pathlib.Path(w.filename).name for w in record if "max_epochs" in str(w.message)} \
        == {"test_reliability.py"}


def test_a_pool_that_cannot_filter_warns_once(make_clf, blobs):
    X, y, X_aux = blobs
    clf = make_clf(max_epochs=2, sampler=EnergySampler(n_clusters=4, pool_factor=2))
    with pytest.warns(UserWarning, match="pool_factor") as record:
        clf.fit(X, y, X_aux=X_aux)
    pool_warnings = [w for w in record if "pool_factor" in str(w.message)]
    assert len(pool_warnings) == 1
    assert pathlib.Path(pool_warnings[0].filename).name == "test_reliability.py"
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=".*pool_factor.*")
        make_clf(max_epochs=1, sampler=EnergySampler(n_clusters=4, pool_factor=3)).fit(
            X, y, X_aux=X_aux)


def test_an_unstratified_calibration_split_warns_naming_the_class(make_clf, blobs):
    X, y, X_aux = blobs
    labels = np.where(y == 0, "cat", "dog").astype(object)
    labels[0] = "lonely"
    clf = make_clf(train_split=None, module__n_classes=3)
    with pytest.warns(UserWarning, match="stratification.*'lonely'"):
        clf.fit(X, labels, X_aux=X_aux)


def test_read_only_arrays_are_copied_without_a_warning(make_clf, blobs, tmp_path):
    X, y, X_aux = blobs
    path = tmp_path / "X.npy"
    np.save(path, X)
    X_read_only = np.load(path, mmap_mode="r")
    aux_read_only = X_aux.copy()
    aux_read_only.flags.writeable = False
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        clf = make_clf(max_epochs=1).fit(X_read_only, y, X_aux=aux_read_only)
        scores = clf.score_samples(X_read_only)
    np.testing.assert_array_equal(scores, clf.score_samples(X))


# one epoch a call: the classes are checked
@pytest.mark.filterwarnings("ignore::skood.exceptions.ChanceLevelWarning")
def test_partial_fit_honours_classes_on_the_first_call(make_clf, blobs):
    X, y, X_aux = blobs
    y3 = np.digitize(X[:, 0], [-1.5, 1.5])
    first = y3 < 2
    clf = make_clf(module__n_classes=3, max_epochs=1)
    clf.partial_fit(X[first], y3[first], classes=[0, 1, 2], X_aux=X_aux)
    np.testing.assert_array_equal(clf.classes_, [0, 1, 2])
    clf.partial_fit(X, y3, X_aux=X_aux)             # the third class comes later
    clf.partial_fit(X, y3, classes=[0, 1, 2], X_aux=X_aux)
    with pytest.raises(ValueError, match="classes"):
        clf.partial_fit(X, y3, classes=[0, 1], X_aux=X_aux)
    with pytest.raises(ValueError, match="-1"):
        make_clf().partial_fit(X, y, classes=[-1, 0, 1], X_aux=X_aux)


def test_chance_level_warning_points_at_the_fit_line(make_clf, blobs):
    X, _, X_aux = blobs
    noise = np.random.RandomState(0).randint(2, size=len(X))
    clf = make_clf(lr=1e-6, max_epochs=1)
    line = inspect.currentframe().f_lineno + 2
    with pytest.warns(ChanceLevelWarning) as record:
        clf.fit(X, noise, X_aux=X_aux)
    warning = next(w for w in record if w.category is ChanceLevelWarning)
    assert pathlib.Path(warning.filename).name == "test_reliability.py"
    assert warning.lineno == line


def test_conventions_state_the_aupr_integration_rule():
    text = (DOCS / "conventions.md").read_text()
    assert "are swapped relative to ours" not in text and "not\n  swapped" in text
    assert "trapezoidal" in text and "average precision" in text
    import skood.metrics
    assert "trapezoidal" in skood.metrics.__doc__


# ------------------------------------------------------------------ persistence


@pytest.mark.parametrize("calibration", ["marginal", "class"])
def test_save_and_load_params_carry_the_calibration(make_clf, blobs, tmp_path, calibration):
    X, y, X_aux = blobs
    labels = np.where(y == 0, 3, 7).astype(np.uint8)
    clf = make_clf(calibration=calibration).fit(X, labels, X_aux=X_aux)
    clf.save_params(f_params=tmp_path / "weights.pt", f_calibration=tmp_path / "calib.json")
    assert json.loads((tmp_path / "calib.json").read_text())     # plain JSON, no code

    new = make_clf(calibration=calibration).initialize()
    new.load_params(f_params=tmp_path / "weights.pt", f_calibration=tmp_path / "calib.json")
    assert new.offset_ == clf.offset_
    np.testing.assert_array_equal(new.classes_, clf.classes_)
    assert new.classes_.dtype == clf.classes_.dtype
    for method in ("score_samples", "predict", "predict_ood", "ood_pvalues", "predict_proba"):
        np.testing.assert_array_equal(getattr(new, method)(X), getattr(clf, method)(X))
    assert new.input_shape_ == (4,) and new.n_features_in_ == 4
    with pytest.raises(ValueError, match="expecting 4 features"):
        new.predict(X[:, :3])
    # scores depend on the temperature: a rebuilt model with another one is refused
    other = make_clf(temperature=2.0).initialize()
    with pytest.raises(ValueError, match="temperature"):
        other.load_params(f_params=tmp_path / "weights.pt", f_calibration=tmp_path / "calib.json")


def test_loading_weights_alone_into_a_fitted_model_unfits_it(make_clf, blobs, tmp_path):
    X, y, X_aux = blobs
    clf = make_clf().fit(X, y, X_aux=X_aux)
    make_clf(random_state=1).fit(X, y, X_aux=X_aux).save_params(f_params=tmp_path / "w.pt")
    clf.load_params(f_params=tmp_path / "w.pt")
    with pytest.raises(NotFittedError, match="f_calibration"):
        clf.predict_ood(X)


# one epoch: the other warning is checked
@pytest.mark.filterwarnings("ignore::skood.exceptions.ChanceLevelWarning")
def test_small_calibration_warning_points_at_the_fit_line(make_clf, blobs):
    from skood.conformal import SmallCalibrationWarning
    X, y, X_aux = blobs
    clf = make_clf(max_epochs=1, train_split=None, calibration_fraction=0.05)
    with pytest.warns(SmallCalibrationWarning) as record:
        clf.fit(X[::3], y[::3], X_aux=X_aux)
    names = {pathlib.Path(w.filename).name for w in record
             if w.category is SmallCalibrationWarning}
    assert names == {"test_reliability.py"}


def test_setting_a_parameter_to_its_current_value_keeps_the_model(make_clf, blobs):
    X, y, X_aux = blobs
    clf = make_clf().fit(X, y, X_aux=X_aux)
    before = fitted_state(clf, X)
    clf.set_params(temperature=clf.temperature, classes=None, ood_tpr=clf.ood_tpr)
    assert_same_state(before, fitted_state(clf, X))


def test_the_calibration_file_carries_feature_names_and_is_checked(make_clf, blobs, tmp_path):
    import pandas as pd
    X, y, X_aux = blobs
    frame = pd.DataFrame(X, columns=list("abcd"))
    clf = make_clf().fit(frame, y, X_aux=X_aux)
    clf.save_params(f_params=tmp_path / "w.pt", f_calibration=tmp_path / "c.json")
    new = make_clf().initialize()
    new.load_params(f_params=tmp_path / "w.pt", f_calibration=tmp_path / "c.json")
    np.testing.assert_array_equal(new.feature_names_in_, clf.feature_names_in_)
    np.testing.assert_array_equal(new.score_samples(frame), clf.score_samples(frame))
    with pytest.raises(ValueError, match="feature names"):
        new.score_samples(frame[list("dcba")])
    (tmp_path / "other.json").write_text(json.dumps({"offset_": 1.0}))
    with pytest.raises(ValueError, match="not a calibration file"):
        make_clf().initialize().load_params(f_calibration=tmp_path / "other.json")
    with pytest.raises(NotFittedError):
        make_clf().initialize().save_params(f_calibration=tmp_path / "none.json")


def test_a_refit_that_fails_after_rebuilding_the_network_leaves_the_model_unfitted(
        make_clf, blobs):
    X, y, X_aux = blobs
    clf = make_clf().fit(X, y, X_aux=X_aux)
    y3 = np.digitize(X[:, 0], [-1.5, 1.5])          # three classes for a 2-output module
    with pytest.raises(ValueError, match="module__n_classes=3"):
        clf.fit(X, y3, X_aux=X_aux)
    assert not hasattr(clf, "offset_")
    with pytest.raises(NotFittedError, match="last fit stopped with ValueError"):
        clf.predict(X)
