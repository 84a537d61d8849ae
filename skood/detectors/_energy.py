"""Energy: minus the free energy of the logits (Liu et al., NeurIPS 2020)."""
import numbers

# scikit-learn's constraint type for _parameter_constraints (a private module: see _base.py)
from sklearn.utils._param_validation import Interval

from ..losses import energy
from ._base import BaseDetector, NoFitMixin

__all__ = ["Energy"]


class Energy(NoFitMixin, BaseDetector):
    r"""Minus the energy of the logits: :math:`T \log \sum_c \exp(f_c(x) / T)`.

    The score skood's estimator has always used: exactly ``-skood.losses.energy(logits,
    temperature)`` (the same function), computed in the logits' precision and on their
    device, then returned as float64 (a float32 score widens exactly). Higher means more
    in-distribution. It needs no fitting: ``fit`` only checks the parameters.

    Parameters
    ----------
    temperature : float > 0, default=1.0
        :math:`T`. The default is the paper's: Liu et al. score with :math:`T = 1`.

    Attributes
    ----------
    n_logits_in_ : int
        The number of logit columns seen by ``fit`` (set by ``fit`` only).

    References
    ----------
    Liu, Wang, Owens, Li, "Energy-based out-of-distribution detection", NeurIPS 2020.

    Examples
    --------
    >>> import numpy as np
    >>> from skood.detectors import Energy
    >>> Energy().score_samples(logits=np.zeros((1, 4))).round(4)   # log(4)
    array([1.3863])
    """

    needs = frozenset({"logits"})
    _parameter_constraints = {"temperature": [Interval(numbers.Real, 0, None, closed="neither")]}

    def __init__(self, temperature=1.0):
        self.temperature = temperature

    def _score(self, features, logits):
        return -energy(logits, self.temperature)
