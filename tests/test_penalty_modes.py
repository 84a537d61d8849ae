"""penalty="fd" against penalty="exact", and the mixed-precision modes."""
import numpy as np
import pytest
import torch

from skood import GradRegOODClassifier
from skood._objective import GRegObjective, frozen_batchnorm_statistics
from skood.losses import energy
from skood.models import SmallCNN

from helpers import BNNet, TanhNet, run_one_step


def one_step_penalty(module_cls, penalty, device, dtype=torch.float64, seed=0, **params):
    torch.manual_seed(0)
    x_in = torch.randn(32, 4, dtype=dtype)
    y_in = torch.randint(0, 3, (32,))
    x_aux = 3 * torch.randn(32, 4, dtype=dtype)
    clf = GradRegOODClassifier(module_cls, m_in=-6.0, m_out=-3.0, penalty=penalty,
                               verbose=0, device=device, **params)
    torch.manual_seed(seed)
    clf.initialize()
    clf.module_.to(dtype)
    torch.manual_seed(seed + 1)
    run_one_step(clf, x_in, y_in, x_aux)
    return clf.history[-1, "batches", -1, "train_grad_penalty"], clf


def test_fd_penalty_matches_exact_without_batch_coupling(device):
    exact, _ = one_step_penalty(TanhNet, "exact", device)
    fd, _ = one_step_penalty(TanhNet, "fd", device, fd_step=1e-4)
    assert exact > 0
    assert fd == pytest.approx(exact, rel=1e-3)
    # the default step in float32 is within 5%
    exact32, _ = one_step_penalty(TanhNet, "exact", device, dtype=torch.float32)
    fd32, _ = one_step_penalty(TanhNet, "fd", device, dtype=torch.float32)
    assert fd32 == pytest.approx(exact32, rel=0.05)


def test_fd_penalty_sees_the_same_dropout_masks(device):
    exact, _ = one_step_penalty(TanhNet, "exact", device, module__dropout=0.3)
    fd, _ = one_step_penalty(TanhNet, "fd", device, module__dropout=0.3, fd_step=1e-4)
    assert fd == pytest.approx(exact, rel=1e-3)


def test_fd_penalty_leaves_batchnorm_statistics_as_one_forward_does(device):
    _, exact = one_step_penalty(BNNet, "exact", device)
    _, fd = one_step_penalty(BNNet, "fd", device)
    bn_exact, bn_fd = exact.module_.body[1], fd.module_.body[1]
    assert torch.equal(bn_exact.running_mean, bn_fd.running_mean)
    assert torch.equal(bn_exact.running_var, bn_fd.running_var)
    assert bn_fd.num_batches_tracked.item() == 1


def test_fd_parameter_gradients_approximate_exact_ones(device):
    _, exact = one_step_penalty(TanhNet, "exact", device, lambda_energy=0.0)
    _, fd = one_step_penalty(TanhNet, "fd", device, lambda_energy=0.0, fd_step=1e-5)
    for p, q in zip(exact.module_.parameters(), fd.module_.parameters()):
        np.testing.assert_allclose(q.grad.cpu().numpy(), p.grad.cpu().numpy(), rtol=1e-2,
                                   atol=1e-4)


@pytest.mark.parametrize("amp", ["bf16", "fp16"])
@pytest.mark.parametrize("penalty", ["exact", "fd"])
def test_mixed_precision_fits(make_clf, blobs, amp, penalty):
    X, y, X_aux = blobs
    clf = make_clf(amp=amp, penalty=penalty, max_epochs=2).fit(X, y, X_aux=X_aux)
    assert np.isfinite(clf.history[-1, "train_loss"])
    assert clf.score(X, y) > 0.7
    assert "_fit_state" not in vars(clf)   # the GradScaler went with the fit
    assert clf.score_samples(X).dtype == np.float32


def fd_step_penalty(device, amp=None, autocast=None, penalty_fraction=1.0, seed=0):
    """The fd penalty of one step of a SmallCNN whose energies are near -22 (the regime
    of a trained network, where logits are rounded to 1/8 in bf16), and its gradient
    w.r.t. the parameters, flattened."""
    torch.manual_seed(seed)
    net = SmallCNN(1, 10, width=8).to(device)
    with torch.no_grad():
        net.classifier.bias[0] += 22.0
    generator = torch.Generator().manual_seed(seed)
    x_in = torch.rand(16, 1, 28, 28, generator=generator).to(device)
    y_in = torch.randint(0, 10, (16,), generator=generator).to(device)
    x_aux = torch.rand(32, 1, 28, 28, generator=generator).to(device)
    with torch.no_grad(), frozen_batchnorm_statistics(net):
        energies = energy(net(torch.cat([x_in, x_aux])))
    # margins at the median energies: half the rows of each kind weigh in the penalty
    objective = GRegObjective(m_in=energies[:16].median().item(),
                              m_out=energies[16:].median().item(), penalty="fd", amp=amp,
                              penalty_fraction=penalty_fraction)
    torch.manual_seed(seed + 1)
    terms = objective.step_terms(net, net, x_in, y_in, x_aux, torch.nn.functional.cross_entropy,
                                 autocast=autocast,
                                 penalty_generator=torch.Generator().manual_seed(seed))
    grads = torch.autograd.grad(terms.grad_penalty, list(net.parameters()))
    return terms.grad_penalty.item(), torch.cat([g.flatten() for g in grads]).double()


@pytest.mark.parametrize("penalty_fraction", [1.0, 0.5])
@pytest.mark.parametrize("amp", ["bf16", "fp16"])
def test_fd_penalty_under_mixed_precision_is_float32s(device, amp, penalty_fraction):
    # Taken from low-precision energies, the fd penalty was 0 to 1.8 times float32's and
    # its parameter gradient pointed elsewhere (cosine 0.01 to 0.9) on this network.
    reference, reference_grad = fd_step_penalty(device, penalty_fraction=penalty_fraction)
    value, grad = fd_step_penalty(device, amp=amp, penalty_fraction=penalty_fraction)
    assert reference > 0
    assert value == pytest.approx(reference, rel=1e-3)
    assert torch.nn.functional.cosine_similarity(grad, reference_grad, dim=0) > 0.999


def test_fd_penalty_follows_a_precision_context_of_the_estimators(device):
    # A data-parallel estimator supplies its own precision context (amp=None):
    # the penalty is float32's under it too.
    device_type = torch.device(device).type
    reference, reference_grad = fd_step_penalty(device)
    value, grad = fd_step_penalty(
        device, autocast=lambda: torch.autocast(device_type, dtype=torch.bfloat16))
    assert value == pytest.approx(reference, rel=1e-3)
    assert torch.nn.functional.cosine_similarity(grad, reference_grad, dim=0) > 0.999


def test_fd_step_on_the_meta_device():
    # autocast knows no "meta" device type; the step still runs there (shape checks)
    net = torch.nn.Linear(4, 3).to("meta")
    x = torch.randn(8, 4, device="meta")
    terms = GRegObjective(penalty="fd").step_terms(
        net, net, x, torch.zeros(8, dtype=torch.long, device="meta"), x,
        torch.nn.functional.cross_entropy)
    assert terms.grad_penalty.device.type == "meta" and terms.grad_penalty.shape == ()


def test_bad_penalty_options(make_clf, blobs):
    X, y, X_aux = blobs
    for params, message in [(dict(penalty="approx"), r"'penalty' parameter .*'exact'"),
                            (dict(fd_step=0.0), r"'fd_step' parameter .* range \(0.0, inf\)"),
                            (dict(amp="fp8"), r"'amp' parameter .*'bf16'")]:
        with pytest.raises(ValueError, match=message):
            make_clf(**params).fit(X, y, X_aux=X_aux)


def test_either_penalty_improves_ood_separation_over_no_penalty(digits, device):
    """Digits in-distribution, photographs as outliers, Fashion-MNIST (8x8) as unseen OOD."""
    pytest.importorskip("skimage")
    from sklearn.model_selection import train_test_split

    from skood.datasets import load_fashion_mnist, make_natural_image_outliers, resize_images
    from skood.metrics import auroc, fpr_at_tpr
    from skood.models import MLP
    try:
        fashion = load_fashion_mnist()
    except FileNotFoundError as exc:
        pytest.skip(f"Fashion-MNIST is not installed: {exc}")
    X, y = digits
    X = X.reshape(-1, 1, 8, 8)
    X_train, X_test, y_train, _ = train_test_split(X, y, test_size=0.3, random_state=0,
                                                   stratify=y)
    X_aux = make_natural_image_outliers(3000, (8, 8), random_state=0)
    ood = resize_images(fashion.X_test[:1000], (8, 8)) / 255.0
    labels = np.r_[np.ones(len(X_test)), np.zeros(len(ood))]

    def mean_metrics(**params):
        aurocs, fprs = [], []
        for seed in (0, 1):
            clf = GradRegOODClassifier(MLP, module__n_features=64, module__n_classes=10,
                                       max_epochs=12, lr=0.05, optimizer__momentum=0.9,
                                       batch_size=64, m_in=-12.0, m_out=-4.0, random_state=seed,
                                       verbose=0, device=device, **params)
            clf.fit(X_train, y_train, X_aux=X_aux)
            scores = np.r_[clf.score_samples(X_test), clf.score_samples(ood)]
            aurocs.append(auroc(labels, scores))
            fprs.append(fpr_at_tpr(labels, scores))
        return np.mean(aurocs), np.mean(fprs)

    no_penalty = mean_metrics(lambda_grad=0.0)
    for penalty in ("exact", "fd"):
        with_penalty = mean_metrics(lambda_grad=1.0, penalty=penalty)
        assert with_penalty[0] > no_penalty[0] + 0.01, penalty     # AUROC up
        assert with_penalty[1] < no_penalty[1] - 0.03, penalty     # FPR95 down
