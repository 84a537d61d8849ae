"""ReAct: the energy after clipping the features at a training percentile (Sun et al., 2021)."""
import numbers

import numpy as np
import torch
# scikit-learn's constraint type for _parameter_constraints (a private module: see _base.py)
from sklearn.utils._param_validation import Interval

from ..losses import energy
from ._base import BaseDetector

__all__ = ["ReAct"]


class ReAct(BaseDetector):
    r"""Energy of the logits recomputed from features clipped at a percentile of training.

    .. math::

        s(x) = \log \sum_c \exp\big(W \min(h(x), \tau) + b\big)_c

    with :math:`h(x)` the features (the input of the last linear layer :math:`W, b`), the
    minimum taken element-wise, and :math:`\tau` the ``percentile``-th percentile of *all*
    values of the training features (every row and column pooled, numpy's default linear
    interpolation). Clipping the rare, large activations that OOD inputs cause brings their
    energy down. Higher means more in-distribution; computed in float64.

    ``fit`` needs the training features and ``last_layer``; scoring reads only the
    features (the logits are recomputed from the clipped features).

    Parameters
    ----------
    percentile : float in (0, 100], default=90
        The paper's default (Sun et al. clip at the 90th percentile of the ID activations).

    Attributes
    ----------
    threshold_ : float
        :math:`\tau`.
    weight_ : ndarray of shape (n_classes, n_features)
    bias_ : ndarray of shape (n_classes,)
        The last layer's parameters, float64.
    n_features_in_ : int

    References
    ----------
    Sun, Guo, Li, "ReAct: Out-of-distribution detection with rectified activations",
    NeurIPS 2021.

    Examples
    --------
    >>> import numpy as np
    >>> from skood.detectors import ReAct
    >>> features = np.arange(10.0).reshape(10, 1)      # activations 0, 1, ..., 9
    >>> detector = ReAct(percentile=50).fit(features, last_layer=([[1.0], [0.0]], [0.0, 0.0]))
    >>> detector.threshold_
    4.5
    >>> bool(detector.score_samples([[100.0]])[0] == detector.score_samples([[4.5]])[0])
    True
    """

    needs = frozenset({"features"})
    needs_last_layer = True
    _parameter_constraints = {
        "percentile": [Interval(numbers.Real, 0, 100, closed="right")],
    }

    def __init__(self, percentile=90):
        self.percentile = percentile

    def _fit(self, features, logits, y, last_layer):
        self.threshold_ = float(np.percentile(features.cpu().numpy(), self.percentile))
        self.weight_, self.bias_ = (t.numpy() for t in last_layer)

    def _score(self, features, logits):
        clipped = features.cpu().to(torch.float64).clamp_max(self.threshold_)
        logits = clipped @ torch.from_numpy(self.weight_).T + torch.from_numpy(self.bias_)
        return -energy(logits)
