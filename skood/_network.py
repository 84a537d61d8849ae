"""The network outside the training step: eval mode for a block, the probe forward
that checks its outputs and the criterion before training, and the check of the
trained network's outputs on the held-out rows."""
import contextlib
import itertools
import warnings

import numpy as np
import torch
from skorch.utils import to_tensor

from ._objective import first_output
from .data import as_float_sample, sample_of
from .exceptions import NonFiniteOutputError

__all__ = ["check_finite_items", "check_held_out_scores", "check_module_outputs", "eval_mode",
           "module_device"]


@contextlib.contextmanager
def eval_mode(module):
    """Put ``module`` in eval mode for the block, then back in the mode it was in.

    For the forwards a fit makes besides its training steps (the probe before
    training, the scoring of candidate outliers), which must neither use
    dropout nor update the running statistics of norm layers.

    Parameters
    ----------
    module : torch.nn.Module

    Examples
    --------
    >>> import torch
    >>> net = torch.nn.Dropout().train()
    >>> with eval_mode(net):
    ...     net.training
    False
    >>> net.training
    True
    """
    training = module.training
    module.train(False)
    try:
        yield module
    finally:
        module.train(training)


def module_device(module):
    """The device of ``module``'s first parameter or buffer; the CPU for a module
    without any (or for ``None``).

    Examples
    --------
    >>> import torch
    >>> module_device(torch.nn.Linear(2, 1))
    device(type='cpu')
    """
    if isinstance(module, torch.nn.Module):
        tensor = next(itertools.chain(module.parameters(), module.buffers()), None)
        if tensor is not None:
            return tensor.device
    return torch.device("cpu")


def check_module_outputs(estimator, X_sample, n_classes, y_sample=None):
    """Refuse a module that cannot forward the samples of X, whose logits do not
    have one column per class, or a criterion that cannot take them with the class
    indices ``y_sample``, before training.

    Parameters
    ----------
    estimator : GradRegOODClassifier
        Initialised: its ``module_`` and ``criterion_`` are probed.
    X_sample : array-like of shape (n, ...)
        A few samples of ``X``, as training reads them.
    n_classes : int
    y_sample : array-like of shape (n,), optional
        The encoded classes of ``X_sample``; without it the criterion is not probed.
    """
    # The sample goes where the module is (the training device): under Accelerate
    # (device=None) the module was already moved by the accelerator.
    device = module_device(estimator.module_)
    try:
        with eval_mode(estimator.module_), torch.no_grad():
            logits = first_output(estimator.infer(to_tensor(X_sample, device=device)))
    except RuntimeError as error:
        n_values = int(np.prod(X_sample.shape[1:]))
        given = estimator.get_params_for("module").get("n_features")
        hint = (f"module__n_features={given} is set, but the samples of X have {n_values} "
                f"values: pass module__n_features={n_values}, or leave it out to take it "
                "from the data." if given is not None and given != n_values else
                "Check that the module's input size matches the samples of X.")
        raise ValueError(
            f"The module cannot forward samples of X of shape {tuple(X_sample.shape[1:])}: "
            f"{type(error).__name__}: {error}. {hint}") from error
    if logits.ndim != 2 or logits.shape[1] != n_classes:
        raise ValueError(
            f"The module returns logits of shape {tuple(logits.shape)} for "
            f"{X_sample.shape[0]} samples, but y has {n_classes} classes: it must return "
            f"(n_samples, {n_classes}). Set the module's number of outputs, e.g. "
            f"module__n_classes={n_classes}.")
    if y_sample is None:
        return
    # n_classes + 1 rows (repeating the sample's), so that a criterion broadcasting
    # (n,) class indices against (n, n_classes) logits cannot pass by chance
    rows = torch.arange(n_classes + 1) % len(logits)
    logits = logits[rows.to(logits.device)]
    y_sample = torch.as_tensor(np.asarray(y_sample), device=logits.device)[
        rows.to(logits.device)]
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")     # e.g. MSELoss's broadcasting warning
            loss = estimator.get_loss(logits, y_sample, X=None, training=False)
        if loss.numel() != 1:
            raise ValueError(f"it returned a tensor of shape {tuple(loss.shape)}, not a "
                             "scalar")
    except (RuntimeError, ValueError, TypeError, IndexError) as error:
        raise ValueError(
            f"The criterion {estimator.criterion_!r} cannot take the module's logits, shape "
            f"{tuple(logits.shape)}, with the class indices of y, shape "
            f"{tuple(y_sample.shape)} ({type(error).__name__}: {error}). criterion must "
            "take logits of shape (n_samples, n_classes) and class indices of shape "
            "(n_samples,) and return a scalar, as torch.nn.CrossEntropyLoss (the default) "
            "does.") from error


def _source_item(dataset, row):
    """The user's Dataset and item index behind row ``row`` of a held-out Dataset (through
    ``Subset`` objects and the rows that fit reads, which both keep ``indices``)."""
    while isinstance(getattr(dataset, "indices", None), (list, tuple, np.ndarray)):
        row, dataset = int(dataset.indices[row]), dataset.dataset
    return dataset, row


def check_finite_items(rows, positions, role, then):
    """Refuse the first of ``rows[positions]`` whose sample has a NaN or infinite value,
    naming its item of ``X`` (``role`` says what the rows are for, ``then`` what to do
    after repairing it); only these positions are read.

    Parameters
    ----------
    rows : ndarray or torch Dataset
        Rows of ``X`` as the estimator reads them.
    positions : sequence of int
        The rows to read again (those whose output was not finite).
    role, then : str
        Words of the message.
    """
    for row in positions:
        row = int(row)
        if isinstance(rows, torch.utils.data.Dataset):
            sample = as_float_sample(sample_of(rows[row]))
        else:
            sample = torch.as_tensor(np.asarray(rows[row], dtype=np.float32))
        if not torch.isfinite(sample).all():
            source, item = _source_item(rows, row)
            where = (f"item {item} of X" if isinstance(source, torch.utils.data.Dataset)
                     else "a row of X")
            raise ValueError(
                f"X has a NaN or infinite value: {where} ({role}) has a non-finite sample, "
                "so its score is not finite. Remove or repair that item (e.g. with a "
                f"transform that replaces NaN), {then}.")


def check_held_out_scores(estimator, scores, held_out):
    """Refuse non-finite scores of the trained network on the held-out rows.

    A row whose own sample is not finite is bad data: a ``ValueError`` naming
    the item of ``X``. Otherwise the network is at fault (training ended with
    finite losses): :class:`~skood.exceptions.NonFiniteOutputError`, naming the
    likely causes and the fit's learning rate. Only the rows with a non-finite
    score are read again, so a finite calibration costs one ``isfinite``.

    Parameters
    ----------
    estimator : GradRegOODClassifier
        The estimator at the end of training.
    scores : ndarray of shape (n,)
        ``score_samples``' values of the held-out rows.
    held_out : ndarray or torch Dataset
        The held-out rows, in the order of ``scores``.
    """
    bad = np.flatnonzero(~np.isfinite(scores))
    if not len(bad):
        return
    check_finite_items(held_out, bad, "held out to calibrate offset_", "then fit again")
    raise NonFiniteOutputError(
        f"Training ended with finite losses on the training rows, but the trained network "
        f"gives non-finite scores on {len(bad)} of {len(scores)} held-out calibration rows "
        "(forwarded in eval mode), though their samples are finite. Likely causes: "
        "BatchNorm's running statistics after very few steps (eval mode normalises with "
        "them; train for more steps or epochs), or a learning rate too high for this "
        f"network (this fit's lr={estimator.lr!r}: lower it). The estimator is left "
        "unfitted.")
