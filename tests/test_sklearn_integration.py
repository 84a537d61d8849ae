"""scikit-learn and skorch machinery: clone, params, persistence, search, pipelines."""
import io
import pickle
import warnings

import joblib
import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV, StratifiedKFold, cross_val_score
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from skood import make_ood_scorer


def with_outlier_rows(X, y, X_aux):
    return np.r_[X, X_aux], np.r_[y, -np.ones(len(X_aux), dtype=int)]


def test_clone_and_params(make_clf):
    clf = make_clf(lambda_grad=0.5, m_in=-9.0)
    params = clf.get_params()
    for name in ("lambda_energy", "lambda_grad", "m_in", "m_out", "temperature", "ood_tpr",
                 "reject_ood", "aux_batch_ratio", "random_state", "module__hidden"):
        assert name in params, name
    assert params["lambda_grad"] == 0.5 and params["m_in"] == -9.0
    assert isinstance(params["criterion"], type)
    assert params["criterion"] is torch.nn.CrossEntropyLoss
    cloned = clone(clf)
    assert cloned.get_params()["lambda_grad"] == 0.5
    cloned.set_params(lambda_grad=2.0, module__hidden=(8,))
    assert cloned.lambda_grad == 2.0 and clf.lambda_grad == 0.5
    # no constructor parameter uses one of skorch's reserved prefixes
    own = ("lambda_energy", "lambda_grad", "m_in", "m_out", "temperature", "ood_tpr",
           "reject_ood", "aux_batch_ratio", "sampler", "calibration_fraction", "random_state")
    for name in own:
        assert not any(name.startswith(p) for p in clf.prefixes_ + ["module", "criterion",
                                                                    "optimizer"])


def test_fitted_state_does_not_leak_into_params(make_clf, blobs):
    X, y, X_aux = blobs
    clf = make_clf(max_epochs=1).fit(X, y, X_aux=X_aux)
    assert "_fit_state" not in vars(clf) and clf._fit_state is None
    clone(clf).fit(X, y, X_aux=X_aux)   # clone of a fitted model works


@pytest.mark.parametrize("dumps, loads", [
    (pickle.dumps, pickle.loads),
    (lambda m: _joblib_dumps(m), lambda b: joblib.load(io.BytesIO(b))),
])
def test_pickle_and_joblib_round_trip(make_clf, blobs, dumps, loads):
    X, y, X_aux = blobs
    clf = make_clf().fit(X, y, X_aux=X_aux)
    data = dumps(clf)
    # the auxiliary data is not stored with the model
    assert len(data) < 50_000
    loaded = loads(data)
    np.testing.assert_array_equal(loaded.decision_function(X), clf.decision_function(X))
    np.testing.assert_array_equal(loaded.predict(X), clf.predict(X))
    assert loaded.offset_ == clf.offset_


def _joblib_dumps(model):
    buffer = io.BytesIO()
    joblib.dump(model, buffer)
    return buffer.getvalue()


def test_cuda_trained_model_loads_on_a_cpu_machine(make_clf, blobs, monkeypatch, device):
    """A pickle whose tensors are tagged as CUDA storages loads on a CPU-only machine.

    Without a GPU, the file is made by tagging the storages 'cuda:0' at save
    time (what torch.save records for a real CUDA tensor), which is what the
    loading side has to cope with."""
    X, y, X_aux = blobs
    clf = make_clf().fit(X, y, X_aux=X_aux)
    expected = clf.decision_function(X)
    if device.startswith("cuda"):
        data = pickle.dumps(clf)
    else:
        import torch.serialization as serialization
        clf.device = "cuda"
        with monkeypatch.context() as patch:
            patch.setattr(serialization, "location_tag", lambda storage: "cuda:0")
            data = pickle.dumps(clf)
            bare_module = pickle.dumps(clf.module_)
        # what such storages do to a loader that does not map them to the CPU
        with pytest.raises(RuntimeError, match="deserialize object on a CUDA device"):
            pickle.loads(bare_module)
    # the weights are stored as CUDA storages, as a GPU-trained model's are
    assert b"cuda:0" in data
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        loaded = pickle.loads(data)
    assert str(loaded.device) == "cpu"
    assert any("CUDA" in str(w.message) for w in caught)
    assert next(loaded.module_.parameters()).device.type == "cpu"
    np.testing.assert_allclose(loaded.decision_function(X), expected, rtol=1e-5, atol=1e-5)


def test_grid_search_over_lambda_grad_with_ood_scorers(make_clf, blobs):
    X, y, X_aux = blobs
    data, labels = with_outlier_rows(X, y, X_aux)
    scoring = {"fpr95": make_ood_scorer("fpr95"), "auroc": make_ood_scorer("auroc"),
               "acc": make_ood_scorer("id_accuracy")}
    search = GridSearchCV(make_clf(max_epochs=2), {"lambda_grad": [0.0, 1.0]}, scoring=scoring,
                          refit="fpr95", cv=StratifiedKFold(3), n_jobs=2)
    search.fit(data, labels)
    results = search.cv_results_
    assert np.all(results["mean_test_fpr95"] <= 0)          # negated FPR95
    assert np.all((results["mean_test_auroc"] >= 0) & (results["mean_test_auroc"] <= 1))
    assert np.all(results["mean_test_acc"] > 0.5)
    best = int(np.argmax(results["mean_test_fpr95"]))
    assert search.best_params_ == results["params"][best]
    assert search.best_estimator_.predict_ood(X).shape == (len(X),)


def test_pipeline_with_scaler_and_outlier_rows(make_clf, blobs):
    X, y, X_aux = blobs
    data, labels = with_outlier_rows(10 * X + 50, y, 10 * X_aux + 50)
    pipe = Pipeline([("scale", StandardScaler()), ("ood", make_clf(max_epochs=15))])
    pipe.fit(data, labels)
    assert pipe.score(data, labels) > 0.8
    scores = pipe.score_samples(data)
    assert np.median(scores[len(X):]) < np.median(scores[:len(X)])
    assert pipe.decision_function(data).shape == (len(data),)


def test_cross_val_score(make_clf, blobs):
    X, y, X_aux = blobs
    data, labels = with_outlier_rows(X, y, X_aux)
    scores = cross_val_score(make_clf(max_epochs=2), data, labels, cv=StratifiedKFold(3),
                             scoring=make_ood_scorer("auroc"))
    assert scores.shape == (3,) and np.all((scores >= 0) & (scores <= 1))
    accuracy = cross_val_score(make_clf(max_epochs=2), data, labels, cv=StratifiedKFold(3))
    assert np.all(accuracy > 0.5)   # the default scorer is score(): accuracy on ID rows


def test_dataframe_input_keeps_feature_names(make_clf, blobs):
    X, y, X_aux = blobs
    frame = pd.DataFrame(X, columns=["a", "b", "c", "d"])
    clf = make_clf().fit(frame, pd.Series(y), X_aux=pd.DataFrame(X_aux, columns=list("abcd")))
    np.testing.assert_array_equal(clf.feature_names_in_, list("abcd"))
    np.testing.assert_allclose(clf.score_samples(frame),
                               clf.ood_decision_function(frame) + clf.offset_, rtol=1e-6)
    with pytest.raises(ValueError, match="X_aux's columns differ"):
        make_clf().fit(frame, y, X_aux=pd.DataFrame(X_aux, columns=list("dcba")))


def test_weights_only_save_and_load_as_documented(make_clf, blobs, tmp_path):
    X, y, X_aux = blobs
    labels = np.where(y == 0, "no", "yes").astype(object)
    clf = make_clf().fit(X, labels, X_aux=X_aux)
    clf.save_params(f_params=str(tmp_path / "weights.pt"),
                    f_calibration=str(tmp_path / "calibration.json"))

    new = make_clf()
    new.initialize()
    new.load_params(f_params=str(tmp_path / "weights.pt"),
                    f_calibration=str(tmp_path / "calibration.json"))
    assert new.offset_ == clf.offset_
    np.testing.assert_allclose(new.decision_function(X), clf.decision_function(X), rtol=1e-6)
    np.testing.assert_array_equal(new.predict(X), clf.predict(X))
