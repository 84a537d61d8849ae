"""MaxLogit: the largest logit (Hendrycks et al., ICML 2022)."""
from ._base import BaseDetector, NoFitMixin

__all__ = ["MaxLogit"]


class MaxLogit(NoFitMixin, BaseDetector):
    r"""The largest logit: :math:`\max_c f_c(x)`.

    Returned as float64; higher means more in-distribution. It has no parameters and needs
    no fitting: ``fit`` only records the number of logit columns.

    Attributes
    ----------
    n_logits_in_ : int
        The number of logit columns seen by ``fit`` (set by ``fit`` only).

    References
    ----------
    Hendrycks, Basart, Mazeika, Zou, Kwon, Mostajabi, Steinhardt, Song, "Scaling
    out-of-distribution detection for real-world settings", ICML 2022.

    Examples
    --------
    >>> from skood.detectors import MaxLogit
    >>> MaxLogit().score_samples(logits=[[1.0, 3.0], [-2.0, -1.0]])
    array([ 3., -1.])
    """

    needs = frozenset({"logits"})

    def _score(self, features, logits):
        return logits.max(dim=1).values
