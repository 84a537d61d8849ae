"""scikit-learn's common estimator checks on both estimators.

A small MLP whose input and output sizes are filled from the data at fit
(skood passes ``n_features`` and ``n_classes`` to a module class that takes
them), both lambdas 0 because the checks cannot supply outliers, and a
larger calibration slice because the checks' data sets are tiny.
"""
import warnings

import pytest
import torch
from sklearn.utils.estimator_checks import parametrize_with_checks

from skood import GradRegOODClassifier, GradRegOODDetector
from skood.models import MLP

INHERITED_FROM_SKORCH = {
    "check_no_attributes_set_in_init": (
        "inherited from skorch: NeuralNet.__init__ stores history_, initialized_, "
        "virtual_params_ and every module__/optimizer__ keyword as attributes"),
}
OUTLIER_MARKER = {
    "check_classifiers_classes": (
        "-1 marks auxiliary-outlier rows, so the check's labels {-1, 1} are one class plus "
        "outliers, which is refused with a ValueError that says so"),
}
NEEDS_CLASS_LABELS = {
    "check_outliers_train": "the detector is trained as a classifier and needs class labels y",
    "check_outliers_fit_predict": "the detector is trained as a classifier and needs class "
                                  "labels y",
    "check_methods_subset_invariance": (
        "decision_function is score_samples - offset_, which is near 0 for some samples: "
        "float32 rounding that depends on the batch composition (1e-7) exceeds the check's "
        "relative tolerance there"),
}


def expected_failed_checks(estimator):
    failures = {**INHERITED_FROM_SKORCH, **OUTLIER_MARKER}
    if isinstance(estimator, GradRegOODDetector):
        failures.update(NEEDS_CLASS_LABELS)
    return failures


def small_estimator(cls):
    return cls(MLP, module__hidden=(16,), lambda_energy=0.0, lambda_grad=0.0, max_epochs=5,
               lr=0.05, optimizer__momentum=0.9, train_split=None, calibration_fraction=0.3,
               verbose=0, random_state=0)


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@parametrize_with_checks([small_estimator(GradRegOODClassifier),
                          small_estimator(GradRegOODDetector)],
                         expected_failed_checks=expected_failed_checks)
def test_scikit_learn_common_checks(estimator, check):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)   # skorch's "no validation split" notes
        check(estimator)


def test_classifier_passes_at_least_52_of_55_checks():
    from sklearn.utils.estimator_checks import check_estimator
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        results = check_estimator(small_estimator(GradRegOODClassifier), on_fail=None)
    failed = sorted({r["check_name"] for r in results if r["status"] == "failed"})
    assert len(results) >= 55
    assert sum(r["status"] == "passed" for r in results) >= 52, failed
    assert set(failed) <= set(expected_failed_checks(small_estimator(GradRegOODClassifier)))
