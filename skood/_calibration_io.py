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

__all__ = ["calibration_record", "check_calibration_state", "read_calibration",
           "write_calibration"]

FORMAT = "skood calibration"
VERSION = 1


def calibration_record(estimator):
    """What ``write_calibration`` stores for a fitted ``estimator``, as JSON types.

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
    return {
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
    dtype = np.dtype(record["classes_dtype"])
    state = {
        "temperature": float(record["temperature"]),
        "classes_": np.asarray(record["classes"], dtype=dtype),
        "calibration_scores_": np.asarray(record["calibration_scores"], dtype=np.float32),
        "calibration_classes_": np.asarray(record["calibration_classes"], dtype=np.int32),
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
