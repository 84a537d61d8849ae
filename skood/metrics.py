"""OOD detection metrics and scikit-learn scorers.

Conventions (the paper's, see ``docs/conventions.md``):

- ``y_true`` is 1 for in-distribution (ID) and 0 for out-of-distribution (OOD):
  **ID is the positive class**.
- ``score`` is higher for samples that look more in-distribution, as returned by
  :meth:`skood.GradRegOODClassifier.score_samples` (minus the energy).

Other libraries differ: pytorch-ood and OpenOOD take OOD as the positive class
of their FPR@95TPR (pytorch-ood's equals ours once the positive class is lined
up), and the Energy-OE code takes the ROC point nearest to 95% TPR instead of
the first one at or above it. pytorch-ood's AUPR-In and AUPR-Out mean what ours
mean (not swapped) and its AUROC equals ours, but its AUPR integrates the
precision-recall curve with the trapezoidal rule, whereas :func:`aupr_in` and
:func:`aupr_out` are the step-wise average precision. Say which definition a
number uses whenever you compare it with another library's.
"""
import numbers

import numpy as np
import pandas as pd
import torch
from sklearn.base import is_outlier_detector
from sklearn.metrics import average_precision_score, roc_auc_score
from sklearn.utils import _safe_indexing, check_consistent_length, column_or_1d

from . import _labels
from ._labels import is_outlier_label, match_labels

__all__ = [
    "fpr_at_tpr",
    "threshold_at_tpr",
    "auroc",
    "aupr_in",
    "aupr_out",
    "ood_report",
    "ood_report_frame",
    "make_ood_scorer",
    "id_accuracy",
    "is_outlier_label",
    "OODScorer",
    "OUTLIER_LABEL",
]

#: The label that marks auxiliary-outlier / OOD rows in ``y`` (scikit-learn's
#: "no class" marker, as in its semi-supervised estimators). Defined, with
#: :func:`is_outlier_label`, in the module the estimators read labels with.
OUTLIER_LABEL = _labels.OUTLIER_LABEL


def _check_binary(y_true, score):
    y_true = column_or_1d(y_true)
    score = column_or_1d(score).astype(np.float64)
    if y_true.shape[0] != score.shape[0]:
        raise ValueError(
            f"y_true and score have different lengths ({y_true.shape[0]} and "
            f"{score.shape[0]}); pass one score per sample.")
    if not np.all(np.isfinite(score)):
        raise ValueError("score contains NaN or inf; OOD metrics need finite scores.")
    values = np.unique(y_true)
    if not np.all(np.isin(values, [0, 1])):
        raise ValueError(
            f"y_true must be 1 for in-distribution and 0 for OOD samples, got values "
            f"{values.tolist()}. To turn labels with -1 for OOD rows into this form, "
            "use (y != -1).astype(int).")
    if values.size < 2:
        raise ValueError(
            "y_true must contain both in-distribution (1) and OOD (0) samples; "
            f"it only contains {values.tolist()}.")
    return y_true.astype(int), score


def _check_tpr(tpr):
    if not isinstance(tpr, numbers.Real) or not 0.0 < tpr <= 1.0:
        raise ValueError(f"tpr must be a float in (0, 1], got {tpr!r}.")


def threshold_at_tpr(id_scores, tpr=0.95):
    """The largest threshold ``t`` such that at least ``tpr`` of ``id_scores`` are ``>= t``.

    This is the operating point of :func:`fpr_at_tpr` and the value that
    :class:`skood.GradRegOODClassifier` stores as ``offset_``.

    Parameters
    ----------
    id_scores : array-like of shape (n_samples,)
        Scores of in-distribution samples (higher = more in-distribution).
    tpr : float, default=0.95
        Fraction of in-distribution samples to accept.

    Returns
    -------
    float

    Examples
    --------
    >>> threshold_at_tpr([1.0, 2.0, 3.0, 4.0], tpr=0.75)
    2.0
    """
    _check_tpr(tpr)
    scores = np.sort(column_or_1d(id_scores).astype(np.float64))[::-1]
    if scores.size == 0:
        raise ValueError("threshold_at_tpr needs at least one in-distribution score.")
    if not np.all(np.isfinite(scores)):
        raise ValueError("id_scores contains NaN or inf.")
    # k = smallest count of accepted samples with k / n >= tpr; the small slack
    # keeps e.g. 0.95 * 20 = 19.000000000000004 from becoming 20.
    k = int(np.ceil(tpr * scores.size - 1e-9))
    return float(scores[max(k, 1) - 1])


def fpr_at_tpr(y_true, score, *, tpr=0.95):
    """False-positive rate at the first threshold whose true-positive rate reaches ``tpr``.

    ID is the positive class: this is the fraction of OOD samples (``y_true == 0``)
    accepted as in-distribution at the largest threshold that accepts at least
    ``tpr`` of the ID samples (``y_true == 1``). Lower is better. ``fpr_at_tpr(...,
    tpr=0.95)`` is the paper's FPR95.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        1 for in-distribution, 0 for OOD.
    score : array-like of shape (n_samples,)
        Higher for more in-distribution samples.
    tpr : float, default=0.95

    Returns
    -------
    float

    Examples
    --------
    >>> fpr_at_tpr([1, 1, 1, 1, 0, 0], [4, 3, 2, 1, 2.5, 0], tpr=0.75)
    0.5
    """
    _check_tpr(tpr)
    y_true, score = _check_binary(y_true, score)
    # The point of roc_curve(y_true, score) where the TPR first reaches tpr, computed
    # directly (a sort and a count, several times faster, the same float): the TPR
    # changes only at ID scores, so that threshold is the j-th largest ID score for the
    # smallest j with j / n_id >= tpr (the slack as before), and the FPR there is the
    # fraction of OOD scores at or above it.
    id_scores = np.sort(score[y_true == 1])[::-1]
    reached = np.arange(1, id_scores.size + 1) / id_scores.size
    threshold = id_scores[int(np.searchsorted(reached, tpr - 1e-12, side="left"))]
    ood_scores = score[y_true == 0]
    return float(np.count_nonzero(ood_scores >= threshold) / ood_scores.size)


def auroc(y_true, score):
    """Area under the ROC curve of "is in-distribution" against ``score``.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        1 for in-distribution, 0 for OOD.
    score : array-like of shape (n_samples,)
        Higher for more in-distribution samples.

    Returns
    -------
    float
        In [0, 1]; 0.5 is chance, 1 separates ID from OOD perfectly.

    Examples
    --------
    >>> auroc([1, 1, 0, 0], [0.9, 0.8, 0.1, 0.85])
    0.75
    """
    y_true, score = _check_binary(y_true, score)
    return float(roc_auc_score(y_true, score))


def aupr_in(y_true, score):
    """Area under the precision-recall curve with ID as positive (average precision).

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        1 for in-distribution, 0 for OOD.
    score : array-like of shape (n_samples,)
        Higher for more in-distribution samples.

    Returns
    -------
    float
        In [0, 1]; higher is better.

    Examples
    --------
    >>> aupr_in([1, 0], [1.0, 0.0])
    1.0
    """
    y_true, score = _check_binary(y_true, score)
    return float(average_precision_score(y_true, score))


def aupr_out(y_true, score):
    """Area under the precision-recall curve with OOD as positive and the score negated.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        1 for in-distribution, 0 for OOD.
    score : array-like of shape (n_samples,)
        Higher for more in-distribution samples.

    Returns
    -------
    float
        In [0, 1]; higher is better.

    Examples
    --------
    >>> aupr_out([1, 0], [1.0, 0.0])
    1.0
    """
    y_true, score = _check_binary(y_true, score)
    return float(average_precision_score(1 - y_true, -score))


def ood_report(y_true, score, *, tpr=0.95):
    """All OOD metrics for one set of ID and OOD samples.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        1 for in-distribution, 0 for OOD.
    score : array-like of shape (n_samples,)
        Higher for more in-distribution samples.
    tpr : float, default=0.95
        The true-positive rate of the FPR metric.

    Returns
    -------
    dict
        ``{"fpr95": ..., "auroc": ..., "aupr_in": ..., "aupr_out": ...}``; the
        first key is named after ``tpr`` (``fpr90`` for ``tpr=0.9``).

    Examples
    --------
    >>> ood_report([1, 1, 0, 0], [3.0, 2.0, 1.0, 0.0])["auroc"]
    1.0
    """
    return {
        f"fpr{round(100 * tpr):d}": fpr_at_tpr(y_true, score, tpr=tpr),
        "auroc": auroc(y_true, score),
        "aupr_in": aupr_in(y_true, score),
        "aupr_out": aupr_out(y_true, score),
    }


def ood_report_frame(id_scores, ood_scores, *, tpr=0.95):
    """OOD metrics for several OOD sets against the same ID scores, as a DataFrame.

    Parameters
    ----------
    id_scores : array-like of shape (n_id,)
    ood_scores : dict of str to array-like
        One entry per OOD set, its scores.
    tpr : float, default=0.95

    Returns
    -------
    pandas.DataFrame
        One row per OOD set (index: its name) plus a final row ``"mean"``.

    Examples
    --------
    >>> frame = ood_report_frame([3.0, 2.0], {"noise": [0.0, 1.0], "textures": [2.5, 0.0]})
    >>> float(frame.loc["noise", "auroc"]), float(frame.loc["mean", "auroc"])
    (1.0, 0.875)
    """
    id_scores = column_or_1d(id_scores)
    if not ood_scores:
        raise ValueError("ood_scores is empty; pass a dict {name: scores of one OOD set}.")
    rows = {}
    for name, scores in ood_scores.items():
        scores = column_or_1d(scores)
        y_true = np.r_[np.ones(id_scores.size, dtype=int), np.zeros(scores.size, dtype=int)]
        rows[name] = ood_report(y_true, np.r_[id_scores, scores], tpr=tpr)
    frame = pd.DataFrame.from_dict(rows, orient="index")
    frame.loc["mean"] = frame.mean(axis=0)
    return frame


_SCORERS = {
    # name: (metric function, greater_is_better)
    "fpr95": (fpr_at_tpr, False),
    "auroc": (auroc, True),
    "aupr_in": (aupr_in, True),
    "aupr_out": (aupr_out, True),
}


def _known_class_rows(estimator, y):
    """Mask of the rows of ``y`` whose label is one of ``estimator.classes_``.

    Rows labelled -1 are never known. An estimator without ``classes_`` (an
    outlier detector that learns no classes) knows every label but -1.
    """
    y = np.asarray(y)
    known = ~is_outlier_label(y)
    classes = getattr(estimator, "classes_", None)
    if classes is None:
        return known
    # the labels a fit encodes are matched to its classes the same way
    return known & match_labels(y, np.asarray(classes))[1]


class OODScorer:
    """A scikit-learn scorer for OOD detection; build it with :func:`make_ood_scorer`.

    Called as ``scorer(estimator, X, y)``. The in-distribution rows are those
    whose label is one of the fitted ``estimator.classes_``; every other row
    is OOD: the rows labelled -1 *and* the rows of classes the estimator was
    not fitted on (unseen classes). For an OOD metric it calls
    ``estimator.score_samples(X)``; for ``"id_accuracy"`` it calls
    :func:`id_accuracy`, on the in-distribution rows only. Metrics where lower
    is better are returned negated (scikit-learn's ``neg_*`` convention), so
    that a search always maximises.

    Parameters
    ----------
    metric : {"fpr95", "auroc", "aupr_in", "aupr_out", "id_accuracy"}

    Examples
    --------
    >>> OODScorer("auroc")
    make_ood_scorer('auroc')
    """

    def __init__(self, metric):
        self.metric = metric

    def __repr__(self):
        return f"make_ood_scorer({self.metric!r})"

    def __call__(self, estimator, X, y, sample_weight=None):
        if sample_weight is not None:
            raise ValueError("OOD scorers do not support sample_weight.")
        if self.metric == "id_accuracy":
            return id_accuracy(estimator, X, y)
        if not hasattr(estimator, "score_samples"):
            raise TypeError(
                f"The {self.metric!r} scorer needs an estimator with score_samples (higher = "
                f"more in-distribution), such as skood's estimators; {type(estimator).__name__} "
                "has none.")
        is_id = _known_class_rows(estimator, y)
        if is_id.all() or not is_id.any():
            raise ValueError(
                f"The {self.metric!r} scorer needs both in-distribution rows and OOD rows "
                "in every test split (in-distribution: a label among the fitted classes_; "
                "OOD: the label -1 or a class the estimator was not fitted on). Hold "
                "classes out of training with "
                "cv=skood.model_selection.HeldOutClassSplit(...), or stratify the splits on "
                "a y that contains -1 rows, e.g. cv=StratifiedKFold(5).")
        metric, greater_is_better = _SCORERS[self.metric]
        value = metric(is_id.astype(int), estimator.score_samples(X))
        return value if greater_is_better else 0.0 - value  # 0.0 - x: no "-0.0"


def _is_outlier_detector(estimator):
    try:
        return is_outlier_detector(estimator)
    except AttributeError:    # not a scikit-learn estimator (no tags): its predict gives classes
        return False


def id_accuracy(estimator, X, y, sample_weight=None):
    """Accuracy of ``estimator.predict`` on the rows of ``X`` of the fitted classes.

    What :meth:`skood.GradRegOODClassifier.score` and the ``"id_accuracy"``
    scorer return. Only the rows whose label is one of ``estimator.classes_``
    count: the rows labelled -1 and the rows of classes the estimator was not
    fitted on (which it cannot predict) are left out. With ``reject_ood=True``
    a rejected row of a fitted class counts as an error. For an outlier
    detector (:class:`skood.GradRegOODDetector`, or a Pipeline ending in one),
    whose ``predict`` returns +1/-1, the class of a row is the most probable
    class of ``predict_proba``.

    Parameters
    ----------
    estimator : fitted classifier
        Its ``classes_`` says which labels are known; without ``classes_``
        every label but -1 counts.
    X : array-like of shape (n_samples, ...)
    y : array-like of shape (n_samples,)
        Class labels; -1 marks OOD rows, which are left out, as are labels
        not among ``estimator.classes_``.
    sample_weight : array-like of shape (n_samples,), optional

    Returns
    -------
    float

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.dummy import DummyClassifier
    >>> X, y = np.zeros((5, 2)), np.array([0, 1, -1, 0, 7])
    >>> always_zero = DummyClassifier(strategy="constant", constant=0).fit(X[:2], y[:2])
    >>> id_accuracy(always_zero, X, y)   # the -1 row and the unseen class 7 are left out
    0.6666666666666666
    """
    y = np.asarray(y)
    if y.ndim != 1:
        raise ValueError(f"y must be 1-D with one label per row of X, got shape {y.shape}.")
    check_consistent_length(X, y, sample_weight)
    is_id = _known_class_rows(estimator, y)
    if not is_id.any():
        raise ValueError(
            "Accuracy needs rows whose label is one of the estimator's classes_; every row "
            "is labelled -1 or with a class the estimator was not fitted on.")
    rows = np.flatnonzero(is_id)
    # a torch Dataset (which scikit-learn cannot index) is read through a Subset
    X_id = (torch.utils.data.Subset(X, rows.tolist()) if isinstance(X, torch.utils.data.Dataset)
            and not isinstance(X, torch.Tensor) else _safe_indexing(X, rows))
    if _is_outlier_detector(estimator):
        classes = np.asarray(estimator.classes_)
        predicted = classes[np.argmax(estimator.predict_proba(X_id), axis=1)]
    else:
        predicted = estimator.predict(X_id)
    correct = np.asarray(predicted) == y[is_id]
    weights = None if sample_weight is None else np.asarray(sample_weight)[is_id]
    return float(np.average(correct, weights=weights))


def make_ood_scorer(metric):
    """Make a scikit-learn scorer for an OOD metric.

    Which rows are OOD: every row labelled -1 **and** every row whose label is
    not among the fitted estimator's ``classes_``. The scorer asks the fitted
    model itself which classes it knows, so a test fold may hold rows of
    classes that its training fold did not: those rows are unseen classes, and
    they count as OOD. This is what :class:`skood.model_selection.HeldOutClassSplit`
    relies on to measure near-OOD detection without OOD data.

    With an ordinary splitter (``StratifiedKFold``, ``KFold``, ...), a class
    with very few rows can be left out of a training fold by chance; its rows
    in that fold's test part then count as OOD, not as in-distribution, and
    the fold's accuracy leaves them out. ``HeldOutClassSplit`` decides which
    classes are unseen and keeps every other class in each training part.

    Parameters
    ----------
    metric : {"fpr95", "auroc", "aupr_in", "aupr_out", "id_accuracy"}
        ``"fpr95"`` returns the *negated* FPR95 (greater is better, as
        scikit-learn's ``neg_*`` scorers); the others are returned as they are.
        ID is the positive class, and the scores are
        ``estimator.score_samples(X)`` (higher = more in-distribution).
        ``"id_accuracy"`` is the classification accuracy on the rows of the
        fitted classes (:func:`id_accuracy`).

    Returns
    -------
    OODScorer
        A callable ``scorer(estimator, X, y)`` for ``cross_val_score``,
        ``GridSearchCV(scoring=...)`` and friends.

    Examples
    --------
    >>> make_ood_scorer("fpr95")
    make_ood_scorer('fpr95')
    """
    allowed = sorted([*_SCORERS, "id_accuracy"])
    if metric not in allowed:
        raise ValueError(f"Unknown OOD metric {metric!r}; choose one of {allowed}.")
    return OODScorer(metric)
