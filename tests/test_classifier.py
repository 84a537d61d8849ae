"""GradRegOODClassifier: the training step, the OOD API and its conventions."""
import copy

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from skorch.callbacks import Callback, EarlyStopping, LRScheduler, ProgressBar

from skood import GradRegOODClassifier, NonFiniteLossError
from skood._paper_reference import paper_greg_loss

from helpers import BNNet, run_one_step


def paper_reference_gradients(module, x_in, y_in, x_aux, lam_e, lam_g, m_in, m_out):
    """The loss and parameter gradients as the paper's code computes them."""
    loss = paper_greg_loss(module, x_in, y_in, x_aux, lambda_energy=lam_e, lambda_grad=lam_g,
                           m_in=m_in, m_out=m_out)
    loss.backward()
    return loss.detach(), [p.grad.clone() for p in module.parameters()]


def test_training_step_matches_the_papers_loss_and_gradients(device):
    torch.manual_seed(0)
    x_in = torch.randn(8, 4, dtype=torch.float64)
    y_in = torch.randint(0, 3, (8,))
    x_aux = 3 * torch.randn(8, 4, dtype=torch.float64)
    params = dict(lambda_energy=0.1, lambda_grad=1.0, m_in=-6.0, m_out=-3.0)
    clf = GradRegOODClassifier(BNNet, verbose=0, device=device, **params).initialize()
    clf.module_.double()
    reference = copy.deepcopy(clf.module_).cpu().train()
    ref_loss, ref_grads = paper_reference_gradients(reference, x_in, y_in, x_aux, 0.1, 1.0,
                                                    -6.0, -3.0)
    # some samples must be detected and others not, or the masking is not exercised
    with torch.no_grad():
        e = -torch.logsumexp(reference.eval()(torch.cat([x_in, x_aux])), 1)
    assert 0 < int((e[:8] < -6).sum()) < 8 or 0 < int((e[8:] > -3).sum()) < 8

    step = run_one_step(clf, x_in, y_in, x_aux)
    assert step["loss"].item() == pytest.approx(ref_loss.item(), rel=1e-9)
    for p, g in zip(clf.module_.parameters(), ref_grads):
        np.testing.assert_allclose(p.grad.cpu().numpy(), g.numpy(), rtol=1e-7, atol=1e-10)
    assert clf.history[-1, "batches", -1, "train_grad_penalty"] > 0


def test_lambda_grad_zero_is_energy_outlier_exposure(device):
    torch.manual_seed(0)
    x_in, y_in, x_aux = torch.randn(6, 4), torch.randint(0, 3, (6,)), torch.randn(6, 4)
    clf = GradRegOODClassifier(BNNet, lambda_grad=0.0, verbose=0, device=device).initialize()
    step = run_one_step(clf, x_in, y_in, x_aux)
    module = copy.deepcopy(clf.module_).cpu()
    logit = module(torch.cat([x_in, x_aux]))
    e = -torch.logsumexp(logit, 1)
    expected = F.cross_entropy(logit[:6], y_in) + 0.1 * (
        F.relu(e[:6] + 25).pow(2).mean() + F.relu(-7 - e[6:]).pow(2).mean())
    assert step["loss"].item() == pytest.approx(expected.item(), rel=1e-5)
    assert np.isnan(clf.history[-1, "batches", -1, "train_grad_penalty"])   # not computed


# ----------------------------------------------------------------- OOD API


def test_score_conventions_and_offset_calibration(make_clf, blobs):
    X, y, X_aux = blobs
    clf = make_clf(max_epochs=8).fit(X, y, X_aux=X_aux)
    scores = clf.score_samples(X)
    assert scores.shape == (len(X),) and scores.dtype == np.float32
    # score_samples is minus the energy of the logits
    logits = clf.forward(X).numpy()
    np.testing.assert_allclose(scores, np.log(np.exp(logits).sum(1)), rtol=1e-5)
    decision = clf.ood_decision_function(X)
    np.testing.assert_allclose(decision, scores - clf.offset_, rtol=1e-6)
    assert set(np.unique(clf.predict_ood(X))) <= {-1, 1}
    np.testing.assert_array_equal(clf.predict_ood(X) == 1, decision >= 0)
    # far-away outliers score lower than ID data
    assert np.median(clf.score_samples(X_aux)) < np.median(scores)


def test_offset_accepts_ood_tpr_of_the_validation_split(make_clf, blobs):
    X, y, X_aux = blobs
    for tpr in (0.8, 0.95):
        clf = make_clf(ood_tpr=tpr).fit(X, y, X_aux=X_aux)
        # skorch's default ValidSplit(5, stratified=True) holds out the first fold
        _, valid = clf.get_split_datasets(X, y)
        X_valid = X[valid.indices] if hasattr(valid, "indices") else valid.X
        n = len(X_valid)
        k = int(np.floor((n + 1) * (1 - tpr) + 1e-9))    # the conformal rank
        scores = np.sort(clf.score_samples(X_valid))
        assert clf.offset_ == scores[k - 1]
        np.testing.assert_array_equal(clf.calibration_scores_, scores)
        accepted = np.mean(clf.ood_decision_function(X_valid) >= 0)
        assert accepted == pytest.approx(1 - (k - 1) / n) and accepted >= tpr
        assert "_fit_state" not in vars(clf)   # no calibration rows kept after fit


def test_offset_uses_a_held_out_slice_without_train_split(make_clf, blobs):
    X, y, X_aux = blobs
    clf = make_clf(train_split=None, calibration_fraction=0.2).fit(X, y, X_aux=X_aux)
    # 20% of the ID rows were held out of training
    assert clf.history[-1, "train_batch_count"] == int(np.ceil(0.8 * len(X) / 32))
    assert np.isfinite(clf.offset_)


def test_predict_and_proba_follow_classifier_conventions(make_clf, blobs):
    X, y, X_aux = blobs
    labels = np.where(y == 0, "cat", "dog").astype(object)
    clf = make_clf(max_epochs=6).fit(X, labels, X_aux=X_aux)
    np.testing.assert_array_equal(clf.classes_, ["cat", "dog"])
    proba = clf.predict_proba(X)
    assert proba.shape == (len(X), 2)
    np.testing.assert_allclose(proba.sum(1), 1.0, rtol=1e-5)
    predicted = clf.predict(X)
    assert set(predicted) <= {"cat", "dog"}
    np.testing.assert_array_equal(predicted, clf.classes_[proba.argmax(1)])
    assert clf.score(X, labels) > 0.8


def test_reject_ood_returns_minus_one_for_rejected_rows(make_clf, blobs):
    X, y, X_aux = blobs
    clf = make_clf(max_epochs=8, reject_ood=True).fit(X, y, X_aux=X_aux)
    data = np.r_[X, X_aux]
    predicted = clf.predict(data)
    rejected = clf.predict_ood(data) == -1
    assert rejected.any()
    np.testing.assert_array_equal(predicted[rejected], -1)
    assert set(predicted[~rejected]) <= {0, 1}


def test_score_ignores_outlier_rows(make_clf, blobs):
    X, y, X_aux = blobs
    clf = make_clf().fit(X, y, X_aux=X_aux)
    data, labels = np.r_[X, X_aux], np.r_[y, -np.ones(len(X_aux), dtype=int)]
    assert clf.score(data, labels) == pytest.approx(np.mean(clf.predict(X) == y))


def test_outlier_rows_in_X_are_used_as_auxiliary_data(make_clf, blobs):
    X, y, X_aux = blobs
    data, labels = np.r_[X, X_aux], np.r_[y, -np.ones(len(X_aux), dtype=int)]
    by_rows = make_clf().fit(data, labels)
    by_keyword = make_clf().fit(X, y, X_aux=X_aux)
    np.testing.assert_array_equal(by_rows.classes_, [0, 1])
    # same ID rows, same outliers, same seed: the same model
    np.testing.assert_allclose(by_rows.decision_function(X), by_keyword.decision_function(X),
                               rtol=1e-5, atol=1e-5)


def test_both_outlier_forms_together_and_as_tensor_dataframe_or_dataset(make_clf, blobs):
    X, y, X_aux = blobs
    data, labels = np.r_[X, X_aux[:100]], np.r_[y, -np.ones(100, dtype=int)]
    for extra in (X_aux[100:], torch.from_numpy(X_aux[100:]), pd.DataFrame(X_aux[100:]),
                  torch.utils.data.TensorDataset(torch.from_numpy(X_aux[100:]))):
        clf = make_clf(max_epochs=1).fit(data, labels, X_aux=extra)
        assert np.isfinite(clf.offset_)


def test_random_sampler_uses_every_outlier(make_clf, blobs, monkeypatch):
    from skood._outliers import AuxiliaryData
    X, y, X_aux = blobs
    seen = []
    original = AuxiliaryData.take

    def spy(self, indices, device):
        seen.append(indices.clone())
        return original(self, indices, device)

    monkeypatch.setattr(AuxiliaryData, "take", spy)
    make_clf(max_epochs=1, train_split=None, calibration_fraction=0.2,
             aux_batch_ratio=2.0).fit(X, y, X_aux=X_aux[:200])
    drawn = torch.cat(seen)
    assert drawn.numel() == 2 * 240  # two outliers per ID sample
    # without replacement: the first 200 draws are a permutation of all outliers
    assert sorted(drawn[:200].tolist()) == list(range(200))
    assert sorted(drawn[200:400].tolist()) == list(range(200))
    assert len(set(drawn[400:].tolist())) == 80


def test_float64_input_is_cast_to_float32(make_clf, blobs):
    X, y, X_aux = blobs
    clf = make_clf(max_epochs=1).fit(X.astype(np.float64), y, X_aux=X_aux.astype(np.float64))
    assert next(clf.module_.parameters()).dtype == torch.float32
    np.testing.assert_array_equal(clf.score_samples(X.astype(np.float64)), clf.score_samples(X))


def test_random_state_makes_fits_identical(make_clf, blobs):
    X, y, X_aux = blobs
    torch.manual_seed(123)
    before = torch.rand(1)
    first = make_clf(random_state=7).fit(X, y, X_aux=X_aux)
    second = make_clf(random_state=7).fit(X, y, X_aux=X_aux)
    np.testing.assert_array_equal(first.decision_function(X), second.decision_function(X))
    assert first.history[:, "train_loss"] == second.history[:, "train_loss"]
    other = make_clf(random_state=8).fit(X, y, X_aux=X_aux)
    assert not np.array_equal(first.score_samples(X), other.score_samples(X))
    # the global torch random state is left as it was
    torch.manual_seed(123)
    assert torch.equal(torch.rand(1), before)


def test_history_records_the_loss_terms(make_clf, blobs):
    X, y, X_aux = blobs
    clf = make_clf(max_epochs=2).fit(X, y, X_aux=X_aux)
    for key in ("train_loss", "train_ce", "train_energy_loss", "train_grad_penalty",
                "train_energy_in", "train_energy_aux", "valid_loss", "valid_acc"):
        values = clf.history[:, key]
        assert len(values) == 2 and all(np.isfinite(values)), key
    row = clf.history[-1]
    total = row["train_ce"] + 0.1 * row["train_energy_loss"] + 1.0 * row["train_grad_penalty"]
    assert row["train_loss"] == pytest.approx(total, rel=1e-4)


def test_skorch_callbacks_keep_working(make_clf, blobs, capsys):
    X, y, X_aux = blobs
    calls = []

    class Count(Callback):
        def on_batch_end(self, net, **kwargs):
            calls.append(kwargs["training"])

    clf = make_clf(max_epochs=30, callbacks=[
        ProgressBar(), Count(),
        EarlyStopping(monitor="valid_loss", patience=2, threshold=10.0),
        LRScheduler(policy="StepLR", step_size=1, gamma=0.5)])
    clf.fit(X, y, X_aux=X_aux)
    assert len(clf.history) < 30           # early stopping stopped it
    assert True in calls and False in calls
    assert clf.optimizer_.param_groups[0]["lr"] < 0.05


def test_checkpoint_and_load_params(make_clf, blobs, tmp_path):
    from skorch.callbacks import Checkpoint
    X, y, X_aux = blobs
    # monitor=None: save after every epoch, so the file holds the final weights
    clf = make_clf(callbacks=[Checkpoint(monitor=None, dirname=str(tmp_path))])
    clf.fit(X, y, X_aux=X_aux)
    assert (tmp_path / "params.pt").exists()
    fresh = make_clf().initialize()
    fresh.load_params(f_params=str(tmp_path / "params.pt"))
    for a, b in zip(fresh.module_.state_dict().values(), clf.module_.state_dict().values()):
        assert torch.equal(a.cpu(), b.cpu())


def test_partial_fit_continues_training(make_clf, blobs):
    X, y, X_aux = blobs
    clf = make_clf(max_epochs=1).fit(X, y, X_aux=X_aux)
    clf.partial_fit(X, y, X_aux=X_aux)
    assert len(clf.history) == 2
    np.testing.assert_array_equal(clf.classes_, [0, 1])


def test_plain_cross_entropy_needs_no_outliers(make_clf, blobs):
    X, y, _ = blobs
    clf = make_clf(lambda_energy=0.0, lambda_grad=0.0).fit(X, y)
    assert np.isnan(clf.history[-1, "train_energy_loss"])   # not computed
    assert np.isfinite(clf.offset_)


# --------------------------------------------------------------- bad input


@pytest.mark.parametrize("where", ["X", "X_aux"])
@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_input_is_refused(make_clf, blobs, where, bad):
    X, y, X_aux = blobs
    X, X_aux = X.copy(), X_aux.copy()
    (X if where == "X" else X_aux)[3, 1] = bad
    with pytest.raises(ValueError, match=f"Input {where} contains (NaN|infinity)"):
        make_clf().fit(X, y, X_aux=X_aux)


def test_outliers_of_another_shape_are_refused(make_clf, blobs):
    X, y, X_aux = blobs
    with pytest.raises(ValueError, match=r"X_aux has samples of shape \(3,\).*shape \(4,\)"):
        make_clf().fit(X, y, X_aux=X_aux[:, :3])


def test_empty_outliers_are_refused(make_clf, blobs):
    X, y, X_aux = blobs
    with pytest.raises(ValueError, match="X_aux is empty"):
        make_clf().fit(X, y, X_aux=X_aux[:0])


def test_missing_outliers_are_refused(make_clf, blobs):
    X, y, _ = blobs
    with pytest.raises(ValueError, match="No auxiliary outliers"):
        make_clf().fit(X, y)


def test_no_in_distribution_rows_is_refused(make_clf, blobs):
    X, _, _ = blobs
    with pytest.raises(ValueError, match="no in-distribution rows"):
        make_clf().fit(X, -np.ones(len(X), dtype=int))


def test_outliers_passed_positionally_as_y_are_refused(make_clf, blobs):
    X, y, X_aux = blobs
    with pytest.raises(ValueError, match="X_aux=outliers"):
        make_clf().fit(X, X_aux)            # 2-D y
    with pytest.raises(ValueError, match="X_aux=outliers"):
        make_clf().fit(X, y[:100])          # length mismatch


@pytest.mark.parametrize("params, message", [
    (dict(lambda_grad=-1.0), r"'lambda_grad' parameter .* range \[0.0, inf\)"),
    (dict(lambda_energy=-0.1), r"'lambda_energy' parameter .* range \[0.0, inf\)"),
    (dict(m_in=-5.0, m_out=-7.0), "m_in must be lower than m_out"),
    (dict(m_in=-7.0, m_out=-7.0), "m_in must be lower than m_out"),
    (dict(m_in=True), "m_in must be a number, got True"),
    (dict(m_out=float("nan")), r"'m_out' parameter .* Got nan"),
    (dict(temperature=float("inf")), r"'temperature' parameter .* range \(0.0, inf\)"),
    (dict(ood_tpr=1.5), r"'ood_tpr' parameter .* range \(0.0, 1.0\)"),
    (dict(aux_batch_ratio=0), r"'aux_batch_ratio' parameter .* range \(0.0, inf\) or None"),
    (dict(reject_ood="yes"), r"'reject_ood' parameter .* must be an instance of 'bool'"),
    (dict(random_state="x"), r"'random_state' parameter .* Got 'x'"),
    (dict(sampler="bogus"), r"'sampler' parameter .*'energy'.*Got 'bogus'"),
    (dict(sampler=object()), r"'sampler' parameter .* object implementing 'reset' and 'draw'"),
    (dict(calibration_fraction=1.0), r"'calibration_fraction' parameter .* range \(0.0, 1.0\)"),
])
def test_bad_hyperparameters_are_refused(make_clf, blobs, params, message):
    X, y, X_aux = blobs
    with pytest.raises(ValueError, match=message):
        make_clf(**params).fit(X, y, X_aux=X_aux)


def test_non_numeric_dataframe_columns_are_refused(make_clf, blobs):
    X, y, X_aux = blobs
    frame = pd.DataFrame(X, columns=list("abcd"))
    frame["colour"] = "red"
    with pytest.raises(TypeError, match=r"non-numeric columns \['colour'\].*OneHotEncoder"):
        make_clf().fit(frame, y, X_aux=X_aux)


@pytest.mark.parametrize("method", ["score_samples", "ood_decision_function", "predict_ood",
                                    "decision_function", "predict", "predict_proba"])
def test_methods_before_fit_are_refused_naming_the_method(make_clf, blobs, method):
    from sklearn.exceptions import NotFittedError
    X, _, _ = blobs
    with pytest.raises(NotFittedError, match="call fit"):
        getattr(make_clf(), method)(X)
    if method in ("score_samples", "ood_decision_function", "predict_ood"):
        with pytest.raises(NotFittedError, match=f"before {method}"):
            getattr(make_clf(), method)(X)


class ExplodingMLP(torch.nn.Module):
    """Returns NaN logits from its ``explode_at``-th training forward on."""

    def __init__(self, explode_at=3):
        super().__init__()
        self.net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(),
                                       torch.nn.Linear(8, 2))
        self.explode_at, self.calls = explode_at, 0

    def forward(self, x):
        out = self.net(x)
        if self.training:
            self.calls += 1
            if self.calls >= self.explode_at:
                out = out * float("nan")
        return out


def test_non_finite_loss_stops_with_the_last_finite_weights(blobs, device):
    X, y, X_aux = blobs
    snapshots = []

    class Snapshot(Callback):
        def on_batch_end(self, net, training, **kwargs):
            if training:
                snapshots.append(copy.deepcopy(net.module_.state_dict()))

    clf = GradRegOODClassifier(ExplodingMLP, module__explode_at=3, callbacks=[Snapshot()],
                               batch_size=32, m_in=-8.0, m_out=-2.0, verbose=0,
                               random_state=0, device=device)
    with pytest.raises(NonFiniteLossError, match="epoch 1, batch 3"):
        clf.fit(X, y, X_aux=X_aux)
    assert len(snapshots) == 2
    for name, value in clf.module_.state_dict().items():
        assert torch.isfinite(value).all()
        assert torch.equal(value, snapshots[-1][name])


def test_a_non_finite_outlier_read_from_a_dataset_stops_the_fit(make_clf, blobs):
    # Dataset outliers are read during training, not checked up front
    X, y, X_aux = blobs
    X_aux = X_aux.copy()
    X_aux[:, 0] = np.nan
    with pytest.raises(NonFiniteLossError, match="epoch 1, batch 1"):
        make_clf().fit(X, y, X_aux=torch.utils.data.TensorDataset(torch.from_numpy(X_aux)))
