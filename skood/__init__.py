"""skood: out-of-distribution detection with gradient-regularized training (GReg).

A scikit-learn-style estimator built on skorch; see
:class:`skood.GradRegOODClassifier` and :mod:`skood.metrics`.
"""
from . import metrics
from ._classifier import GradRegOODClassifier
from ._detector import GradRegOODDetector
from .energy_sampler import EnergySampler
from .exceptions import ChanceLevelWarning, NonFiniteLossError
from .metrics import make_ood_scorer

__version__ = "0.1.0"

__all__ = ["ChanceLevelWarning", "EnergySampler", "GradRegOODClassifier", "GradRegOODDetector",
           "NonFiniteLossError", "make_ood_scorer", "metrics", "__version__"]
