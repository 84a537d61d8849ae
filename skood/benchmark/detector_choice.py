"""Choosing a run's detector on held-out classes of its training rows, with no OOD data.

The benchmark's ``ce_chosen`` rows score the run's cross-entropy network with the
detector that this inner selection picks: on the run's known-class training rows,
:class:`skood.model_selection.HeldOutClassSplit` makes :data:`N_FOLDS` folds that each
hold :data:`N_HELDOUT` classes out; one cross-entropy network is trained per fold, every
candidate detector is fitted on that fold network's training rows and scores the fold's
test rows (the held-out classes' rows are its OOD rows, the known classes' test share its
ID rows), and the detector of lowest mean near FPR95 over the folds is chosen. The test
rows and OOD sets of the run are never read, so the choice is one a user can make.

:func:`choose_detector` is the whole interface: it takes a function that trains one
network on given rows, so that the choice can move to a public helper of
:mod:`skood.model_selection` that scores every detector on one network per fold without
changing its callers.
"""
import numpy as np

from ..metrics import fpr_at_tpr
from ..model_selection import HeldOutClassSplit
from .detector_scores import fit_detectors, score_rows

__all__ = ["N_FOLDS", "N_HELDOUT", "choose_detector"]

#: inner folds per run: with 6 known classes and 2 held out, each class is held out once
N_FOLDS = 3
#: classes each inner fold holds out of training
N_HELDOUT = 2


def choose_detector(fit_network, X, y, detectors, *, random_state=0):
    """The detector of lowest mean FPR95 on held-out classes of ``X``, and every mean.

    Parameters
    ----------
    fit_network : callable
        ``fit_network(X_fold, y_fold)`` trains a new network on those rows and returns
        ``(clf, rows)``: the fitted :class:`skood.GradRegOODClassifier` and the
        :class:`~skood.benchmark.detector_scores.HeldOutRows` callback of its fit.
    X : ndarray of shape (n_samples, ...)
        The run's training rows (known classes only).
    y : ndarray of shape (n_samples,)
        Their labels.
    detectors : sequence of str
        The candidates, names of :data:`skood.detectors.DETECTORS`.
    random_state : int, default=0
        Seeds the folds (:class:`~skood.model_selection.HeldOutClassSplit`).

    Returns
    -------
    chosen : str
        The candidate of lowest mean FPR95 over the folds (ties: the first of
        ``detectors``); a candidate whose fit or scoring failed on a fold is not chosen.
    mean_fpr95 : dict
        candidate -> its mean FPR95 over the folds, a fraction (NaN where it failed).

    Raises
    ------
    ValueError
        When every candidate failed on some fold.
    """
    cv = HeldOutClassSplit(n_splits=N_FOLDS, n_heldout=N_HELDOUT, random_state=random_state)
    per_fold = {name: [] for name in detectors}
    for train, test in cv.split(X, y):
        clf, rows = fit_network(X[train], y[train])
        fitted, _ = fit_detectors(clf, detectors, rows)
        rows.forget()
        scores, _ = score_rows(clf, fitted, X[test])
        is_id = np.isin(y[test], np.unique(y[train])).astype(int)
        for name, score in scores.items():
            failed = isinstance(score, Exception) or not np.isfinite(score).all()
            per_fold[name].append(np.nan if failed else fpr_at_tpr(is_id, score))
    mean_fpr95 = {name: float(np.mean(values)) for name, values in per_fold.items()}
    finite = [name for name in detectors if np.isfinite(mean_fpr95[name])]
    if not finite:
        raise ValueError("no detector could be scored on every inner fold, so none can be "
                         f"chosen (candidates: {list(detectors)}).")
    return min(finite, key=lambda name: mean_fpr95[name]), mean_fpr95
