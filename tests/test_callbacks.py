"""The chance-level warning: fires on a fit that stays at chance, not on healthy fits."""
import warnings

import numpy as np
import pytest
from sklearn.datasets import load_digits

from skood import ChanceLevelWarning, GradRegOODClassifier
from skood.models import MLP


@pytest.fixture(scope="module")
def digits_and_outliers():
    X, y = load_digits(return_X_y=True)
    X = (X / 16.0).astype(np.float32)
    outliers = np.random.RandomState(0).uniform(0, 1, size=(1500, 64)).astype(np.float32)
    return X, y, outliers


def readme_network(**params):
    defaults = dict(lambda_grad=1.0, m_in=-12.0, m_out=-4.0, max_epochs=12, random_state=0,
                    verbose=0)
    return GradRegOODClassifier(MLP, **{**defaults, **params})


def test_a_fit_that_stays_at_chance_warns_with_the_likely_causes(digits_and_outliers):
    X, y, outliers = digits_and_outliers
    # skorch's own optimizer defaults: SGD, lr 0.01, no momentum (docs/tuning.md)
    clf = readme_network(lr=0.01, optimizer__momentum=0.0)
    with pytest.warns(ChanceLevelWarning, match="chance level.*learning rate.*m_in/m_out"):
        clf.fit(X, y, X_aux=outliers)
    assert clf.history[-1, "valid_acc"] < 0.2


def test_healthy_fits_do_not_warn(digits_and_outliers, make_clf, blobs):
    X, y, outliers = digits_and_outliers
    with warnings.catch_warnings():
        warnings.simplefilter("error", ChanceLevelWarning)
        readme_network().fit(X, y, X_aux=outliers)
        Xb, yb, Xb_aux = blobs
        make_clf(max_epochs=1).fit(Xb, yb, X_aux=Xb_aux)
        make_clf(max_epochs=2, train_split=None).fit(Xb, yb, X_aux=Xb_aux)


def test_the_warning_uses_training_accuracy_without_a_validation_split(digits_and_outliers):
    X, y, outliers = digits_and_outliers
    clf = readme_network(lr=0.01, optimizer__momentum=0.0, train_split=None)
    with pytest.warns(ChanceLevelWarning):
        clf.fit(X, y, X_aux=outliers)
    assert "valid_acc" not in clf.history[-1] or clf.history[-1].get("valid_acc") is None
    assert clf.history[-1, "train_acc"] < 0.2


def test_the_warning_can_be_switched_off(digits_and_outliers):
    X, y, outliers = digits_and_outliers
    clf = readme_network(lr=0.01, optimizer__momentum=0.0,
                         callbacks__chance_level_check=None)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ChanceLevelWarning)
        clf.fit(X, y, X_aux=outliers)


def test_terms_a_fit_does_not_compute_are_nan(make_clf, blobs):
    X, y, X_aux = blobs
    ce = make_clf(lambda_energy=0.0, lambda_grad=0.0, max_epochs=1).fit(X, y)
    for key in ("train_energy_in", "train_energy_aux", "train_energy_loss",
                "train_grad_penalty"):
        assert np.isnan(ce.history[-1, key]), key
    assert np.isfinite(ce.history[-1, "train_ce"]) and np.isfinite(ce.history[-1, "train_acc"])
    oe = make_clf(lambda_grad=0.0, max_epochs=1).fit(X, y, X_aux=X_aux)
    assert np.isnan(oe.history[-1, "train_grad_penalty"])
    assert np.isfinite(oe.history[-1, "train_energy_in"])
    assert np.isfinite(oe.history[-1, "train_energy_loss"])
