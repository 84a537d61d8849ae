"""The benchmark's class splits: which classes are known, which held out.

:func:`draw_class_splits` draws distinct splits at random, :data:`HELDOUT_SPLITS`
are the five fixed MNIST open-set splits (``splits="neal"``); :func:`class_splits`
gives a run's splits and :func:`_known_split` checks the ``split`` of one run.
"""
import itertools
import math
import numbers

import numpy as np
from sklearn.utils import check_random_state

from .dataset_specs import dataset_spec

__all__ = ["HELDOUT_SPLITS", "draw_class_splits"]

#: Known (in-distribution) classes of the five MNIST open-set splits of Neal et
#: al. (2018), as listed by Vaze et al. (2022), sorted: ``splits="neal"``
#: (``skood benchmark --splits neal``), for comparison with published open-set work.
HELDOUT_SPLITS = ((2, 3, 4, 5, 8, 9), (0, 2, 3, 4, 6, 9), (2, 3, 4, 5, 6, 8),
                  (0, 3, 4, 5, 7, 8), (2, 3, 4, 6, 8, 9))

#: :func:`draw_class_splits` lists the choices of held-out classes up to this many
#: (all of them for 10 classes), and draws them one by one above it
MAX_LISTED_CHOICES = 100_000


def draw_class_splits(n_classes, n_heldout, n_splits, random_state=0):
    """Draw ``n_splits`` distinct class splits: which classes are known, which held out.

    The generator lists every choice of ``n_heldout`` held-out classes among
    ``n_classes`` (:func:`itertools.combinations` of ``range(n_classes)``, in
    its sorted order), permutes that list with
    ``check_random_state(random_state).permutation`` and keeps the first
    ``n_splits``. Where there are more than :data:`MAX_LISTED_CHOICES`
    choices (e.g. 50 held-out classes of CIFAR-100's 100), it draws the
    held-out classes of each split in turn with that random state's
    ``choice`` (without replacement), drawing again when a set repeats. The
    splits are therefore distinct, the same for the same arguments, and a
    draw of ``n`` splits starts with the draw of ``n - 1``.

    Parameters
    ----------
    n_classes : int
        Classes of the dataset (labels ``0 .. n_classes - 1``).
    n_heldout : int
        Classes held out in each split, in ``[1, n_classes - 1]``.
    n_splits : int
        Splits to draw, at least 1 and at most ``comb(n_classes, n_heldout)``.
    random_state : int, default=0
        Seeds the permutation.

    Returns
    -------
    tuple of tuple of int
        The known classes of each split, sorted; the held-out classes are the others.

    Examples
    --------
    >>> draw_class_splits(10, 4, 2, random_state=0)
    ((2, 4, 5, 6, 7, 8), (1, 2, 3, 4, 5, 9))
    >>> draw_class_splits(4, 2, 7)
    Traceback (most recent call last):
    ...
    ValueError: n_splits must be at most 6 (the choices of 2 held-out classes among 4), got 7.
    """
    def integer(value):
        return isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))

    if not integer(n_classes) or n_classes < 2:
        raise ValueError(f"n_classes must be an integer of at least 2, got {n_classes!r}.")
    if not integer(n_heldout) or not 1 <= n_heldout < n_classes:
        raise ValueError(f"n_heldout must be an integer from 1 to n_classes - 1 = "
                         f"{n_classes - 1} (at least one class held out, one known), got "
                         f"{n_heldout!r}.")
    n_choices = math.comb(n_classes, n_heldout)
    if (isinstance(n_splits, (bool, np.bool_)) or not isinstance(n_splits, numbers.Integral)
            or not 1 <= n_splits <= n_choices):
        raise ValueError(f"n_splits must be at most {n_choices} (the choices of {n_heldout} "
                         f"held-out classes among {n_classes}), got {n_splits!r}."
                         if isinstance(n_splits, numbers.Integral) and n_splits > n_choices else
                         f"n_splits must be a positive integer, got {n_splits!r}.")
    rng = check_random_state(random_state)
    if n_choices > MAX_LISTED_CHOICES:
        # Too many choices to list (CIFAR-100's 50 of 100: 1e29): draw held-out sets one
        # by one, a repeat drawn again; as likely to repeat as a lottery win.
        heldout_sets = []
        while len(heldout_sets) < n_splits:
            heldout = tuple(sorted(int(c) for c in rng.choice(n_classes, n_heldout,
                                                              replace=False)))
            if heldout not in heldout_sets:
                heldout_sets.append(heldout)
    else:
        choices = list(itertools.combinations(range(n_classes), n_heldout))
        heldout_sets = [choices[i] for i in rng.permutation(len(choices))[:n_splits]]
    return tuple(tuple(c for c in range(n_classes) if c not in heldout)
                 for heldout in heldout_sets)


def class_splits(dataset, protocol, splits, split_seed=0):
    """The known classes of each class split of a run.

    ``splits``: ``"neal"`` (:data:`HELDOUT_SPLITS`) or a number of splits to
    draw with :func:`draw_class_splits` (seeded by ``split_seed``); under
    ``protocol="full"`` there is one split, all classes known.
    """
    spec = dataset_spec(dataset)
    if protocol == "full":
        return (tuple(range(spec.n_classes)),)
    if isinstance(splits, str) and splits == "neal":
        return HELDOUT_SPLITS
    return draw_class_splits(spec.n_classes, spec.n_heldout, splits, split_seed)


def _known_split(dataset, split):
    """The known classes of ``split``: an index into HELDOUT_SPLITS or the classes."""
    if isinstance(split, numbers.Integral) and not isinstance(split, (bool, np.bool_)):
        if not dataset_spec(dataset).neal_splits:
            raise ValueError(f"split as an index picks one of HELDOUT_SPLITS, the MNIST "
                             f"open-set splits, which apply to digits and fashion-mnist only; "
                             f"give {dataset}'s known classes instead, e.g. one of "
                             f"draw_class_splits(...), got split={split!r}.")
        return HELDOUT_SPLITS[split % len(HELDOUT_SPLITS)]
    known = tuple(sorted(int(c) for c in split))
    n_classes = dataset_spec(dataset).n_classes
    if not known or len(set(known)) != len(known) or not set(known) <= set(range(n_classes)):
        raise ValueError(f"split must be an index into HELDOUT_SPLITS or distinct classes in "
                         f"0..{n_classes - 1}, got {split!r}.")
    return known
