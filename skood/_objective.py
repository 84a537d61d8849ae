"""The GReg training objective of one step, apart from the estimator that runs it.

:class:`GRegObjective` holds the hyperparameters of the loss and turns one
in-distribution (ID) batch and one outlier batch into the step's terms
(:class:`StepTerms`): cross-entropy, the energy margin loss, the gradient
penalty and their weighted sum. The estimator only supplies the forward, the
classification loss and, for data-parallel training, its own precision
context and shifted forward. See ``docs/method.md`` for the maths.

A new penalty mode is one function of the form of :func:`_exact_penalty` or
:func:`_finite_difference_penalty`, registered in ``PENALTIES``; the estimator's
``penalty`` parameter accepts every key of that mapping. ``penalty_fraction``
(:meth:`GRegObjective._subset_penalty`) works with every mode: it calls the mode's
function on a random subset of the step's rows.
"""
import contextlib
from dataclasses import dataclass
from typing import NamedTuple

import torch

from .losses import (detected_score, detected_weights, energy, energy_margin_loss,
                     finite_difference_penalty, input_gradient_penalty)

__all__ = ["AMP_DTYPES", "HISTORY_KEYS", "PENALTIES", "GRegObjective", "StepTerms",
           "amp_autocast", "first_output", "frozen_batchnorm_statistics", "full_precision"]

#: Mixed-precision modes of the ``amp`` parameter and the autocast dtype of each.
AMP_DTYPES = {None: None, "bf16": torch.bfloat16, "fp16": torch.float16}


class StepTerms(NamedTuple):
    """The terms of one training step; all but ``logits_in`` are 0-dim tensors.

    ``energy_loss`` and ``grad_penalty`` are unweighted; ``loss`` is
    ``cross_entropy + lambda_energy * energy_loss + lambda_grad * grad_penalty``.
    ``energy_in`` / ``energy_aux`` are the mean energies of the ID and outlier
    rows. Terms that the step does not compute are NaN: the energies, the
    margin loss and the penalty of a cross-entropy-only step, the penalty when
    ``lambda_grad=0``.
    """

    loss: torch.Tensor
    cross_entropy: torch.Tensor
    energy_loss: torch.Tensor
    grad_penalty: torch.Tensor
    energy_in: torch.Tensor
    energy_aux: torch.Tensor
    logits_in: torch.Tensor


#: The step's terms recorded per batch in the estimator's history, and their keys there.
HISTORY_KEYS = {
    "cross_entropy": "train_ce",
    "energy_loss": "train_energy_loss",
    "grad_penalty": "train_grad_penalty",
    "energy_in": "train_energy_in",
    "energy_aux": "train_energy_aux",
}


def full_precision(tensor):
    """Upcast half-precision results of autocast to float32; leave float32/64 alone."""
    return tensor.float() if tensor.dtype in (torch.float16, torch.bfloat16) else tensor


def first_output(output):
    """The logits of a module that returns a tuple (logits first) or the logits alone."""
    return output[0] if isinstance(output, (tuple, list)) else output


def amp_autocast(device_type, amp):
    """``torch.autocast`` for an ``amp`` mode on ``device_type``; a no-op for ``None``."""
    dtype = AMP_DTYPES[amp]
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type, dtype=dtype)


class RandomStateSnapshot:
    """Host-side copy of the CPU and current-device generator states (no device sync)."""

    def __init__(self, device):
        self.cpu = torch.get_rng_state()
        self.cuda = None
        if device.type == "cuda":
            self.cuda = (device, torch.cuda.get_rng_state(device))

    def restore(self):
        torch.set_rng_state(self.cpu)
        if self.cuda is not None:
            torch.cuda.set_rng_state(self.cuda[1], self.cuda[0])


def _tracks_running_statistics(layer):
    # Duck-typed instead of isinstance(torch.nn.modules.batchnorm._BatchNorm), a
    # private class: this covers BatchNorm*, SyncBatchNorm and InstanceNorm*
    # with track_running_stats=True, whose running statistics all update alike.
    return (getattr(layer, "track_running_stats", False) and layer.training
            and getattr(layer, "running_mean", None) is not None)


@contextlib.contextmanager
def frozen_batchnorm_statistics(module):
    """Run a train-mode forward without updating the running statistics of norm layers."""
    saved = []
    for layer in module.modules():
        if _tracks_running_statistics(layer):
            tracked = getattr(layer, "num_batches_tracked", None)
            saved.append((layer, layer.momentum,
                          tracked.clone() if tracked is not None else None))
            layer.momentum = 0.0
    try:
        yield
    finally:
        for layer, momentum, tracked in saved:
            layer.momentum = momentum
            if tracked is not None:
                layer.num_batches_tracked.copy_(tracked)


def _exact_penalty(objective, score, x, energies, n_in, context):
    """Input-gradient norm by double backward from the step's one forward."""
    scaler = context.grad_scaler
    if scaler is None:
        return input_gradient_penalty(score, x)
    # fp16 gradient-penalty recipe: differentiate the scaled score so that small
    # gradients do not underflow, then unscale before the norm. The scale is
    # read as a device tensor (scaling a one), since get_scale() would wait for
    # the device.
    scaled_score = scaler.scale(score)
    scale = scaler.scale(score.new_ones(()))
    return input_gradient_penalty(scaled_score, x) / scale


def _finite_difference_penalty(objective, score, x, energies, n_in, context):
    """The per-sample norm along the normalised input gradient, by a second forward.

    Under mixed precision the whole estimate is taken in float32, autocast off:
    in bf16 the step ``fd_step * d`` moves each input value by less than its
    rounding, and logits near 20 are rounded to 1/8, so the difference of two
    low-precision energies is mostly rounding; and the parameter gradient of
    the estimate changes to first order with the direction ``d``, which a
    low-precision backward does not give closely enough. The float32 forward at
    ``x``, its input gradient and the shifted forward repeat float32 training's,
    so the penalty is float32's; the step's low-precision forward serves the
    other terms only.
    """
    rng_after = RandomStateSnapshot(x.device)
    try:
        if context.low_precision:
            x = x.detach().requires_grad_(True)
            energies = _penalty_energies(objective, context, x)
            score = detected_score(energies[:n_in], energies[n_in:], objective.m_in,
                                   objective.m_out)
        # First-order input gradient only (no create_graph), for the direction.
        (grad,) = torch.autograd.grad(score, x, retain_graph=True)
        norms = grad.flatten(1).norm(dim=1).clamp_min(1e-12)
        direction = grad / norms.view(-1, *([1] * (grad.dim() - 1)))
        shifted_energies = _penalty_energies(
            objective, context, x.detach() + objective.fd_step * direction)
    finally:
        rng_after.restore()
    weights = detected_weights(energies[:n_in], energies[n_in:], objective.m_in, objective.m_out)
    return finite_difference_penalty(energies, shifted_energies, weights, objective.fd_step)


def _penalty_energies(objective, context, x):
    """Energies of a penalty forward at ``x``, with the first forward's random state
    (dropout masks) and without updating the running statistics of norm layers:
    in the step's precision context in float32 training, in float32 (autocast off)
    under mixed precision."""
    context.rng_before.restore()
    precision = (torch.autocast(x.device.type, enabled=False) if context.low_precision
                 else context.autocast())
    with frozen_batchnorm_statistics(context.module), precision:
        logits = first_output(context.penalty_forward(x))
    return energy(full_precision(logits), objective.temperature)


#: penalty mode -> function(objective, score, x, energies, n_in, context) -> 0-dim tensor
PENALTIES = {"exact": _exact_penalty, "fd": _finite_difference_penalty}


class _StepContext(NamedTuple):
    module: torch.nn.Module
    autocast: object
    penalty_forward: object
    grad_scaler: object
    rng_before: object
    #: whether the step's forwards run under a half-precision autocast
    low_precision: bool


@dataclass(frozen=True)
class GRegObjective:
    """GReg's loss for one step, given a forward and the step's two batches.

    Parameters are those of :class:`skood.GradRegOODClassifier` of the same names.

    Examples
    --------
    >>> import torch
    >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
    <torch._C.Generator object at ...>
    >>> net = torch.nn.Linear(4, 3)
    >>> objective = GRegObjective(lambda_energy=0.1, lambda_grad=1.0, m_in=-6.0, m_out=-3.0)
    >>> terms = objective.step_terms(net, net, torch.randn(8, 4), torch.randint(0, 3, (8,)),
    ...                              torch.randn(8, 4), torch.nn.functional.cross_entropy)
    >>> terms.loss.shape, terms.logits_in.shape
    (torch.Size([]), torch.Size([8, 3]))
    """

    lambda_energy: float = 0.1
    lambda_grad: float = 1.0
    m_in: float = -25.0
    m_out: float = -7.0
    temperature: float = 1.0
    penalty: str = "exact"
    fd_step: float = 1e-2
    amp: str = None
    penalty_fraction: float = 1.0

    @property
    def uses_outliers(self):
        """Whether the step needs an outlier batch (either outlier term is weighted)."""
        return self.lambda_energy > 0 or self.lambda_grad > 0

    @property
    def restores_random_state(self):
        """Whether the penalty re-runs the forward with the first forward's random state."""
        return self.penalty == "fd" and self.uses_outliers and self.lambda_grad > 0

    @property
    def penalizes_whole_batch(self):
        """Whether the penalty is taken on every row of the step's one forward
        (``penalty_fraction=1``) rather than on a subset with its own forward."""
        return self.uses_outliers and self.lambda_grad > 0 and self.penalty_fraction >= 1

    def step_terms(self, module, forward, x_in, y_in, x_aux, classification_loss, *,
                   autocast=None, penalty_forward=None, grad_scaler=None,
                   penalty_generator=None):
        """Forward the concatenated batch once and return the step's :class:`StepTerms`.

        Parameters
        ----------
        module : torch.nn.Module
            The network in train mode (its norm layers are frozen in the shifted
            forward of ``penalty="fd"``).
        forward : callable
            ``forward(x) -> logits`` (or a tuple whose first element is the logits).
        x_in, y_in : torch.Tensor
            The ID batch and its encoded class indices.
        x_aux : torch.Tensor or None
            The outlier batch; ``None`` when the objective uses no outliers.
        classification_loss : callable
            ``classification_loss(logits_in, y_in) -> 0-dim tensor``, e.g. cross-entropy.
        autocast : callable, optional
            Returns the precision context of the training forwards; by default
            the ``amp`` mode on ``x_in``'s device.
        penalty_forward : callable, optional
            The shifted forward of ``penalty="fd"``; by default ``forward``.
        grad_scaler : torch.amp.GradScaler, optional
            Under ``amp="fp16"``: the exact penalty is taken on the scaled score.
        penalty_generator : torch.Generator, optional
            The generator that draws the penalty's rows when
            ``penalty_fraction < 1``, on its device; by default torch's global
            CPU one.

        Returns
        -------
        StepTerms
        """
        if autocast is None:
            def autocast():
                return amp_autocast(x_in.device.type, self.amp)
        n_in = x_in.shape[0]
        x = torch.cat([x_in, x_aux.to(x_in.dtype)]) if self.uses_outliers else x_in
        whole_batch = self.penalizes_whole_batch
        if whole_batch:
            x = x.detach().requires_grad_(True)
        rng_before = (RandomStateSnapshot(x.device)
                      if whole_batch and self.restores_random_state else None)
        with autocast():
            logits = first_output(forward(x))
            cross_entropy = classification_loss(full_precision(logits[:n_in]), y_in)
            low_precision = _half_precision_autocast(x.device.type)
        not_computed = cross_entropy.new_full((), float("nan"))
        energy_loss = penalty = energy_in = energy_aux = not_computed
        loss = cross_entropy
        if self.uses_outliers:
            energies = energy(full_precision(logits), self.temperature)
            energy_in, energy_aux = energies[:n_in], energies[n_in:]
            energy_loss = energy_margin_loss(energy_in, energy_aux, self.m_in, self.m_out)
            loss = loss + self.lambda_energy * energy_loss
            if whole_batch:
                score = detected_score(energy_in, energy_aux, self.m_in, self.m_out)
                context = _StepContext(module, autocast, penalty_forward or forward,
                                       grad_scaler, rng_before, low_precision)
                penalty = PENALTIES[self.penalty](self, score, x, energies, n_in, context)
                loss = loss + self.lambda_grad * penalty
            elif self.lambda_grad > 0:
                context = _StepContext(module, autocast, penalty_forward or forward,
                                       grad_scaler, None, low_precision)
                penalty = self._subset_penalty(x, n_in, context, penalty_generator)
                loss = loss + self.lambda_grad * penalty
            energy_in, energy_aux = energy_in.mean(), energy_aux.mean()
        return StepTerms(loss, cross_entropy, energy_loss, penalty, energy_in, energy_aux,
                         full_precision(logits[:n_in].detach()))

    def _subset_penalty(self, x, n_in, context, generator):
        """The penalty estimated on ``penalty_fraction`` of the ID rows and of the
        outlier rows, drawn without replacement, in a forward of their own.

        The subset's score has per-row weights ``1/k_in`` and ``1/k_aux`` instead
        of ``1/n_in`` and ``1/n_aux``, and its penalty is a mean over ``k`` rows
        instead of ``n``; the factor ``k / n`` makes the estimate's expectation
        over the draws equal the whole-batch penalty, as long as each row's
        output depends on that row alone. Layers that couple the rows of a batch
        (BatchNorm in train mode normalises with the subset's own statistics)
        make it an estimate of a slightly different quantity; their running
        statistics are not updated by this forward.
        """
        n_aux = x.shape[0] - n_in
        rows_in = _random_rows(n_in, self.penalty_fraction, generator)
        rows_aux = n_in + _random_rows(n_aux, self.penalty_fraction, generator)
        rows = torch.cat([rows_in, rows_aux]).to(x.device)
        x_subset = x.detach()[rows].requires_grad_(True)
        k_in = rows_in.shape[0]
        # For "fd": the shifted forward repeats this forward's dropout masks.
        context = context._replace(rng_before=RandomStateSnapshot(x.device))
        with frozen_batchnorm_statistics(context.module), context.autocast():
            logits = first_output(context.penalty_forward(x_subset))
        energies = energy(full_precision(logits), self.temperature)
        score = detected_score(energies[:k_in], energies[k_in:], self.m_in, self.m_out)
        penalty = PENALTIES[self.penalty](self, score, x_subset, energies, k_in, context)
        return penalty * (rows.shape[0] / x.shape[0])


def _half_precision_autocast(device_type):
    """Whether a bf16/fp16 autocast is on for ``device_type`` (``amp``, or the precision
    context the estimator supplies, such as Accelerate's)."""
    try:
        enabled = torch.is_autocast_enabled(device_type)
    except RuntimeError:   # a device type autocast does not know, such as "meta"
        return False
    return enabled and torch.get_autocast_dtype(device_type) in (torch.float16, torch.bfloat16)


def _random_rows(n, fraction, generator):
    """``max(1, round(fraction * n))`` distinct row indices out of ``n``, on the
    generator's device (the CPU without one): on the training device, the step
    does not wait for a host-to-device copy of the indices."""
    k = min(n, max(1, int(round(fraction * n))))
    device = generator.device if generator is not None else None
    return torch.randperm(n, generator=generator, device=device)[:k]
