"""Class labels: the -1 outlier marker, the classes of a fit and labels matched to them.

One place for what the estimator's ``fit`` and :mod:`skood.metrics` both read
from ``y``: which rows are marked as outliers (:data:`OUTLIER_LABEL`, -1), which
labels are among a set of classes (:func:`match_labels`), the class index of each
in-distribution row (:func:`encode_labels`) and the classes a fit or a
``partial_fit`` call trains on (:func:`fit_classes`).
"""
import numbers

import numpy as np
from sklearn.utils.multiclass import check_classification_targets

__all__ = ["OUTLIER_LABEL", "encode_labels", "fit_classes", "is_outlier_label", "match_labels"]

#: The label that marks auxiliary-outlier / OOD rows in ``y`` (scikit-learn's
#: "no class" marker, as in its semi-supervised estimators).
OUTLIER_LABEL = -1


def is_outlier_label(y):
    """Boolean mask of the rows of ``y`` marked with :data:`OUTLIER_LABEL` (-1).

    Works for numeric arrays and for object arrays that mix class labels
    (strings, say) with the integer -1.

    Parameters
    ----------
    y : array-like of shape (n_samples,)

    Returns
    -------
    ndarray of shape (n_samples,), bool

    Examples
    --------
    >>> import numpy as np
    >>> is_outlier_label(np.array(["cat", -1, "dog"], dtype=object)).tolist()
    [False, True, False]
    """
    y = np.asarray(y)
    if y.dtype.kind in "biuf":
        return y == OUTLIER_LABEL
    if y.dtype.kind == "O":
        return np.fromiter((isinstance(v, numbers.Number) and v == OUTLIER_LABEL for v in y),
                           dtype=bool, count=y.shape[0])
    return np.zeros(y.shape[0], dtype=bool)


def match_labels(y, classes):
    """The position of each label of ``y`` among ``classes``, and whether it is one of them.

    A label and a class match when they are equal: numbers with numbers (an
    int label matches a float class of the same value), anything else by
    ``==`` and hash (a string never matches a number).

    Parameters
    ----------
    y : ndarray of shape (n_samples,)
    classes : ndarray of shape (n_classes,)
        In any order.

    Returns
    -------
    index : ndarray of shape (n_samples,), int
        The position in ``classes`` of each label; meaningless where ``known`` is False.
    known : ndarray of shape (n_samples,), bool

    Examples
    --------
    >>> import numpy as np
    >>> index, known = match_labels(np.array(["b", "x", "a"]), np.array(["a", "b"]))
    >>> index[known].tolist(), known.tolist()
    ([1, 0], [True, False, True])
    """
    if classes.dtype.kind in "biuf" and y.dtype.kind in "biuf":
        if len(classes) == 0:
            return np.zeros(y.shape, dtype=np.int64), np.zeros(y.shape, dtype=bool)
        # One binary search per label on the sorted classes.
        order = np.argsort(classes, kind="stable")
        position = np.searchsorted(classes[order], y)
        position = np.clip(position, 0, len(classes) - 1)
        return order[position], classes[order][position] == y
    lookup = {label: index for index, label in enumerate(classes.tolist())}
    index = np.array([lookup.get(label, -1) for label in y.tolist()], dtype=np.int64)
    return index, index >= 0


def encode_labels(y_id, classes):
    """The class index of each in-distribution label, refusing labels that are no class.

    Parameters
    ----------
    y_id : ndarray of shape (n_samples,)
        Labels without the -1 rows.
    classes : ndarray of shape (n_classes,)

    Returns
    -------
    ndarray of shape (n_samples,), int64
    """
    encoded, known = match_labels(y_id, classes)
    if not known.all():
        numeric = classes.dtype.kind in "biuf", y_id.dtype.kind in "biuf"
        if numeric[0] != numeric[1]:
            kinds = ["numbers" if flag else "strings" for flag in numeric]
            raise ValueError(
                f"y holds {kinds[1]} ({y_id.dtype}) but the classes are {kinds[0]} "
                f"({classes.tolist()[:10]}): a label and a class match only with the same "
                f"type. Pass classes of y's type, or convert y (e.g. y.astype(str)).")
        unknown = np.unique(np.asarray(y_id[~known], dtype=object).astype(str))[:10]
        raise ValueError(
            f"y contains labels that are not among the classes {classes.tolist()}: "
            f"{unknown.tolist()}. Use -1 for auxiliary-outlier rows.")
    return encoded.astype(np.int64)


def _check_declared(declared, example):
    """Refuse a ``classes`` argument of ``partial_fit`` that is not 1-D."""
    if declared is not None and np.ndim(declared) != 1:
        raise ValueError(
            f"partial_fit's classes must be an array-like of all the classes, e.g. "
            f"classes={example}, got {declared!r}.")


def _differ(declared, classes):
    """Whether a given ``classes`` argument names other classes than ``classes``."""
    return declared is not None and (
        set(np.asarray(declared).tolist()) != set(np.asarray(classes).tolist()))


def fit_classes(estimator, y_id, declared, fitted_before):
    """The classes a fit trains on, checked.

    Parameters
    ----------
    estimator : GradRegOODClassifier
        Its ``classes`` parameter and, when ``fitted_before``, its ``classes_``.
    y_id : ndarray of shape (n_samples,)
        The in-distribution labels (without the -1 rows).
    declared : array-like or None
        ``partial_fit``'s ``classes`` argument.
    fitted_before : bool
        Whether a fitted model goes on training (``partial_fit``): then the
        classes are its ``classes_``, and ``declared`` must name the same ones.

    Returns
    -------
    ndarray of shape (n_classes,)
        Else ``declared``, or the ``classes`` parameter, or the sorted labels of ``y_id``.
    """
    check_classification_targets(y_id)
    if fitted_before:
        _check_declared(declared, estimator.classes_.tolist())
        if _differ(declared, estimator.classes_):
            raise ValueError(
                f"classes={list(declared)!r} differs from the classes of the fitted model, "
                f"{estimator.classes_.tolist()}; pass the same classes or none after the first "
                "call of partial_fit.")
        classes = estimator.classes_
    else:
        classes = _first_classes(estimator, y_id, declared)
    if len(classes) < 2:
        raise ValueError(
            f"y has a single in-distribution class ({classes.tolist()}); a classifier "
            "needs at least two. -1 marks auxiliary-outlier rows, so labels in {-1, +1} "
            "read as one class plus outliers: if -1 is a class of yours, recode it, e.g. "
            "y = (y == 1).astype(int).")
    return classes


def _first_classes(estimator, y_id, declared):
    """The classes of a first fit: partial_fit's ``classes``, the ``classes`` parameter,
    or the sorted labels of ``y``."""
    _check_declared(declared, [0, 1, 2])
    if estimator.classes is not None:
        classes = np.asarray(estimator.classes)
        if _differ(declared, classes):
            raise ValueError(
                f"partial_fit's classes={list(declared)!r} differs from the classes "
                f"parameter {list(estimator.classes)!r}; pass one of them.")
    elif declared is not None:
        classes = np.unique(np.asarray(declared))
    else:
        return np.unique(y_id)
    if np.any(is_outlier_label(classes)):
        raise ValueError("classes must not contain -1, the auxiliary-outlier marker.")
    return classes
