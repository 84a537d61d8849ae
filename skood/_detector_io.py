"""A fitted detector of :mod:`skood.detectors` as a numpy ``.npz`` file, without pickle.

``save_params(f_detector=...)`` writes the estimator's fitted ``detector_``:
its class name, its parameters and its fitted attributes as JSON, and every
array among them as an array of the same ``.npz`` file. ``load_params(...,
f_detector=...)`` reads it back with ``numpy.load(allow_pickle=False)`` and
builds the detector from the classes of :data:`skood.detectors.DETECTORS`
only, so loading runs no code from the file. Arrays keep their dtypes and
values, numbers their types, so the scores are bit for bit those of the saved
detector.
"""
import json
import os

import numpy as np

from .detectors import DETECTORS

__all__ = ["check_writable", "detector_spec", "read_detector", "write_detector"]

FORMAT = "skood detector"
VERSION = 1
# Class name -> class, of the detectors a file may hold.
CLASSES = {cls.__name__: cls for cls in DETECTORS.values()}


class _Encoder:
    """Turns a detector into JSON data, its arrays set aside under keys ``a0``, ``a1``..."""

    def __init__(self):
        self.arrays = {}

    def detector(self, detector, fitted=True):
        cls = type(detector)
        if CLASSES.get(cls.__name__) is not cls:
            raise TypeError(
                f"A {cls.__name__} detector cannot be written as plain data: f_detector holds "
                f"the detectors of skood.detectors ({', '.join(sorted(CLASSES))}) only. Save "
                "a model with a detector of your own with joblib or pickle "
                "(docs/persistence.md).")
        record = {"class": cls.__name__,
                  "params": {name: self.value(value, name)
                             for name, value in detector.get_params(deep=False).items()}}
        if fitted:
            record["fitted"] = {name: self.value(value, name)
                                for name, value in sorted(vars(detector).items())
                                if name.endswith("_") and not name.startswith("_")}
        return record

    def value(self, value, name):
        if value is None or isinstance(value, (bool, str)):
            return value
        if type(value) in (int, float):
            return value        # JSON keeps a float64 exactly (shortest repr)
        if isinstance(value, np.generic):
            return {"scalar": self.array(np.asarray(value))}
        if isinstance(value, np.ndarray):
            return {"array": self.array(value)}
        if isinstance(value, (list, tuple)):
            items = [self.value(item, name) for item in value]
            return {"tuple": items} if isinstance(value, tuple) else items
        if hasattr(value, "get_params") and hasattr(value, "score_samples"):
            # a detector among Fused's: its parameters, and its fitted state when fitted
            return {"detector": self.detector(value, fitted=any(
                key.endswith("_") and not key.startswith("_") for key in vars(value)))}
        raise TypeError(
            f"The detector's {name} is a {type(value).__name__}, which f_detector does not "
            "write as plain data (numbers, strings, arrays and skood's detectors only); pass "
            "an int or None (e.g. random_state=0), or save the model with joblib.")

    def array(self, array):
        if array.dtype.hasobject:
            raise TypeError("f_detector writes numeric arrays only; this detector holds an "
                            "object array. Save the model with joblib.")
        key = f"a{len(self.arrays)}"
        self.arrays[key] = array
        return key


def _decode(value, arrays):
    if isinstance(value, list):
        return [_decode(item, arrays) for item in value]
    if not isinstance(value, dict):
        return value
    if "array" in value:
        return arrays[value["array"]]
    if "scalar" in value:
        return arrays[value["scalar"]][()]
    if "tuple" in value:
        return tuple(_decode(item, arrays) for item in value["tuple"])
    if "detector" in value:
        return _build(value["detector"], arrays)
    raise ValueError(f"Unknown entry {sorted(value)} in a detector file.")


def _build(record, arrays):
    cls = CLASSES.get(record.get("class"))
    if cls is None:
        raise ValueError(f"The detector file names the class {record.get('class')!r}, which is "
                         f"not one of skood's detectors ({', '.join(sorted(CLASSES))}).")
    detector = cls(**{name: _decode(value, arrays) for name, value in record["params"].items()})
    for name, value in record.get("fitted", {}).items():
        setattr(detector, name, _decode(value, arrays))
    return detector


def detector_spec(detector):
    """The class and parameters of ``detector`` as a JSON string (no fitted state): two
    detectors with the same spec are built alike.

    Parameters
    ----------
    detector : detector object of :mod:`skood.detectors`

    Returns
    -------
    str
    """
    encoder = _Encoder()
    record = encoder.detector(detector, fitted=False)
    if encoder.arrays:      # an array-valued parameter: compared by its values too
        record["arrays"] = {key: value.tolist() for key, value in encoder.arrays.items()}
    return json.dumps(record, sort_keys=True)


def check_writable(detector):
    """Raise the ``TypeError`` that :func:`write_detector` would, without writing."""
    _Encoder().detector(detector)


def write_detector(f, detector):
    """Write a fitted detector to a path or a binary file, as one ``.npz`` archive."""
    encoder = _Encoder()
    record = {"format": FORMAT, "version": VERSION, "detector": encoder.detector(detector)}
    arrays = dict(encoder.arrays, record=np.asarray(json.dumps(record)))
    if hasattr(f, "write"):
        np.savez(f, **arrays)
        return
    with open(os.fspath(f), "wb") as handle:   # np.savez would append ".npz" to a path
        np.savez(handle, **arrays)


def read_detector(f):
    """Read a detector written by :func:`write_detector` (no pickle: ``allow_pickle=False``).

    Returns
    -------
    detector : detector object of :mod:`skood.detectors`, fitted
    """
    foreign = ValueError(f"{f!r} is not a detector file written by save_params(f_detector=...).")
    try:
        with np.load(f if hasattr(f, "read") else os.fspath(f), allow_pickle=False) as archive:
            arrays = {key: archive[key] for key in archive.files}
    except (ValueError, OSError):        # not an npz archive (np.load's errors)
        raise foreign from None
    try:
        record = json.loads(str(arrays.pop("record")))
    except (KeyError, json.JSONDecodeError):
        raise foreign from None
    if not isinstance(record, dict) or record.get("format") != FORMAT:
        raise foreign
    if record.get("version") != VERSION:
        raise ValueError(f"{f!r} has detector format version {record.get('version')!r}; this "
                         f"version of skood reads version {VERSION}.")
    return _build(record["detector"], arrays)
