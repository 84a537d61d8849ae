"""The benchmark's runs: one validated configuration, then train and score."""
import numbers
import os
import time
from dataclasses import dataclass, fields

import joblib
import numpy as np
import pandas as pd
import torch

from .._classifier import GradRegOODClassifier
from ..metrics import ood_report
from .data import (DATASETS, HELDOUT_SPLITS, assemble, check_protocol, dataset_spec, load_far,
                   load_id, part_seeds)
from .methods import METHOD_SPECS, METHODS, SCORERS, START_METHOD, module_params

__all__ = ["BenchmarkConfig", "run_benchmark", "DEFAULT_SEEDS"]

#: seeds of ``skood benchmark`` without ``--seeds``: each held-out split once
DEFAULT_SEEDS = (0, 1, 2, 3, 4)
#: settings of a dataset's defaults that are ``run_benchmark`` keywords of their
#: own rather than ``**overrides``
_OWN_KEYWORDS = ("model", "epochs", "finetune_epochs", "finetune_lr")


def _is_int(value):
    return isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))


def _is_real(value):
    return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))


@dataclass(frozen=True)
class BenchmarkConfig:
    """Everything one benchmark run is made of, checked when it is built.

    Fields left None take the dataset's default (:data:`DEFAULTS`). Building
    it raises ValueError or TypeError, naming the setting, for any bad value,
    before any data is loaded or model trained; the command line turns those
    errors into usage errors. The parameters are those of
    :func:`run_benchmark`.
    """

    dataset: str = "digits"
    protocol: str = "heldout"
    model: object = None
    epochs: object = None
    device: str = "cpu"
    seeds: tuple = DEFAULT_SEEDS
    methods: tuple = METHODS
    save_models: object = None
    progress: bool = True
    data_home: object = None
    penalty: str = "exact"
    penalty_fraction: float = 1.0
    pool_factor: int = 6
    finetune: bool = False
    finetune_epochs: object = None
    finetune_lr: object = None
    n_train: object = None
    n_test: object = None
    n_aux: object = None
    n_ood: object = None
    batch_size: object = None
    lr: object = None
    m_in: object = None
    m_out: object = None
    n_threads: object = None

    def _set(self, **values):
        for name, value in values.items():
            object.__setattr__(self, name, value)

    def __post_init__(self):
        spec = dataset_spec(self.dataset)
        if not _is_real(self.penalty_fraction) or not 0 < self.penalty_fraction <= 1:
            raise ValueError("penalty_fraction must be a number in (0, 1], got "
                             f"{self.penalty_fraction!r}.")
        if not _is_int(self.pool_factor) or self.pool_factor < 1:
            raise ValueError(f"pool_factor must be a positive integer, got {self.pool_factor!r}.")
        check_protocol(self.protocol)
        methods = tuple(self.methods)
        unknown = sorted(set(methods) - set(METHODS))
        if unknown or not methods:
            raise ValueError(f"methods must be a non-empty subset of {list(METHODS)}, got "
                             f"{list(methods)!r}.")
        seeds = tuple(self.seeds)
        if not seeds or len(set(seeds)) != len(seeds):
            raise ValueError(f"seeds must be distinct and at least one, got {list(seeds)!r}.")
        self._check_finetune(spec)
        defaults = spec.defaults
        filled = {name: defaults[name] for name in defaults
                  if name not in _OWN_KEYWORDS and getattr(self, name) is None}
        self._set(methods=methods, seeds=seeds, pool_factor=int(self.pool_factor),
                  model=self.model or defaults["model"],
                  epochs=self.epochs or defaults["epochs"], **filled)

    def _check_finetune(self, spec):
        """Fill in the fine-tuning epochs and learning rate, or say what to change."""
        finetune, epochs, lr = self.finetune, self.finetune_epochs, self.finetune_lr
        if not isinstance(finetune, (bool, np.bool_)):
            raise TypeError(f"finetune must be True or False, got {finetune!r}.")
        if not finetune:
            given = [name for name, value in (("finetune_epochs", epochs),
                                              ("finetune_lr", lr)) if value is not None]
            if given:
                raise ValueError(f"{' and '.join(given)} only apply to the fine-tuning protocol: "
                                 "pass finetune=True (--finetune), or drop them.")
            return
        epochs = spec.defaults["finetune_epochs"] if epochs is None else epochs
        lr = spec.defaults["finetune_lr"] if lr is None else lr
        if not _is_int(epochs) or epochs < 1:
            raise ValueError(f"finetune_epochs must be a positive integer, got {epochs!r}.")
        if not _is_real(lr) or not np.isfinite(lr) or lr <= 0:
            raise ValueError(f"finetune_lr must be a positive finite number, got {lr!r}.")
        self._set(finetune_epochs=int(epochs), finetune_lr=float(lr))

    @property
    def spec(self):
        """The dataset's :class:`~skood.benchmark.data.DatasetSpec`."""
        return DATASETS[self.dataset]

    @property
    def train_methods(self):
        """The methods in training order: under fine-tuning, the start method first
        (trained even when not asked for: it is the others' starting point)."""
        if not self.finetune:
            return self.methods
        return (START_METHOD,) + tuple(m for m in self.methods if m != START_METHOD)


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
    settable = {f.name for f in fields(BenchmarkConfig)} & set(
        next(iter(DATASETS.values())).defaults) - set(_OWN_KEYWORDS)
    if set(overrides) - settable:
        raise TypeError(f"run_benchmark got unknown settings {sorted(set(overrides) - settable)}; "
                        f"it takes {sorted(settable)} (and model=, epochs=, finetune_epochs=, "
                        "finetune_lr=).")
    config = BenchmarkConfig(
        dataset=dataset, protocol=protocol, model=model, epochs=epochs, device=device,
        seeds=seeds, methods=methods, save_models=save_models, progress=progress,
        data_home=data_home, penalty=penalty, penalty_fraction=penalty_fraction,
        pool_factor=pool_factor, finetune=finetune, finetune_epochs=finetune_epochs,
        finetune_lr=finetune_lr, **overrides)
    return run(config, log=log)


def run(config, log=None):
    """Run the benchmark a :class:`BenchmarkConfig` describes; returns what
    :func:`run_benchmark` returns."""
    if config.finetune and START_METHOD not in config.methods and log is not None:
        log(f"finetune: training {START_METHOD} as well, the starting point of the other "
            "methods.")
    # The far sets and outliers are the same for every seed: made once; the
    # known classes (and the near set) follow the seed's split.
    far_seed, id_seed = part_seeds(0)
    far = load_far(config.dataset, n_aux=config.n_aux, n_ood=config.n_ood,
                   data_home=config.data_home, seed=far_seed)
    for name, why in far[1].items():
        if log is not None:
            log(f"OOD set {name} skipped: {why}.")
    by_seed, parts = {}, {}
    for seed in config.seeds:
        split = seed % len(HELDOUT_SPLITS) if config.protocol == "heldout" else 0
        if split not in parts:
            parts[split] = load_id(config.dataset, protocol=config.protocol, split=split,
                                   n_train=config.n_train, n_test=config.n_test,
                                   n_ood=config.n_ood, data_home=config.data_home, seed=id_seed)
        by_seed[seed] = assemble(config.dataset, config.protocol, split, parts[split], far)
    threads = torch.get_num_threads()
    if config.n_threads:
        torch.set_num_threads(int(config.n_threads))
    try:
        rows, scores = _train_and_score(config, by_seed)
    finally:
        torch.set_num_threads(threads)
    first = by_seed[config.seeds[0]]
    first.by_seed = by_seed
    return pd.DataFrame(rows), scores, first


def _classes_text(classes):
    return " ".join(str(c) for c in classes)


def _estimator(config, method, data, seed, start_from):
    """The estimator of one (seed, method): from scratch, or a copy of ``start_from``."""
    callbacks = []
    if config.progress:
        from skorch.callbacks import ProgressBar
        callbacks.append(ProgressBar(postfix_keys=["train_loss"]))
    spec = METHOD_SPECS[method]
    common = dict(**spec.estimator_params(config.pool_factor, config.batch_size),
                  penalty=config.penalty, penalty_fraction=config.penalty_fraction,
                  m_in=config.m_in, m_out=config.m_out,
                  optimizer__momentum=0.9, optimizer__weight_decay=5e-4,
                  batch_size=config.batch_size, callbacks=callbacks or None,
                  device=config.device, random_state=seed, verbose=0)
    if start_from is not None:
        return GradRegOODClassifier.from_pretrained(
            start_from, max_epochs=config.finetune_epochs, lr=config.finetune_lr, **common)
    return GradRegOODClassifier(**module_params(config.model, data.image_shape, data.n_classes),
                                max_epochs=config.epochs, lr=config.lr, **common)


def _train_and_score(config, by_seed):
    """Train and score every (seed, method); under fine-tuning the outlier
    methods start from the seed's network of the start method (trained first)."""
    rows, scores, start_nets = [], {}, {}
    runs = [(seed, method) for seed in config.seeds for method in config.train_methods]
    bar = _progress(total=len(runs), desc="benchmark", disable=not config.progress)
    for seed, method in runs:
        data = by_seed[seed]
        spec = METHOD_SPECS[method]
        bar.set_postfix_str(f"seed {seed}, {method}")
        tuned = config.finetune and spec.uses_outliers
        clf = _estimator(config, method, data, seed, start_nets[seed] if tuned else None)
        start = time.perf_counter()
        clf.fit(data.X_train, data.y_train, X_aux=data.X_aux)
        train_s = time.perf_counter() - start
        if config.finetune and not spec.uses_outliers:
            start_nets[seed] = clf
        if config.save_models:
            os.makedirs(config.save_models, exist_ok=True)
            joblib.dump(clf, os.path.join(config.save_models,
                                          f"{config.dataset}_{method}_seed{seed}.joblib"))
        accuracy = clf.score(data.X_test, data.y_test)
        run_info = dict(start=START_METHOD if tuned else "scratch",
                        epochs=config.finetune_epochs if tuned else config.epochs,
                        lr=config.finetune_lr if tuned else config.lr)
        for scorer, name in zip(spec.scorers, spec.scored_names(method)):
            score = SCORERS[scorer]
            sets = {"id": score(clf, data.X_test)}
            for ood_name, X_ood in _progress(data.ood.items(), desc=f"scoring {name}",
                                             disable=not config.progress, leave=False):
                sets[ood_name] = score(clf, X_ood)
                y_true = np.r_[np.ones(len(sets["id"])), np.zeros(len(sets[ood_name]))]
                both = np.r_[sets["id"], sets[ood_name]]
                rows.append(dict(seed=seed, method=name, ood_set=ood_name,
                                 group=data.groups[ood_name], protocol=data.protocol,
                                 known_classes=_classes_text(data.known_classes),
                                 heldout_classes=_classes_text(data.heldout_classes),
                                 penalty_fraction=config.penalty_fraction,
                                 pool_factor=config.pool_factor,
                                 **ood_report(y_true, both), accuracy=accuracy,
                                 train_s=train_s, **run_info))
            scores.setdefault(seed, {})[name] = sets
        bar.update(1)
    bar.close()
    return rows, scores


def _progress(iterable=None, **kwargs):
    from tqdm.auto import tqdm
    return tqdm(iterable, **kwargs)
