"""The training inside skorch's fit loop: the per-fit state and the GReg step.

:class:`TrainingMixin` overrides skorch's training step (one concatenated
forward of ID rows and outliers, the loss of :mod:`skood._objective`, its
backward and a finiteness check) and holds what one fit needs and a fitted
model must not keep (:class:`FitState`): it is created when a fit starts and
dropped when the fit ends (``_fit_state_for``), so that the outliers, the
sampler's state, the GradScaler and the calibration rows are never pickled
with the model and no call outside ``fit`` sees them.

The device, the process index, the precision context, the backward and the
shifted forward of ``penalty="fd"`` are seams that
:class:`skood.distributed.AcceleratedGradRegOODClassifier` overrides.
"""
import contextlib
from dataclasses import dataclass

import numpy as np
import torch
from skorch.dataset import unpack_data
from skorch.utils import TeeGenerator, to_tensor

from ._network import eval_mode, module_device
from ._objective import HISTORY_KEYS, GRegObjective, amp_autocast, first_output
from ._outliers import PoolScorer, RandomOutlierSampler, default_ratio
from ._seeds import penalty_seed, sampler_seed
from ._validation import loader_params
from .energy_sampler import EnergySampler
from .exceptions import NonFiniteLossError
from .losses import energy

__all__ = ["FitState", "TrainingMixin"]


@dataclass
class FitState:
    """Per-fit state of :class:`skood.GradRegOODClassifier`, made by ``_fit_state_for``.

    Attributes
    ----------
    outliers : skood._outliers.AuxiliaryData or None
        The auxiliary outliers, placed for fast gathers on the training device;
        ``None`` when the objective uses no outliers.
    sampler : object or None
        The sampler that draws them (``RandomOutlierSampler``, ``EnergySampler``
        or a user's object with ``reset`` and ``draw``).
    sampler_state : object or None
        What ``sampler.reset`` returned for this fit.
    outliers_per_id_sample : float
        The outlier batch size of a step, per ID sample.
    grad_scaler : torch.amp.GradScaler or None
        Under ``amp="fp16"``.
    penalty_generator : torch.Generator or None
        On the training device; draws the rows of the gradient penalty when
        ``penalty_fraction < 1``.
    calibration_dataset : object or None
        The held-out ID rows of skorch's validation split, set when the split
        is made; ``offset_`` is calibrated on them.
    train_dataset : object or None
        The rows the network trains on (skorch's training split), set with
        ``calibration_dataset``; the estimator's ``detector`` is fitted on them.
    split : tuple or None
        ``(dataset_train, dataset_valid)`` when the fit made skorch's split
        before training (to run a synthesizer on the training rows only);
        skorch then uses this split.
    """

    outliers: object = None
    sampler: object = None
    sampler_state: object = None
    outliers_per_id_sample: float = 1.0
    grad_scaler: object = None
    penalty_generator: object = None
    calibration_dataset: object = None
    train_dataset: object = None
    split: object = None

    def draw_outliers(self, n_in, device):
        """The outlier batch of a step whose ID batch has ``n_in`` rows."""
        n_outliers = max(1, int(round(self.outliers_per_id_sample * n_in)))
        return self.sampler.draw(self.sampler_state, self.outliers, n_in, n_outliers, device)


class TrainingMixin:
    """skorch's training loop overridden for GReg, and the per-fit runtime.

    A mixin placed before skorch's ``NeuralNetClassifier`` among the bases of
    :class:`skood.GradRegOODClassifier`; it defines no parameters (scikit-learn
    reads them from the final class's ``__init__``) and reads the estimator's
    training parameters (``lambda_*``, ``m_in``, ``m_out``, ``sampler``,
    ``penalty*``, ``amp``, ...).
    """

    # Set only during fit (see _fit_state_for); None outside it.
    _fit_state = None

    @property
    def _training_device(self):
        """The torch device training runs on (subclasses may place it themselves).

        ``device=None`` is skorch's "leave tensors where they are": training runs
        where the module's parameters are (the CPU for a module not built yet).
        """
        if self.device is not None:
            return torch.device(self.device)
        return module_device(getattr(self, "module_", None))

    @property
    def _process_index(self):
        """0 here; data-parallel subclasses return the process's rank, so that each
        process draws different outliers."""
        return 0

    def _objective(self):
        """The loss of a training step, from this estimator's parameters."""
        return GRegObjective(
            lambda_energy=self.lambda_energy, lambda_grad=self.lambda_grad, m_in=self.m_in,
            m_out=self.m_out, temperature=self.temperature, penalty=self.penalty,
            fd_step=self.fd_step, amp=self.amp, penalty_fraction=self.penalty_fraction)

    def _resolve_sampler(self):
        # Samplers keep no state of their own (reset returns it), so the
        # parameter itself is used.
        if self.sampler in (None, "random"):
            return RandomOutlierSampler()
        if self.sampler == "energy":
            return EnergySampler()
        return self.sampler

    def _autocast(self):
        """Mixed-precision context for training forwards (a no-op with amp=None)."""
        return amp_autocast(self._training_device.type, self.amp)

    def _pool_energies(self, x):
        """Energies of candidate outliers: eval mode, no gradients, the training precision."""
        with eval_mode(self.module_), torch.no_grad(), self._autocast():
            logits = first_output(self.infer(x))
        return energy(logits.float(), self.temperature)

    @contextlib.contextmanager
    def _fit_state_for(self, aux, seed):
        """Create the per-fit state (outliers, sampler state, GradScaler) and drop it
        when the fit ends, however it ends; ``seed`` seeds the sampler."""
        state = FitState()
        if aux is not None:
            device = self._training_device
            state.outliers = aux.to_device(device).read_with(loader_params(self))
            state.sampler = self._resolve_sampler()
            state.outliers_per_id_sample = (self.aux_batch_ratio if self.aux_batch_ratio
                                            is not None else default_ratio(state.sampler))
            state.sampler_state = state.sampler.reset(
                len(aux), sampler_seed(seed, self._process_index), device,
                index_device=state.outliers.device,
                pool_scorer=PoolScorer(self.module_, self._pool_energies))
        if self.amp == "fp16":
            state.grad_scaler = torch.amp.GradScaler(self._training_device.type)
        if self.penalty_fraction < 1:
            # on the training device, so that the rows are drawn there (on the CPU
            # the same stream as ever)
            state.penalty_generator = torch.Generator(self._training_device).manual_seed(
                penalty_seed(seed, self._process_index))
        self._fit_state = state
        try:
            yield state
        finally:
            if state.outliers is not None:
                state.outliers.close()
            del self._fit_state

    @contextlib.contextmanager
    def _seeded(self, seed):
        """Seed torch for the fit without changing the caller's global random state.

        Training on an accelerator (CUDA) seeds the CPU and every device of its
        kind (``torch.manual_seed``) and restores all their generators
        afterwards; training on the CPU seeds the CPU generator only, so that
        the GPUs' generators are neither changed nor initialised (reading a
        GPU's state would start CUDA).
        """
        if self.random_state is None:
            yield
            return
        kind = self._training_device.type
        if kind in ("cpu", "meta"):
            fork = torch.random.fork_rng(devices=[])
            seed_torch = torch.random.default_generator.manual_seed
        else:
            devices = range(torch.get_device_module(kind).device_count())
            fork = torch.random.fork_rng(devices=devices, device_type=kind)
            seed_torch = torch.manual_seed
        with fork:
            seed_torch(seed)
            yield

    def get_split_datasets(self, X, y=None, **fit_params):
        state = self._fit_state
        if state is not None and state.split is not None:
            # the split made before training, for X_eval or the synthesizer (see
            # skood._splits and skood._outliers): the same rows
            dataset_train, dataset_valid = state.split
        else:
            dataset_train, dataset_valid = super().get_split_datasets(X, y, **fit_params)
        # During fit, keep the held-out ID rows for the calibration of offset_;
        # a call outside fit leaves no state behind.
        if self._fit_state is not None:
            self._fit_state.calibration_dataset = dataset_valid
            self._fit_state.train_dataset = dataset_train   # the detector's rows
        return dataset_train, dataset_valid

    def train_step_single(self, batch, **fit_params):
        """One GReg step: a concatenated forward, the loss, its backward and a finiteness check."""
        self._set_training(True)
        Xi, yi = unpack_data(batch)
        x_in = self._batch_to_device(Xi)
        y_in = self._batch_to_device(yi)
        objective = self._objective()
        state = self._fit_state
        scaler = self._grad_scaler()
        x_aux = (state.draw_outliers(x_in.shape[0], x_in.device)
                 if objective.uses_outliers else None)
        terms = objective.step_terms(
            self.module_, lambda x: self.infer(x, **fit_params), x_in, y_in, x_aux,
            lambda logits, y: self.get_loss(logits, y, X=x_in, training=True),
            autocast=self._autocast,
            penalty_forward=lambda x: self._penalty_forward(x, **fit_params),
            grad_scaler=scaler, penalty_generator=state.penalty_generator)
        self._backward(terms.loss)
        logged = self._record_step(terms, y_in, objective, scaled=scaler is not None)
        # The loss handed back to skorch is a host copy of the value already read,
        # so that skorch's own ``loss.item()`` does not synchronise with the
        # device a second time; the graph is no longer needed after backward.
        return {"loss": torch.tensor(logged["loss"], dtype=terms.loss.dtype),
                "y_pred": terms.logits_in}

    def _batch_to_device(self, data):
        """A batch on the training device; a batch the DataLoader pinned
        (``iterator_train__pin_memory=True``) is copied without the host waiting."""
        device = self._training_device
        if isinstance(data, torch.Tensor):
            return data.to(device, non_blocking=data.device.type == "cpu" and data.is_pinned())
        return to_tensor(data, device=device)

    def _record_step(self, terms, y_in, objective, scaled):
        """Copy the step's terms, its accuracy and gradient norm to the host in one go,
        stop on a non-finite value, and record them in the history; return the host values.

        ``objective`` says which terms were computed; ``scaled``: a GradScaler
        scales this step's backward."""
        grads = [p.grad for p in self.module_.parameters() if p.grad is not None]
        grad_norm = (torch.nn.utils.get_total_norm(grads) if grads
                     else terms.loss.new_zeros(()))
        accuracy = (terms.logits_in.argmax(dim=1) == y_in).to(terms.loss.dtype).mean()
        names = ("loss", *HISTORY_KEYS, "accuracy", "grad_norm")
        tensors = [getattr(terms, name) for name in names[:-2]] + [accuracy, grad_norm]
        values = dict(zip(names, torch.stack(tensors).detach().double().tolist()))
        # The loss holds every computed term (terms not computed are NaN by design).
        # Under a GradScaler, infinite (scaled) gradients are the scaler's business: it
        # skips that step and lowers the scale. The same holds for a non-finite
        # penalty when the other terms are finite: the exact penalty differentiates
        # the scaled score, whose input gradient overflows at too high a scale.
        penalty_taken = objective.uses_outliers and objective.lambda_grad > 0
        scaler_skips = scaled and penalty_taken and not np.isfinite(values["grad_penalty"])
        others = ("cross_entropy", "energy_loss") if objective.uses_outliers \
            else ("cross_entropy",)
        if not (all(np.isfinite(values[name]) for name in others)
                and (np.isfinite(values["loss"]) or scaler_skips)) or (
                not scaled and not np.isfinite(values["grad_norm"])):
            self._raise_non_finite(values)
        for name, key in HISTORY_KEYS.items():
            self.history.record_batch(key, values[name])
        self.history.record_batch("train_acc", values["accuracy"])
        return values

    def _grad_scaler(self):
        """The GradScaler of this fit's steps (``amp="fp16"``), or ``None``; a seam
        for subclasses whose scaler belongs to someone else (Accelerate)."""
        return self._fit_state.grad_scaler

    def get_loss(self, y_pred, y_true, X=None, training=False):
        """skorch's loss on the logits: the first output of a module that returns more
        (e.g. ``(logits, features)``), as the training step reads it, so that skorch's
        validation step works with such modules too."""
        return super().get_loss(first_output(y_pred), y_true, X=X, training=training)

    def _backward(self, loss):
        """Backpropagate the step's loss, scaled by the fit's GradScaler (a seam for
        data-parallel subclasses)."""
        scaler = self._fit_state.grad_scaler
        (loss if scaler is None else scaler.scale(loss)).backward()

    def _penalty_forward(self, x, **fit_params):
        """The shifted forward of ``penalty="fd"``; data-parallel subclasses run it on
        the unwrapped module, so that the wrapper sees one forward per backward."""
        return self.infer(x, **fit_params)

    def _optimizer_instances(self):
        # skorch lists its optimizers only in the private ``_optimizers``; there is
        # no public registry to step each one through the GradScaler.
        return [getattr(self, name + "_") for name in self._optimizers]

    def train_step(self, batch, **fit_params):
        """skorch's step, or under ``amp="fp16"`` a GradScaler step (which takes no closure)."""
        scaler = self._fit_state.grad_scaler if self._fit_state is not None else None
        if scaler is None:
            return super().train_step(batch, **fit_params)
        optimizers = self._optimizer_instances()
        for optimizer in optimizers:
            optimizer.zero_grad()
        step = self.train_step_single(batch, **fit_params)
        for optimizer in optimizers:
            scaler.unscale_(optimizer)
        self.notify("on_grad_computed", named_parameters=TeeGenerator(
            self.get_all_learnable_params()), batch=batch, training=True)
        for optimizer in optimizers:
            scaler.step(optimizer)
        scaler.update()
        return step

    def _raise_non_finite(self, values):
        epoch = len(self.history)
        batch = len(self.history[-1, "batches"])
        raise NonFiniteLossError(
            f"Training stopped: the loss or its gradient became non-finite at epoch {epoch}, "
            f"batch {batch} (loss={values['loss']:.4g}, cross-entropy="
            f"{values['cross_entropy']:.4g}, energy loss={values['energy_loss']:.4g}, "
            f"gradient penalty={values['grad_penalty']:.4g}, gradient norm="
            f"{values['grad_norm']:.4g}). The module keeps the weights from before this batch. "
            "Lower lr or lambda_grad, standardise the inputs, or clip the gradients with "
            "skorch.callbacks.GradientNormClipping.")
