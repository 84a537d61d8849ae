"""Post-hoc OOD detectors: scores computed from a trained network's features and logits.

Each detector is fitted on the features and logits of the rows the network was trained on,
then scores new rows, **higher = more in-distribution** (the protocol is described on
:class:`BaseDetector`). :func:`extract_features` computes the features (by default the
input of the network's last :class:`torch.nn.Linear`) and the logits in batches.

- from the logits: :class:`Energy` (skood's default score), :class:`MSP`,
  :class:`MaxLogit`;
- from the features: :class:`Mahalanobis`, :class:`KNN`;
- from the features and the last layer: :class:`ViM`, :class:`ReAct`;
- several at once: :class:`Fused`, conformal p-values combined by :func:`combine_pvalues`.

:data:`DETECTORS` maps names to classes and :func:`make_detector` turns a name or an object
into a detector.
"""
from ._base import BaseDetector
from ._energy import Energy
from ._features import capture_features, extract_features, last_linear
from ._fused import Fused, combine_pvalues
from ._knn import KNN
from ._mahalanobis import Mahalanobis
from ._maxlogit import MaxLogit
from ._msp import MSP
from ._react import ReAct
from ._registry import DETECTORS, make_detector
from ._vim import ViM

# Re-bound with its ``#:`` comment so that its API page, made from this module's source,
# shows the comment instead of dict's docstring.

#: name -> detector class (lower case), each built with its defaults by :func:`make_detector`:
#: ``"energy"``, ``"msp"``, ``"maxlogit"``, ``"mahalanobis"``, ``"knn"``, ``"vim"``,
#: ``"react"``, and ``"fused"`` (energy, ViM and KNN through their conformal p-values)
DETECTORS = DETECTORS

__all__ = ["BaseDetector", "DETECTORS", "Energy", "Fused", "KNN", "MSP", "Mahalanobis",
           "MaxLogit", "ReAct", "ViM", "capture_features", "combine_pvalues",
           "extract_features", "last_linear", "make_detector"]
