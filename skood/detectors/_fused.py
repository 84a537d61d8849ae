"""Fused: several detectors combined through their conformal p-values."""
import numpy as np
from scipy.stats import combine_pvalues as _scipy_combine
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
# scikit-learn's constraint type for _parameter_constraints (a private module: see _base.py)
from sklearn.utils._param_validation import StrOptions
from sklearn.utils.validation import check_is_fitted

from ..conformal import conformal_pvalues
from ._base import BaseDetector

__all__ = ["Fused", "combine_pvalues"]

RULES = ("min", "fisher")


def combine_pvalues(pvalues, rule="min"):
    r"""One p-value per row from the p-values of several detectors (one column each).

    - ``"min"`` (Bonferroni): :math:`p = \min(1,\ m \min_j p_j)` for :math:`m` columns.
      If each :math:`p_j` satisfies :math:`P(p_j \le a) \le a`, then
      :math:`P(p \le a) \le \sum_j P(p_j \le a / m) \le a` by the union bound, **whatever
      the dependence between the columns**: conformal p-values of several detectors,
      computed on the same rows against the same calibration rows, are strongly dependent,
      and this rule keeps their guarantee.
    - ``"fisher"``: :math:`p = P(\chi^2_{2m} \ge -2 \sum_j \log p_j)` (Fisher's method, via
      :func:`scipy.stats.combine_pvalues`). Exact for *independent* uniform p-values; for
      dependent ones (the usual case here) :math:`P(p \le a)` can exceed :math:`a` (two
      identical columns already double the weight of one), so it has no guarantee. It can
      detect more when the evidence is spread thinly over several detectors.

    Parameters
    ----------
    pvalues : array-like of shape (n_samples, n_detectors)
        Values in (0, 1].
    rule : {"min", "fisher"}, default="min"

    Returns
    -------
    ndarray of shape (n_samples,), float64

    Examples
    --------
    >>> from skood.detectors import combine_pvalues
    >>> combine_pvalues([[0.01, 0.5, 0.9], [0.6, 0.7, 0.8]])    # 3 * min, at most 1
    array([0.03, 1.  ])
    """
    if rule not in RULES:
        raise ValueError(f"rule must be one of {list(RULES)}, got {rule!r}.")
    pvalues = np.asarray(pvalues, dtype=np.float64)
    if pvalues.ndim != 2 or pvalues.shape[1] == 0:
        raise ValueError("pvalues must be 2-D, one column per detector, got shape "
                         f"{pvalues.shape}.")
    if pvalues.size and not (np.all(pvalues > 0) and np.all(pvalues <= 1)):
        raise ValueError("pvalues must lie in (0, 1]; conformal p-values do.")
    if rule == "min":
        return np.minimum(1.0, pvalues.shape[1] * pvalues.min(axis=1, initial=1.0))
    if pvalues.shape[0] == 0:
        return np.empty(0)
    return np.asarray(_scipy_combine(pvalues, method="fisher", axis=1).pvalue, dtype=np.float64)


class Fused(BaseDetector):
    r"""Several detectors fused through their conformal p-values: a p-value, higher = more ID.

    ``fit`` fits a clone of each member on the training rows. ``calibrate`` then scores
    held-out in-distribution rows (never used by ``fit``: for an estimator, its calibration
    rows) with every member and keeps these scores. For a new row, member :math:`j` gives
    the conformal p-value :math:`p_j = (1 + \#\{i : c_{ij} \le s_j\}) / (n + 1)` of its score
    :math:`s_j` against its calibration scores :math:`c_{1j}, \dots, c_{nj}`
    (:func:`skood.conformal.conformal_pvalues`), and ``score_samples`` returns their
    combination by ``rule`` (:func:`combine_pvalues`).

    **Guarantee.** With the default ``rule="min"``, if the calibration rows and a new
    in-distribution row are exchangeable, ``P(score_samples(x) <= a) <= a`` for every
    ``a`` (Bonferroni over conformal p-values, valid for dependent members): rejecting the
    rows with ``score_samples(x) <= a`` flags at most a fraction ``a`` of in-distribution
    rows on average. That is why it is the default. ``rule="fisher"`` has no such guarantee
    here (see :func:`combine_pvalues`). The score is already calibrated: thresholding it
    again with a conformal threshold computed on the *same* calibration rows does not keep
    the guarantee; use other held-out rows for that. The false-discovery-rate proof of
    Benjamini-Hochberg on conformal p-values (Bates et al., 2023) is for one score; it is
    not claimed for this combination.

    The ranking of new rows is that of :math:`\min_j p_j` (the factor :math:`m` does not
    change it), except that rows whose :math:`m \min_j p_j` reaches 1 all tie at 1.

    **Ties.** Conformal p-values take only :math:`n + 1` values: every row that scores below
    all calibration rows of a member gets the smallest combined p-value, whether it lies just
    beyond them or far beyond. With few calibration rows, more than 5% of new
    in-distribution rows can share that floor with nearly every OOD row, and a threshold that
    accepts 95% of the in-distribution rows then accepts those OOD rows too. With
    ``tie_break=True`` (the default), the score is the combined p-value minus
    :math:`\delta\, g(t)`, where :math:`\delta = 0.01 / (n + 1)` (a hundredth of one
    calibration row's weight), :math:`t = \min_j (s_j - \mathrm{median}_i\, c_{ij}) /
    \mathrm{IQR}_i\, c_{ij}` is the most atypical member's score in units of its
    calibration spread, and :math:`g(t) = 1/2 - \arctan(t) / \pi` lies in (0, 1) and
    decreases with :math:`t`. Rows of equal p-value are then ordered by how far the most
    atypical member places them; rows of different p-values keep their order (with
    ``rule="min"`` they differ by at least :math:`m / (n + 1) > \delta`). The guarantee
    becomes :math:`P(\text{score} \le a) \le a + \delta`. ``tie_break=False`` returns the
    combined p-value itself.

    Parameters
    ----------
    detectors : sequence of detector names or objects, default=("energy", "vim", "knn")
        The members (names of :data:`skood.detectors.DETECTORS` or detector objects, cloned
        at ``fit``). The default pairs the energy score (strong on far OOD after outlier
        training) with two feature-space detectors (strong on near OOD).
    rule : {"min", "fisher"}, default="min"
    tie_break : bool, default=True
        Order rows of equal combined p-value by how atypical their most atypical member's
        score is (see **Ties**); False returns the combined p-value.

    Attributes
    ----------
    detectors_ : list of detectors
        The fitted members.
    calibration_scores_ : ndarray of shape (n_calibration, n_detectors)
        The members' scores of the calibration rows (set by :meth:`calibrate`).

    Notes
    -----
    ``needs``, ``needs_labels`` and ``needs_last_layer`` are those of the members together
    (read them from an instance).

    Examples
    --------
    >>> import numpy as np
    >>> from skood.detectors import Fused
    >>> rng = np.random.default_rng(0)
    >>> logits = rng.normal(size=(400, 3))
    >>> fused = Fused(["energy", "maxlogit"], tie_break=False).fit(logits=logits[:200])
    >>> fused = fused.calibrate(logits=logits[200:300])
    >>> far = [[-9.0, -9.0, -9.0], [-90.0, -90.0, -90.0]]   # below every calibration row
    >>> fused.score_samples(logits=far)    # both at the floor, 2 * 1 / 101
    array([0.01980198, 0.01980198])
    >>> p = fused.set_params(tie_break=True).score_samples(logits=far)
    >>> bool(p[1] < p[0] < 2 / 101), bool(2 / 101 - p[1] < 0.01 / 101)
    (True, True)
    """

    _parameter_constraints = {
        "detectors": [list, tuple],
        "rule": [StrOptions(set(RULES))],
        "tie_break": ["boolean"],
    }

    def __init__(self, detectors=("energy", "vim", "knn"), rule="min", tie_break=True):
        self.detectors = detectors
        self.rule = rule
        self.tie_break = tie_break

    def _members(self):
        from ._registry import make_detector   # the registry imports this module
        return getattr(self, "detectors_", None) or [make_detector(d) for d in self.detectors]

    @property
    def needs(self):
        return frozenset().union(*(member.needs for member in self._members()))

    @property
    def needs_labels(self):
        return any(member.needs_labels for member in self._members())

    @property
    def needs_last_layer(self):
        return any(member.needs_last_layer for member in self._members())

    def _fit(self, features, logits, y, last_layer):
        from ._registry import make_detector
        if len(self.detectors) == 0:
            raise ValueError("Fused needs at least one detector, got an empty sequence.")
        members = [clone(make_detector(d)) for d in self.detectors]
        for member in members:
            member.fit(features, logits, y, last_layer=last_layer)
        self.detectors_ = members
        if hasattr(self, "calibration_scores_"):
            del self.calibration_scores_   # scores of the previous members

    def calibrate(self, features=None, logits=None):
        """Score held-out in-distribution rows with every member and keep the scores.

        The rows must not be among those given to ``fit``, and must be exchangeable with
        the in-distribution rows to be scored (for example, a random part of the
        held-out data).

        Parameters
        ----------
        features : array-like or torch.Tensor of shape (n_calibration, n_features), optional
            Required when ``"features" in self.needs``.
        logits : array-like or torch.Tensor of shape (n_calibration, n_classes), optional
            Required when ``"logits" in self.needs``.

        Returns
        -------
        self : Fused
        """
        check_is_fitted(self, "detectors_")
        features, logits = self._check_inputs(features, logits, fitting=False)
        scores = self._member_scores(features, logits)
        if scores.shape[0] == 0:
            raise ValueError("Fused.calibrate got 0 rows; pass held-out in-distribution rows.")
        self.calibration_scores_ = scores
        return self

    def _member_scores(self, features, logits):
        return np.column_stack([member.score_samples(features, logits)
                                for member in self.detectors_])

    def _score(self, features, logits):
        if not hasattr(self, "calibration_scores_"):
            raise NotFittedError("This Fused detector is fitted but not calibrated: call "
                                 "calibrate(features, logits) on held-out in-distribution "
                                 "rows before score_samples.")
        scores = self._member_scores(features, logits)
        pvalues = np.column_stack([conformal_pvalues(calibration, column) for calibration, column
                                   in zip(self.calibration_scores_.T, scores.T)])
        combined = combine_pvalues(pvalues, self.rule)
        if not self.tie_break:
            return combined
        # Within a tie, the row whose most atypical member lies furthest below its
        # calibration scores (in units of their spread) scores lowest; arctan rather than a
        # logistic map so that rows tens of spreads away stay apart after float32 rounding.
        calibration = self.calibration_scores_
        median = np.median(calibration, axis=0)
        spread = np.subtract(*np.percentile(calibration, [75, 25], axis=0))
        spread = np.where(spread > 0, spread, calibration.std(axis=0))
        spread = np.where(spread > 0, spread, 1.0)
        atypical = ((scores - median) / spread).min(axis=1)
        delta = 0.01 / (calibration.shape[0] + 1)
        return combined - delta * (0.5 - np.arctan(atypical) / np.pi)
