"""The benchmark's data: a run's in-distribution data, OOD test sets and outliers.

The datasets themselves (:class:`DatasetSpec`, :data:`DATASETS`, :data:`DEFAULTS`,
:data:`PROTOCOLS`) are in :mod:`skood.benchmark.dataset_specs` and the class splits
(:func:`draw_class_splits`, :data:`HELDOUT_SPLITS`) in :mod:`skood.benchmark.splits`,
imported here so that they import from this module as before.
"""
import numpy as np
from sklearn.utils import Bunch, check_random_state

from ..datasets import make_natural_image_outliers, make_noise_images, make_texture_images
from . import far_sets
from .dataset_specs import (DATASETS, DEFAULTS, PROTOCOLS, DatasetSpec, check_protocol,
                            dataset_spec)
# class_splits and MAX_LISTED_CHOICES are not used here: imported so that they import from
# this module as before
from .splits import (HELDOUT_SPLITS, MAX_LISTED_CHOICES, _known_split,  # noqa: F401
                     class_splits, draw_class_splits)

__all__ = ["DatasetSpec", "DATASETS", "DEFAULTS", "PROTOCOLS", "HELDOUT_SPLITS",
           "draw_class_splits", "load_benchmark_data"]

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


def _capped_notes(config, data, noted):
    """A line for each of ``n_train`` / ``n_test`` above the rows a run has (a cap, not
    an error: all rows are used), once per setting; ``noted`` holds those said."""
    lines = []
    for name, rows in (("n_train", len(data.X_train)), ("n_test", len(data.X_test))):
        cap = getattr(config, name)
        if cap is not None and rows < cap and name not in noted:
            noted.add(name)
            lines.append(f"{name}={cap} is above the rows available, so all are used: {rows} "
                         f"in split {data.split}, seed {data.seed}.")
    return lines


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
