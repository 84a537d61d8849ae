"""The estimator's scikit-learn contract: class scores, the outlier-detector face,
nested sampler parameters, and the input defects that used to pass silently."""
import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.base import clone
from sklearn.exceptions import DataConversionWarning
from sklearn.metrics import get_scorer, roc_auc_score
from sklearn.model_selection import GridSearchCV, StratifiedKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from skorch.callbacks import Callback

from skood import (EnergySampler, GradRegOODClassifier, GradRegOODDetector, NonFiniteLossError,
                   make_ood_scorer)
from skood.metrics import auroc
from skood.models import MLP

from test_classifier import ExplodingMLP


def with_outlier_rows(X, y, X_aux):
    return np.r_[X, X_aux], np.r_[y, -np.ones(len(X_aux), dtype=int)]


@pytest.fixture
def three_classes(blobs):
    X, _, X_aux = blobs
    y = np.digitize(X[:, 0], [-1.5, 1.5])     # 0, 1, 2 along the first feature
    return X, y, X_aux


# ---------------------------------------------------- decision_function: class scores


def test_binary_decision_function_is_the_logit_margin(make_clf, blobs):
    X, y, X_aux = blobs
    clf = make_clf().fit(X, y, X_aux=X_aux)
    logits = clf.forward(X).numpy()
    decision = clf.decision_function(X)
    assert decision.shape == (len(X),)
    np.testing.assert_allclose(decision, logits[:, 1] - logits[:, 0], rtol=1e-5, atol=1e-5)
    # scikit-learn's scorers read it as class scores: the same AUROC as from predict_proba
    expected = roc_auc_score(y, clf.predict_proba(X)[:, 1])
    assert get_scorer("roc_auc")(clf, X, y) == pytest.approx(expected, abs=1e-6)
    assert expected > 0.9


def test_multiclass_decision_function_is_the_logits(make_clf, three_classes):
    X, y, X_aux = three_classes
    clf = make_clf(module__n_classes=3).fit(X, y, X_aux=X_aux)
    decision = clf.decision_function(X)
    assert decision.shape == (len(X), 3)
    np.testing.assert_allclose(decision, clf.forward(X).numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(clf.classes_[decision.argmax(1)], clf.predict(X))


def test_ood_decision_function_is_score_samples_minus_offset(make_clf, blobs):
    X, y, X_aux = blobs
    clf = make_clf().fit(X, y, X_aux=X_aux)
    ood = clf.ood_decision_function(X)
    np.testing.assert_allclose(ood, clf.score_samples(X) - np.float32(clf.offset_))
    np.testing.assert_array_equal(clf.predict_ood(X), np.where(ood >= 0, 1, -1))


# ------------------------------------------------------------ the detector face


def test_detector_has_the_outlier_detector_face(make_clf, blobs):
    from sklearn.base import is_classifier, is_outlier_detector
    X, y, X_aux = blobs
    params = make_clf().get_params()
    detector = GradRegOODDetector(**params).fit(X, y, X_aux=X_aux)
    classifier = GradRegOODClassifier(**params).fit(X, y, X_aux=X_aux)
    assert is_outlier_detector(detector) and not is_classifier(detector)
    assert is_classifier(classifier) and not is_outlier_detector(classifier)
    # the same training: identical scores for the same random_state
    np.testing.assert_array_equal(detector.score_samples(X), classifier.score_samples(X))
    np.testing.assert_array_equal(detector.predict(X), classifier.predict_ood(X))
    np.testing.assert_array_equal(detector.decision_function(X),
                                  classifier.ood_decision_function(X))
    np.testing.assert_array_equal(detector.predict_proba(X), classifier.predict_proba(X))
    assert detector.score(X, y) == classifier.score(X, y)
    data, labels = with_outlier_rows(X, y, X_aux)
    np.testing.assert_array_equal(GradRegOODDetector(**params).fit_predict(data, labels),
                                  detector.predict(data))


def test_detector_in_a_pipeline_gives_the_ood_decision(make_clf, blobs):
    X, y, X_aux = blobs
    data, labels = with_outlier_rows(10 * X + 50, y, 10 * X_aux + 50)
    detector = GradRegOODDetector(**make_clf(max_epochs=15).get_params())
    pipe = make_pipeline(StandardScaler(), detector).fit(data, labels)
    predicted = pipe.predict(data)
    assert set(np.unique(predicted)) <= {-1, 1}
    np.testing.assert_array_equal(predicted, np.where(pipe.decision_function(data) >= 0, 1, -1))
    # ID rows are mostly accepted, the outliers rejected far more often
    id_rejected, aux_rejected = np.mean(predicted[:len(X)] == -1), np.mean(predicted[len(X):] == -1)
    assert id_rejected < 0.2 and aux_rejected > id_rejected + 0.3
    # OOD scorers, and id_accuracy through the pipeline (class = argmax of predict_proba)
    expected_auroc = auroc((labels != -1).astype(int), pipe.score_samples(data))
    assert make_ood_scorer("auroc")(pipe, data, labels) == expected_auroc > 0.5
    accuracy = make_ood_scorer("id_accuracy")(pipe, data, labels)
    expected = np.mean(pipe[-1].classes_[pipe.predict_proba(data[:len(X)]).argmax(1)] == y)
    assert accuracy == pytest.approx(expected) and accuracy > 0.8


# ----------------------------------------------------- defect a: nested sampler params


def test_nested_sampler_parameters(make_clf, blobs):
    X, y, X_aux = blobs
    clf = make_clf(max_epochs=1, sampler=EnergySampler(n_clusters=8))
    assert clf.get_params(deep=True)["sampler__n_clusters"] == 8
    clf.set_params(sampler__n_clusters=3, sampler__pool_factor=2)
    assert clf.sampler.n_clusters == 3 and clf.sampler.pool_factor == 2
    assert "sampler__n_clusters" not in vars(clf)
    with pytest.warns(UserWarning, match=r"EnergySampler\(pool_factor=2\) cannot filter"):
        clf.fit(X, y, X_aux=X_aux)      # a pool of twice the batch: no more than a step uses
    data, labels = with_outlier_rows(X, y, X_aux)
    search = GridSearchCV(make_clf(max_epochs=1, sampler=EnergySampler(n_clusters=8)),
                          {"sampler__n_clusters": [2, 5]}, cv=StratifiedKFold(2),
                          scoring=make_ood_scorer("auroc"), error_score="raise")
    search.fit(data, labels)
    assert search.best_params_["sampler__n_clusters"] in (2, 5)
    assert np.all(np.isfinite(search.cv_results_["mean_test_score"]))
    with pytest.raises(ValueError, match="estimator-valued sampler"):
        make_clf(sampler="energy").set_params(sampler__n_clusters=3)


def test_private_attributes_are_not_parameters(make_clf):
    params = make_clf().get_params()
    assert not [name for name in params if name.startswith("_")]


# -------------------------------------------------------- defects b, d, e: labels


@pytest.mark.parametrize("as_series", [False, True])
def test_string_minus_one_among_object_labels_is_refused(make_clf, blobs, as_series):
    X, y, X_aux = blobs
    labels = np.where(y == 0, "cat", "dog").astype(object)
    labels[:5] = "-1"
    if as_series:
        labels = pd.Series(labels)
    with pytest.raises(ValueError, match="string '-1'"):
        make_clf().fit(X, labels, X_aux=X_aux)


def test_one_id_class_is_refused_naming_the_outlier_marker(make_clf, blobs):
    X, y, X_aux = blobs
    with pytest.raises(ValueError, match=r"single in-distribution class.*\{-1, \+1\}"):
        make_clf().fit(X, np.where(y == 1, 1, -1), X_aux=X_aux)


def test_continuous_labels_are_refused(make_clf, blobs):
    X, _, X_aux = blobs
    with pytest.raises(ValueError, match="Unknown label type"):
        make_clf().fit(X, X[:, 0].astype(float), X_aux=X_aux)


def test_column_vector_labels_warn_and_are_used(make_clf, blobs):
    X, y, X_aux = blobs
    with pytest.warns(DataConversionWarning, match="column-vector y"):
        clf = make_clf().fit(X, y[:, None], X_aux=X_aux)
    np.testing.assert_array_equal(clf.predict(X), make_clf().fit(X, y, X_aux=X_aux).predict(X))


# ----------------------------------------------------- defect c: module outputs


@pytest.mark.parametrize("n_outputs", [1, 3])
def test_module_outputs_must_match_the_classes(make_clf, blobs, n_outputs):
    X, y, X_aux = blobs
    with pytest.raises(ValueError, match=r"\(n_samples, 2\).*module__n_classes=2"):
        make_clf(module__n_classes=n_outputs).fit(X, y, X_aux=X_aux)


# default margins, 1-2 epochs: sizes are checked
@pytest.mark.filterwarnings("ignore::skood.exceptions.ChanceLevelWarning")
def test_module_sizes_are_filled_from_the_data(blobs, three_classes, device):
    X, y, X_aux = three_classes
    clf = GradRegOODClassifier(MLP, module__hidden=(16,), max_epochs=2, verbose=0,
                               random_state=0, device=device).fit(X, y, X_aux=X_aux)
    assert clf.inferred_module_params_ == {"n_features": 4, "n_classes": 3}
    assert clf.predict_proba(X).shape == (len(X), 3)
    # re-initialising a fitted net outside fit keeps the sizes (and unfits the model)
    clf.set_params(module__hidden=(8,))
    assert clf.module_.features[1].out_features == 8
    assert clf.module_(torch.zeros(2, 4, device=clf.device)).shape == (2, 3)
    # given sizes win
    fixed = GradRegOODClassifier(MLP, module__n_features=4, module__n_classes=3, max_epochs=1,
                                 verbose=0, device=device).fit(X, y, X_aux=X_aux)
    assert fixed.inferred_module_params_ == {}


# ------------------------------------------------ defect f: calibration split size


# 20 rows: the fit that is allowed ends at chance level with 6 calibration rows; only
# whether it is allowed is checked
@pytest.mark.filterwarnings("ignore::skood.exceptions.ChanceLevelWarning")
@pytest.mark.filterwarnings("ignore::skood.conformal.SmallCalibrationWarning")
def test_too_few_rows_for_the_calibration_split_names_the_parameter(make_clf, blobs):
    X, y, X_aux = blobs
    y3 = np.arange(20) % 3
    with pytest.raises(ValueError, match="calibration_fraction"):
        make_clf(train_split=None, module__n_classes=3).fit(X[:20], y3, X_aux=X_aux)
    make_clf(train_split=None, calibration_fraction=0.3, module__n_classes=3).fit(
        X[:20], y3, X_aux=X_aux)


# ------------------------------------------------ defect g: after NonFiniteLossError


def test_model_is_usable_after_a_non_finite_loss(blobs, device):
    X, y, X_aux = blobs
    labels = np.where(y == 0, "cat", "dog")
    clf = GradRegOODClassifier(ExplodingMLP, module__explode_at=3, batch_size=32, m_in=-8.0,
                               m_out=-2.0, verbose=0, random_state=0, device=device)
    with pytest.raises(NonFiniteLossError):
        clf.fit(X, labels, X_aux=X_aux)
    assert set(clf.predict(X)) <= {"cat", "dog"}              # decoded labels
    assert np.all(np.isfinite(clf.predict_proba(X)))
    assert np.isfinite(clf.offset_)
    scores = clf.score_samples(X)
    assert np.all(np.isfinite(scores))
    assert set(np.unique(clf.predict_ood(X))) <= {-1, 1}


# --------------------------------------------------- defect h: score's validation


def test_score_and_the_accuracy_scorer_validate_their_input(make_clf, blobs):
    X, y, X_aux = blobs
    clf = make_clf().fit(X, y, X_aux=X_aux)
    expected = clf.score(X, y)
    assert clf.score(X.tolist(), y.tolist()) == pytest.approx(expected)
    assert make_ood_scorer("id_accuracy")(clf, X.tolist(), y) == pytest.approx(expected)
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        clf.score(X, y[:-1])
    with pytest.raises(ValueError, match="1-D"):
        clf.score(X, np.c_[y, y])


# ---------------------------------------------------- defect j: custom samplers


class MinimalSampler:
    """Only reset and draw: default_ratio is optional."""

    def reset(self, n_outliers, seed, device, **kwargs):
        return torch.Generator().manual_seed(seed)

    def draw(self, state, aux, batch_size, n_outliers, device):
        indices = torch.randint(len(aux), (n_outliers,), generator=state)
        return aux.take(indices, device)


def test_a_custom_sampler_needs_only_reset_and_draw(make_clf, blobs):
    X, y, X_aux = blobs
    clf = make_clf(max_epochs=1, sampler=MinimalSampler()).fit(X, y, X_aux=X_aux)
    assert np.isfinite(clf.history[-1, "train_loss"])


def test_a_sampler_without_draw_is_refused_before_training(make_clf, blobs):
    X, y, X_aux = blobs

    class NoDraw:
        def reset(self, *args, **kwargs):
            raise AssertionError("reset must not be reached")

    with pytest.raises(ValueError, match="'reset' and 'draw'"):
        make_clf(sampler=NoDraw()).fit(X, y, X_aux=X_aux)


# ------------------------------------------------ fine-tuning from trained weights


class FirstBatchLogits(Callback):
    """Keeps the first training batch and the logits the net gives it, before any step."""

    def initialize(self):
        self.batch, self.logits = None, None
        return self

    def on_batch_begin(self, net, batch=None, training=False, **kwargs):
        if training and self.batch is None:
            self.batch = torch.as_tensor(batch[0]).clone()
            net.module_.eval()
            with torch.no_grad():
                self.logits = net.module_(self.batch).clone()
            net.module_.train()


def test_fine_tuning_starts_from_the_trained_weights(make_clf, blobs):
    X, y, X_aux = blobs
    labels = np.where(y == 0, "cat", "dog")
    ce = make_clf(lambda_energy=0.0, lambda_grad=0.0, max_epochs=5).fit(X, labels)
    before = {k: v.clone() for k, v in ce.module_.state_dict().items()}
    recorder = FirstBatchLogits()
    tuned = GradRegOODClassifier.from_pretrained(
        ce, lr=0.01, max_epochs=2, batch_size=32, m_in=-8.0, m_out=-2.0, verbose=0,
        random_state=0, callbacks=[("first", recorder)])
    assert tuned.classes == ["cat", "dog"]
    tuned.fit(X, labels, X_aux=X_aux)
    # the first training batch sees exactly the pretrained network's logits
    ce.module_.eval()
    with torch.no_grad():
        expected = ce.module_(recorder.batch)
    assert torch.equal(recorder.logits, expected)
    # fitting the copy leaves the pretrained net untouched, and moves the copy
    for k, v in ce.module_.state_dict().items():
        assert torch.equal(v, before[k])
    assert not torch.equal(tuned.module_(recorder.batch), expected)
    # refit and clone start from the same weights: identical results
    tuned.set_params(callbacks=None)
    again = clone(tuned).fit(X, labels, X_aux=X_aux)
    np.testing.assert_array_equal(again.score_samples(X),
                                  tuned.fit(X, labels, X_aux=X_aux).score_samples(X))
    assert set(tuned.predict(X)) <= {"cat", "dog"}
    with pytest.raises(ValueError, match=r"drop \['module__hidden'\]"):
        GradRegOODClassifier.from_pretrained(ce, module__hidden=(8,))
    with pytest.raises(TypeError, match="torch.nn.Module"):
        GradRegOODClassifier.from_pretrained("resnet18")
