"""Checks of single benchmark settings, and the error they raise.

:class:`BenchmarkConfigError` names the bad setting; the helpers here check one
value each (a positive integer, a finite number, a writable folder, a device)
and raise it with a message that says what was wrong. :class:`BenchmarkConfig`
(:mod:`skood.benchmark.config`) runs them when it is built.
"""
import math
import numbers
import os

import numpy as np

from .._validation import check_device

__all__ = ["BenchmarkConfigError"]


class BenchmarkConfigError(ValueError):
    """A bad benchmark setting; ``parameter`` names it (a :class:`BenchmarkConfig` field).

    A ValueError: :class:`BenchmarkConfig` raises it when it is built with a
    bad value, and the command line turns it into a usage error.

    Parameters
    ----------
    parameter : str
        The bad setting's name, kept as the attribute ``parameter``.
    message : str
        What was wrong and how to fix it (the error's text).

    Examples
    --------
    >>> from skood.benchmark import BenchmarkConfig, BenchmarkConfigError
    >>> try:
    ...     BenchmarkConfig(dataset="digits", epochs=0)
    ... except BenchmarkConfigError as error:
    ...     print(error.parameter, "|", error)
    epochs | epochs must be a positive integer, got 0.
    """

    def __init__(self, parameter, message):
        super().__init__(message)
        self.parameter = parameter


def _is_int(value):
    return isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))


def _is_real(value):
    return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))


def _as_tuple(name, values, single):
    """``values`` as a tuple; one value of type ``single`` becomes a 1-tuple."""
    if isinstance(values, single):
        return (values,)
    try:
        return tuple(values)
    except TypeError:
        raise BenchmarkConfigError(name, f"{name} must be a sequence, got {values!r}.") from None


def _positive_int(name, value, none=False):
    if none and value is None:
        return None
    if not _is_int(value) or value < 1:
        raise BenchmarkConfigError(name, f"{name} must be a positive integer, got {value!r}.")
    return int(value)


def _finite(name, value, positive=False):
    if not _is_real(value) or not math.isfinite(value) or (positive and value <= 0):
        what = "a positive finite number" if positive else "a finite number"
        raise BenchmarkConfigError(name, f"{name} must be {what}, got {value!r}.")
    return float(value)


def _writable_folder(name, path):
    """Create ``path`` (a folder) if needed and check that files can be written there."""
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as error:
        raise BenchmarkConfigError(name, f"{name} must be a folder that can be created, got "
                                         f"{path!r}: {error.strerror or error}.") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise BenchmarkConfigError(name, f"{name} must be a writable folder, got {path!r} "
                                         "(no permission to write there).")
    return path


def _check_device(device):
    try:
        return check_device(device)
    except ValueError as error:
        raise BenchmarkConfigError("device", str(error)) from None
