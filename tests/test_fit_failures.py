"""Fits that fail: non-finite outputs caught where they arise, bad Dataset items and
calibration files named, and the other clear errors of a failing fit or load."""
import doctest
import io
import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.datasets import load_digits

from skood import ChanceLevelWarning, GradRegOODClassifier, NonFiniteLossError
from skood.data import ArrayDataset
from skood.exceptions import NonFiniteOutputError, UnseededModuleWarning
from skood.models import MLP

# The failure cases train tiny networks for an epoch or two, on purpose: what they test is
# the error or the check, not learning, so a fit that ends at chance is no finding here.
pytestmark = pytest.mark.filterwarnings("ignore::skood.exceptions.ChanceLevelWarning")


@pytest.fixture(scope="module")
def data():
    X, y = load_digits(return_X_y=True)
    X = (X / 16).astype("float32")[:300]
    rng = np.random.RandomState(0)
    A = rng.uniform(0, 1, size=(200, 64)).astype("float32")
    return X, y[:300], A


def make(**params):
    params = {"module__hidden": (32,), "max_epochs": 1, "m_in": -12.0, "m_out": -4.0,
              "random_state": 0, "verbose": 0, **params}
    return GradRegOODClassifier(MLP, **params)


@pytest.mark.filterwarnings("ignore::skood.ChanceLevelWarning")
def test_non_finite_scores_after_finite_training_name_the_cause(data):
    X, y, A = data
    clf = make(lr=1e20, batch_size=1000)
    with pytest.raises(NonFiniteOutputError, match=r"finite losses on the training rows") as info:
        clf.fit(X, y, X_aux=A)
    assert isinstance(info.value, NonFiniteLossError)
    message = str(info.value)
    assert "BatchNorm" in message and "lr=1e+20" in message and "unfitted" in message
    assert not hasattr(clf, "offset_")
    with pytest.raises(Exception, match="not fitted"):
        clf.predict(X[:2])


def test_nan_in_a_held_out_dataset_item_is_bad_data_naming_the_item(data):
    X, y, A = data
    Xn = X.copy()
    Xn[5, 5] = np.nan
    # train_split keeps item 5 among the held-out rows: the calibration rows read it
    def split(dataset, y=None):
        return (torch.utils.data.Subset(dataset, range(6, len(dataset))),
                torch.utils.data.Subset(dataset, range(6)))

    clf = make(train_split=split)
    with pytest.raises(ValueError, match=r"item 5 of X") as info:
        clf.fit(ArrayDataset(Xn, y), None, X_aux=A)
    assert not isinstance(info.value, NonFiniteLossError)
    assert not hasattr(clf, "offset_")


class DictItems(torch.utils.data.Dataset):
    def __init__(self, X, y):
        self.X, self.y = X, y

    def __len__(self):
        return len(self.X)

    def __getitem__(self, i):
        return {"x": self.X[i], "y": self.y[i]}


class ShapeChanges(DictItems):
    def __getitem__(self, i):
        return (self.X[i] if i != 7 else self.X[i][:32]), self.y[i]


class LogitsAndFeatures(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.features = torch.nn.Linear(64, 16)
        self.head = torch.nn.Linear(16, 10)

    def forward(self, x):
        h = torch.relu(self.features(x))
        return self.head(h), h


class StringSynthesizer:
    def make_outliers(self, X, y=None, random_state=None):
        return np.array([["a"] * 64] * 10)

    def get_params(self, deep=True):
        return {}


def test_dict_items_are_refused_naming_the_item_type(data):
    X, y, A = data
    with pytest.raises(ValueError, match=r"\(sample, label\) tuples or a sample.*a dict"):
        make().fit(DictItems(X, y), None, X_aux=A)


def test_a_sample_of_another_shape_names_x_and_its_item(data):
    X, y, A = data
    with pytest.raises(ValueError, match=r"X's item 7 has a sample of shape \(32,\)"):
        make().fit(ShapeChanges(X, y), None, X_aux=A)


def test_module_returning_logits_and_features_fits_with_the_default_split(data):
    X, y, A = data
    clf = GradRegOODClassifier(LogitsAndFeatures, max_epochs=2, m_in=-12.0, m_out=-4.0,
                               verbose=0, random_state=0).fit(X, y, X_aux=A)
    assert np.isfinite(clf.history[-1, "valid_loss"])
    assert clf.predict(X[:4]).shape == (4,)


def test_a_synthesizer_returning_strings_is_named(data):
    X, y, _ = data
    with pytest.raises(ValueError, match=r"not numbers.*synthesizer is .*StringSynthesizer"):
        make(synthesizer=StringSynthesizer()).fit(X, y)


@pytest.fixture(scope="module")
def saved(data, tmp_path_factory):
    X, y, A = data
    folder = tmp_path_factory.mktemp("saved")
    make().fit(X, y, X_aux=A).save_params(f_params=folder / "w.pt",
                                          f_calibration=folder / "c.json")
    return folder


def rebuilt():
    return GradRegOODClassifier(MLP, module__hidden=(32,), module__n_features=64,
                                module__n_classes=10, verbose=0).initialize()


def test_a_calibration_whose_classes_do_not_match_the_network_is_refused_at_load(saved):
    record = json.loads((saved / "c.json").read_text())
    record["classes"] = list(range(5))
    (saved / "c5.json").write_text(json.dumps(record))
    clf = rebuilt()
    with pytest.raises(ValueError, match=r"5 classes.*logits of shape \(10,\)"):
        clf.load_params(f_params=saved / "w.pt", f_calibration=saved / "c5.json")
    assert not hasattr(clf, "offset_")


def test_a_calibration_file_missing_a_key_names_the_key_and_the_file(saved):
    record = json.loads((saved / "c.json").read_text())
    del record["calibration_scores"]
    (saved / "missing.json").write_text(json.dumps(record))
    with pytest.raises(ValueError, match=r"missing\.json.*lacks the key 'calibration_scores'"):
        rebuilt().load_params(f_params=saved / "w.pt", f_calibration=saved / "missing.json")


@pytest.fixture(scope="module")
def fitted(data):
    X, y, A = data
    return make().fit(X, y, X_aux=A)


def test_a_dataset_item_with_nan_at_inference_is_refused_naming_the_item(data, fitted):
    X, _, _ = data
    Xn = X[:5].copy()
    Xn[2, 0] = np.nan
    with pytest.raises(ValueError, match=r"item 2 of X"):
        fitted.score_samples(ArrayDataset(Xn))
    assert np.isfinite(fitted.score_samples(ArrayDataset(X[:5]))).all()


def test_set_params_with_the_same_value_of_another_type_keeps_the_model_fitted(data):
    X, y, A = data
    clf = make().fit(X, y, X_aux=A)
    clf.set_params(temperature=np.float64(1.0), ood_tpr=np.float32(0.95))
    assert hasattr(clf, "offset_")
    clf.set_params(temperature=np.float64(2.0))
    assert not hasattr(clf, "offset_")


@pytest.mark.filterwarnings("ignore::skood.conformal.SmallCalibrationWarning")
def test_class_calibration_pvalues_agree_with_thresholds_on_small_classes(data):
    X, y, A = data
    # 60 calibration rows for 10 classes: every class is below the 19 rows tpr=0.95 needs
    clf = make(calibration="class", max_epochs=3).fit(X, y, X_aux=A)
    Xt = np.concatenate([X, A])
    accepted = clf.predict_ood(Xt) == 1
    assert (clf.ood_pvalues(Xt) > 1 - clf.ood_tpr).tolist() == accepted.tolist()
    assert 0 < accepted.sum() < len(Xt)


def test_chance_level_hint_quotes_the_fits_own_settings(data):
    X, y, A = data
    with pytest.warns(ChanceLevelWarning, match=r"this fit: SGD with lr=1e-06 and momentum=0\.5"):
        make(lr=1e-6, optimizer__momentum=0.5).fit(X, y, X_aux=A)


def test_a_module_instance_with_random_state_warns_and_from_pretrained_does_not(data):
    X, y, A = data
    module = torch.nn.Sequential(torch.nn.Linear(64, 10))
    with pytest.warns(UnseededModuleWarning, match=r"module instance \(Sequential\)"):
        make_instance = GradRegOODClassifier(module, max_epochs=1, verbose=0, random_state=0)
        make_instance.fit(X, y, X_aux=A)
    pretrained = clone(GradRegOODClassifier.from_pretrained(module, max_epochs=1, verbose=0,
                                                            random_state=0))
    with warnings.catch_warnings():
        warnings.simplefilter("error", UnseededModuleWarning)
        pretrained.fit(X, y, X_aux=A)


def test_the_estimators_docstring_example_gives_equal_scores_in_two_processes():
    examples = doctest.DocTestParser().get_examples(GradRegOODClassifier.__doc__)
    code = "".join(example.source for example in examples)
    code = ("import warnings\nwarnings.simplefilter('error')\n" + code
            + "print(repr(clf.score_samples(X).tolist()))\n")
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1]),
           "OMP_NUM_THREADS": "1"}
    outputs = [subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                              env=env, timeout=300, check=True).stdout
               for _ in range(2)]
    assert outputs[0] == outputs[1]
    assert len(eval(outputs[0])) == 200     # one score per row of X, as printed


class TerminalLike(io.StringIO):
    def isatty(self):
        return True


def test_the_default_print_log_writes_colour_codes_only_to_a_terminal(data, monkeypatch):
    X, y, A = data
    captured = io.StringIO()
    monkeypatch.setattr(sys, "stdout", captured)
    make(max_epochs=2, verbose=1).fit(X, y, X_aux=A)
    assert "valid_loss" in captured.getvalue() and "\x1b[" not in captured.getvalue()
    terminal = TerminalLike()
    monkeypatch.setattr(sys, "stdout", terminal)
    make(max_epochs=2, verbose=1).fit(X, y, X_aux=A)
    assert "\x1b[" in terminal.getvalue()
