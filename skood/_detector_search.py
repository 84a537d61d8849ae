"""Choosing the detector without OOD data: one network per fold, every detector scored on it.

A detector does not change training, so a search over ``detector`` need not train one
network per candidate and fold, as ``GridSearchCV`` does: :class:`DetectorSearchCV`
trains one per fold and fits every candidate detector on it with
``set_params(detector=...)``, which refits the detector and recalibrates without
training (and gives the model that a fit with that detector would give, bit for bit).
:class:`FarGuardScorer` is the far guard of ``docs/selection.md``: held-out classes
measure near-OOD detection only, so each candidate is also scored against generated
textures and noise. Both are public through :mod:`skood.model_selection`.
"""
import contextlib
import time

import numpy as np
from joblib import Parallel, delayed
from scipy.stats import rankdata
from sklearn.base import BaseEstimator, MetaEstimatorMixin, clone, is_classifier
from sklearn.model_selection import check_cv
from sklearn.utils import _safe_indexing
# _check_method_params routes fit parameters to a fold exactly as GridSearchCV does (a
# per-row array is indexed, anything else passed whole): there is no public equivalent,
# and the per-fold scores must equal GridSearchCV's.
from sklearn.utils.validation import _check_method_params, check_is_fitted

from ._generated_images import make_noise_images, make_texture_images
from .metrics import fpr_at_tpr, make_ood_scorer

__all__ = ["DetectorSearchCV", "FarGuardScorer"]


class FarGuardScorer:
    """Minus the worst FPR95 of the in-distribution rows against generated far images.

    Called as ``scorer(estimator, X, y)`` like skood's other scorers: the rows of ``X``
    whose label is among ``estimator.classes_`` are in-distribution (the positive class,
    scored by ``estimator.score_samples``); textures
    (:func:`skood.datasets.make_texture_images`), Gaussian and uniform noise
    (:func:`skood.datasets.make_noise_images`) of ``X``'s image shape, ``n`` of each,
    are the OOD sets in turn, and the worst (highest) FPR95 is returned negated
    (greater is better). No OOD data is needed: the images are made for the shape of
    ``X`` (``(n, H, W)``, or ``(n, C, H, W)`` with 1 or 3 channels) with values in
    ``[0, value_range]``, once per shape.

    Parameters
    ----------
    n : int, default=200
        Images of each kind.
    value_range : float, default=1.0
        The images' largest value: that of the data (255 for uint8-scaled images).
    random_state : int, default=0
        Seeds the images (the same for every candidate and fold).

    Examples
    --------
    >>> from skood.model_selection import FarGuardScorer
    >>> FarGuardScorer(n=100)
    FarGuardScorer(n=100, value_range=1.0, random_state=0)
    """

    def __init__(self, n=200, value_range=1.0, random_state=0):
        self.n = n
        self.value_range = value_range
        self.random_state = random_state
        self._sets = {}

    def __repr__(self):
        return (f"FarGuardScorer(n={self.n}, value_range={self.value_range}, "
                f"random_state={self.random_state})")

    def images(self, sample_shape):
        """The generated sets for samples of ``sample_shape``, made once per shape.

        Parameters
        ----------
        sample_shape : tuple of int
            ``(H, W)`` or ``(C, H, W)`` with 1 or 3 channels.

        Returns
        -------
        dict
            ``"textures"``, ``"gaussian-noise"`` and ``"uniform-noise"``: arrays of
            shape ``(n, *sample_shape)``, float32.
        """
        sample_shape = tuple(sample_shape)
        if sample_shape not in self._sets:
            channels = 1 if len(sample_shape) == 2 else sample_shape[0]
            if len(sample_shape) not in (2, 3) or channels not in (1, 3):
                raise ValueError(
                    f"The far guard makes images, and the samples have shape {sample_shape}; "
                    "it needs image rows of shape (H, W) or (C, H, W) with 1 or 3 channels "
                    "(reshape the rows, e.g. X.reshape(-1, 1, 8, 8)), or leave it out.")
            shape, seeds = sample_shape[-2:], np.random.SeedSequence(
                self.random_state).generate_state(3)
            textures = make_texture_images(self.n, shape, value_range=self.value_range,
                                           random_state=int(seeds[0]))
            sets = {"textures": np.repeat(textures, channels, axis=1)}
            for kind, seed in zip(("gaussian", "uniform"), seeds[1:]):
                sets[f"{kind}-noise"] = make_noise_images(
                    self.n, shape, kind=kind, value_range=self.value_range,
                    random_state=int(seed), channels=channels)
            self._sets[sample_shape] = {name: images.reshape(self.n, *sample_shape)
                                        for name, images in sets.items()}
        return self._sets[sample_shape]

    def __call__(self, estimator, X, y, sample_weight=None):
        X = np.asarray(X)
        known = np.isin(np.asarray(y), estimator.classes_)
        # all rows scored, then the known ones kept: the same X as the other scorers',
        # whose outputs a DetectorSearchCV computes once for every candidate
        scores_id = estimator.score_samples(X)[known]
        worst = 0.0
        for images in self.images(X.shape[1:]).values():
            truth = np.r_[np.ones(len(scores_id)), np.zeros(len(images))]
            worst = max(worst, fpr_at_tpr(truth, np.r_[scores_id,
                                                       estimator.score_samples(images)]))
        return 0.0 - worst


class DetectorSearchCV(MetaEstimatorMixin, BaseEstimator):
    """Cross-validated choice of the ``detector``, training one network per fold.

    For each fold of ``cv``, a clone of ``estimator`` with the first candidate detector
    is fitted on the training part; then every candidate is set in turn with
    ``set_params(detector=...)`` (the detector is fitted again on the fold's training
    rows and the thresholds recalibrated, without training) and scored on the test part.
    Each fold's scores equal those of ``GridSearchCV(estimator, {"detector":
    detectors}, cv=cv, scoring=scoring)`` bit for bit (same folds, same fits), at the
    cost of one training per fold instead of one per candidate and fold. With
    :class:`~skood.model_selection.HeldOutClassSplit` as ``cv`` and skood's scorers,
    no OOD data is needed (``docs/selection.md``).

    Parameters
    ----------
    estimator : GradRegOODClassifier or GradRegOODDetector
        Its ``detector`` is replaced by each candidate.
    detectors : list of str or detector objects
        The candidates (names of :data:`skood.detectors.DETECTORS` or detector objects,
        cloned for each fold).
    cv : int, cross-validation splitter or iterable, default=None
        As ``GridSearchCV`` takes it (5-fold stratified by default), for example
        ``HeldOutClassSplit(n_splits=3, n_heldout=2, random_state=0)``.
    scoring : callable, dict of callables, or None, default=None
        ``None``: ``{"fpr95": make_ood_scorer("fpr95")}``, minus the FPR95 with the rows
        of classes the fold's model does not know as OOD. A callable ``scorer(estimator,
        X, y)`` is named ``"score"`` (as in ``GridSearchCV``).
    far_guard : bool or FarGuardScorer, default=False
        Also score each candidate against generated textures and noise
        (:class:`FarGuardScorer`; ``True``: with its defaults), as ``"far_fpr95"``.
        The candidates are then ranked by ``"selection"``: the mean of the first
        scorer and ``"far_fpr95"`` (with the default scoring, minus the mean of the
        near and the far FPR95, the criterion of ``benchmarks/nested_selection.py``).
    refit : bool, default=True
        Fit ``best_estimator_`` (the estimator with the best detector) on all of
        ``X``.
    n_jobs : int or None, default=None
        Folds run in parallel (joblib).

    Attributes
    ----------
    cv_results_ : dict of numpy arrays
        As ``GridSearchCV``'s (``pandas.DataFrame(search.cv_results_)`` works):
        ``params``, ``param_detector``, ``split<i>_test_<name>``, ``mean_test_<name>``,
        ``std_test_<name>``, ``rank_test_<name>`` for each scorer (and
        ``"selection"`` with the far guard), ``mean_fit_time`` (the fold's training
        for the first candidate; the detector's refit for the others) and
        ``mean_score_time``.
    best_index_ : int
        The candidate ranked first (by the first scorer, or ``"selection"``).
    best_params_ : dict
        ``{"detector": best candidate}``.
    best_score_ : float
        Its mean ranking score.
    best_estimator_ : estimator
        With ``refit=True``: fitted on all of ``X`` with the best detector.
    n_splits_ : int
    scorer_ : dict
        The scorers by name.

    Examples
    --------
    >>> import numpy as np
    >>> from skood import GradRegOODClassifier
    >>> from skood.model_selection import DetectorSearchCV, HeldOutClassSplit
    >>> from skood.models import MLP
    >>> rng = np.random.RandomState(0)
    >>> X = np.r_[[rng.normal(3 * k, 1, size=(80, 4)) for k in range(4)]].reshape(-1, 4)
    >>> y = np.repeat([0, 1, 2, 3], 80)
    >>> clf = GradRegOODClassifier(MLP, module__hidden=(8,), max_epochs=10, batch_size=16,
    ...                            lambda_energy=0, lambda_grad=0, random_state=0, verbose=0)
    >>> search = DetectorSearchCV(clf, ["energy", "knn"], refit=False,
    ...                           cv=HeldOutClassSplit(n_splits=2, random_state=0))
    >>> search = search.fit(X.astype("float32"), y)
    >>> sorted(search.cv_results_["params"], key=str)
    [{'detector': 'energy'}, {'detector': 'knn'}]
    """

    def __init__(self, estimator, detectors, *, cv=None, scoring=None, far_guard=False,
                 refit=True, n_jobs=None):
        self.estimator = estimator
        self.detectors = detectors
        self.cv = cv
        self.scoring = scoring
        self.far_guard = far_guard
        self.refit = refit
        self.n_jobs = n_jobs

    def _scorers(self):
        if self.scoring is None:
            scorers = {"fpr95": make_ood_scorer("fpr95")}
        elif callable(self.scoring):
            scorers = {"score": self.scoring}
        elif isinstance(self.scoring, dict) and self.scoring and all(
                callable(s) for s in self.scoring.values()):
            scorers = dict(self.scoring)
        else:
            raise ValueError(
                "scoring must be None, a callable scorer(estimator, X, y) such as "
                "skood.make_ood_scorer('fpr95'), or a non-empty dict of them; got "
                f"{self.scoring!r}.")
        if self.far_guard is not False and self.far_guard is not None:
            guard = FarGuardScorer() if self.far_guard is True else self.far_guard
            if not callable(guard):
                raise ValueError(f"far_guard must be True, False or a FarGuardScorer; got "
                                 f"{self.far_guard!r}.")
            scorers["far_fpr95"] = guard
        return scorers

    def fit(self, X, y, **fit_params):
        """Score every candidate detector on each fold; refit the best on all rows.

        Parameters
        ----------
        X : array-like of shape (n_samples, ...)
        y : array-like of shape (n_samples,)
            Class labels (-1 for auxiliary-outlier rows).
        **fit_params
            Passed to the estimator's ``fit`` (``X_aux``, ...), a per-row array indexed
            by fold as ``GridSearchCV`` does.

        Returns
        -------
        self
        """
        if isinstance(self.detectors, str):   # list("knn") would be three one-letter names
            raise TypeError(f"detectors must be a list of candidate detectors, got the string "
                            f"{self.detectors!r}; pass [{self.detectors!r}] for one candidate.")
        detectors = list(self.detectors)
        if not detectors:
            raise ValueError("detectors must hold at least one candidate detector.")
        scorers = self._scorers()
        cv = check_cv(self.cv, y, classifier=is_classifier(self.estimator))
        folds = list(cv.split(X, y))
        outcomes = Parallel(n_jobs=self.n_jobs)(
            delayed(_score_fold)(self.estimator, detectors, scorers, X, y, train, test,
                                 fit_params) for train, test in folds)
        self.scorer_, self.n_splits_ = scorers, len(folds)
        self.cv_results_ = _results(detectors, scorers, outcomes)
        key = "selection" if "far_fpr95" in scorers else next(iter(scorers))
        if "far_fpr95" in scorers:
            first = next(iter(scorers))
            selection = np.array([(np.asarray(outcome["scores"][first])
                                   + np.asarray(outcome["scores"]["far_fpr95"])) / 2
                                  for outcome in outcomes]).T
            _store(self.cv_results_, "test_selection", selection, rank=True)
        self.best_index_ = int(np.argmin(self.cv_results_[f"rank_test_{key}"]))
        self.best_params_ = dict(self.cv_results_["params"][self.best_index_])
        self.best_score_ = float(self.cv_results_[f"mean_test_{key}"][self.best_index_])
        if self.refit:
            start = time.perf_counter()
            self.best_estimator_ = clone(self.estimator).set_params(
                detector=clone(self.best_params_["detector"], safe=False)).fit(
                X, y, **fit_params)
            self.refit_time_ = time.perf_counter() - start
        return self

    def score_samples(self, X):
        """The OOD scores of ``best_estimator_``: higher = more in-distribution.

        Parameters
        ----------
        X : array-like of shape (n_samples, ...)

        Returns
        -------
        ndarray of shape (n_samples,), float32
        """
        check_is_fitted(self, "best_estimator_")
        return self.best_estimator_.score_samples(X)

    def predict(self, X):
        """The predictions of ``best_estimator_``.

        Parameters
        ----------
        X : array-like of shape (n_samples, ...)

        Returns
        -------
        ndarray of shape (n_samples,)
        """
        check_is_fitted(self, "best_estimator_")
        return self.best_estimator_.predict(X)


def _score_fold(estimator, detectors, scorers, X, y, train, test, fit_params):
    """One training on the fold, then every candidate: times and scores per candidate."""
    X_train, y_train = _safe_indexing(X, train), _safe_indexing(y, train)
    X_test, y_test = _safe_indexing(X, test), _safe_indexing(y, test)
    fold_params = _check_method_params(X, params=fit_params, indices=train)
    model = clone(estimator)
    scores = {name: [] for name in scorers}
    fit_times, score_times = [], []
    with contextlib.ExitStack() as stack:
        for index, detector in enumerate(detectors):
            start = time.perf_counter()
            detector = clone(detector, safe=False)          # as GridSearchCV clones a value
            if index == 0:
                model.set_params(detector=detector).fit(X_train, y_train, **fold_params)
                # The network is fixed from here on: its outputs for the training,
                # calibration and test rows (and the far guard's images) are computed once
                # for all candidates, with the values a recomputation would give.
                stack.enter_context(model._caching_outputs())
            else:
                model.set_params(detector=detector)         # refits the detector alone
            fit_times.append(time.perf_counter() - start)
            start = time.perf_counter()
            for name, scorer in scorers.items():
                scores[name].append(float(scorer(model, X_test, y_test)))
            score_times.append(time.perf_counter() - start)
    return {"scores": scores, "fit_time": fit_times, "score_time": score_times}


def _store(results, key, array, rank=False):
    """``split<i>_``, ``mean_``, ``std_`` (and ``rank_``) of an (n_candidates, n_splits)
    array, as GridSearchCV names them."""
    array = np.asarray(array, dtype=np.float64)
    if key.startswith("test_"):
        for split in range(array.shape[1]):
            results[f"split{split}_{key}"] = array[:, split]
    means = array.mean(axis=1)
    results[f"mean_{key}"] = means
    results[f"std_{key}"] = array.std(axis=1)
    if rank:
        filled = np.where(np.isnan(means), np.nanmin(means, initial=0.0) - 1, means)
        results[f"rank_{key}"] = rankdata(-filled, method="min").astype(np.int32)


def _results(detectors, scorers, outcomes):
    results = {}
    for key in ("fit_time", "score_time"):
        _store(results, key, np.array([outcome[key] for outcome in outcomes]).T)
    results["param_detector"] = np.array([None] * len(detectors), dtype=object)
    results["param_detector"][:] = detectors
    results["params"] = [{"detector": detector} for detector in detectors]
    for name in scorers:
        _store(results, f"test_{name}",
               np.array([outcome["scores"][name] for outcome in outcomes]).T, rank=True)
    return results

