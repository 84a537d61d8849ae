"""Exceptions raised by skood."""

from sklearn.exceptions import ConvergenceWarning

__all__ = ["ChanceLevelWarning", "NonFiniteLossError"]


class NonFiniteLossError(FloatingPointError):
    """Training produced a NaN or infinite loss or gradient.

    Raised before the optimizer step of the failing batch, so the module keeps
    the last finite weights. The message names the epoch and batch.

    Examples
    --------
    >>> issubclass(NonFiniteLossError, FloatingPointError)
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
