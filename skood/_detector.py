"""GradRegOODDetector: the same training with scikit-learn's outlier-detector face."""
from sklearn.base import OutlierMixin

from ._classifier import GradRegOODClassifier

__all__ = ["GradRegOODDetector"]


class GradRegOODDetector(OutlierMixin, GradRegOODClassifier):
    """GReg-trained network with the methods of a scikit-learn outlier detector.

    Trained exactly as :class:`GradRegOODClassifier` (same parameters, class
    labels and auxiliary outliers in ``fit``), but its methods answer "is this
    sample in-distribution?", as :class:`~sklearn.ensemble.IsolationForest`'s
    do, so that the OOD decision is reachable through a
    :class:`~sklearn.pipeline.Pipeline` and scikit-learn's outlier-detection
    tools:

    - :meth:`predict` returns +1 (in-distribution) / -1 (OOD);
    - :meth:`decision_function` is ``score_samples(X) - offset_``, ``>= 0`` for accepted samples;
    - :meth:`score_samples` is minus the energy, higher = more in-distribution;
    - :meth:`predict_proba` still gives the ID class probabilities, and
      :meth:`score` the classification accuracy on the rows of its ``classes_``.

    The estimator type (``__sklearn_tags__().estimator_type``) is
    ``"outlier_detector"``. ``reject_ood`` has no effect here.

    Parameters
    ----------
    module : torch.nn.Module class or instance
        The network; its forward returns logits of shape ``(n, n_classes)``.
    **kwargs
        Every parameter of :class:`GradRegOODClassifier`.

    See Also
    --------
    GradRegOODClassifier : the same model with a classifier's ``predict`` and
        ``decision_function``.

    Examples
    --------
    >>> import numpy as np, torch
    >>> from sklearn.pipeline import make_pipeline
    >>> from sklearn.preprocessing import StandardScaler
    >>> from skood import GradRegOODDetector
    >>> rng = np.random.RandomState(0)
    >>> X = rng.normal(size=(200, 4)).astype("float32")
    >>> y = (X[:, 0] > 0).astype(int)
    >>> X_aux = rng.uniform(-6, 6, size=(200, 4)).astype("float32")
    >>> X_all, y_all = np.r_[X, X_aux], np.r_[y, -np.ones(200, dtype=int)]  # -1 = outlier rows
    >>> from skood.models import MLP
    >>> detector = GradRegOODDetector(MLP, module__hidden=(32,), max_epochs=20, batch_size=32,
    ...                               m_in=-12.0, m_out=-4.0, verbose=0, random_state=0)
    >>> pipe = make_pipeline(StandardScaler(), detector)
    >>> pipe = pipe.fit(X_all, y_all)
    >>> float((pipe.predict(X) == 1).mean()) > 0.9      # +1: accepted as in-distribution
    True
    >>> float((pipe.predict(X_aux) == -1).mean()) > 0.9  # -1: flagged as OOD
    True
    """

    def predict(self, X, fdr=None):
        """+1 for samples accepted as in-distribution, -1 for out-of-distribution ones.

        Parameters
        ----------
        X : array-like of shape (n_samples, ...)
        fdr : float in (0, 1), optional
            Flag the batch's Benjamini-Hochberg selection on conformal p-values
            instead of thresholding each sample (see
            :meth:`GradRegOODClassifier.predict_ood`).

        Returns
        -------
        ndarray of shape (n_samples,), int
        """
        self._check_calibrated("predict")
        return self.predict_ood(X, fdr=fdr)

    def decision_function(self, X):
        """``score_samples(X) - offset_``: ``>= 0`` means accepted as in-distribution.

        Parameters
        ----------
        X : array-like of shape (n_samples, ...)

        Returns
        -------
        ndarray of shape (n_samples,), float32
        """
        return self.ood_decision_function(X)

    def fit_predict(self, X, y=None, **fit_params):
        """Fit on ``X``, ``y`` (class labels, -1 for outlier rows), then :meth:`predict` ``X``.

        Parameters
        ----------
        X : array-like of shape (n_samples, ...)
        y : array-like of shape (n_samples,)
        **fit_params
            Passed to :meth:`fit` (``X_aux``, skorch's fit parameters).

        Returns
        -------
        ndarray of shape (n_samples,), int
            +1 for in-distribution, -1 for OOD.
        """
        return self.fit(X, y, **fit_params).predict(X)

    def score(self, X, y, sample_weight=None):
        """Classification accuracy on the rows of ``X`` whose label is one of ``classes_``.

        The class of a row is the most probable class of :meth:`predict_proba`.

        Parameters
        ----------
        X : array-like of shape (n_samples, ...)
        y : array-like of shape (n_samples,)
        sample_weight : array-like of shape (n_samples,), optional

        Returns
        -------
        float
        """
        # The parent's computation; overridden only for the docstring (predict is +1/-1 here).
        return super().score(X, y, sample_weight=sample_weight)
