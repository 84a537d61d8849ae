"""The benchmark's datasets: one spec per in-distribution dataset.

:data:`DATASETS` maps a dataset's name to its :class:`DatasetSpec`: image
shape, number of classes and of held-out classes, how its images are loaded,
which far OOD set it brings, and its default settings (:data:`DEFAULTS` is
the view of those defaults). :data:`PROTOCOLS` names the two protocols.
"""
from dataclasses import dataclass, field
from types import MappingProxyType

import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from .. import datasets as _datasets
from . import far_sets
from .recipe import PAPER_CIFAR_RECIPE, TrainingRecipe

__all__ = ["DatasetSpec", "DATASETS", "DEFAULTS", "PROTOCOLS"]

#: ``"heldout"``: per class split, the known classes train and the held-out ones are the
#: near OOD set (4 of 10 held out; 50 of 100 for CIFAR-100); ``"full"``: every class known.
PROTOCOLS = ("heldout", "full")


def _digits_id(data_home, random_state):
    """scikit-learn's 8x8 digits, split 70/30 (stratified) with ``random_state``."""
    X, y = load_digits(return_X_y=True)
    X = (X / 16.0).astype(np.float32).reshape(-1, 1, 8, 8)
    return train_test_split(X, y, test_size=0.3, stratify=y, random_state=random_state)


def _fashion_id(data_home, random_state):
    """Fashion-MNIST's own train/test split (``random_state`` unused), scaled to ``[0, 1]``."""
    fashion = _datasets.load_fashion_mnist(data_home)
    X_train = fashion.X_train.reshape(-1, 1, 28, 28).astype(np.float32) / 255.0
    X_test = fashion.X_test.reshape(-1, 1, 28, 28).astype(np.float32) / 255.0
    return X_train, X_test, fashion.y_train.astype(np.int64), fashion.y_test.astype(np.int64)


def _cifar_id(load):
    def load_id(data_home, random_state):
        """CIFAR's own train/test split (``random_state`` unused), scaled to ``[0, 1]``."""
        cifar = load(data_home)
        X_train, X_test = cifar.X_train.astype(np.float32), cifar.X_test.astype(np.float32)
        X_train /= 255.0   # in place: CIFAR's training images are 614 MB as float32
        X_test /= 255.0
        return X_train, X_test, cifar.y_train, cifar.y_test
    return load_id


#: CIFAR's far sets read from files: SVHN's test digits, then the image folders of
#: :data:`skood.benchmark.far_sets.IMAGE_FOLDER_SETS` (the GReg paper's far sets).
_CIFAR_FAR_SETS = MappingProxyType({
    "svhn": far_sets.svhn_far,
    **{name: far_sets.image_folder_far(name) for name in far_sets.IMAGE_FOLDER_SETS}})
#: The GReg paper's CIFAR settings (its public code): ResNet-18, 60 epochs, batch 64,
#: learning rate 0.1, margins -25 and -7; 5 class splits (a GPU run of every method on
#: one split takes hours). The paper trains CIFAR from scratch only: the fine-tuning
#: settings (10 epochs at 0.01, with --finetune) are this benchmark's choice, not the paper's.
_CIFAR_DEFAULTS = MappingProxyType(dict(
    model="resnet18", epochs=60, splits=5, n_train=None, n_test=None, n_aux=50000, n_ood=1000,
    batch_size=64, lr=0.1, m_in=-25.0, m_out=-7.0, n_threads=None,
    finetune_epochs=10, finetune_lr=0.01))


@dataclass(frozen=True)
class DatasetSpec:
    """What the benchmark needs to know about one in-distribution dataset.

    The benchmark's specs are the values of :data:`DATASETS`; each parameter
    is kept as the attribute of the same name.

    Parameters
    ----------
    image_shape : tuple of int
        ``(height, width)`` of its images.
    n_classes : int
        Classes of the full dataset.
    n_heldout : int
        Classes held out (the near OOD set) under the ``heldout`` protocol.
    load_id : callable
        ``load_id(data_home, random_state) -> (X_train, X_test, y_train,
        y_test)``, images shaped ``(n, channels, height, width)`` in ``[0, 1]``;
        ``random_state`` seeds the train/test split where the dataset has none
        of its own.
    far_sets : mapping
        Name -> loader of each far OOD set read from files (see
        :mod:`skood.benchmark.far_sets`): ``load(image_shape, channels, n_ood,
        rng, data_home)`` returns the images, or raises FileNotFoundError whose
        message says where to get them (the set is then skipped). Generated
        textures and noise are added to every dataset's far sets.
    channels : int, default=1
        Channels of its images (1: grey, 3: colour).
    normalize : tuple or None, default=None
        ``(mean, std)``, one value per channel: every image of a run (ID,
        outliers, OOD sets) is standardised with them after loading, as the
        network's input. None: images stay in ``[0, 1]``.
    neal_splits : bool, default=False
        Whether ``splits="neal"`` (the MNIST open-set splits) applies.
    recipe : TrainingRecipe, default=TrainingRecipe()
        Augmentation, optimizer and schedule (:mod:`skood.benchmark.recipe`).
    defaults : mapping, default={}
        The dataset's default settings (see :data:`DEFAULTS`), ``splits`` (the
        number of class splits a run draws) among them.

    Examples
    --------
    >>> from skood.benchmark import DATASETS
    >>> spec = DATASETS["digits"]
    >>> spec.image_shape, spec.n_classes, spec.n_heldout
    ((8, 8), 10, 4)
    >>> list(spec.far_sets), spec.defaults["splits"]
    (['fashion-mnist'], 20)
    """

    image_shape: tuple
    n_classes: int
    n_heldout: int
    load_id: object
    far_sets: object
    channels: int = 1
    normalize: object = None
    neal_splits: bool = False
    recipe: TrainingRecipe = TrainingRecipe()
    defaults: object = field(default_factory=dict)

    @property
    def black_level(self):
        """What a black pixel is as the network's input: 0.0, or per channel
        ``-mean / std`` with ``normalize`` (the random crops' padding)."""
        if self.normalize is None:
            return 0.0
        mean, std = self.normalize
        return tuple(-m / s for m, s in zip(mean, std))


#: Dataset name -> :class:`DatasetSpec`. Defaults are sized for 2 CPU cores
#: (digits: under 3 minutes for the default run; fashion-mnist with the small
#: CNN: under 30 minutes per class split and seed), except CIFAR's, which are
#: the GReg paper's setting for a GPU (ResNet-18, 60 epochs, ``--device cuda``).
#: ``n_threads``: torch's CPU threads during
#: the run (None: torch's default); the digits MLP is too small for intra-op
#: parallelism to pay: with 2 threads on 2 busy cores a step took 5 to 35
#: times longer than with one. ``finetune_epochs`` and ``finetune_lr``: epochs
#: and learning rate of the outlier methods when they fine-tune the CE network.
DATASETS = MappingProxyType({
    "digits": DatasetSpec(
        image_shape=(8, 8), n_classes=10, n_heldout=4, load_id=_digits_id,
        far_sets=MappingProxyType({"fashion-mnist": far_sets.fashion_mnist_far}),
        neal_splits=True,
        defaults=MappingProxyType(dict(
            model="mlp", epochs=12, splits=20, n_train=None, n_test=None, n_aux=5000, n_ood=1000,
            batch_size=64, lr=0.05, m_in=-12.0, m_out=-4.0, n_threads=1,
            finetune_epochs=5, finetune_lr=0.01))),
    "fashion-mnist": DatasetSpec(
        image_shape=(28, 28), n_classes=10, n_heldout=4, load_id=_fashion_id,
        far_sets=MappingProxyType({"digits": far_sets.digits_far}), neal_splits=True,
        defaults=MappingProxyType(dict(
            model="cnn", epochs=5, splits=10, n_train=10000, n_test=None, n_aux=20000, n_ood=1000,
            batch_size=64, lr=0.05, m_in=-12.0, m_out=-4.0, n_threads=None,
            finetune_epochs=2, finetune_lr=0.01))),
    "cifar10": DatasetSpec(
        image_shape=(32, 32), n_classes=10, n_heldout=4,
        load_id=_cifar_id(_datasets.load_cifar10), far_sets=_CIFAR_FAR_SETS, channels=3,
        normalize=((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
        recipe=PAPER_CIFAR_RECIPE, defaults=_CIFAR_DEFAULTS),
    "cifar100": DatasetSpec(
        image_shape=(32, 32), n_classes=100, n_heldout=50,
        load_id=_cifar_id(_datasets.load_cifar100), far_sets=_CIFAR_FAR_SETS, channels=3,
        normalize=((0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762)),
        recipe=PAPER_CIFAR_RECIPE, defaults=_CIFAR_DEFAULTS),
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
