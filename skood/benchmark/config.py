"""The benchmark's configuration: every setting of a run, checked before any work."""
import numbers
import os
from dataclasses import dataclass, field

import numpy as np

from .._objective import PENALTIES
from ..energy_sampler import EnergySampler
from .checks import (BenchmarkConfigError, _as_tuple, _check_device, _finite, _is_int, _is_real,
                     _positive_int, _writable_folder)
from .dataset_specs import DATASETS, check_protocol, dataset_spec
from ..detectors import DETECTORS
from .methods import DEFAULT_DETECTORS, METHODS, MODELS, START_METHOD
from .outlier_sources import PHOTOS, make_synthesizer
from .splits import class_splits
from .store import resume_conflict

__all__ = ["BenchmarkConfig", "BenchmarkConfigError", "DEFAULT_SEEDS"]

#: seeds of ``skood benchmark`` without ``--seeds``: each class split runs once, with seed 0
DEFAULT_SEEDS = (0,)
#: GReg+'s candidates per ID sample unless told: :class:`skood.EnergySampler`'s default
DEFAULT_POOL_FACTOR = EnergySampler().pool_factor
#: settings of a dataset's defaults that are ``run_benchmark`` keywords of their
#: own rather than ``**overrides``
_OWN_KEYWORDS = ("model", "epochs", "splits", "finetune_epochs", "finetune_lr")


#: The least training rows per known class ``n_train`` may ask for: the rows are a
#: uniform random subsample (not stratified, so that existing runs keep their
#: data), which for classes of equal size misses one with probability
#: n_known * (1 - 1 / n_known) ** (10 * n_known) < 1e-3 (6 or 10 known classes;
#: about 2e-3 and 4e-3 for CIFAR-100's 50 and 100), and skorch's stratified 5-fold
#: validation split needs 5 rows of a class (at this minimum some class may have fewer,
#: and skorch then warns): a floor against mistakes, not a recommended size.
MIN_TRAIN_PER_CLASS = 10


@dataclass(frozen=True)
class BenchmarkConfig:
    """Everything one benchmark run is made of, checked when it is built.

    Fields left None take the dataset's default (:data:`DEFAULTS`). Building
    it raises :class:`BenchmarkConfigError` (a ValueError that names the
    setting in ``parameter``), or a TypeError for ``finetune``, for any bad
    value, before any data is loaded or model trained; the command line turns
    those errors into usage errors. It creates the output folders (``out``,
    ``save_models``) to check that they can be written, after every other
    check passed. The parameters are those of :func:`run_benchmark` (its
    ``**overrides`` as parameters of their own, ``log`` aside), and ``out``.
    After checking, each parameter is kept as the attribute of the same name,
    holding the value the run uses (defaults filled in, sequences as tuples).

    Parameters
    ----------
    dataset : {"digits", "fashion-mnist", "cifar10", "cifar100"}, default="digits"
        The in-distribution dataset (a key of :data:`DATASETS`).
    protocol : {"heldout", "full"}, default="heldout"
        See :func:`run_benchmark`.
    splits : int, "neal" or None, default=None
        The number of class splits to draw, or ``"neal"`` (the splits of
        :data:`HELDOUT_SPLITS`); None: the dataset's default. Under
        ``protocol="full"``: None or 1 (one split, all classes known).
    split_seed : int, default=0
        Seeds the draw of the class splits.
    model : {"mlp", "cnn", "resnet18"} or None, default=None
        The network; None: the dataset's default.
    epochs : int or None, default=None
        Training epochs; None: the dataset's default.
    device : str or torch.device, default="cpu"
        Where to train; checked by making a tensor there.
    seeds : sequence of int, default=(0,)
        Distinct seeds >= 0; every class split runs once per seed.
    methods : sequence of str, default=METHODS
        Training methods to run, a non-empty subset of :data:`METHODS`.
    detectors : sequence of str, default=("energy", "vim", "knn", "fused")
        The detectors every trained network is scored by: distinct names of
        :data:`skood.detectors.DETECTORS` (any case; kept lower-case), at
        least one. With two or more, each run also chooses one for
        cross-entropy on held-out classes of its training rows
        (``ce_chosen``, :mod:`skood.benchmark.detector_choice`).
    save_models : str or None, default=None
        Folder to save every fitted model in, created if missing.
    out : str or None, default=None
        The results' folder, created if missing (None: results in memory
        only; the command line's ``--out``): :func:`~skood.benchmark.runner.run`
        appends each (split, seed, method) to its ``results.csv`` as it ends
        and keeps the settings in its ``config.json``
        (:mod:`skood.benchmark.store`).
    resume : bool, default=False
        Continue the run whose results are in ``out``: the runs that finished
        there are kept and skipped, the failed or missing ones run. Refused
        (before any work) when ``out``'s ``config.json`` holds other settings
        than these; with no ``results.csv`` in ``out``, the run starts afresh.
        False: a run starts ``out``'s ``results.csv`` afresh.
    progress : bool, default=True
        Progress bars (see :func:`run_benchmark`).
    data_home : str, os.PathLike or None, default=None
        An existing folder with the dataset's files (Fashion-MNIST's IDX
        files; CIFAR's python-version folder or archive and its far sets);
        ``~`` is expanded, as :mod:`skood.datasets`' loaders do.
    penalty : {"exact", "fd"}, default="exact"
        The gradient penalty's computation.
    penalty_fraction : float in (0, 1], default=1.0
        The estimator's ``penalty_fraction`` for GReg and GReg+.
    pool_factor : int, default: :class:`skood.EnergySampler`'s
        GReg+'s candidates per ID sample.
    finetune : bool, default=False
        Whether the outlier methods fine-tune the CE network.
    finetune_epochs : int or None, default=None
        Fine-tuning epochs; None: the dataset's default under
        ``finetune=True``. Only with ``finetune=True``.
    finetune_lr : float or None, default=None
        Fine-tuning learning rate; None: the dataset's default under
        ``finetune=True``. Only with ``finetune=True``.
    aux : str, default="photos"
        The outlier methods' auxiliary outliers (see :func:`run_benchmark`).
    n_train, n_test : int or None, default=None
        ID training and test rows to keep (None as a dataset default: all).
    n_aux, n_ood : int or None, default=None
        Auxiliary outliers per run, and images per OOD set (at most).
    batch_size : int or None, default=None
        The estimator's batch size.
    lr : float or None, default=None
        The estimator's learning rate.
    m_in, m_out : float or None, default=None
        The energy margins, ``m_in < m_out``.
    n_threads : int or None, default=None
        Torch's CPU threads during the run, and those of numpy's BLAS and
        OpenMP pools (None as a dataset default: their own).

    Attributes
    ----------
    known_splits : tuple of tuple of int
        The known classes of each class split, in run order (split ``i`` is
        ``known_splits[i]``).

    Examples
    --------
    >>> from skood.benchmark import BenchmarkConfig
    >>> config = BenchmarkConfig(dataset="digits", splits=2)
    >>> config.known_splits
    ((2, 4, 5, 6, 7, 8), (1, 2, 3, 4, 5, 9))
    >>> config.model, config.epochs, config.seeds
    ('mlp', 12, (0,))
    """

    dataset: str = "digits"
    protocol: str = "heldout"
    splits: object = None
    split_seed: int = 0
    model: object = None
    epochs: object = None
    device: str = "cpu"
    seeds: tuple = DEFAULT_SEEDS
    methods: tuple = METHODS
    detectors: tuple = DEFAULT_DETECTORS
    save_models: object = None
    out: object = None
    resume: bool = False
    progress: bool = True
    data_home: object = None
    penalty: str = "exact"
    penalty_fraction: float = 1.0
    pool_factor: int = DEFAULT_POOL_FACTOR
    finetune: bool = False
    finetune_epochs: object = None
    finetune_lr: object = None
    aux: str = PHOTOS
    n_train: object = None
    n_test: object = None
    n_aux: object = None
    n_ood: object = None
    batch_size: object = None
    lr: object = None
    m_in: object = None
    m_out: object = None
    n_threads: object = None
    known_splits: tuple = field(init=False, repr=False, compare=False)

    def _set(self, **values):
        for name, value in values.items():
            object.__setattr__(self, name, value)  # frozen: set once, while checking

    def __post_init__(self):
        try:
            spec = dataset_spec(self.dataset)
        except ValueError as error:
            raise BenchmarkConfigError("dataset", str(error)) from None
        defaults = spec.defaults
        if not _is_real(self.penalty_fraction) or not 0 < self.penalty_fraction <= 1:
            raise BenchmarkConfigError("penalty_fraction", "penalty_fraction must be a number "
                                       f"in (0, 1], got {self.penalty_fraction!r}.")
        self._set(pool_factor=_positive_int("pool_factor", self.pool_factor))
        try:
            check_protocol(self.protocol)
        except ValueError as error:
            raise BenchmarkConfigError("protocol", str(error)) from None
        self._check_splits(spec)
        methods = _as_tuple("methods", self.methods, str)
        unknown = sorted(set(methods) - set(METHODS))
        if unknown or not methods or len(set(methods)) != len(methods):
            raise BenchmarkConfigError("methods", "methods must be a non-empty subset of "
                                       f"{list(METHODS)}, each once, got {list(methods)!r}.")
        self._check_detectors()
        seeds = _as_tuple("seeds", self.seeds, numbers.Integral)
        if (not seeds or len(set(seeds)) != len(seeds)
                or not all(_is_int(s) and s >= 0 for s in seeds)):
            raise BenchmarkConfigError("seeds", "seeds must be distinct integers >= 0, at "
                                       f"least one, got {list(seeds)!r}.")
        if self.model is not None and self.model not in MODELS:
            raise BenchmarkConfigError("model", f"model must be one of {list(MODELS)}, got "
                                                f"{self.model!r}.")
        if self.penalty not in PENALTIES:
            raise BenchmarkConfigError("penalty", f"penalty must be one of {sorted(PENALTIES)}, "
                                                  f"got {self.penalty!r}.")
        if not isinstance(self.progress, (bool, np.bool_)):
            raise BenchmarkConfigError("progress", "progress must be True or False, got "
                                                   f"{self.progress!r}.")
        self._check_finetune(spec)
        try:
            synthesizer = make_synthesizer(self.aux)
        except ValueError as error:
            raise BenchmarkConfigError("aux", str(error)) from None
        if synthesizer is not None and spec.recipe.augments:
            # the estimator refuses a synthesizer with a Dataset X
            raise BenchmarkConfigError(
                "aux", f"aux={self.aux!r}: a synthesizer makes outliers from the training rows "
                       f"as one array, but {self.dataset} trains on them through an augmenting "
                       "Dataset; use aux='photos' there.")
        filled = {name: (defaults[name] if getattr(self, name) is None else getattr(self, name))
                  for name in ("model", "epochs", "n_train", "n_test", "n_aux", "n_ood",
                               "batch_size", "lr", "m_in", "m_out", "n_threads")}
        self._set(methods=methods, seeds=tuple(int(s) for s in seeds), **filled)
        self._set(epochs=_positive_int("epochs", self.epochs),
                  n_train=_positive_int("n_train", self.n_train, none=True),
                  n_test=_positive_int("n_test", self.n_test, none=True),
                  n_aux=_positive_int("n_aux", self.n_aux),
                  n_ood=_positive_int("n_ood", self.n_ood),
                  batch_size=_positive_int("batch_size", self.batch_size),
                  n_threads=_positive_int("n_threads", self.n_threads, none=True),
                  lr=_finite("lr", self.lr, positive=True),
                  m_in=_finite("m_in", self.m_in), m_out=_finite("m_out", self.m_out))
        n_known = spec.n_classes - (spec.n_heldout if self.protocol == "heldout" else 0)
        least = MIN_TRAIN_PER_CLASS * n_known
        if self.n_train is not None and self.n_train < least:
            raise BenchmarkConfigError("n_train", f"n_train must be at least {least} "
                                       f"({MIN_TRAIN_PER_CLASS} rows per known class, "
                                       f"{n_known} known classes with protocol="
                                       f"{self.protocol!r}), so that the random subsample keeps "
                                       "every known class and skorch's 5-fold validation split "
                                       f"can be made, got {self.n_train!r}.")
        if not self.m_in < self.m_out:
            raise BenchmarkConfigError("m_in", f"m_in must be below m_out (the ID margin below "
                                               f"the outliers'), got m_in={self.m_in!r}, "
                                               f"m_out={self.m_out!r}.")
        _check_device(self.device)
        self._check_data_home()
        self._check_resume()
        for name in ("out", "save_models"):
            if getattr(self, name) is not None:
                _writable_folder(name, getattr(self, name))

    def _check_detectors(self):
        detectors = _as_tuple("detectors", self.detectors, str)
        names = tuple(d.lower() if isinstance(d, str) else d for d in detectors)
        if (not names or len(set(names)) != len(names)
                or not all(isinstance(d, str) and d in DETECTORS for d in names)):
            raise BenchmarkConfigError(
                "detectors", f"detectors must be distinct names of skood.detectors.DETECTORS "
                             f"({', '.join(DETECTORS)}), at least one, got {list(detectors)!r}.")
        self._set(detectors=names)

    def _check_data_home(self):
        if self.data_home is None:
            return
        if not isinstance(self.data_home, (str, os.PathLike)):
            raise BenchmarkConfigError("data_home", "data_home must be a folder's path, got "
                                                    f"{self.data_home!r}.")
        # ~ expanded as skood.datasets' loaders expand it (_data_folders)
        folder = os.path.expanduser(self.data_home)
        if not os.path.isdir(folder):
            expanded = f" ({folder!r})" if folder != os.fspath(self.data_home) else ""
            raise BenchmarkConfigError("data_home", f"data_home {os.fspath(self.data_home)!r}"
                                                    f"{expanded} does not exist or is not a "
                                                    "folder.")
        self._set(data_home=folder)

    def _check_resume(self):
        if not isinstance(self.resume, (bool, np.bool_)):
            raise BenchmarkConfigError("resume", f"resume must be True or False, got "
                                                 f"{self.resume!r}.")
        if self.resume and self.out is None:
            raise BenchmarkConfigError("resume", "resume needs out, the folder of the run to "
                                                 "continue.")
        conflict = resume_conflict(self) if self.resume else None
        if conflict:
            raise BenchmarkConfigError("resume", conflict)

    def _check_splits(self, spec):
        splits, split_seed = self.splits, self.split_seed
        if not _is_int(split_seed) or split_seed < 0:
            raise BenchmarkConfigError("split_seed", "split_seed must be an integer >= 0, got "
                                                     f"{split_seed!r}.")
        if self.protocol == "full":
            if splits not in (None, 1):
                raise BenchmarkConfigError("splits", "splits only apply to the heldout "
                                           f"protocol (protocol='full' has one split: all "
                                           f"classes known), got {splits!r}.")
            splits = 1
        elif splits is None:
            splits = spec.defaults["splits"]
        if not (splits == "neal" if isinstance(splits, str) else _is_int(splits) and splits >= 1):
            raise BenchmarkConfigError("splits", "splits must be a positive integer (class "
                                       f"splits to draw) or 'neal', got {splits!r}.")
        if isinstance(splits, str) and not spec.neal_splits:
            raise BenchmarkConfigError("splits", "splits='neal' (the MNIST open-set splits) "
                                       "applies to digits and fashion-mnist only; give "
                                       f"{self.dataset} a number of class splits to draw.")
        try:
            known = class_splits(self.dataset, self.protocol, splits, split_seed)
        except ValueError as error:
            raise BenchmarkConfigError("splits", str(error).replace("n_splits", "splits")) \
                from None
        self._set(splits=splits if isinstance(splits, str) else int(splits),
                  split_seed=int(split_seed), known_splits=known)

    def _check_finetune(self, spec):
        """Fill in the fine-tuning epochs and learning rate, or say what to change."""
        finetune, epochs, lr = self.finetune, self.finetune_epochs, self.finetune_lr
        if not isinstance(finetune, (bool, np.bool_)):
            raise TypeError(f"finetune must be True or False, got {finetune!r}.")
        if not finetune:
            given = [name for name, value in (("finetune_epochs", epochs),
                                              ("finetune_lr", lr)) if value is not None]
            if given:
                raise BenchmarkConfigError(
                    given[0], f"{' and '.join(given)} only apply to the fine-tuning protocol: "
                              "pass finetune=True (--finetune), or drop them.")
            return
        epochs = spec.defaults["finetune_epochs"] if epochs is None else epochs
        lr = spec.defaults["finetune_lr"] if lr is None else lr
        if not _is_int(epochs) or epochs < 1:
            raise BenchmarkConfigError("finetune_epochs", "finetune_epochs must be a positive "
                                                          f"integer, got {epochs!r}.")
        if not _is_real(lr) or not np.isfinite(lr) or lr <= 0:
            raise BenchmarkConfigError("finetune_lr", "finetune_lr must be a positive finite "
                                                      f"number, got {lr!r}.")
        self._set(finetune_epochs=int(epochs), finetune_lr=float(lr))

    @property
    def spec(self):
        """The dataset's :class:`~skood.benchmark.DatasetSpec`."""
        return DATASETS[self.dataset]

    @property
    def train_methods(self):
        """The methods in training order: under fine-tuning, the start method first
        (trained even when not asked for: it is the others' starting point)."""
        if not self.finetune:
            return self.methods
        return (START_METHOD,) + tuple(m for m in self.methods if m != START_METHOD)
