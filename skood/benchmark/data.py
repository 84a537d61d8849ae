"""The benchmark's data: a run's in-distribution data, OOD test sets and outliers.

The datasets themselves (:class:`DatasetSpec`, :data:`DATASETS`, :data:`DEFAULTS`,
:data:`PROTOCOLS`) are in :mod:`skood.benchmark.dataset_specs`, imported here
so that they import from this module as before.
"""
import itertools
import math
import numbers

import numpy as np
from sklearn.utils import Bunch, check_random_state

from ..datasets import make_natural_image_outliers, make_noise_images, make_texture_images
from . import far_sets
from .dataset_specs import (DATASETS, DEFAULTS, PROTOCOLS, DatasetSpec, check_protocol,
                            dataset_spec)

__all__ = ["DatasetSpec", "DATASETS", "DEFAULTS", "PROTOCOLS", "HELDOUT_SPLITS",
           "draw_class_splits", "load_benchmark_data"]

#: Known (in-distribution) classes of the five MNIST open-set splits of Neal et
#: al. (2018), as listed by Vaze et al. (2022), sorted: ``splits="neal"``
#: (``skood benchmark --splits neal``), for comparison with published open-set work.
HELDOUT_SPLITS = ((2, 3, 4, 5, 8, 9), (0, 2, 3, 4, 6, 9), (2, 3, 4, 5, 6, 8),
                  (0, 3, 4, 5, 7, 8), (2, 3, 4, 6, 8, 9))

#: :func:`draw_class_splits` lists the choices of held-out classes up to this many
#: (all of them for 10 classes), and draws them one by one above it
MAX_LISTED_CHOICES = 100_000
#: seed of the far OOD sets and of the outlier pool: the same in every run
FAR_SEED = 0
#: each run draws its ``n_aux`` auxiliary outliers from ``AUX_POOL_FACTOR * n_aux``
#: crops made once (cropping photographs takes seconds per thousand images)
AUX_POOL_FACTOR = 2


class DataNotFoundError(FileNotFoundError):
    """The in-distribution dataset's files are not on this machine; the message
    says where to get them (the command line prints it without a traceback)."""


def check_id_data(dataset, data_home):
    """Load the dataset's in-distribution data once, before any other work, so that
    missing files stop a run at once (:class:`DataNotFoundError`)."""
    _load_id(dataset_spec(dataset), data_home, 0)


def _load_id(spec, data_home, random_state):
    try:
        return spec.load_id(data_home, random_state)
    except FileNotFoundError as error:
        raise DataNotFoundError(str(error)) from error



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


def run_seeds(seed, known_classes):
    """The seeds of one (class split, seed) run: for the ID data (train/test split
    and subsampling), the draw of the auxiliary outliers, and the estimator
    (network initialisation and batch order). They depend on ``seed`` and the
    known classes only, so a split and seed get the same data in any run."""
    sequence = np.random.SeedSequence([int(seed), *(int(c) for c in known_classes)])
    return tuple(int(child.generate_state(1)[0] >> 1) for child in sequence.spawn(3))


def _subsample(X, y, n, rng):
    if n is None or n >= len(X):
        return X, y
    index = rng.choice(len(X), size=n, replace=False)
    return X[index], y[index]


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


def _keep_classes(X, y, known):
    """The rows of the known classes, labels relabelled to their rank in ``known``."""
    mask = np.isin(y, known)
    return X[mask], np.searchsorted(np.asarray(known), y[mask]).astype(np.int64)


def load_far(dataset, *, n_ood, data_home, seed=FAR_SEED):
    """The far OOD sets and the reasons for any skipped: fixed by ``seed``, the
    same for every class split and run seed.

    The sets read from files (the spec's ``far_sets``, in order), then generated
    ``textures`` (grey, repeated on colour channels), ``gaussian-noise`` and
    ``uniform-noise`` (independent per channel), all in ``[0, 1]``.
    """
    spec = dataset_spec(dataset)
    # One seed per set, drawn up front: each set is the same whether or not
    # another could be loaded.
    other_seed, texture_seed, gaussian_seed, uniform_seed = (
        check_random_state(seed).randint(2**31, size=4))
    ood, skipped = {}, {}
    for index, (name, load) in enumerate(spec.far_sets.items()):
        # the first set keeps the seed it has always had; the others get their own
        set_seed = other_seed if index == 0 else int(
            np.random.SeedSequence([int(other_seed), index]).generate_state(1)[0])
        try:
            ood[name] = load(spec.image_shape, spec.channels, n_ood,
                             check_random_state(set_seed), data_home)
        except FileNotFoundError as error:
            skipped[name] = str(error).rstrip(".")
    ood["textures"] = far_sets.to_channels(
        make_texture_images(n_ood, spec.image_shape, random_state=texture_seed), spec.channels)
    ood["gaussian-noise"] = make_noise_images(n_ood, spec.image_shape, kind="gaussian",
                                              random_state=gaussian_seed,
                                              channels=spec.channels)
    ood["uniform-noise"] = make_noise_images(n_ood, spec.image_shape, kind="uniform",
                                             random_state=uniform_seed, channels=spec.channels)
    return ood, skipped


def outlier_pool(dataset, n_aux, seed=FAR_SEED):
    """The ``AUX_POOL_FACTOR * n_aux`` crops of photographs each run draws its
    ``n_aux`` auxiliary outliers from (made once: cropping is slow); grey, one
    channel (a run repeats the rows it draws on a colour dataset's channels)."""
    return make_natural_image_outliers(AUX_POOL_FACTOR * n_aux, dataset_spec(dataset).image_shape,
                                       random_state=seed)


def _standardize(images, normalize):
    """``(images - mean) / std`` per channel, float32; ``normalize=None``: as they are."""
    if normalize is None:
        return images
    mean, std = (np.asarray(v, dtype=np.float32).reshape(1, -1, 1, 1) for v in normalize)
    return (images - mean) / std


def load_run(dataset, *, protocol, known_classes, seed, n_train, n_test, n_aux, n_ood,
             data_home, far, pool):
    """One run's data: the known classes' ID data, the near set, and the outliers
    drawn from ``pool``, all seeded by :func:`run_seeds`; ``far``: :func:`load_far`."""
    spec = dataset_spec(dataset)
    id_seed, aux_seed, estimator_seed = run_seeds(seed, known_classes)
    rng = check_random_state(id_seed)
    known = tuple(known_classes)
    heldout = tuple(c for c in range(spec.n_classes) if c not in known)
    X_train, X_test, y_train, y_test = _load_id(spec, data_home, int(rng.randint(2**31)))
    near = {}
    if heldout:
        X_near = X_test[np.isin(y_test, heldout)]
        X_near, _ = _subsample(X_near, np.zeros(len(X_near)), n_ood, rng)
        near[f"{dataset}-heldout"] = X_near
    X_train, y_train = _keep_classes(X_train, y_train, known)
    X_test, y_test = _keep_classes(X_test, y_test, known)
    X_train, y_train = _subsample(X_train, y_train, n_train, rng)
    X_test, y_test = _subsample(X_test, y_test, n_test, rng)
    aux_index = check_random_state(aux_seed).choice(len(pool), size=min(n_aux, len(pool)),
                                                    replace=False)
    ood_far, skipped = far
    ood = {name: _standardize(images, spec.normalize)
           for name, images in {**near, **ood_far}.items()}
    return Bunch(X_train=_standardize(X_train, spec.normalize), y_train=y_train,
                 X_test=_standardize(X_test, spec.normalize), y_test=y_test,
                 X_aux=_standardize(far_sets.to_channels(pool[aux_index], spec.channels),
                                    spec.normalize), ood=ood,
                 groups={name: ("near" if name in near else "far") for name in ood},
                 skipped=dict(skipped), protocol=protocol, seed=seed,
                 estimator_seed=estimator_seed, known_classes=known, heldout_classes=heldout,
                 image_shape=spec.image_shape, channels=spec.channels,
                 n_classes=len(known))


def load_benchmark_data(dataset="digits", *, protocol="heldout", split=0, n_train=None,
                        n_test=None, n_aux=5000, n_ood=1000, data_home=None, random_state=0):
    """In-distribution train/test data, auxiliary outliers and named OOD test sets
    of one benchmark run: one class split and one seed.

    Images are float32 in ``[0, 1]``, shaped ``(n, channels, height, width)``
    (CIFAR's standardised, see below).

    - ``digits``: scikit-learn's 8x8 digits, split 70/30 (stratified) by the
      seed. Far OOD: Fashion-MNIST downscaled to 8x8 (when installed; else
      listed in ``skipped``), textures, Gaussian and uniform noise.
    - ``fashion-mnist``: the real Fashion-MNIST (28x28, its own train/test
      split). Far OOD: scikit-learn's handwritten digits upscaled to 28x28,
      textures, Gaussian and uniform noise.
    - ``cifar10``, ``cifar100``: CIFAR from files (:func:`skood.datasets.load_cifar10`,
      its own train/test split), colour ``(n, 3, 32, 32)``, standardised per
      channel with the spec's ``normalize``. Far OOD: the sets of the spec's
      ``far_sets`` found in ``data_home`` (the others in ``skipped``), colour
      textures and noise.

    With ``protocol="heldout"`` only the known classes of ``split`` are
    in-distribution (labels relabelled to ``0..n_known - 1`` in their order,
    ``0..5`` for 6 known classes), and the test images of the held-out ones (at
    most ``n_ood``) form the near OOD set ``"<dataset>-heldout"``; the train
    images of the held-out classes are not used at all.

    What the seed (``random_state``) varies, with the split's known classes
    (:func:`run_seeds`): the train/test split (digits), the subsampling by
    ``n_train``, ``n_test`` and ``n_ood``, and which ``n_aux`` outliers are
    drawn from a fixed pool of ``AUX_POOL_FACTOR * n_aux`` crops of
    photographs; ``estimator_seed`` is the estimator's ``random_state``. What
    stays fixed: the far OOD sets and the outlier pool, for every split and
    seed, whether or not Fashion-MNIST could be loaded.
    :func:`run_benchmark` trains on exactly these arrays.

    Parameters
    ----------
    dataset : {"digits", "fashion-mnist", "cifar10", "cifar100"}, default="digits"
    protocol : {"heldout", "full"}, default="heldout"
    split : int or sequence of int, default=0
        The known classes (e.g. one of :func:`draw_class_splits`), or an index
        into :data:`HELDOUT_SPLITS` (taken modulo 5); ``protocol="heldout"`` only.
    n_train, n_test : int or None
        Subsample the in-distribution train and test images (None: all).
    n_aux : int, default=5000
        Auxiliary outliers (crops of photographs,
        :func:`skood.datasets.make_natural_image_outliers`).
    n_ood : int, default=1000
        Images per OOD test set (at most).
    data_home : str or None
        Folder with the dataset's files (see :func:`skood.datasets.load_fashion_mnist`,
        :func:`skood.datasets.load_cifar10`) and, for CIFAR, its far sets.
    random_state : int, default=0
        The run's seed.

    Returns
    -------
    Bunch with ``X_train, y_train, X_test, y_test, X_aux``, ``ood`` (dict name ->
    images, near sets first), ``groups`` (dict name -> ``"near"`` or ``"far"``),
    ``skipped`` (dict name -> why an OOD set is missing), ``protocol``, ``seed``,
    ``estimator_seed``, ``known_classes`` and ``heldout_classes`` (original
    labels; ``y == i`` is class ``known_classes[i]``), ``image_shape``, ``channels``
    and ``n_classes``.

    Examples
    --------
    >>> data = load_benchmark_data("digits", n_train=100, n_aux=10, n_ood=5)
    >>> data.X_train.shape, data.X_aux.shape, data.ood["textures"].shape
    ((100, 1, 8, 8), (10, 1, 8, 8), (5, 1, 8, 8))
    >>> data.known_classes, data.heldout_classes, data.groups["digits-heldout"]
    ((2, 3, 4, 5, 8, 9), (0, 1, 6, 7), 'near')
    """
    check_protocol(protocol)
    spec = dataset_spec(dataset)
    known = tuple(range(spec.n_classes)) if protocol == "full" else _known_split(dataset, split)
    return load_run(dataset, protocol=protocol, known_classes=known, seed=random_state,
                    n_train=n_train, n_test=n_test, n_aux=n_aux, n_ood=n_ood,
                    data_home=data_home, far=load_far(dataset, n_ood=n_ood, data_home=data_home),
                    pool=outlier_pool(dataset, n_aux))
