"""The calibration of a fitted estimator as a JSON file, beside skorch's weights file.

``save_params(f_calibration=...)`` writes what the OOD decisions need beside the
weights (the classes, the sorted calibration scores and their predicted classes,
the temperature they were scored at, the input's shape and feature names);
``load_params(f_calibration=...)`` reads it back. Plain JSON: loading it runs no
code, unlike a pickle.
"""
import json
import os

import numpy as np
import torch
from skorch.utils import to_tensor

from ._network import eval_mode
from ._objective import first_output

__all__ = ["calibration_record", "check_calibration_state", "check_detector_record",
           "check_output_width", "read_calibration", "write_calibration"]

FORMAT = "skood calibration"
VERSION = 1
# The keys every calibration file has (the input's shape and names may be None).
REQUIRED_KEYS = ("temperature", "classes", "classes_dtype", "calibration_scores",
                 "calibration_classes")


def calibration_record(estimator, detector=None):
    """What ``write_calibration`` stores for a fitted ``estimator``, as JSON types.

    ``detector``: the class and parameters of a detector other than the energy
    (:func:`skood._detector_io.detector_spec`), recorded so that the scores are
    not loaded under another detector; a file without it holds energy scores.

    Examples
    --------
    >>> from types import SimpleNamespace
    >>> est = SimpleNamespace(classes_=np.array([0, 1]), temperature=1.0,
    ...                       calibration_scores_=np.array([1.5], dtype=np.float32),
    ...                       calibration_classes_=np.array([0], dtype=np.int32),
    ...                       input_shape_=(4,), n_features_in_=4)
    >>> calibration_record(est)["classes_dtype"]
    '<i8'
    """
    names = getattr(estimator, "feature_names_in_", None)
    # An estimator rebuilt from weights by hand may have no record of its input.
    shape = getattr(estimator, "input_shape_", None)
    n_features = getattr(estimator, "n_features_in_", None)
    record = {
        "format": FORMAT, "version": VERSION,
        "temperature": float(estimator.temperature),
        "classes": estimator.classes_.tolist(),
        "classes_dtype": estimator.classes_.dtype.str,
        "calibration_scores": estimator.calibration_scores_.tolist(),
        "calibration_classes": estimator.calibration_classes_.tolist(),
        "input_shape": None if shape is None else list(shape),
        "n_features_in": None if n_features is None else int(n_features),
        "feature_names_in": None if names is None else list(names),
    }
    if detector is not None:
        record["detector"] = detector
    return record


def write_calibration(f, record):
    """Write ``record`` as JSON to a path or an open text file."""
    if hasattr(f, "write"):
        json.dump(record, f)
        return
    with open(os.fspath(f), "w", encoding="utf-8") as handle:
        json.dump(record, handle)


def read_calibration(f):
    """Read a record written by :func:`write_calibration`; arrays come back with their dtypes.

    Returns
    -------
    dict
        ``temperature`` (float), ``classes_``, ``calibration_scores_`` (float32),
        ``calibration_classes_`` (int32) and, when recorded, ``input_shape_``,
        ``n_features_in_`` and ``feature_names_in_``.
    """
    foreign = ValueError(f"{f!r} is not a calibration file written by save_params("
                         "f_calibration=...).")
    try:
        if hasattr(f, "read"):
            record = json.load(f)
        else:
            with open(os.fspath(f), encoding="utf-8") as handle:
                record = json.load(handle)
    except (UnicodeDecodeError, json.JSONDecodeError):   # not text, or not JSON
        raise foreign from None
    if not isinstance(record, dict) or record.get("format") != FORMAT:
        raise foreign
    if record.get("version") != VERSION:
        raise ValueError(f"{f!r} has calibration format version {record.get('version')!r}; "
                         f"this version of skood reads version {VERSION}.")
    missing = [key for key in REQUIRED_KEYS if key not in record]
    if missing:
        raise ValueError(
            f"{f!r} lacks the key {missing[0]!r} of a calibration file (it needs "
            f"{', '.join(REQUIRED_KEYS)}); write it again with save_params(f_calibration=...).")
    dtype = np.dtype(record["classes_dtype"])
    state = {
        "temperature": float(record["temperature"]),
        "classes_": np.asarray(record["classes"], dtype=dtype),
        "calibration_scores_": np.asarray(record["calibration_scores"], dtype=np.float32),
        "calibration_classes_": np.asarray(record["calibration_classes"], dtype=np.int32),
        "detector": record.get("detector"),
    }
    if record.get("input_shape") is not None:
        state["input_shape_"] = tuple(record["input_shape"])
    if record.get("n_features_in") is not None:
        state["n_features_in_"] = int(record["n_features_in"])
    if record.get("feature_names_in") is not None:
        state["feature_names_in_"] = np.asarray(record["feature_names_in"], dtype=object)
    return state


def check_calibration_state(estimator, state):
    """Refuse a calibration read by :func:`read_calibration` that does not belong to
    ``estimator``: scored at another ``temperature``, or saved with other classes than
    its ``classes`` parameter.

    Parameters
    ----------
    estimator : GradRegOODClassifier
    state : dict
        What :func:`read_calibration` returned.
    """
    if state["temperature"] != estimator.temperature:
        raise ValueError(
            f"The calibration was scored at temperature={state['temperature']}, but this "
            f"estimator has temperature={estimator.temperature}; set temperature="
            f"{state['temperature']} before load_params (the scores depend on it).")
    if estimator.classes is not None and list(np.asarray(estimator.classes).tolist()) != (
            state["classes_"].tolist()):
        raise ValueError(
            f"The calibration was saved with the classes {state['classes_'].tolist()}, but "
            f"this estimator's classes parameter is {list(estimator.classes)!r}; leave classes "
            "unset (the calibration file sets them) or pass the same.")


def check_detector_record(recorded, expected, detector):
    """Refuse a calibration scored by another detector than the estimator's ``detector``.

    Parameters
    ----------
    recorded : str or None
        The file's ``detector`` entry (None: the energy).
    expected : str or None
        The same for the estimator.
    detector : str or detector object
        The estimator's ``detector`` parameter, for the message.
    """
    if recorded == expected:
        return
    saved = "the energy" if recorded is None else json.loads(recorded)["class"]
    raise ValueError(
        f"The calibration was scored by {saved} (detector parameters in the file), but this "
        f"estimator has detector={detector!r}; build it with the saved model's detector "
        "before load_params (the scores belong to it). Nothing was loaded.")


def check_output_width(estimator, state):
    """Refuse a calibration whose number of classes is not the width of the initialised
    network's logits, read from one forward of a zero sample of the recorded input shape
    (skipped when the file records no shape or the network is not initialised yet).

    Parameters
    ----------
    estimator : GradRegOODClassifier
    state : dict
        What :func:`read_calibration` returned.
    """
    shape = state.get("input_shape_")
    if shape is None or not getattr(estimator, "initialized_", False):
        return
    # two rows: BatchNorm in eval mode takes one, but some modules squeeze a batch of one
    x = to_tensor(torch.zeros((2, *shape)), device=estimator.device)
    with eval_mode(estimator.module_), torch.no_grad():
        logits = first_output(estimator.infer(x))
    n_classes = len(state["classes_"])
    if logits.ndim != 2 or logits.shape[1] != n_classes:
        raise ValueError(
            f"The calibration has {n_classes} classes, but this estimator's network returns "
            f"logits of shape {tuple(logits.shape[1:])} per sample: it must return one "
            f"column per class. Build the network the weights were saved from (e.g. "
            f"module__n_classes={n_classes}) before load_params. Nothing was loaded.")
