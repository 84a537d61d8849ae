"""The detectors by name, and the check that turns a name or an object into a detector."""
import inspect

from ._energy import Energy
from ._fused import Fused
from ._knn import KNN
from ._mahalanobis import Mahalanobis
from ._maxlogit import MaxLogit
from ._msp import MSP
from ._react import ReAct
from ._vim import ViM

__all__ = ["DETECTORS", "make_detector"]

# The detector classes by name; documented where skood.detectors re-exports it.
DETECTORS = {
    "energy": Energy,
    "msp": MSP,
    "maxlogit": MaxLogit,
    "mahalanobis": Mahalanobis,
    "knn": KNN,
    "vim": ViM,
    "react": ReAct,
    "fused": Fused,
}

PROTOCOL = ("fit", "score_samples")


def make_detector(detector):
    """A detector from its name, or the detector object itself after checking it.

    Parameters
    ----------
    detector : str or detector object
        A name of :data:`DETECTORS` (case-insensitive), built with its default parameters;
        or an object with ``fit`` and ``score_samples`` methods and a ``needs`` attribute
        (see :class:`~skood.detectors.BaseDetector`), returned as it is (not copied).

    Returns
    -------
    detector : detector object

    Raises
    ------
    ValueError
        For an unknown name, with the list of valid names.
    TypeError
        For anything else (a detector class instead of an instance included), with the list
        of valid names.

    Examples
    --------
    >>> from skood.detectors import make_detector
    >>> make_detector("KNN")
    KNN()
    >>> make_detector("knn_1")
    Traceback (most recent call last):
    ...
    ValueError: Unknown detector 'knn_1'. Valid names: 'energy', 'msp', 'maxlogit', \
'mahalanobis', 'knn', 'vim', 'react', 'fused'; or pass a detector object such as KNN(k=1).
    """
    valid = ", ".join(repr(name) for name in DETECTORS)
    if isinstance(detector, str):
        cls = DETECTORS.get(detector.lower())
        if cls is None:
            raise ValueError(f"Unknown detector {detector!r}. Valid names: {valid}; or pass a "
                             "detector object such as KNN(k=1).")
        return cls()
    if inspect.isclass(detector):
        raise TypeError(f"detector must be a name or a detector object, got the class "
                        f"{detector.__name__}; pass an instance such as {detector.__name__}(). "
                        f"Valid names: {valid}.")
    missing = [name for name in PROTOCOL if not callable(getattr(detector, name, None))]
    if missing or not hasattr(detector, "needs"):
        lacks = ", ".join(missing + ([] if hasattr(detector, "needs") else ["needs"]))
        raise TypeError(
            f"detector must be a name or a detector object (with fit, score_samples and needs; "
            f"see skood.detectors.BaseDetector), got {type(detector).__name__}, which lacks "
            f"{lacks}. Valid names: {valid}.")
    return detector
