"""Conformal thresholds and p-values: OOD decisions with finite-sample guarantees.

Pure numpy; no estimator is involved. Everything takes *calibration scores*:
the scores (higher = more in-distribution, as returned by
:meth:`skood.GradRegOODClassifier.score_samples`) of in-distribution (ID) rows
that were **not used in training**. If these rows and the new ID samples are
exchangeable (for example, i.i.d. from the same distribution), then, for any
number ``n`` of calibration rows:

- :func:`conformal_threshold` returns a threshold ``t`` with
  ``P(score(x) >= t) >= tpr`` for a new ID sample ``x``;
- :func:`conformal_pvalues` returns p-values with ``P(p(x) <= a) <= a`` for
  every ``a`` in [0, 1] and a new ID sample ``x``;
- :func:`benjamini_hochberg` on those p-values flags a batch of samples as OOD
  with a false discovery rate (the expected fraction of ID samples among the
  flagged ones) of at most ``fdr`` (Bates et al., 2023);
- :func:`class_conditional_thresholds` and :func:`class_conditional_pvalues`
  give the same guarantees separately for each (predicted) class.

The probabilities are over the draw of the calibration rows *and* the new
sample (a marginal guarantee); see the "Guarantees" page of the documentation
for what breaks them.

References
----------
Vovk, Gammerman, Shafer, *Algorithmic Learning in a Random World*, Springer, 2005.

Bates, Candès, Lei, Romano, Sesia, "Testing for outliers with conformal
p-values", *Annals of Statistics* 51(1), 2023.
"""
import numbers
from fractions import Fraction

import numpy as np

from .exceptions import warn_at_caller

__all__ = [
    "conformal_threshold",
    "conformal_pvalues",
    "benjamini_hochberg",
    "class_conditional_thresholds",
    "class_conditional_pvalues",
    "min_calibration_size",
    "SmallCalibrationWarning",
]

_SMALL_CLASS_CHOICES = ("raise", "marginal", "accept")


class SmallCalibrationWarning(UserWarning):
    """Too few calibration scores for the requested level: some samples can never be flagged.

    Issued by :func:`conformal_threshold` when ``n`` calibration scores give
    ``k = floor((n + 1) * (1 - tpr)) = 0`` (the threshold is ``-inf``: every
    sample is accepted, the guarantee holds but the test is vacuous), by
    :func:`class_conditional_thresholds` for the classes it fills in with
    ``small_class="marginal"`` or ``"accept"``, and by
    :func:`class_conditional_pvalues` for samples whose class has no
    calibration row (their p-value is 1). The message names the number of rows
    needed. Turn it into an error with
    ``warnings.simplefilter("error", SmallCalibrationWarning)``.

    Examples
    --------
    >>> issubclass(SmallCalibrationWarning, UserWarning)
    True
    """


# ----------------------------------------------------------------- checks


def _check_scores(values, name, *, allow_empty):
    try:
        array = np.asarray(values)
    except Exception as error:  # ragged lists and the like
        raise ValueError(f"{name} must be a 1-D array of scores; it could not be read as "
                         f"an array ({error}).") from None
    if array.ndim != 1:
        raise ValueError(
            f"{name} must be 1-D (one score per sample), got an array of shape "
            f"{array.shape}. Pass the output of score_samples, or ravel() a column.")
    if array.dtype.kind not in "iuf":
        raise ValueError(f"{name} must hold real numbers, got dtype {array.dtype}.")
    array = array.astype(np.float64)  # exact for float32 and for integers below 2**53
    if not allow_empty and array.size == 0:
        raise ValueError(f"{name} is empty; pass the scores of at least one held-out "
                         "in-distribution sample.")
    if not np.all(np.isfinite(array)):
        bad = np.flatnonzero(~np.isfinite(array))
        raise ValueError(
            f"{name} contains NaN or inf (at positions {bad[:5].tolist()}"
            f"{', ...' if bad.size > 5 else ''}); conformal decisions need finite scores. "
            "Check the model for non-finite outputs.")
    return array


def _check_level(value, name, meaning):
    if (isinstance(value, bool) or not isinstance(value, numbers.Real)
            or not 0.0 < float(value) < 1.0):
        raise ValueError(f"{name} must be a number strictly between 0 and 1 ({meaning}), "
                         f"got {value!r}.")
    return float(value)


def _alpha(tpr):
    """1 - tpr as an exact fraction of the decimal that ``tpr`` prints as (0.95 -> 1/20)."""
    tpr = _check_level(tpr, "tpr", "the fraction of in-distribution samples to accept")
    return 1 - Fraction(str(tpr))


def _rank(n, alpha):
    """k = floor((n + 1) * alpha), in exact integer arithmetic."""
    return (int(n) + 1) * alpha.numerator // alpha.denominator


def _min_n(alpha):
    """The smallest n with floor((n + 1) * alpha) >= 1, i.e. ceil(1 / alpha) - 1."""
    return -(-alpha.denominator // alpha.numerator) - 1


def _check_n_classes(n_classes):
    if (isinstance(n_classes, bool) or not isinstance(n_classes, numbers.Integral)
            or n_classes < 1):
        raise ValueError(f"n_classes must be a positive integer (the number of classes, "
                         f"e.g. len(estimator.classes_)), got {n_classes!r}.")
    return int(n_classes)


def _check_classes(values, name, n_samples, n_classes, scores_name):
    array = np.asarray(values)
    if array.ndim != 1:
        raise ValueError(f"{name} must be 1-D (one class index per sample), got an array "
                         f"of shape {array.shape}.")
    if array.shape[0] != n_samples:
        raise ValueError(f"{name} has {array.shape[0]} entries but {scores_name} has "
                         f"{n_samples}; pass one class index per score.")
    if array.size and array.dtype.kind not in "iu":
        raise ValueError(
            f"{name} must hold integer class indices 0..n_classes-1, got dtype "
            f"{array.dtype}. Turn labels into indices with "
            "np.searchsorted(estimator.classes_, labels), or use the argmax of "
            "predict_proba.")
    array = array.astype(np.int64)
    if array.size and (array.min() < 0 or array.max() >= n_classes):
        bad = np.unique(array[(array < 0) | (array >= n_classes)])
        raise ValueError(f"{name} contains class indices {bad[:10].tolist()} outside "
                         f"0..{n_classes - 1} (n_classes={n_classes}).")
    return array


def _group_sorted(scores, classes, n_classes):
    """Scores sorted by class, then by score; and where each class starts."""
    counts = np.bincount(classes, minlength=n_classes)
    grouped = scores[np.lexsort((scores, classes))]
    starts = np.concatenate(([0], np.cumsum(counts)))
    return grouped, counts, starts


def _describe_classes(classes, counts):
    shown = ", ".join(f"{c} ({counts[c]} rows)" for c in classes[:10])
    return shown + (f" and {len(classes) - 10} more" if len(classes) > 10 else "")


# ----------------------------------------------------------------- public API


def min_calibration_size(tpr):
    """The smallest number of calibration scores for which a threshold at ``tpr`` can reject.

    This is ``ceil(1 / (1 - tpr)) - 1``: with fewer scores,
    ``floor((n + 1) * (1 - tpr)) = 0`` and :func:`conformal_threshold` returns
    ``-inf``. ``tpr`` is read as the decimal it prints as (0.95 is exactly 19/20).

    Parameters
    ----------
    tpr : float in (0, 1)
        Fraction of in-distribution samples to accept.

    Returns
    -------
    int

    Examples
    --------
    >>> min_calibration_size(0.95), min_calibration_size(0.99), min_calibration_size(0.9)
    (19, 99, 9)
    """
    return _min_n(_alpha(tpr))


def conformal_threshold(calibration_scores, tpr=0.95):
    """Threshold that accepts a new in-distribution sample with probability at least ``tpr``.

    With ``n`` calibration scores and ``k = floor((n + 1) * (1 - tpr))``, the
    threshold is the ``k``-th smallest calibration score (``-inf`` when
    ``k = 0``). A sample is accepted as in-distribution when
    ``score >= threshold``. If the calibration rows and the new ID sample are
    exchangeable, ``P(score < threshold) <= k / (n + 1) <= 1 - tpr``, so
    ``P(accepted) >= tpr`` for every ``n``; the probability is over both the
    calibration draw and the new sample. When the scores have no ties the
    acceptance is exactly ``1 - k / (n + 1)``, which is less than
    ``tpr + 1 / (n + 1)``: the rule is not conservative by more than one rank.

    Equivalently, the threshold rejects exactly the samples whose
    :func:`conformal_pvalues` are ``<= k / (n + 1)``.

    Parameters
    ----------
    calibration_scores : array-like of shape (n,)
        Scores (higher = more in-distribution) of held-out ID rows, not used
        for training. Finite; any order.
    tpr : float in (0, 1), default=0.95
        Fraction of ID samples to accept. It is read as the decimal it prints
        as, in exact rational arithmetic (``0.9`` is 9/10, so ``n = 9`` gives
        ``k = 1`` although ``10 * (1 - 0.9)`` is 0.9999999999999998 in floating
        point).

    Returns
    -------
    float
        The threshold, one of the calibration scores, or ``-inf``.

    Warns
    -----
    SmallCalibrationWarning
        When ``k = 0``, i.e. ``n < ceil(1 / (1 - tpr)) - 1`` (fewer than 19
        scores at ``tpr=0.95``, 99 at 0.99): the threshold is ``-inf``, every
        sample is accepted and the test never rejects. The message names the
        number of scores needed (see :func:`min_calibration_size`).

    Examples
    --------
    >>> import numpy as np
    >>> conformal_threshold(np.arange(1.0, 20.0), tpr=0.95)   # n=19: k=1, the smallest
    1.0
    >>> conformal_threshold(np.arange(1.0, 40.0), tpr=0.95)   # n=39: k=2
    2.0
    >>> import warnings
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     conformal_threshold([3.0, 1.0, 2.0], tpr=0.95)
    -inf
    >>> caught[0].category.__name__
    'SmallCalibrationWarning'
    """
    alpha = _alpha(tpr)
    scores = _check_scores(calibration_scores, "calibration_scores", allow_empty=False)
    n = scores.size
    k = _rank(n, alpha)
    if k == 0:
        warn_at_caller(
            f"{n} calibration scores are too few for tpr={tpr}: k = floor((n + 1) * "
            f"(1 - tpr)) = 0, so the threshold is -inf and every sample is accepted (the "
            f"guarantee holds, but nothing is ever flagged). Use at least "
            f"{_min_n(alpha)} calibration scores (ceil(1 / (1 - tpr)) - 1), or a lower tpr.",
            SmallCalibrationWarning)
        return float("-inf")
    return float(np.partition(scores, k - 1)[k - 1])


def conformal_pvalues(calibration_scores, scores):
    """Conformal p-values: how in-distribution each new score looks against the calibration scores.

    ``p(x) = (1 + #{i : calibration_scores[i] <= score(x)}) / (n + 1)``. A small
    p-value means that ``x`` scores lower than almost all held-out ID rows,
    i.e. it looks unlike the in-distribution data. Calibration scores *equal*
    to ``score(x)`` are counted (the conservative tie rule): if the
    calibration rows and a new ID sample are exchangeable,
    ``P(p(x) <= a) <= a`` for every ``a`` in [0, 1], with or without ties; for
    scores without ties, ``p(x)`` is uniform on ``{1, ..., n + 1} / (n + 1)``.

    The calibration scores are sorted once and each new score is placed with a
    binary search (``np.searchsorted(..., side="right")``): O((n + m) log n).

    Parameters
    ----------
    calibration_scores : array-like of shape (n,)
        Scores of held-out ID rows not used for training (higher = more ID);
        finite, any order.
    scores : array-like of shape (m,)
        Scores of the new samples; finite.

    Returns
    -------
    ndarray of shape (m,), float64
        Values in ``[1 / (n + 1), 1]``.

    Examples
    --------
    >>> conformal_pvalues([1.0, 2.0, 3.0, 4.0], [0.5, 2.0, 9.0])
    array([0.2, 0.6, 1. ])
    """
    calibration = np.sort(_check_scores(calibration_scores, "calibration_scores",
                                        allow_empty=False))
    scores = _check_scores(scores, "scores", allow_empty=True)
    counts = np.searchsorted(calibration, scores, side="right")
    return (1 + counts) / (calibration.size + 1)


def benjamini_hochberg(pvalues, fdr=0.1):
    """Benjamini-Hochberg selection: which samples to flag as OOD at false discovery rate ``fdr``.

    With ``m`` p-values sorted as ``p_(1) <= ... <= p_(m)``, let ``k`` be the
    largest index with ``p_(k) <= fdr * k / m`` (compared in floating point,
    as written); every p-value ``<= p_(k)`` is selected, and none if there is
    no such ``k``. On the conformal p-values of one batch against one
    calibration set (:func:`conformal_pvalues`), which are positively
    dependent (PRDS), the expected fraction of ID samples among the flagged
    ones is at most ``fdr`` when the calibration rows and the ID samples of
    the batch are exchangeable (Bates, Candès, Lei, Romano, Sesia, "Testing
    for outliers with conformal p-values", Annals of Statistics 51(1), 2023).

    Parameters
    ----------
    pvalues : array-like of shape (m,)
        P-values in [0, 1]; an empty batch selects nothing.
    fdr : float in (0, 1), default=0.1
        The target false discovery rate ``q``.

    Returns
    -------
    ndarray of shape (m,), bool
        True for the samples flagged as OOD.

    Examples
    --------
    >>> benjamini_hochberg([0.02, 0.5, 0.06, 0.07], fdr=0.1)
    array([ True, False,  True,  True])

    ``0.06 > 0.1 * 2 / 4`` alone would not pass, but ``0.07 <= 0.1 * 3 / 4``
    (BH is a step-up procedure).
    """
    fdr = _check_level(fdr, "fdr", "the target false discovery rate")
    p = _check_scores(pvalues, "pvalues", allow_empty=True)
    if p.size and (p.min() < 0.0 or p.max() > 1.0):
        raise ValueError(f"pvalues must lie in [0, 1], got values from {p.min()} to "
                         f"{p.max()}. Pass p-values (e.g. from conformal_pvalues), not "
                         "scores.")
    m = p.size
    ordered = np.sort(p)
    passing = np.flatnonzero(ordered <= fdr * np.arange(1, m + 1) / m)
    if passing.size == 0:
        return np.zeros(m, dtype=bool)
    return p <= ordered[passing[-1]]


def class_conditional_thresholds(calibration_scores, calibration_classes, n_classes, tpr=0.95,
                                 *, min_rows=None, small_class="raise"):
    """One conformal threshold per class (Mondrian): at least ``tpr`` acceptance within each class.

    Class ``c``'s threshold is :func:`conformal_threshold` of the calibration
    scores whose class is ``c``. A new sample whose class is ``c`` is accepted
    when ``score >= thresholds[c]``; then, for each class ``c``,
    ``P(accepted | class c) >= tpr`` for new ID samples, if the calibration
    rows of class ``c`` and the new ID samples of class ``c`` are
    exchangeable. The class must be assigned **the same way** to calibration
    rows and to new samples: use the *predicted* class of the calibration rows
    (the one a new sample will have), not their true label.

    A single threshold (:func:`conformal_threshold`) only guarantees ``tpr``
    on average over the classes; a class with lower scores (often a rare one)
    can be accepted much less often.

    Parameters
    ----------
    calibration_scores : array-like of shape (n,)
        Scores of held-out ID rows not used for training; finite.
    calibration_classes : array-like of int, shape (n,)
        Class index (0..n_classes-1) of each calibration row, e.g. the argmax
        of ``predict_proba``.
    n_classes : int
        Number of classes, e.g. ``len(estimator.classes_)``; classes without
        calibration rows are "too small" (below).
    tpr : float in (0, 1), default=0.95
        Fraction of each class's ID samples to accept (read as the decimal it
        prints as, see :func:`conformal_threshold`).
    min_rows : int, default=None
        Classes with fewer calibration rows are "too small". The default, and
        the least allowed, is ``min_calibration_size(tpr) = ceil(1 / (1 - tpr))
        - 1`` (19 at ``tpr=0.95``), below which the class's own threshold would
        be ``-inf``. A larger value avoids thresholds from a handful of rows,
        which vary a lot between calibration draws.
    small_class : {"raise", "marginal", "accept"}, default="raise"
        What to do for a class with fewer than ``min_rows`` calibration rows:

        - ``"raise"``: a ValueError naming the classes and the rows needed;
        - ``"marginal"``: use the threshold of all calibration rows together
          (``conformal_threshold(calibration_scores, tpr)``). That class then
          has no per-class guarantee, only the marginal one;
        - ``"accept"``: threshold ``-inf``, the conformal rule with ``k = 0``.
          The per-class guarantee holds, but no sample of that class is ever
          flagged as OOD.

        The last two issue a :class:`SmallCalibrationWarning` naming the
        classes and the rows needed.

    Returns
    -------
    ndarray of shape (n_classes,), float64
        ``thresholds[c]`` for class index ``c``; accept a new sample ``x`` of
        predicted class ``c`` when ``score(x) >= thresholds[c]``.

    Examples
    --------
    >>> import numpy as np
    >>> scores = np.r_[np.arange(1.0, 20.0), np.arange(101.0, 140.0)]
    >>> classes = np.r_[np.zeros(19, dtype=int), np.ones(39, dtype=int)]
    >>> class_conditional_thresholds(scores, classes, n_classes=2, tpr=0.95)
    array([  1., 102.])
    """
    alpha = _alpha(tpr)
    scores = _check_scores(calibration_scores, "calibration_scores", allow_empty=False)
    n_classes = _check_n_classes(n_classes)
    classes = _check_classes(calibration_classes, "calibration_classes", scores.size,
                             n_classes, "calibration_scores")
    needed = _min_n(alpha)
    if min_rows is None:
        min_rows = needed
    elif (isinstance(min_rows, bool) or not isinstance(min_rows, numbers.Integral)
          or min_rows < needed):
        raise ValueError(
            f"min_rows must be an integer >= {needed}, the fewest calibration rows per "
            f"class for which tpr={tpr} can reject anything (ceil(1 / (1 - tpr)) - 1); "
            f"got {min_rows!r}. For -inf thresholds on small classes, pass "
            "small_class='accept' instead.")
    if small_class not in _SMALL_CLASS_CHOICES:
        raise ValueError(f"small_class must be one of {list(_SMALL_CLASS_CHOICES)}, got "
                         f"{small_class!r}.")

    grouped, counts, starts = _group_sorted(scores, classes, n_classes)
    small = np.flatnonzero(counts < min_rows)
    if small.size and small_class == "raise":
        raise ValueError(
            f"Too few calibration rows for tpr={tpr} in class "
            f"{_describe_classes(small, counts)}: each class needs at least {min_rows} "
            f"(min_rows; with fewer than {needed} its threshold is -inf and accepts "
            "everything). Hold out more calibration rows, lower tpr, or pass "
            "small_class='marginal' (use the threshold of all rows for these classes: "
            "only the marginal guarantee) or small_class='accept' (-inf: never flag "
            "samples of these classes).")
    thresholds = np.full(n_classes, -np.inf)
    for c in np.flatnonzero(counts >= min_rows):
        k = _rank(counts[c], alpha)
        thresholds[c] = grouped[starts[c] + k - 1]  # k >= 1 since counts[c] >= needed
    if small.size:
        if small_class == "marginal":
            thresholds[small] = conformal_threshold(scores, tpr)
            what = ("they get the threshold of all calibration rows together, which "
                    "guarantees tpr only on average over the classes")
        else:
            what = "their threshold is -inf: samples of these classes are never flagged"
        warn_at_caller(
            f"Too few calibration rows for tpr={tpr} in class "
            f"{_describe_classes(small, counts)} (each class needs {min_rows}); {what}.",
            SmallCalibrationWarning)
    return thresholds


def class_conditional_pvalues(calibration_scores, calibration_classes, scores, classes,
                              n_classes, *, tpr=None):
    """Conformal p-values against the calibration scores of each sample's own class (Mondrian).

    For a new sample of class ``c``,
    ``p = (1 + #{calibration rows of class c with score <= score(x)}) / (n_c + 1)``
    where ``n_c`` is the number of calibration rows of class ``c`` (ties
    counted, as in :func:`conformal_pvalues`). For each class,
    ``P(p <= a | class c) <= a`` for new ID samples if the calibration rows
    and the new ID samples of that class are exchangeable; assign classes the
    same way to both (the *predicted* class).

    These p-values are valid for any ``n_c``, but cannot go below
    ``1 / (n_c + 1)``: a class with few rows can only be flagged at levels
    above that, and a class with no calibration row gets ``p = 1``
    (never flagged; a :class:`SmallCalibrationWarning` says which classes).
    Bates et al. (2023) prove the FDR control of :func:`benjamini_hochberg`
    for p-values against one shared calibration set; for class-conditional
    p-values that proof does not apply as stated.

    With ``tpr``, the classes that ``class_conditional_thresholds(...,
    tpr, small_class="marginal")`` treats as small (fewer than
    ``ceil(1 / (1 - tpr)) - 1`` calibration rows, no rows included) get the
    p-values against all calibration rows (:func:`conformal_pvalues`), as
    they get the threshold of all rows there: the two rules then agree, a
    sample being accepted at that ``tpr`` exactly when its p-value is above
    ``1 - tpr`` (only the marginal guarantee holds for those classes).

    Parameters
    ----------
    calibration_scores : array-like of shape (n,)
        Scores of held-out ID rows not used for training; finite.
    calibration_classes : array-like of int, shape (n,)
        Class index (0..n_classes-1) of each calibration row.
    scores : array-like of shape (m,)
        Scores of the new samples; finite.
    classes : array-like of int, shape (m,)
        Class index (0..n_classes-1) of each new sample, e.g. the argmax of
        ``predict_proba``.
    n_classes : int
        Number of classes, e.g. ``len(estimator.classes_)``.
    tpr : float in (0, 1), optional
        The acceptance rate whose small classes get the marginal p-values (see
        above); ``None``: every class gets its own p-values.

    Returns
    -------
    ndarray of shape (m,), float64

    Examples
    --------
    >>> class_conditional_pvalues([1.0, 2.0, 10.0, 20.0, 30.0], [0, 0, 1, 1, 1],
    ...                           [1.5, 1.5], [0, 1], n_classes=2)
    array([0.66666667, 0.25      ])
    """
    calibration = _check_scores(calibration_scores, "calibration_scores", allow_empty=False)
    n_classes = _check_n_classes(n_classes)
    calibration_classes = _check_classes(calibration_classes, "calibration_classes",
                                         calibration.size, n_classes, "calibration_scores")
    scores = _check_scores(scores, "scores", allow_empty=True)
    classes = _check_classes(classes, "classes", scores.size, n_classes, "scores")

    grouped, counts, starts = _group_sorted(calibration, calibration_classes, n_classes)
    marginal = (np.zeros(n_classes, dtype=bool) if tpr is None
                else counts < _min_n(_alpha(tpr)))
    test_counts = np.bincount(classes, minlength=n_classes)
    test_order = np.argsort(classes, kind="stable")
    test_starts = np.concatenate(([0], np.cumsum(test_counts)))
    pvalues = np.empty(scores.size)
    for c in np.flatnonzero(test_counts):
        rows = test_order[test_starts[c]:test_starts[c + 1]]
        below = np.searchsorted(grouped[starts[c]:starts[c + 1]], scores[rows], side="right")
        pvalues[rows] = (1 + below) / (counts[c] + 1)
    small_rows = marginal[classes]
    if small_rows.any():
        pvalues[small_rows] = conformal_pvalues(calibration, scores[small_rows])
    empty = np.flatnonzero((test_counts > 0) & (counts == 0) & ~marginal)
    if empty.size:
        warn_at_caller(
            f"Class {empty[:10].tolist()}{' and more' if empty.size > 10 else ''} has no "
            "calibration rows: the p-values of its samples are 1 and they are never "
            "flagged. Hold out calibration rows of every class (stratify the split on the "
            "predicted class).", SmallCalibrationWarning)
    return pvalues
