"""The benchmark's data: one spec per in-distribution dataset, and the loader.

:data:`DATASETS` maps a dataset's name to its :class:`DatasetSpec`: image
shape, number of classes and of held-out classes, how its images are loaded,
which far OOD set it brings, and its default settings (:data:`DEFAULTS` is
the view of those defaults).
"""
from dataclasses import dataclass, field
from types import MappingProxyType

import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from sklearn.utils import Bunch, check_random_state

from .. import datasets as _datasets
from ..datasets import (make_natural_image_outliers, make_noise_images, make_texture_images,
                        resize_images)

__all__ = ["DatasetSpec", "DATASETS", "DEFAULTS", "PROTOCOLS", "HELDOUT_SPLITS",
           "load_benchmark_data"]

#: ``"heldout"``: 6 known classes, the other 4 are the near OOD set; ``"full"``: all 10 known.
PROTOCOLS = ("heldout", "full")
#: Known (in-distribution) classes of the held-out-class protocol; seed ``s``
#: uses ``HELDOUT_SPLITS[s % 5]``. The five MNIST open-set splits of Neal et
#: al. (2018), as listed by Vaze et al. (2022), sorted.
HELDOUT_SPLITS = ((2, 3, 4, 5, 8, 9), (0, 2, 3, 4, 6, 9), (2, 3, 4, 5, 6, 8),
                  (0, 3, 4, 5, 7, 8), (2, 3, 4, 6, 8, 9))

FASHION_MNIST_MISSING = ("Fashion-MNIST not installed: apt-get install dataset-fashion-mnist, "
                         "or pass --data-home (data_home=) or set SKOOD_DATA to a folder with "
                         "its four IDX files")


def _digits_id(data_home):
    """scikit-learn's 8x8 digits, split 70/30 (stratified, ``random_state=0``)."""
    X, y = load_digits(return_X_y=True)
    X = (X / 16.0).astype(np.float32).reshape(-1, 1, 8, 8)
    return train_test_split(X, y, test_size=0.3, stratify=y, random_state=0)


def _fashion_id(data_home):
    """Fashion-MNIST's own train/test split, scaled to ``[0, 1]``."""
    fashion = _datasets.load_fashion_mnist(data_home)
    X_train = fashion.X_train.reshape(-1, 1, 28, 28).astype(np.float32) / 255.0
    X_test = fashion.X_test.reshape(-1, 1, 28, 28).astype(np.float32) / 255.0
    return X_train, X_test, fashion.y_train.astype(np.int64), fashion.y_test.astype(np.int64)


def _fashion_far(image_shape, n_ood, rng, data_home):
    """Fashion-MNIST's test images, downscaled: the digits' far set (None: not installed)."""
    try:
        fashion = _datasets.load_fashion_mnist(data_home)
    except FileNotFoundError:
        return None
    pick = rng.choice(len(fashion.X_test), size=min(n_ood, len(fashion.X_test)), replace=False)
    return resize_images(fashion.X_test[pick], image_shape) / 255.0


def _digits_far(image_shape, n_ood, rng, data_home):
    """scikit-learn's digits, upscaled: Fashion-MNIST's far set."""
    digits = load_digits().images / 16.0
    pick = rng.choice(len(digits), size=min(n_ood, len(digits)), replace=False)
    return np.clip(resize_images(digits[pick], image_shape), 0.0, 1.0)


@dataclass(frozen=True)
class DatasetSpec:
    """What the benchmark needs to know about one in-distribution dataset.

    Attributes
    ----------
    image_shape : tuple of int
        ``(height, width)`` of its images (one channel).
    n_classes : int
        Classes of the full dataset.
    n_heldout : int
        Classes held out (the near OOD set) under the ``heldout`` protocol.
    load_id : callable
        ``load_id(data_home) -> (X_train, X_test, y_train, y_test)``, images
        shaped ``(n, 1, height, width)`` in ``[0, 1]``.
    far_name : str
        Name of the other dataset's far OOD set.
    load_far : callable
        ``load_far(image_shape, n_ood, rng, data_home)``: that set's images, or
        None when it is not installed (``far_missing`` says why).
    far_missing : str or None
        Why the far set is missing when ``load_far`` returns None.
    defaults : mapping
        The dataset's default settings (see :data:`DEFAULTS`).
    """

    image_shape: tuple
    n_classes: int
    n_heldout: int
    load_id: object
    far_name: str
    load_far: object
    far_missing: object = None
    defaults: object = field(default_factory=dict)


#: Dataset name -> :class:`DatasetSpec`. Defaults are sized for 2 CPU cores
#: (digits: under 3 minutes for the default run; fashion-mnist with the small
#: CNN: under 30 minutes per seed). ``n_threads``: torch's CPU threads during
#: the run (None: torch's default); the digits MLP is too small for intra-op
#: parallelism to pay: with 2 threads on 2 busy cores a step took 5 to 35
#: times longer than with one. ``finetune_epochs`` and ``finetune_lr``: epochs
#: and learning rate of the outlier methods when they fine-tune the CE network.
DATASETS = MappingProxyType({
    "digits": DatasetSpec(
        image_shape=(8, 8), n_classes=10, n_heldout=4, load_id=_digits_id,
        far_name="fashion-mnist", load_far=_fashion_far, far_missing=FASHION_MNIST_MISSING,
        defaults=MappingProxyType(dict(
            model="mlp", epochs=12, n_train=None, n_test=None, n_aux=5000, n_ood=1000,
            batch_size=64, lr=0.05, m_in=-12.0, m_out=-4.0, n_threads=1,
            finetune_epochs=5, finetune_lr=0.01))),
    "fashion-mnist": DatasetSpec(
        image_shape=(28, 28), n_classes=10, n_heldout=4, load_id=_fashion_id,
        far_name="digits", load_far=_digits_far,
        defaults=MappingProxyType(dict(
            model="cnn", epochs=5, n_train=10000, n_test=None, n_aux=20000, n_ood=1000,
            batch_size=64, lr=0.05, m_in=-12.0, m_out=-4.0, n_threads=None,
            finetune_epochs=2, finetune_lr=0.01))),
})
#: Per-dataset default settings: a read-only view of each spec's ``defaults``.
DEFAULTS = MappingProxyType({name: spec.defaults for name, spec in DATASETS.items()})


def dataset_spec(dataset):
    """The :class:`DatasetSpec` of ``dataset``, or a ValueError naming the choices."""
    try:
        return DATASETS[dataset]
    except (KeyError, TypeError):
        raise ValueError(f"dataset must be one of {sorted(DATASETS)}, got {dataset!r}.") from None


def check_protocol(protocol):
    if protocol not in PROTOCOLS:
        raise ValueError(f"protocol must be one of {list(PROTOCOLS)}, got {protocol!r}.")


def _subsample(X, y, n, rng):
    if n is None or n >= len(X):
        return X, y
    index = rng.choice(len(X), size=n, replace=False)
    return X[index], y[index]


def class_split(protocol, split, n_classes=10):
    """(known classes, held-out classes) as sorted tuples of original labels."""
    if protocol == "full":
        return tuple(range(n_classes)), ()
    known = HELDOUT_SPLITS[split % len(HELDOUT_SPLITS)]
    return known, tuple(c for c in range(n_classes) if c not in known)


def _keep_classes(X, y, known):
    """The rows of the known classes, labels relabelled to their rank in ``known``."""
    mask = np.isin(y, known)
    return X[mask], np.searchsorted(np.asarray(known), y[mask]).astype(np.int64)


def load_far(dataset, *, n_aux, n_ood, data_home, seed):
    """Far OOD sets, the reasons for any skipped, and the auxiliary outliers: all
    independent of the class split."""
    spec = dataset_spec(dataset)
    # One seed per part, drawn up front: the outliers (training data) and each
    # OOD set are the same whether or not another set could be loaded.
    other_seed, texture_seed, gaussian_seed, uniform_seed, aux_seed = (
        check_random_state(seed).randint(2**31, size=5))
    ood, skipped = {}, {}
    images = spec.load_far(spec.image_shape, n_ood, check_random_state(other_seed), data_home)
    if images is None:
        skipped[spec.far_name] = spec.far_missing
    else:
        ood[spec.far_name] = images
    ood["textures"] = make_texture_images(n_ood, spec.image_shape, random_state=texture_seed)
    ood["gaussian-noise"] = make_noise_images(n_ood, spec.image_shape, kind="gaussian",
                                              random_state=gaussian_seed)
    ood["uniform-noise"] = make_noise_images(n_ood, spec.image_shape, kind="uniform",
                                             random_state=uniform_seed)
    X_aux = make_natural_image_outliers(n_aux, spec.image_shape, random_state=aux_seed)
    return ood, skipped, X_aux


def load_id(dataset, *, protocol, split, n_train, n_test, n_ood, data_home, seed):
    """ID train/test data of the known classes and, for ``heldout``, the near OOD set."""
    spec = dataset_spec(dataset)
    rng = check_random_state(seed)
    known, heldout = class_split(protocol, split, spec.n_classes)
    X_train, X_test, y_train, y_test = spec.load_id(data_home)
    near = {}
    if heldout:
        X_near = X_test[np.isin(y_test, heldout)]
        X_near, _ = _subsample(X_near, np.zeros(len(X_near)), n_ood, rng)
        near[f"{dataset}-heldout"] = X_near
    X_train, y_train = _keep_classes(X_train, y_train, known)
    X_test, y_test = _keep_classes(X_test, y_test, known)
    X_train, y_train = _subsample(X_train, y_train, n_train, rng)
    X_test, y_test = _subsample(X_test, y_test, n_test, rng)
    return Bunch(X_train=X_train, y_train=y_train, X_test=X_test, y_test=y_test, near=near,
                 known_classes=known, heldout_classes=heldout)


def assemble(dataset, protocol, split, part, far):
    """One run's data: the ID part of a split joined with the far sets and outliers."""
    ood_far, skipped, X_aux = far
    ood = {**part.near, **ood_far}
    groups = {name: ("near" if name in part.near else "far") for name in ood}
    return Bunch(X_train=part.X_train, y_train=part.y_train, X_test=part.X_test,
                 y_test=part.y_test, X_aux=X_aux, ood=ood, groups=groups,
                 skipped=dict(skipped), protocol=protocol, split=split,
                 known_classes=part.known_classes, heldout_classes=part.heldout_classes,
                 image_shape=DATASETS[dataset].image_shape, n_classes=len(part.known_classes))


def part_seeds(random_state):
    """Independent seeds for the far sets and the ID part, so that the far sets
    and the outliers do not depend on the class split."""
    far_seed, id_seed = check_random_state(random_state).randint(2**31, size=2)
    return int(far_seed), int(id_seed)


def load_benchmark_data(dataset="digits", *, protocol="heldout", split=0, n_train=None,
                        n_test=None, n_aux=5000, n_ood=1000, data_home=None, random_state=0):
    """In-distribution train/test data, auxiliary outliers and named OOD test sets.

    Images are float32 in ``[0, 1]``, shaped ``(n, 1, height, width)``.

    - ``digits``: scikit-learn's 8x8 digits (70/30 stratified split). Far OOD:
      Fashion-MNIST downscaled to 8x8 (when installed; else listed in
      ``skipped``), textures, Gaussian and uniform noise.
    - ``fashion-mnist``: the real Fashion-MNIST (28x28, its own train/test
      split). Far OOD: scikit-learn's handwritten digits upscaled to 28x28,
      textures, Gaussian and uniform noise.

    With ``protocol="heldout"`` only the 6 classes ``HELDOUT_SPLITS[split % 5]``
    are in-distribution (labels relabelled to ``0..5`` in their order), and the
    test images of the other 4 (at most ``n_ood``) form the near OOD set
    ``"<dataset>-heldout"``; the train images of those 4 are not used at all.
    ``n_train`` and ``n_test`` subsample the known classes' images. The far
    sets and the outliers depend on ``random_state`` only: not on ``split``,
    nor on whether Fashion-MNIST could be loaded.

    Parameters
    ----------
    dataset : {"digits", "fashion-mnist"}, default="digits"
    protocol : {"heldout", "full"}, default="heldout"
    split : int, default=0
        Index into :data:`HELDOUT_SPLITS` (taken modulo 5); ``protocol="heldout"`` only.
    n_train, n_test : int or None
        Subsample the in-distribution train and test images (None: all).
    n_aux : int, default=5000
        Auxiliary outliers (crops of photographs, :func:`skood.datasets.make_natural_image_outliers`).
    n_ood : int, default=1000
        Images per OOD test set (at most).
    data_home : str or None
        Folder with Fashion-MNIST's files (see :func:`skood.datasets.load_fashion_mnist`).
    random_state : int, default=0
        Seeds the subsampling, the outliers and the far OOD sets.

    Returns
    -------
    Bunch with ``X_train, y_train, X_test, y_test, X_aux``, ``ood`` (dict name ->
    images, near sets first), ``groups`` (dict name -> ``"near"`` or ``"far"``),
    ``skipped`` (dict name -> why an OOD set is missing), ``protocol``, ``split``,
    ``known_classes`` and ``heldout_classes`` (original labels; ``y == i`` is
    class ``known_classes[i]``), ``image_shape`` and ``n_classes``.

    Examples
    --------
    >>> data = load_benchmark_data("digits", n_train=100, n_aux=10, n_ood=5)
    >>> data.X_train.shape, data.X_aux.shape, data.ood["textures"].shape
    ((100, 1, 8, 8), (10, 1, 8, 8), (5, 1, 8, 8))
    >>> data.known_classes, data.heldout_classes, data.groups["digits-heldout"]
    ((2, 3, 4, 5, 8, 9), (0, 1, 6, 7), 'near')
    """
    check_protocol(protocol)
    dataset_spec(dataset)
    far_seed, id_seed = part_seeds(random_state)
    far = load_far(dataset, n_aux=n_aux, n_ood=n_ood, data_home=data_home, seed=far_seed)
    part = load_id(dataset, protocol=protocol, split=split, n_train=n_train, n_test=n_test,
                   n_ood=n_ood, data_home=data_home, seed=id_seed)
    return assemble(dataset, protocol, split, part, far)
