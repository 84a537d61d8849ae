"""Exceptions raised by skood."""

__all__ = ["NonFiniteLossError"]


class NonFiniteLossError(FloatingPointError):
    """Training produced a NaN or infinite loss or gradient.

    Raised before the optimizer step of the failing batch, so the module keeps
    the last finite weights. The message names the epoch and batch.

    Examples
    --------
    >>> issubclass(NonFiniteLossError, FloatingPointError)
    True
    """
