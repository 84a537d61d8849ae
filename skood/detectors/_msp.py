"""MSP: the maximum softmax probability (Hendrycks & Gimpel, ICLR 2017)."""
import numbers

import torch
# scikit-learn's constraint type for _parameter_constraints (a private module: see _base.py)
from sklearn.utils._param_validation import Interval

from ._base import BaseDetector, NoFitMixin

__all__ = ["MSP"]


class MSP(NoFitMixin, BaseDetector):
    r"""The maximum softmax probability: :math:`\max_c \operatorname{softmax}(f(x) / T)_c`.

    Computed in the logits' precision and on their device, returned as float64; in
    :math:`[1 / C, 1]` for :math:`C` classes, higher means more in-distribution. It needs
    no fitting: ``fit`` only checks the parameters.

    Parameters
    ----------
    temperature : float > 0, default=1.0
        :math:`T`. The paper's baseline uses the plain softmax, :math:`T = 1`.

    Attributes
    ----------
    n_logits_in_ : int
        The number of logit columns seen by ``fit`` (set by ``fit`` only).

    References
    ----------
    Hendrycks, Gimpel, "A baseline for detecting misclassified and out-of-distribution
    examples in neural networks", ICLR 2017.

    Examples
    --------
    >>> from skood.detectors import MSP
    >>> MSP().score_samples(logits=[[0.0, 0.0], [0.0, 100.0]])
    array([0.5, 1. ])
    """

    needs = frozenset({"logits"})
    _parameter_constraints = {"temperature": [Interval(numbers.Real, 0, None, closed="neither")]}

    def __init__(self, temperature=1.0):
        self.temperature = temperature

    def _score(self, features, logits):
        return torch.softmax(logits / self.temperature, dim=1).max(dim=1).values
