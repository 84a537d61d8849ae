"""Regression tests for the defects of a QA sweep: each fails without its fix."""
import warnings


import numpy as np
import pytest
import torch
from sklearn.utils._param_validation import InvalidParameterError

from skood import GradRegOODClassifier
from skood.models import MLP

# The fits below train one epoch on 60 rows: they end at chance level, and with the
# default ood_tpr=0.95 their 12 calibration rows are too few for a threshold. These tests
# check other things.
pytestmark = [pytest.mark.filterwarnings("ignore::skood.exceptions.ChanceLevelWarning"),
              pytest.mark.filterwarnings("ignore::skood.conformal.SmallCalibrationWarning")]

rng = np.random.RandomState(0)
X = rng.normal(size=(60, 6)).astype("float32")
y = np.repeat([0, 1, 2], 20)
XA = rng.uniform(-6, 6, size=(30, 6)).astype("float32")


def clf(**params):
    return GradRegOODClassifier(**{**dict(module=MLP, module__hidden=(8,), max_epochs=1,
                                          verbose=0, random_state=0, batch_size=16), **params})


@pytest.fixture
def fitted():
    return clf(ood_tpr=0.8).fit(X, y, X_aux=XA)


def _state(model):
    return (model.get_params(deep=False).copy(), model.offset_,
            model.calibration_scores_.copy(), model.predict_ood(X), model.score_samples(X),
            [p.detach().clone() for p in model.module_.parameters()])


def _assert_unchanged(model, state):
    params, offset, scores, decisions, samples, weights = state
    now = model.get_params(deep=False)
    assert now.keys() == params.keys()
    for name, value in params.items():
        assert now[name] is value or now[name] == value, name
    assert model.offset_ == offset
    np.testing.assert_array_equal(model.calibration_scores_, scores)
    np.testing.assert_array_equal(model.predict_ood(X), decisions)
    np.testing.assert_array_equal(model.score_samples(X), samples)
    for old, new in zip(weights, model.module_.parameters()):
        assert torch.equal(old, new)


# D1, D2, D3: a refused set_params changes nothing
@pytest.mark.parametrize("params, error, match", [
    (dict(ood_tpr=0.5, foo=1), ValueError, "Invalid parameter 'foo'"),
    (dict(temperature=3, foo=1), ValueError, "Invalid parameter 'foo'"),
    (dict(module__hidden=(4,), foo__bar=1), ValueError, "foo__bar"),
    (dict(ood_tpr=1.5), InvalidParameterError, "ood_tpr"),
    (dict(calibration="bogus"), InvalidParameterError, "calibration"),
    (dict(lr=0.1, lambda_grad=-1), InvalidParameterError, "lambda_grad"),
    (dict(sampler="energy", sampler__n_clusters=2), ValueError, "sampler__"),
])
def test_refused_set_params_changes_nothing(fitted, params, error, match):
    state = _state(fitted)
    with pytest.raises(error, match=match):
        fitted.set_params(**params)
    _assert_unchanged(fitted, state)


def _assert_refit_refused(model, error, match, **fit):
    state = _state(model)
    with pytest.raises(error, match=match):
        model.fit(**{"X": X, "y": y, "X_aux": XA, **fit})
    _assert_unchanged(model, state)


# D4: unknown fit parameters are named before anything changes
def test_unknown_fit_parameter_is_named(fitted):
    _assert_refit_refused(fitted, TypeError, r"'foo'.*\['epochs'\]", foo=1)


# D5: an unusable device is refused before anything changes
@pytest.mark.parametrize("device", ["bogus"] + ([] if torch.cuda.is_available() else ["cuda"]))
def test_unusable_device_is_refused(fitted, device):
    # on a fitted model set_params moves the network there, so it refuses first
    with pytest.raises(ValueError, match=f"device '{device}' cannot be used here"):
        fitted.set_params(device=device)
    assert fitted.device != device
    assert hasattr(fitted, "offset_")
    # on an unfitted model (scikit-learn's convention: set_params checks no value), fit does
    model = clf().set_params(device=device)
    with pytest.raises(ValueError, match=f"device '{device}' cannot be used here"):
        model.fit(X, y, X_aux=XA)


# D6: a batch size of any integer type
def test_numpy_integer_batch_size(fitted):
    from sklearn.model_selection import GridSearchCV
    model = clf(batch_size=np.int64(16)).fit(X, y, X_aux=XA)
    reference = clf(batch_size=16).fit(X, y, X_aux=XA)
    np.testing.assert_array_equal(model.score_samples(X), reference.score_samples(X))
    expected = fitted.predict(X)
    np.testing.assert_array_equal(fitted.set_params(batch_size=np.int64(8)).predict(X), expected)
    search = GridSearchCV(clf(), {"batch_size": np.array([8, 16])}, cv=2).fit(X, y, X_aux=XA)
    assert search.best_params_["batch_size"] in (8, 16)


# D12: too few rows for the default validation split
@pytest.mark.parametrize("n", [4, 8])
def test_too_few_rows_for_validation_split(fitted, n):
    with pytest.raises(ValueError, match=r"at least 5 rows per class.*train_split=None"):
        clf().fit(X[:n], [0, 1] * (n // 2), X_aux=XA)
    state = _state(fitted)
    with pytest.raises(ValueError, match="at least 5 rows per class"):
        fitted.fit(X[:n], [0, 1] * (n // 2), X_aux=XA)
    _assert_unchanged(fitted, state)


def _rebuilt():
    return clf(module__n_features=6, module__n_classes=3, ood_tpr=0.8).initialize()


# D7: a calibration is never loaded onto other weights
def test_calibration_without_weights_is_refused(fitted, tmp_path):
    fitted.save_params(f_params=tmp_path / "w.pt", f_calibration=tmp_path / "c.json")
    new = _rebuilt()
    with pytest.raises(ValueError, match="f_params='weights.pt', f_calibration="):
        new.load_params(f_calibration=tmp_path / "c.json")
    assert not hasattr(new, "offset_")
    new.load_params(f_params=tmp_path / "w.pt", f_calibration=tmp_path / "c.json")
    np.testing.assert_array_equal(new.predict_ood(X), fitted.predict_ood(X))


# D9: a binary file is named as foreign, as a JSON one is
@pytest.mark.parametrize("content", [b"\x80garbage", b"{not json"])
def test_foreign_calibration_file_is_named(fitted, tmp_path, content):
    fitted.save_params(f_params=tmp_path / "w.pt")
    (tmp_path / "g.json").write_bytes(content)
    with pytest.raises(ValueError, match="not a calibration file written by save_params"):
        _rebuilt().load_params(f_params=tmp_path / "w.pt", f_calibration=tmp_path / "g.json")


# D8: an n_train too small to keep every known class is refused before any data is loaded
@pytest.mark.parametrize("n_train, protocol, least", [("3", "heldout", 60), ("12", "heldout", 60),
                                                      ("99", "full", 100)])
def test_benchmark_refuses_too_few_training_rows(capsys, n_train, protocol, least):
    from skood.cli import main
    with pytest.raises(SystemExit) as stop:
        main(["benchmark", "--splits", "1", "--protocol", protocol, "--n-train", n_train,
              "--epochs", "1", "--methods", "ce", "--quiet"])
    assert stop.value.code == 2
    assert f"--n-train must be at least {least}" in capsys.readouterr().err


# D22: a cap above the rows available is said, on the console and in the report
def test_benchmark_says_when_n_train_exceeds_the_rows(capsys, tmp_path):
    from skood.cli import main
    main(["benchmark", "--splits", "1", "--epochs", "1", "--methods", "ce", "--n-train",
          "999999", "--n-aux", "30", "--n-ood", "10", "--quiet", "--out", str(tmp_path)])
    out = capsys.readouterr().out
    line = next(line for line in out.splitlines() if line.startswith("n_train=999999"))
    used = int(line.split("so all are used: ")[1].split()[0])
    assert 0 < used < 999999
    assert line in (tmp_path / "results.md").read_text()
    assert "n_test=" not in out


# D10: EnergySampler's two_way is a bool
@pytest.mark.parametrize("two_way", [None, "yes"])
def test_energy_sampler_two_way_must_be_bool(two_way):
    from skood import EnergySampler
    with pytest.raises(ValueError, match="two_way must be True or False"):
        clf(sampler=EnergySampler(n_clusters=2, two_way=two_way)).fit(X, y, X_aux=XA)


# D11: the message says how many classes y needs
def test_heldout_split_names_the_classes_needed():
    from skood.model_selection import HeldOutClassSplit
    with pytest.raises(ValueError, match=r"at least 3 classes \(n_heldout \+ 2") as error:
        next(HeldOutClassSplit(n_splits=1, n_heldout=1).split(np.zeros((10, 1)),
                                                               np.repeat([0, 1], 5)))
    assert "n_heldout <= 0" not in str(error.value)


# D13: an OOD scorer says it needs score_samples
def test_ood_scorer_needs_score_samples():
    from sklearn.linear_model import LogisticRegression
    from skood import make_ood_scorer
    model = LogisticRegression().fit(X, y)
    with pytest.raises(TypeError, match="needs an estimator with score_samples"):
        make_ood_scorer("auroc")(model, X, np.where(y == 2, 9, y))


# D17: int labels against str classes name the type mismatch
def test_label_and_class_types_mismatch_is_named():
    with pytest.raises(ValueError, match=r"y holds numbers .* classes are strings"):
        clf(classes=["0", "1", "2"]).fit(X, y, X_aux=XA)


# D18: partial_fit's classes is an array-like
def test_partial_fit_refuses_scalar_classes(fitted):
    with pytest.raises(ValueError, match="must be an array-like of all the classes"):
        clf().partial_fit(X, y, classes=3, X_aux=XA)
    with pytest.raises(ValueError, match="must be an array-like of all the classes"):
        fitted.partial_fit(X, y, classes=3, X_aux=XA)


# D19: the class Notes put the >= 0 rule on ood_decision_function
def test_notes_put_the_acceptance_rule_on_ood_decision_function():
    # whitespace-normalised, so that rewrapping the paragraph keeps the test's meaning
    notes = " ".join(GradRegOODClassifier.__doc__.split("Notes")[1].split())
    assert ":meth:`decision_function` is ``>= 0``" not in notes
    assert ":meth:`ood_decision_function` is ``>= 0`` for accepted" in notes


# D20: the detector names predict
def test_unfitted_detector_names_predict():
    from sklearn.exceptions import NotFittedError
    from skood import GradRegOODDetector
    with pytest.raises(NotFittedError, match="before predict\\.") as error:
        GradRegOODDetector(MLP).predict(X)
    assert "predict_ood" not in str(error.value)


# D23: numbers in warnings are plain
def test_lonely_class_warning_has_plain_numbers():
    X_small = np.r_[X[:20], X[20:40], X[40:41]]
    y_small = np.r_[np.zeros(20, int), np.ones(20, int), [7]]
    with pytest.warns(UserWarning, match=r"classes \[7\] have a single"):
        clf(train_split=None).fit(X_small, y_small, X_aux=XA)


# D25: initialize without data says what to pass; the CLI's article
def test_initialize_without_data_names_module_parameters():
    with pytest.raises(TypeError, match="module__n_classes=..., module__n_features=..., or "
                                        r"call fit\(X, y"):
        clf().initialize()


def test_cli_integer_option_message_says_an_integer(capsys):
    from skood.cli import main
    with pytest.raises(SystemExit):
        main(["benchmark", "--pool-factor", "1.5"])
    err = capsys.readouterr().err
    assert "must be an integer above 0" in err and "a int" not in err


# D14, D15: the image generators check n and image_shape by name
@pytest.mark.parametrize("name", ["make_texture_images", "make_natural_image_outliers",
                                  "make_noise_images"])
@pytest.mark.parametrize("n, image_shape, match", [
    (3, (3, 7, 7), "image_shape must be a pair"), (3, (7,), "image_shape must be a pair"),
    (3, (0, 7), "image_shape must be a pair"), (-1, (7, 7), "n .the number of images. must"),
])
def test_image_generators_check_their_arguments(name, n, image_shape, match):
    from skood import datasets
    with pytest.raises(ValueError, match=match):
        getattr(datasets, name)(n, image_shape=image_shape)


# D16: resize_images checks the sides and the stack's shape
@pytest.mark.parametrize("images, image_shape, match", [
    (np.zeros((2, 7, 7)), (0, 3), "image_shape must be a pair"),
    (np.zeros((2, 6)), (3, 3), r"\(n, height, width\) or \(n, channels, height, width\)"),
])
def test_resize_images_checks_its_arguments(images, image_shape, match):
    from skood.datasets import resize_images
    with pytest.raises(ValueError, match=match):
        resize_images(images, image_shape)


# D21: the command line shows warnings as one line, without runpy's location
def test_cli_shows_warnings_without_a_meaningless_location(monkeypatch, capsys, tmp_path):
    import skood.cli
    from skood.exceptions import ChanceLevelWarning, warn_at_caller

    class Stop(Exception):
        pass

    def run(config, log=None):
        warn_at_caller("sweep D21 check", ChanceLevelWarning)
        raise Stop

    monkeypatch.setattr(skood.cli, "run", run)
    warnings.simplefilter("always", ChanceLevelWarning)     # pytest restores the filters
    with pytest.raises(Stop):
        skood.cli.main(["benchmark", "--splits", "1", "--quiet", "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert "warning: ChanceLevelWarning: sweep D21 check" in err
    assert "runpy" not in err and ".py:" not in err


# D24: a criterion that cannot take logits and class indices is named before training
@pytest.mark.parametrize("labels", [y, np.repeat([0, 1], 30)])
def test_criterion_for_logits_and_class_indices(labels):
    with pytest.raises(ValueError, match="criterion must take logits of shape"):
        clf(criterion=torch.nn.MSELoss).fit(X, labels, X_aux=XA)



# 30 outliers, fewer than a step needs: the sampler cannot select by energy; not what is
# checked here
@pytest.mark.filterwarnings(r"ignore:EnergySampler\(pool_factor=:UserWarning")
def test_a_call_refused_by_skorch_restores_nested_and_optimizer_settings():
    """Refused after the nested owners and the optimizer were changed in place (by skorch's
    check of module__bogus): their settings come back too."""
    from skood import EnergySampler
    m = GradRegOODClassifier(MLP, module__hidden=(8,), max_epochs=1, verbose=0, random_state=0,
                             batch_size=16, sampler=EnergySampler(n_clusters=2))
    m.fit(X, y, X_aux=XA)
    lr = m.optimizer_.param_groups[0]["lr"]
    with pytest.raises(TypeError):
        m.set_params(sampler__n_clusters=8, optimizer__lr=0.5, module__bogus=1)
    assert m.sampler.n_clusters == 2
    assert m.optimizer_.param_groups[0]["lr"] == lr


def test_partial_fit_after_an_unfitting_set_params_keeps_the_network_classes():
    m = GradRegOODClassifier(MLP, module__hidden=(8,), max_epochs=1, verbose=0, random_state=0,
                             batch_size=16)
    m.partial_fit(X, y, X_aux=XA)
    m.set_params(temperature=2.0)                      # the scores change: unfitted
    m.partial_fit(X[y < 2], y[y < 2], X_aux=XA)        # a batch of two of the three classes
    assert m.classes_.tolist() == [0, 1, 2]
    assert m.predict_proba(X).shape == (len(X), 3)
