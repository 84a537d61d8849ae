"""Cross-validation without OOD data: hold whole classes out of training.

A model that must reject inputs of classes it has never seen can be judged on
in-distribution data alone by pretending that some of its classes are unseen:
:class:`HeldOutClassSplit` trains each fold on the other classes and tests it
on a share of the trained classes' rows plus every row of the held-out ones.
skood's scorers (:func:`skood.metrics.make_ood_scorer`) count the rows of
classes a fitted model does not know as OOD, so ``GridSearchCV`` with this
splitter compares candidates on near-OOD detection with no OOD data at all.
:class:`DetectorSearchCV` chooses the ``detector`` that way at the cost of one
training per fold, and :class:`FarGuardScorer` guards far-OOD detection with
generated images. See ``docs/selection.md``.
"""
import math
import numbers

import numpy as np
from sklearn.model_selection import BaseCrossValidator, train_test_split
from sklearn.utils import check_random_state, indexable
from sklearn.utils.validation import _num_samples

from ._detector_search import DetectorSearchCV, FarGuardScorer
from ._labels import is_outlier_label

__all__ = ["DetectorSearchCV", "FarGuardScorer", "HeldOutClassSplit"]


class HeldOutClassSplit(BaseCrossValidator):
    """Cross-validation folds that each hold ``n_heldout`` whole classes out of training.

    In each split, the classes of ``y`` (all labels but -1) are divided into
    *held-out* classes (``n_heldout`` of them) and *known* classes (the others):

    - the **test** part holds every row of the held-out classes plus a
      stratified share ``test_size`` of the known classes' rows;
    - the **training** part holds the other rows of the known classes and
      every row labelled -1 (auxiliary outliers are training data: they are
      never in a test part).

    A model fitted on the training part knows only the known classes, so with
    skood's scorers (:func:`skood.metrics.make_ood_scorer`) the held-out
    classes' rows are its OOD rows and the known classes' test rows its
    in-distribution rows: the folds measure *near*-OOD detection (unseen
    classes of the same data) without any OOD data.

    The held-out sets are drawn from a permutation of the classes cut in
    blocks of ``n_heldout``: the first ``ceil(n_classes / n_heldout)`` splits
    hold out every class at least once (the last block is topped up with other
    classes when ``n_heldout`` does not divide ``n_classes``); further splits
    use new permutations. No two splits hold out the same set of classes.

    Parameters
    ----------
    n_splits : int, default=5
        Number of splits. At most the number of distinct held-out sets,
        ``comb(n_classes, n_heldout)``.
    n_heldout : int, default=2
        Classes held out of training in each split; at least 1, and at most
        ``n_classes - 2`` so that each training part has two classes.
    test_size : float in (0, 1) or int, default=0.2
        The known classes' rows in each test part: a fraction of them, or a
        number of rows (stratified by class, as in
        :func:`sklearn.model_selection.train_test_split`).
    random_state : int, RandomState instance or None, default=None
        Draws the held-out sets and the known classes' test rows. With an int,
        every call of :meth:`split` gives the same splits.

    See Also
    --------
    skood.metrics.make_ood_scorer : scorers that count rows of unseen classes as OOD.

    Notes
    -----
    The classes are read from ``y`` at each call of :meth:`split`; ``X`` is
    used for its number of rows only and ``groups`` is ignored.

    Examples
    --------
    >>> import numpy as np
    >>> from skood.model_selection import HeldOutClassSplit
    >>> y = np.repeat([0, 1, 2, 3], 5)
    >>> cv = HeldOutClassSplit(n_splits=2, n_heldout=2, random_state=0)
    >>> [classes.tolist() for classes in cv.held_out_classes(y)]
    [[2, 3], [0, 1]]
    >>> for train, test in cv.split(np.zeros((20, 1)), y):
    ...     print(np.unique(y[train]).tolist(), np.unique(y[test]).tolist())
    [0, 1] [0, 1, 2, 3]
    [2, 3] [0, 1, 2, 3]
    """

    def __init__(self, n_splits=5, n_heldout=2, *, test_size=0.2, random_state=None):
        self.n_splits = n_splits
        self.n_heldout = n_heldout
        self.test_size = test_size
        self.random_state = random_state

    def _check_params(self):
        for name in ("n_splits", "n_heldout"):
            value = getattr(self, name)
            if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be an int >= 1, got {value!r}.")
        test_size = self.test_size
        if isinstance(test_size, bool) or not (
                (isinstance(test_size, numbers.Integral) and test_size >= 1)
                or (isinstance(test_size, numbers.Real) and 0 < test_size < 1)):
            raise ValueError(
                "test_size must be a float in (0, 1) (a fraction of the known classes' rows) "
                f"or an int >= 1 (a number of rows), got {test_size!r}.")

    def get_n_splits(self, X=None, y=None, groups=None):
        """The number of splits, ``n_splits``.

        Parameters
        ----------
        X, y, groups : object
            Not used; present for the scikit-learn API.

        Returns
        -------
        int
        """
        self._check_params()
        return int(self.n_splits)

    def split(self, X, y, groups=None):
        """Generate the training and test indices of each split.

        Parameters
        ----------
        X : array-like of shape (n_samples, ...)
            Used for its number of rows.
        y : array-like of shape (n_samples,)
            Class labels; -1 marks auxiliary-outlier rows (always in training).
        groups : object
            Not used.

        Yields
        ------
        train : ndarray of int
            The training rows: the known classes' other rows and every -1 row.
        test : ndarray of int
            The test rows: every row of the held-out classes and a stratified
            share of the known classes' rows.
        """
        X, y = indexable(X, y)
        yield from super().split(X, y, groups)

    def held_out_classes(self, y):
        """The classes each split holds out of training, in the order of :meth:`split`.

        Parameters
        ----------
        y : array-like of shape (n_samples,)
            The labels that :meth:`split` receives.

        Returns
        -------
        list of ndarray
            One sorted array of ``n_heldout`` class labels per split. With an
            int ``random_state`` these are the classes :meth:`split` holds out.
        """
        classes, _, _ = self._classes(y)
        rng = check_random_state(self.random_state)
        return [classes[np.sort(block)] for block in self._held_out_blocks(len(classes), rng)]

    def _classes(self, y):
        self._check_params()
        if y is None:
            raise ValueError(
                "HeldOutClassSplit needs y: it holds whole classes out of training. Pass "
                "the class labels (-1 for auxiliary-outlier rows) to split(X, y).")
        y = np.asarray(y)
        if y.ndim != 1:
            raise ValueError(f"y must be 1-D with one label per row, got shape {y.shape}.")
        outliers = is_outlier_label(y)
        classes, codes = np.unique(y[~outliers], return_inverse=True)
        n_classes = len(classes)
        if n_classes - self.n_heldout < 2:
            raise ValueError(
                f"n_heldout={self.n_heldout} leaves {n_classes - self.n_heldout} known "
                f"class(es) of the {n_classes} classes of y in training; a classifier needs "
                f"at least 2, so y needs at least {self.n_heldout + 2} classes (n_heldout + 2; "
                f"labels other than -1)"
                + ("." if n_classes < 3 else f", or use n_heldout <= {n_classes - 2}."))
        n_sets = math.comb(n_classes, self.n_heldout)
        if self.n_splits > n_sets:
            raise ValueError(
                f"n_splits={self.n_splits} is more than the {n_sets} distinct sets of "
                f"n_heldout={self.n_heldout} classes out of {n_classes}; lower n_splits.")
        return classes, codes, outliers

    def _held_out_blocks(self, n_classes, rng):
        """``n_splits`` distinct sets of ``n_heldout`` class indices, covering the classes."""
        k = self.n_heldout
        blocks, seen = [], set()
        while len(blocks) < self.n_splits:
            order = rng.permutation(n_classes)
            for start in range(0, n_classes, k):
                block = order[start:start + k]
                if len(block) < k:          # top up the last block with other classes
                    others = np.setdiff1d(order, block)
                    block = np.r_[block, rng.choice(others, k - len(block), replace=False)]
                key = frozenset(block.tolist())
                if key in seen:
                    continue
                seen.add(key)
                blocks.append(block)
                if len(blocks) == self.n_splits:
                    break
        return blocks

    def _iter_test_masks(self, X, y, groups=None):
        classes, codes, outliers = self._classes(y)
        rng = check_random_state(self.random_state)
        blocks = self._held_out_blocks(len(classes), rng)
        n_samples = _num_samples(X)
        class_rows = np.flatnonzero(~outliers)
        for block in blocks:
            held_out = np.isin(codes, block)
            known_rows, known_codes = class_rows[~held_out], codes[~held_out]
            try:
                _, known_test = train_test_split(
                    known_rows, test_size=self.test_size, stratify=known_codes,
                    random_state=rng)
            except ValueError as error:
                raise ValueError(
                    f"HeldOutClassSplit could not draw a stratified test share "
                    f"test_size={self.test_size!r} of the known classes' rows with classes "
                    f"{classes[np.sort(block)].tolist()} held out: {error} Each known class "
                    "needs at least 2 rows; change test_size or pass more rows.") from error
            test = np.zeros(n_samples, dtype=bool)
            test[class_rows[held_out]] = True
            test[known_test] = True
            yield test
