"""The held-out rows of a fit: skorch's validation split or the calibration rows.

``offset_`` is calibrated on in-distribution rows that training does not see:
the validation rows of skorch's ``train_split`` (the default), or, with
``train_split=None``, a stratified ``calibration_fraction`` of the rows held
out here. These functions say what to change when the rows cannot be split,
and read the held-out rows from ``X_eval`` (the same samples without
augmentation) when a Dataset ``X`` comes with one.
"""
import math
import numbers
import warnings

import numpy as np
import torch
from sklearn.model_selection import train_test_split
from skorch.dataset import ValidSplit

from ._validation import is_dataset
from .exceptions import warn_at_caller

__all__ = ["check_calibration_split", "check_valid_split", "held_out_split", "split_name",
           "split_reading_eval"]


def split_name(estimator):
    """``train_split`` as an error message names it (skorch's ``ValidSplit`` has no repr).

    Parameters
    ----------
    estimator : skorch net

    Returns
    -------
    str
    """
    split = estimator.train_split
    if isinstance(split, ValidSplit):
        return f"ValidSplit({split.cv!r}, stratified={split.stratified})"
    return repr(split)


def held_out_split(estimator, X_id, y_encoded, classes, random_state, fit_params,
                   eval_rows=None):
    """Hold out the rows ``offset_`` is calibrated on, or check that skorch can.

    Parameters
    ----------
    estimator : GradRegOODClassifier
    X_id : ndarray or skood.data.LabelledRows
        The in-distribution rows (a ``LabelledRows`` for a Dataset ``X``).
    y_encoded : ndarray of int64
        Their class indices.
    classes : ndarray
    random_state : numpy.random.RandomState
        Draws the calibration rows with ``train_split=None``.
    fit_params : dict
        skorch's fit parameters (``groups`` reaches the validation split).
    eval_rows : skood.data.LabelledRows, optional
        The rows of ``X_id`` read from ``X_eval``, when it was given.

    Returns
    -------
    X_train, y_train
        The rows left to skorch (all of ``X_id`` unless ``train_split=None``).
    split : tuple or None
        With ``X_eval``: skorch's split, its validation rows read from ``X_eval``.
    X_calibration : ndarray, Dataset or None
        With ``train_split=None``: the calibration rows.
    """
    if isinstance(estimator.train_split, ValidSplit):
        check_valid_split(estimator, y_encoded, classes, fit_params.get("groups"))
    if estimator.train_split is None:
        stratify = y_encoded if check_calibration_split(estimator, y_encoded, classes) else None
        if is_dataset(X_id):
            # the same rows as train_test_split picks from an array of the rows
            train_rows, calibration_rows = train_test_split(
                np.arange(len(X_id)), test_size=estimator.calibration_fraction,
                stratify=stratify, random_state=random_state)
            held_out = X_id if eval_rows is None else eval_rows
            return (X_id.subset(train_rows), y_encoded[train_rows], None,
                    held_out.subset(calibration_rows))
        X_train, X_calibration, y_train, _ = train_test_split(
            X_id, y_encoded, test_size=estimator.calibration_fraction,
            stratify=stratify, random_state=random_state)
        return X_train, y_train, None, X_calibration
    split = None
    if eval_rows is not None:
        split = split_reading_eval(estimator, X_id, y_encoded, eval_rows, fit_params)
    return X_id, y_encoded, split, None


def check_valid_split(estimator, y_encoded, classes, groups=None):
    """Say what to change when skorch's validation split cannot split the ID rows.

    Parameters
    ----------
    estimator : GradRegOODClassifier
        Its ``train_split`` is a ``ValidSplit``.
    y_encoded : ndarray of int64
        The class indices of the in-distribution rows.
    classes : ndarray
    groups : array-like, optional
        skorch's ``groups`` fit parameter.

    Raises
    ------
    ValueError
        When the split fails, with the rows per class and what to change.
    """
    cv = estimator.train_split.check_cv(y_encoded)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")     # skorch's own split warns again
            next(iter(cv.split(np.arange(len(y_encoded)), y_encoded, groups=groups)))
    except ValueError as error:
        counts = np.bincount(y_encoded, minlength=len(classes))
        per_class = ", ".join(f"{label!r}: {count}"
                              for label, count in zip(classes.tolist(), counts.tolist()))
        folds = estimator.train_split.cv
        each = " per class" if estimator.train_split.stratified else ""
        need = (f"A {folds}-fold split (skorch's default is ValidSplit(5, stratified=True)) "
                f"needs at least {folds} rows{each}"
                if isinstance(folds, numbers.Integral) else
                "A stratified split needs at least 2 rows per class")
        raise ValueError(
            f"train_split={split_name(estimator)} cannot split the {len(y_encoded)} "
            f"in-distribution rows (rows per class: {per_class}): {error} {need}. Pass more "
            "rows, or train_split=None, which holds out a stratified calibration_fraction of "
            "the rows to calibrate offset_ instead.") from None


def check_calibration_split(estimator, y_encoded, classes):
    """Say which parameter to change when the calibration rows cannot be held out, and
    warn when they cannot be stratified.

    Parameters
    ----------
    estimator : GradRegOODClassifier
        Its ``calibration_fraction`` is held out (``train_split=None``).
    y_encoded : ndarray of int64
        The class indices of the in-distribution rows.
    classes : ndarray

    Returns
    -------
    bool
        Whether the calibration rows are drawn stratified by class.
    """
    n_rows, n_classes = len(y_encoded), len(classes)
    fraction = estimator.calibration_fraction
    n_held_out = math.ceil(fraction * n_rows)
    counts = np.bincount(y_encoded, minlength=n_classes)
    present = counts[counts > 0]
    stratified = present.min() > 1
    if n_held_out >= n_rows or (stratified and (n_held_out < len(present)
                                                or n_rows - n_held_out < len(present))):
        raise ValueError(
            f"train_split=None holds out calibration_fraction={fraction} "
            f"of the {n_rows} in-distribution rows ({n_held_out} rows) to calibrate "
            f"offset_, and a stratified split needs at least one row per class "
            f"({n_classes} classes) on each side. Pass more rows or change "
            "calibration_fraction.")
    if not stratified:
        lonely = classes[counts == 1].tolist()
        warn_at_caller(
            f"The calibration rows (calibration_fraction={fraction}) are "
            f"drawn without stratification, for all classes, because the classes "
            f"{lonely!r} have a single in-distribution row. Pass more rows of them, or "
            "calibrate on a validation split (train_split).")
    return stratified


def split_reading_eval(estimator, X_id, y_encoded, eval_rows, fit_params):
    """skorch's validation split of ``X_id``, its validation rows read from ``X_eval``.

    Parameters
    ----------
    estimator : GradRegOODClassifier
    X_id : skood.data.LabelledRows
        The in-distribution rows of a Dataset ``X``.
    y_encoded : ndarray of int64
    eval_rows : skood.data.LabelledRows
        The same rows read from ``X_eval``.
    fit_params : dict
        skorch's fit parameters.

    Returns
    -------
    (dataset_train, dataset_valid)
        ``dataset_valid`` holds the validation rows of ``eval_rows``.
    """
    dataset_train, dataset_valid = estimator.get_split_datasets(X_id, y_encoded, **fit_params)
    if not (isinstance(dataset_valid, torch.utils.data.Subset)
            and dataset_valid.dataset is X_id):
        raise ValueError(
            f"X_eval needs a train_split that returns Subsets of X (skorch's ValidSplit, "
            f"the default) or train_split=None; train_split={estimator.train_split!r} returned "
            f"a {type(dataset_valid).__name__}. Read the held-out rows without "
            "augmentation in your own split, and leave X_eval=None.")
    return dataset_train, torch.utils.data.Subset(eval_rows, dataset_valid.indices)
