"""Mahalanobis: distance to the nearest class mean under a shared covariance (Lee et al., 2018)."""
import numpy as np
import torch
from sklearn.covariance import EmpiricalCovariance

from ._base import BaseDetector

__all__ = ["Mahalanobis"]


class Mahalanobis(BaseDetector):
    r"""Minus the smallest squared Mahalanobis distance from the features to a class mean.

    .. math::

        s(x) = -\min_c\, (h(x) - \mu_c)^\top \Sigma^{+} (h(x) - \mu_c)

    with :math:`h(x)` the features, :math:`\mu_c` the mean of the training features of
    class :math:`c`, and :math:`\Sigma` the covariance shared by all classes (*tied*): the
    covariance of the training features centred on their class means,
    :math:`\frac{1}{N} \sum_c \sum_{i: y_i = c} (h_i - \mu_c)(h_i - \mu_c)^\top`, the
    estimate of Lee et al. Higher means more in-distribution.

    :math:`\Sigma^{+}` is the **pseudo-inverse**, no shrinkage: eigenvalues of at most
    ``n_features`` x float64 epsilon x the largest count as zero (the cutoff of
    :func:`scipy.linalg.pinvh`, which gives scikit-learn's
    :class:`~sklearn.covariance.EmpiricalCovariance` its ``precision_``). :math:`\Sigma` is
    singular with fewer training rows than feature columns, or with dead (always zero)
    ReLU features; directions in which the training features never vary then add nothing
    to the distance. Computed in float64.

    The paper also perturbs the inputs and combines several layers with a logistic
    regression fitted on OOD data; neither is done here (no OOD data is used): this is the
    score of one feature layer.

    ``fit`` needs the training features and their class labels ``y``; any label values work
    (one mean per distinct value). The fitted model holds ``n_classes x n_features`` means
    and two ``n_features x n_features`` matrices.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        The distinct labels of ``y``.
    means_ : ndarray of shape (n_classes, n_features)
        The class means :math:`\mu_c`, float64.
    precision_ : ndarray of shape (n_features, n_features)
        :math:`\Sigma^{+}`, float64.
    whitening_ : ndarray of shape (n_features, n_features)
        A square root :math:`L` of the precision (:math:`L L^\top = \Sigma^{+}`): the
        distance is computed as :math:`\lVert (h(x) - \mu_c) L \rVert^2` for all classes
        at once.
    n_features_in_ : int

    References
    ----------
    Lee, Lee, Lee, Shin, "A simple unified framework for detecting out-of-distribution
    samples and adversarial attacks", NeurIPS 2018.

    Examples
    --------
    >>> import numpy as np
    >>> from skood.detectors import Mahalanobis
    >>> rng = np.random.default_rng(0)
    >>> y = np.repeat([0, 1], 100)
    >>> features = rng.normal(size=(200, 2)) + np.where(y[:, None] == 0, -5.0, 5.0)
    >>> detector = Mahalanobis().fit(features, y=y)
    >>> scores = detector.score_samples([[-5.0, -5.0], [0.0, 0.0]])
    >>> bool(scores[0] > scores[1])    # a class mean is more in-distribution than the middle
    True
    """

    needs = frozenset({"features"})
    needs_labels = True

    def _fit(self, features, logits, y, last_layer):
        features = features.cpu().numpy().astype(np.float64)
        self.classes_, codes = np.unique(y, return_inverse=True)
        members = (codes[None, :] == np.arange(self.classes_.size)[:, None]).astype(np.float64)
        self.means_ = (members @ features) / members.sum(axis=1, keepdims=True)
        centred = features - self.means_[codes]
        covariance = EmpiricalCovariance(assume_centered=True, store_precision=False).fit(
            centred).covariance_
        # The pseudo-inverse and its square root from one eigendecomposition, with the cutoff
        # of scipy's pinvh (what EmpiricalCovariance.precision_ uses): eigenvalues at most
        # n_features * eps * the largest are treated as zero.
        values, vectors = np.linalg.eigh(covariance)
        kept = values > values.max(initial=0.0) * values.size * np.finfo(np.float64).eps
        inverse_root = np.where(kept, 1.0 / np.sqrt(np.where(kept, values, 1.0)), 0.0)
        self.whitening_ = vectors * inverse_root
        self.precision_ = self.whitening_ @ self.whitening_.T

    def _score(self, features, logits):
        rows = torch.from_numpy(features.cpu().numpy().astype(np.float64) @ self.whitening_)
        means = torch.from_numpy(self.means_ @ self.whitening_)
        squared = ((rows * rows).sum(1, keepdim=True) - 2.0 * rows @ means.T
                   + (means * means).sum(1)[None, :])
        return -squared.clamp_min(0.0).min(dim=1).values
