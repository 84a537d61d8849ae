"""Multi-GPU data-parallel GReg training through skorch's ``AccelerateMixin``.

skorch's ``AccelerateMixin`` replaces ``train_step_single`` with a plain
forward-loss-backward, which would silently drop GReg's energy loss and
gradient penalty. :class:`AcceleratedGradRegOODClassifier` keeps GReg's step
and only hands the backward pass, mixed precision and the shifted forward of
``penalty="fd"`` to Accelerate. Needs the ``[accelerate]`` extra.
"""
import contextlib

import torch

from skorch.hf import AccelerateMixin
from skorch.utils import to_tensor

from ._classifier import GradRegOODClassifier

__all__ = ["AcceleratedGradRegOODClassifier"]


class AcceleratedGradRegOODClassifier(AccelerateMixin, GradRegOODClassifier):
    """:class:`skood.GradRegOODClassifier` trained data-parallel with Hugging Face Accelerate.

    Launch the script with ``accelerate launch`` (or ``torchrun``); each process
    gets a shard of every epoch's ID batches (skorch's iterators are prepared by
    the accelerator) and draws its own outliers (the sampler is seeded with the
    process's rank). Gradients are averaged over processes by DDP.

    ``penalty="fd"`` is the recommended mode: one backward per step, and its
    shifted forward runs on the unwrapped module, so DDP sees one forward per
    backward. ``penalty="exact"`` (a double backward) works with DDP's default
    settings or ``find_unused_parameters=True``; it refuses ``static_graph=True``,
    under which DDP silently stops averaging gradients when a double backward
    is involved.

    Parameters
    ----------
    *args
        :class:`skood.GradRegOODClassifier`'s positional parameter, the module.
    accelerator : accelerate.Accelerator
        Mixed precision is set there (``Accelerator(mixed_precision="bf16")``),
        not with ``amp``.
    device : None
        The accelerator places the data and the module.
    unwrap_after_train : bool, default=True
        skorch's: unwrap the module (and the criterion) from Accelerate's
        wrappers after training, so that the fitted estimator pickles and
        predicts like a plain one.
    callbacks__print_log__sink : "auto" or callable, default="auto"
        skorch's: with "auto", only the main process prints the training log.
    **kwargs
        Everything else :class:`skood.GradRegOODClassifier` takes.

    Examples
    --------
    >>> from accelerate import Accelerator
    >>> from skood.models import MLP
    >>> clf = AcceleratedGradRegOODClassifier(
    ...     MLP, module__n_features=4, module__n_classes=2, accelerator=Accelerator(cpu=True),
    ...     penalty="fd", max_epochs=1, verbose=0)
    >>> clf.penalty
    'fd'
    """

    # AccelerateMixin's plain step would drop the GReg terms: keep GReg's step.
    train_step_single = GradRegOODClassifier.train_step_single

    def _check_hyperparameters(self):
        super()._check_hyperparameters()
        if self.amp is not None:
            raise ValueError(
                "Set mixed precision on the Accelerator (Accelerator(mixed_precision='bf16')), "
                f"not with amp={self.amp!r}, for AcceleratedGradRegOODClassifier.")
        handler = getattr(self.accelerator, "ddp_handler", None)
        if (self.penalty == "exact" and self.lambda_grad > 0 and handler is not None
                and getattr(handler, "static_graph", False)):
            raise ValueError(
                "penalty='exact' takes a double backward, under which DDP with "
                "static_graph=True silently stops averaging gradients. Use penalty='fd' "
                "(recommended for data-parallel training), or DistributedDataParallelKwargs("
                "static_graph=False, find_unused_parameters=True).")

    def _initialize_accelerator(self):
        # A criterion without parameters (cross-entropy) must not be prepared:
        # under several processes Accelerate would wrap it in DDP, which refuses
        # modules without trainable parameters.
        # skorch keeps both the "already prepared" flag and the list of criteria
        # private (_wrapped_with_accelerator, _criteria); there are no public ones.
        if self._wrapped_with_accelerator:
            return self
        parameterless = {}
        for name in self._criteria:
            criterion = getattr(self, name + "_")
            if isinstance(criterion, torch.nn.Module) and not any(
                    p.requires_grad for p in criterion.parameters()):
                parameterless[name] = criterion
                setattr(self, name + "_", None)
        try:
            super()._initialize_accelerator()
        finally:
            for name, criterion in parameterless.items():
                setattr(self, name + "_", criterion.to(self.accelerator.device))
        return self

    def _autocast(self):
        autocast = getattr(self.accelerator, "autocast", None)
        return autocast() if autocast is not None else contextlib.nullcontext()

    def _backward(self, loss):
        # Accelerate scales the loss itself under mixed_precision="fp16"
        self.accelerator.backward(loss)

    def _grad_scaler(self):
        # Under mixed_precision="fp16" the GradScaler is Accelerate's: the exact
        # penalty differentiates the score scaled by it, and the gradient check
        # leaves the overflowing steps to it (it skips them and lowers the scale).
        return getattr(self.accelerator, "scaler", None)

    def _penalty_forward(self, x, **fit_params):
        module = self.accelerator.unwrap_model(self.module_)
        x = to_tensor(x, device=x.device)
        if "forward" not in vars(module):
            return module(x, **fit_params)
        # Under mixed precision Accelerate replaces the instance's ``forward`` by one
        # wrapped in its autocast, which unwrap_model keeps (keep_fp32_wrapper=False
        # would remove it for good, from the training forwards too). The class's
        # forward runs in the caller's precision context: float32 for the fd
        # penalty's forwards under mixed precision (see skood._objective), the
        # step's autocast otherwise. (Forward hooks of the module itself are not run.)
        return type(module).forward(module, x, **fit_params)

    @property
    def _training_device(self):
        return self.accelerator.device

    @property
    def _process_index(self):
        return int(getattr(self.accelerator, "process_index", 0))
