"""Exceptions and warnings raised by skood."""
import contextlib
import os
import sys
import warnings

import sklearn
import skorch
import torch
from sklearn.exceptions import ConvergenceWarning

__all__ = ["ChanceLevelWarning", "NonFiniteLossError", "NonFiniteOutputError",
           "UnseededModuleWarning"]


class NonFiniteLossError(FloatingPointError):
    """Training produced a NaN or infinite loss or gradient.

    Raised before the optimizer step of the failing batch, so the module keeps
    the weights from before that batch; these are non-finite themselves when an
    earlier step with a finite loss produced them (e.g. ``lr=float("nan")``).
    The message names the epoch and batch, and says whether the estimator could
    be calibrated with those weights (and is fitted) or is left unfitted.

    Examples
    --------
    >>> issubclass(NonFiniteLossError, FloatingPointError)
    True
    """


class NonFiniteOutputError(NonFiniteLossError):
    """Training ended with finite losses, but the trained network gives NaN or
    infinite scores on the held-out calibration rows (in eval mode).

    The usual causes are BatchNorm's running statistics after very few steps
    (eval mode normalises with them, training with the batch's own) and a
    learning rate too high. The estimator is left unfitted. A non-finite value
    in the data itself is reported as a ``ValueError`` naming the item instead.

    Examples
    --------
    >>> issubclass(NonFiniteOutputError, NonFiniteLossError)
    True
    """


class ChanceLevelWarning(ConvergenceWarning):
    """A fit ended with the classifier at chance level (see
    :class:`skood.callbacks.ChanceLevelCheck`).

    A :class:`~sklearn.exceptions.ConvergenceWarning`, so scikit-learn's
    warning filters for convergence problems catch it too.

    Examples
    --------
    >>> from sklearn.exceptions import ConvergenceWarning
    >>> issubclass(ChanceLevelWarning, ConvergenceWarning)
    True
    """


class UnseededModuleWarning(UserWarning):
    """``random_state`` was set, but ``module`` is an instance whose initial weights
    were drawn when it was built (from torch's global generator), not from
    ``random_state``: fits in other processes start from other weights.

    Pass the module's class (with ``module__*`` parameters), whose weights each fit
    draws under ``random_state``, or seed torch before building the instance. Not
    issued for :meth:`~skood.GradRegOODClassifier.from_pretrained`, whose trained
    weights are meant to be the start.

    Examples
    --------
    >>> issubclass(UnseededModuleWarning, UserWarning)
    True
    """


def _library_paths():
    """Where skood and the libraries that call back into it (skorch, torch, scikit-learn)
    live, and contextlib, through which skood's context managers run."""
    folders = [os.path.dirname(os.path.abspath(module.__file__)) + os.sep
               for module in (sklearn, skorch, torch)]
    return (os.path.dirname(os.path.abspath(__file__)) + os.sep, *folders,
            os.path.abspath(contextlib.__file__))


def warn_at_caller(message, category=UserWarning):
    """Issue a warning attributed to the first frame outside skood and the libraries it
    runs in, so that it points at the user's line (``clf.fit(...)``), not at skorch's loop.

    ``warnings.warn(..., skip_file_prefixes=...)`` does this from Python 3.12 on; this
    counts the ``stacklevel`` by walking the frames, which works on every version.

    Parameters
    ----------
    message : str
    category : Warning subclass, default=UserWarning
    """
    prefixes = _library_paths()
    frame, level = sys._getframe(1), 2      # level 2: the caller of this function
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(prefixes):
        frame, level = frame.f_back, level + 1
    warnings.warn(message, category, stacklevel=level if frame is not None else 2)
