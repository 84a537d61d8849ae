"""skood: out-of-distribution detection with gradient-regularized training (GReg).

A scikit-learn-style estimator built on skorch; see
:class:`skood.GradRegOODClassifier` and :mod:`skood.metrics`.
"""
from importlib import metadata as _metadata

from . import metrics
from ._classifier import GradRegOODClassifier
from ._detector import GradRegOODDetector
from .energy_sampler import EnergySampler
from .exceptions import ChanceLevelWarning, NonFiniteLossError
from .metrics import make_ood_scorer

try:
    __version__ = _metadata.version("skood")   # pyproject.toml's, as installed: one source
except _metadata.PackageNotFoundError:         # a source tree that was never installed
    __version__ = "0+unknown"

__all__ = ["ChanceLevelWarning", "EnergySampler", "GradRegOODClassifier", "GradRegOODDetector",
           "NonFiniteLossError", "make_ood_scorer", "metrics", "__version__"]
