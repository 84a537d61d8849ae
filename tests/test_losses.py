import math

import numpy as np
import pytest
import torch

from skood.losses import detected_score, energy, energy_margin_loss, input_gradient_penalty


def test_energy_matches_definition_with_temperature():
    logits = torch.tensor([[1.0, 2.0, 3.0], [-1.0, 0.0, 5.0]], dtype=torch.float64)
    for t in (1.0, 2.5):
        expected = [-t * math.log(sum(math.exp(v / t) for v in row)) for row in logits.tolist()]
        np.testing.assert_allclose(energy(logits, t).numpy(), expected, rtol=1e-12)


def test_energy_margin_loss_is_squared_hinge_on_each_side():
    e_in = torch.tensor([-30.0, -20.0])   # second one is 5 above m_in
    e_aux = torch.tensor([-10.0, 0.0])    # first one is 3 below m_out
    value = energy_margin_loss(e_in, e_aux, m_in=-25.0, m_out=-7.0)
    assert value.item() == pytest.approx(25.0 / 2 + 9.0 / 2)


def test_detected_score_only_counts_correctly_detected_samples():
    e_in = torch.tensor([-27.0, -20.0, -30.0])  # detected: -27 (2 below), -30 (5 below)
    e_aux = torch.tensor([-10.0, -4.0])         # detected: -4 (3 above)
    value = detected_score(e_in, e_aux, m_in=-25.0, m_out=-7.0)
    assert value.item() == pytest.approx(-(2.0 + 5.0) / 3 + 3.0 / 2)


def test_input_gradient_penalty_is_mean_row_norm_and_differentiable():
    w = torch.tensor([3.0, 4.0], requires_grad=True)
    x = torch.ones(5, 2, requires_grad=True)
    penalty = input_gradient_penalty((x * w).sum(), x)   # every row's gradient is w
    assert penalty.item() == pytest.approx(5.0)
    (grad_w,) = torch.autograd.grad(penalty, w)
    np.testing.assert_allclose(grad_w.numpy(), [3.0 / 5.0, 4.0 / 5.0], rtol=1e-6)
