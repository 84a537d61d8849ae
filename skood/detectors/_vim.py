"""ViM: energy minus a virtual logit from the feature residual (Wang et al., CVPR 2022)."""
import numbers

import numpy as np
import torch
# scikit-learn's constraint type for _parameter_constraints (a private module: see _base.py)
from sklearn.utils._param_validation import Interval

from ..losses import energy
from ._base import BaseDetector

__all__ = ["ViM"]


def default_n_components(n_features):
    """The principal subspace's dimension when ``n_components=None`` (see :class:`ViM`)."""
    if n_features >= 2048:
        return 1000
    if n_features >= 768:
        return 512
    return n_features // 2


class ViM(BaseDetector):
    r"""Virtual-logit matching: the energy of the logits minus a scaled feature residual.

    With :math:`W, b` the network's last linear layer and :math:`h(x)` its input (the
    features), the features are centred at the origin of the logit space,
    :math:`u = -W^{+} b` (so that :math:`W u + b = 0` when :math:`W` has full row rank), and
    :math:`P` is the principal subspace of dimension ``n_components`` of the training
    features :math:`h_i - u`: the leading eigenvectors of
    :math:`\frac{1}{N} \sum_i (h_i - u)(h_i - u)^\top` (no further centring). The residual
    of a row is its part outside :math:`P`, :math:`r(x) = (I - P P^\top)(h(x) - u)`, and

    .. math::

        s(x) = \log \sum_c \exp f_c(x) - \alpha \lVert r(x) \rVert_2, \qquad
        \alpha = \frac{\sum_i \max_c f_c(x_i)}{\sum_i \lVert r(x_i) \rVert_2}

    over the training rows :math:`x_i`: the energy score minus the *virtual logit*
    :math:`\alpha \lVert r(x) \rVert`, whose scale :math:`\alpha` matches the training
    rows' largest logits. Higher means more in-distribution. Computed in float64.

    ``fit`` needs the training features, their logits, and ``last_layer``: the linear layer
    whose input the features are (``features @ W.T + b`` are the logits, up to what the
    network applies after that layer). Scoring reads the features and the logits.

    Parameters
    ----------
    n_components : int >= 1 or None, default=None
        The dimension of :math:`P`, below the number of feature columns. None applies the
        rule of the paper's released code: 1000 for features of width 2048 or more
        (ResNet-50, BiT), 512 for width 768 or more (ViT-B); for narrower features, which
        the paper does not cover, half the width (rounded down).

    Attributes
    ----------
    origin_ : ndarray of shape (n_features,)
        :math:`u = -W^{+} b`, float64.
    residual_basis_ : ndarray of shape (n_features, n_features - n_components)
        An orthonormal basis of the space orthogonal to :math:`P`, float64.
    alpha_ : float
        :math:`\alpha`.
    n_components_ : int
        The dimension of :math:`P` used.
    n_features_in_, n_logits_in_ : int

    References
    ----------
    Wang, Li, Feng, Zhang, "ViM: Out-of-distribution with virtual-logit matching",
    CVPR 2022.

    Examples
    --------
    >>> import numpy as np
    >>> from skood.detectors import ViM
    >>> rng = np.random.default_rng(0)
    >>> features = np.c_[rng.normal(size=(500, 2)) * 3, rng.normal(size=(500, 2)) * 0.1]
    >>> weight, bias = rng.normal(size=(3, 4)), np.zeros(3)
    >>> detector = ViM(n_components=2).fit(features, features @ weight.T + bias,
    ...                                    last_layer=(weight, bias))
    >>> detector.residual_basis_.shape          # the two low-variance directions
    (4, 2)
    >>> rows = np.array([[1.0, 1.0, 0.0, 0.0], [1.0, 1.0, 5.0, 5.0]])
    >>> scores = detector.score_samples(rows, rows @ weight.T + bias)
    >>> bool(scores[0] > scores[1])             # far off the principal subspace: less ID
    True
    """

    needs = frozenset({"features", "logits"})
    needs_last_layer = True
    _parameter_constraints = {
        "n_components": [Interval(numbers.Integral, 1, None, closed="left"), None],
    }

    def __init__(self, n_components=None):
        self.n_components = n_components

    def _fit(self, features, logits, y, last_layer):
        weight, bias = (t.numpy() for t in last_layer)
        features = features.cpu().numpy().astype(np.float64)
        n_features = features.shape[1]
        n_components = (default_n_components(n_features) if self.n_components is None
                        else int(self.n_components))
        if not 1 <= n_components < n_features:
            raise ValueError(
                f"ViM: n_components={n_components} leaves no residual for features of width "
                f"{n_features}; use 1 <= n_components < {n_features}.")
        origin = -np.linalg.pinv(weight) @ bias
        centred = features - origin
        # eigh sorts the eigenvalues in ascending order: the residual space is spanned by the
        # first n_features - n_components eigenvectors.
        _, vectors = np.linalg.eigh(centred.T @ centred / centred.shape[0])
        basis = vectors[:, :n_features - n_components]
        residual = np.linalg.norm(centred @ basis, axis=1).sum()
        if residual <= 0.0:
            raise ValueError(
                f"ViM: the training features lie in a subspace of dimension <= {n_components}"
                " (no residual outside the principal subspace); lower n_components.")
        max_logits = logits.cpu().to(torch.float64).max(dim=1).values.sum().item()
        self.origin_, self.residual_basis_ = origin, basis
        self.alpha_ = max_logits / residual
        self.n_components_ = n_components

    def _score(self, features, logits):
        centred = features.cpu().numpy().astype(np.float64) - self.origin_
        virtual = self.alpha_ * np.linalg.norm(centred @ self.residual_basis_, axis=1)
        return -energy(logits.cpu().to(torch.float64)).numpy() - virtual
