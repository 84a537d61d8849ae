"""penalty_fraction: the gradient penalty estimated on a random subset of each step's rows."""
import itertools

import numpy as np
import pytest
import torch

from skood import GradRegOODClassifier
from skood._objective import GRegObjective
from skood.losses import detected_score, energy, energy_margin_loss, input_gradient_penalty

from helpers import BNNet, TanhNet, load_benchmark_script, run_one_step

MARGINS = dict(m_in=-6.0, m_out=-3.0)


def batch(dtype=torch.float64, n_in=16, n_aux=32):
    generator = torch.Generator().manual_seed(0)
    x_in = torch.randn(n_in, 4, generator=generator, dtype=dtype)
    y_in = torch.randint(0, 3, (n_in,), generator=generator)
    x_aux = 3 * torch.randn(n_aux, 4, generator=generator, dtype=dtype)
    return x_in, y_in, x_aux


def tanh_net(dtype=torch.float64):
    torch.manual_seed(0)
    return TanhNet().to(dtype)


def test_fraction_one_is_the_whole_batch_penalty_bit_for_bit():
    """The default takes the penalty from the step's one forward, as the paper does:
    the loss equals, bit for bit, the terms written out with the loss functions."""
    net = tanh_net()
    x_in, y_in, x_aux = batch()
    objective = GRegObjective(lambda_energy=0.1, lambda_grad=1.0, penalty_fraction=1.0,
                              **MARGINS)
    calls = []

    def forward(x):
        calls.append(x.shape[0])
        return net(x)

    terms = objective.step_terms(net, forward, x_in, y_in, x_aux,
                                 torch.nn.functional.cross_entropy)
    assert calls == [48]                               # one forward, no subset forward

    x = torch.cat([x_in, x_aux]).requires_grad_(True)
    logits = net(x)
    energies = energy(logits)
    expected = (torch.nn.functional.cross_entropy(logits[:16], y_in)
                + 0.1 * energy_margin_loss(energies[:16], energies[16:], -6.0, -3.0)
                + 1.0 * input_gradient_penalty(
                    detected_score(energies[:16], energies[16:], -6.0, -3.0), x))
    assert terms.grad_penalty > 0
    assert torch.equal(terms.loss, expected)


def test_fraction_one_draws_nothing_and_makes_no_generator(make_clf, blobs):
    X, y, X_aux = blobs
    clf = make_clf(penalty_fraction=1.0)
    with clf.initialize()._fit_state_for(None, seed=0) as state:
        assert state.penalty_generator is None
    clf = make_clf(penalty_fraction=0.5)
    with clf.initialize()._fit_state_for(None, seed=0) as state:
        assert isinstance(state.penalty_generator, torch.Generator)


@pytest.mark.parametrize("n_in, n_aux, fraction, k_in, k_aux",
                         [(16, 32, 0.25, 4, 8), (16, 32, 0.5, 8, 16), (3, 6, 0.1, 1, 1)])
def test_the_subset_has_its_own_forward_with_id_and_outlier_rows_in_proportion(
        n_in, n_aux, fraction, k_in, k_aux):
    net = tanh_net()
    x_in, y_in, x_aux = batch(n_in=n_in, n_aux=n_aux)
    seen = []

    def forward(x):
        seen.append(x.detach().clone())
        return net(x)

    GRegObjective(lambda_grad=1.0, penalty_fraction=fraction, **MARGINS).step_terms(
        net, forward, x_in, y_in, x_aux, torch.nn.functional.cross_entropy,
        penalty_generator=torch.Generator().manual_seed(0))
    assert [rows.shape[0] for rows in seen] == [n_in + n_aux, k_in + k_aux]
    subset = seen[1]
    # the first k_in rows are distinct ID rows, the others distinct outlier rows
    in_rows = {tuple(r.tolist()) for r in x_in}
    aux_rows = {tuple(r.tolist()) for r in x_aux}
    assert {tuple(r.tolist()) for r in subset[:k_in]} <= in_rows
    assert {tuple(r.tolist()) for r in subset[k_in:]} <= aux_rows
    assert len({tuple(r.tolist()) for r in subset}) == k_in + k_aux


def whole_batch_penalty(net, x_in, y_in, x_aux, **params):
    return GRegObjective(lambda_grad=1.0, fd_step=1e-4, **MARGINS, **params).step_terms(
        net, net, x_in, y_in, x_aux, torch.nn.functional.cross_entropy).grad_penalty.item()


@pytest.mark.parametrize("penalty", ["exact", "fd"])
def test_the_subset_estimate_averages_to_the_whole_batch_penalty_over_all_subsets(
        penalty, monkeypatch):
    """Without batch coupling the estimate is unbiased: its average over every
    possible subset (1 of 4 ID rows and 2 of 8 outlier rows: 112 subsets, all
    equally likely) equals the whole-batch penalty, to float64 rounding."""
    net = tanh_net()
    x_in, y_in, x_aux = batch(n_in=4, n_aux=8)
    full = whole_batch_penalty(net, x_in, y_in, x_aux, penalty=penalty)
    assert full > 0
    subsets = [(torch.tensor([i]), torch.tensor(pair))
               for i in range(4) for pair in itertools.combinations(range(8), 2)]
    objective = GRegObjective(lambda_grad=1.0, fd_step=1e-4, penalty=penalty,
                              penalty_fraction=0.25, **MARGINS)
    estimates = []
    for rows_in, rows_aux in subsets:
        drawn = iter([rows_in, rows_aux])
        monkeypatch.setattr("skood._objective._random_rows",
                            lambda n, f, g, drawn=drawn: next(drawn))
        estimates.append(objective.step_terms(
            net, net, x_in, y_in, x_aux,
            torch.nn.functional.cross_entropy).grad_penalty.item())
    assert np.std(estimates) > 0.05 * full              # the subsets do differ
    assert np.mean(estimates) == pytest.approx(full, rel=1e-6)


@pytest.mark.parametrize("penalty", ["exact", "fd"])
def test_random_subsets_average_to_the_whole_batch_penalty(penalty):
    """The same through the generator's draws: the mean of 200 draws is within 6%
    of the whole-batch penalty (their standard error is 1.7% here); a missing or
    wrong rescaling would be off by a factor of 2 to 4."""
    net = tanh_net()
    x_in, y_in, x_aux = batch()
    full = whole_batch_penalty(net, x_in, y_in, x_aux, penalty=penalty)
    objective = GRegObjective(lambda_grad=1.0, fd_step=1e-4, penalty=penalty,
                              penalty_fraction=0.25, **MARGINS)
    generator = torch.Generator().manual_seed(0)
    estimates = np.array([
        objective.step_terms(net, net, x_in, y_in, x_aux, torch.nn.functional.cross_entropy,
                             penalty_generator=generator).grad_penalty.item()
        for _ in range(200)])
    assert estimates.std() / np.sqrt(len(estimates)) < 0.025 * full
    assert estimates.mean() == pytest.approx(full, rel=0.06)


def test_the_subset_forward_leaves_batchnorm_statistics_alone(device):
    x_in, y_in, x_aux = (t.float() if t.is_floating_point() else t for t in batch())

    def bn_after_one_step(**params):
        torch.manual_seed(0)
        clf = GradRegOODClassifier(BNNet, **MARGINS, verbose=0, device=device,
                                   **params).initialize()
        run_one_step(clf, x_in, y_in, x_aux)
        return clf.module_.body[1]

    whole, subset = bn_after_one_step(), bn_after_one_step(penalty_fraction=0.25)
    assert subset.num_batches_tracked.item() == 1
    assert torch.equal(whole.running_mean, subset.running_mean)
    assert torch.equal(whole.running_var, subset.running_var)


def test_fits_with_a_fraction_are_reproducible_and_follow_the_seed(make_clf, blobs):
    X, y, X_aux = blobs

    def fitted(seed):
        return make_clf(penalty_fraction=0.25, random_state=seed).fit(X, y, X_aux=X_aux)

    a, b, c = fitted(0), fitted(0), fitted(1)
    assert np.array_equal(a.score_samples(X), b.score_samples(X))
    assert not np.array_equal(a.score_samples(X), c.score_samples(X))
    penalties = a.history[:, "batches", :, "train_grad_penalty"]
    assert all(np.isfinite(p) for epoch in penalties for p in epoch)


def test_a_fraction_changes_the_fit_and_draws_new_rows_each_step(make_clf, blobs):
    X, y, X_aux = blobs
    whole = make_clf(random_state=0).fit(X, y, X_aux=X_aux)
    subset = make_clf(penalty_fraction=0.25, random_state=0).fit(X, y, X_aux=X_aux)
    assert not np.array_equal(whole.score_samples(X), subset.score_samples(X))

    net = tanh_net()
    x_in, y_in, x_aux = batch()
    objective = GRegObjective(lambda_grad=1.0, penalty_fraction=0.25, **MARGINS)
    generator = torch.Generator().manual_seed(0)
    draws = {objective.step_terms(net, net, x_in, y_in, x_aux,
                                  torch.nn.functional.cross_entropy,
                                  penalty_generator=generator).grad_penalty.item()
             for _ in range(5)}
    assert len(draws) > 1


@pytest.mark.parametrize("value", [0, 0.0, -0.1, 1.5, float("nan"), "0.5", None, True])
def test_fractions_outside_zero_one_are_refused(make_clf, blobs, value):
    X, y, X_aux = blobs
    with pytest.raises(ValueError, match="penalty_fraction"):
        make_clf(penalty_fraction=value).fit(X, y, X_aux=X_aux)


# ------------------------------------------------- benchmarks/penalty_fraction.py


def penalty_fraction_script():
    return load_benchmark_script("penalty_fraction")


def test_variants_are_named_and_ordered_by_pool_then_fraction():
    script = penalty_fraction_script()
    names = [script.variant_name(f, p) for f, p in
             [(0.25, 3), (1.0, 6), (1.0, 4), (0.25, 6), (1.0, 3), (0.25, 4)]]
    assert names == ["0.25, pool 3", "1", "1, pool 4", "0.25", "1, pool 3", "0.25, pool 4"]
    assert sorted(names, key=script._variant_order) == [
        "0.25", "1", "0.25, pool 4", "1, pool 4", "0.25, pool 3", "1, pool 3"]


def test_pool_variants_are_paired_with_fraction_one_at_the_paper_pool(tmp_path,
                                                                       monkeypatch):
    pytest.importorskip("matplotlib")
    import pandas as pd

    script = penalty_fraction_script()
    # two seeds; FPR95 of the baseline 0.40 / 0.50, of "0.25, pool 3" 0.43 / 0.49
    rows = []
    for variant, fprs, times in (("1", (0.40, 0.50), (2.0, 4.0)),
                                 ("0.25, pool 3", (0.43, 0.49), (1.0, 3.0)),
                                 (script.REFERENCE, (0.60, 0.70), (0.5, 0.5)),
                                 (script.GREG_REFERENCE, (0.37, 0.47), (1.0, 1.0))):
        for seed, fpr, train_s in zip((0, 1), fprs, times):
            rows.append(dict(seed=seed, variant=variant, group="near", fpr95=fpr,
                             auroc=1 - fpr, accuracy=0.9, train_s=train_s))
    table = script.paired(pd.DataFrame(rows))
    pool = table[table.variant == "0.25, pool 3"].iloc[0]
    assert pool.fpr95_diff == pytest.approx(1.0)        # (+3 - 1) / 2 points
    assert pool.time_ratio == pytest.approx((0.5 + 0.75) / 2)
    greg = table[table.variant == script.GREG_REFERENCE].iloc[0]
    assert greg.fpr95_diff == pytest.approx(-3.0)
    assert list(table.variant) == ["1", "0.25, pool 3", script.REFERENCE,
                                   script.GREG_REFERENCE]
    text = script.report(table, "cmd", "t", skipped=["OOD set fashion-mnist skipped: absent."])
    assert "- OOD set fashion-mnist skipped: absent." in text
    assert "| penalty_fraction, pool_factor |" in text
    assert "`penalty_fraction=1` at `pool_factor=6`" in text
    assert "- near, GReg: FPR95 better than fraction 1" in text
    import matplotlib.pyplot as plt

    saved = {}
    monkeypatch.setattr(plt.Figure, "savefig",
                        lambda fig, *args, **kwargs: saved.setdefault("fig", fig))
    script.figure(table, tmp_path / "f.png", "t")
    labels = [ax.get_ylabel() for ax in saved["fig"].axes]
    assert labels == ["FPR95 (points), minus fraction 1", "AUROC (points), minus fraction 1"]


def test_variants_are_paired_by_class_split_not_by_seed():
    import pandas as pd

    script = penalty_fraction_script()
    # two splits of one seed; a seed column alone would pair nothing apart
    rows = [dict(split=split, seed=0, variant=variant, group="near", fpr95=fpr,
                 auroc=1 - fpr, accuracy=0.9, train_s=1.0)
            for variant, fprs in (("1", (0.40, 0.60)), ("0.5", (0.30, 0.40)))
            for split, fpr in zip((0, 1), fprs)]
    table = script.paired(pd.DataFrame(rows))
    half = table[table.variant == "0.5"].iloc[0]
    assert half.n_splits == 2
    assert half.fpr95_diff == pytest.approx(-15.0)      # (-10 - 20) / 2 points
    assert half.fpr95_better == 2 and half.auroc_better == 2    # lower FPR95, higher AUROC
