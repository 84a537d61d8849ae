"""The detector protocol: what every post-hoc OOD detector of :mod:`skood.detectors` does.

A detector turns what a trained network computes for a sample (its *features*, the input
of its last linear layer, and its *logits*) into an OOD score: **higher means more
in-distribution**. It is a scikit-learn-style object: parameters are stored as given in
``__init__`` and checked at ``fit`` against ``_parameter_constraints``; fitted attributes
end with ``_``; ``get_params``/``set_params``/``clone`` come from
:class:`~sklearn.base.BaseEstimator`.
"""
import numpy as np
import torch
from sklearn.base import BaseEstimator
# validate_parameter_constraints is in a private scikit-learn module; it is the function that
# scikit-learn's estimators use for their _parameter_constraints, and skood's estimator too.
from sklearn.utils._param_validation import validate_parameter_constraints
from sklearn.utils.validation import check_is_fitted

__all__ = ["BaseDetector"]

INPUTS = ("features", "logits")


class BaseDetector(BaseEstimator):
    """Base class of the post-hoc OOD detectors: fit on training rows, then score new rows.

    **Protocol.** A detector is fitted once, after the network is trained, with
    ``fit(features, logits, y=None, *, last_layer=None)`` on the rows **the network was
    trained on** -- never on calibration, validation or test rows: a detector that has seen
    the rows that later calibrate its threshold scores them as "typical" and breaks the
    conformal guarantees of :mod:`skood.conformal`. Then ``score_samples(features,
    logits)`` returns one score per row, a float64 numpy array, **higher = more
    in-distribution** (the convention of :meth:`skood.GradRegOODClassifier.score_samples`
    and of scikit-learn's outlier detectors).

    Each detector class says what it reads, so that a caller computes only that:

    - ``needs``: the arrays ``fit`` and ``score_samples`` read, a subset of
      ``{"features", "logits"}``; the others may be passed as ``None``;
    - ``needs_labels``: whether ``fit`` reads the class labels ``y`` of the training rows;
    - ``needs_last_layer``: whether ``fit`` reads ``last_layer``, the network's last linear
      layer (an :class:`torch.nn.Linear`, or a ``(weight, bias)`` pair of shapes
      ``(n_classes, n_features)`` and ``(n_classes,)``), the layer whose input the features
      are (see :func:`skood.detectors.extract_features` and
      :func:`skood.detectors.last_linear`).

    Arrays may be numpy arrays or torch tensors (on any device), of shape
    ``(n_samples, n_features)`` and ``(n_samples, n_classes)``.

    Subclasses implement ``_fit(features, logits, y, last_layer)`` and
    ``_score(features, logits)``; this class checks the parameters and the inputs.

    Examples
    --------
    >>> import numpy as np
    >>> from skood.detectors import MaxLogit
    >>> MaxLogit.needs, MaxLogit.needs_labels, MaxLogit.needs_last_layer
    (frozenset({'logits'}), False, False)
    >>> MaxLogit().fit(logits=np.zeros((3, 2))).score_samples(logits=[[1.0, 2.0]])
    array([2.])
    """

    needs = frozenset({"logits"})
    needs_labels = False
    needs_last_layer = False
    _parameter_constraints = {}

    def fit(self, features=None, logits=None, y=None, *, last_layer=None):
        """Fit the detector on the rows the network was trained on.

        Never pass calibration, validation or test rows: the detector would score them as
        typical, and the conformal threshold calibrated on them would accept too much.

        Parameters
        ----------
        features : array-like or torch.Tensor of shape (n_samples, n_features), optional
            The training rows' features (the input of the network's last linear layer);
            required when ``"features" in self.needs``.
        logits : array-like or torch.Tensor of shape (n_samples, n_classes), optional
            The training rows' logits; required when ``"logits" in self.needs``.
        y : array-like of shape (n_samples,), optional
            The training rows' class labels; required when ``self.needs_labels``.
        last_layer : torch.nn.Linear or (weight, bias), optional
            The network's last linear layer; required when ``self.needs_last_layer``.

        Returns
        -------
        self : BaseDetector
        """
        validate_parameter_constraints(self._parameter_constraints,
                                       self.get_params(deep=False),
                                       caller_name=type(self).__name__)
        for name, value in self.get_params(deep=False).items():
            # Interval(Integral) and Interval(Real) admit bools (True is an int): a mistake.
            if (isinstance(value, (bool, np.bool_))
                    and "boolean" not in self._parameter_constraints.get(name, ())):
                raise TypeError(f"{name} of {type(self).__name__} must be a number, "
                                f"got {value!r}.")
        arrays = self._check_inputs(features, logits, fitting=True)
        if self.needs_labels:
            y = _check_labels(y, arrays, type(self).__name__)
        if self.needs_last_layer:
            last_layer = _check_last_layer(last_layer, arrays, type(self).__name__)
        self._fit(*arrays, y, last_layer)
        return self

    def score_samples(self, features=None, logits=None):
        """OOD score of each row: higher means more in-distribution.

        Parameters
        ----------
        features : array-like or torch.Tensor of shape (n_samples, n_features), optional
            Required when ``"features" in self.needs``.
        logits : array-like or torch.Tensor of shape (n_samples, n_classes), optional
            Required when ``"logits" in self.needs``.

        Returns
        -------
        ndarray of shape (n_samples,), float64
        """
        check_is_fitted(self)
        features, logits = self._check_inputs(features, logits, fitting=False)
        n = (features if features is not None else logits).shape[0]
        if n == 0:
            return np.empty(0, dtype=np.float64)
        scores = self._score(features, logits)
        if isinstance(scores, torch.Tensor):
            scores = scores.detach().cpu().numpy()
        return np.asarray(scores, dtype=np.float64)

    # -- what subclasses implement -----------------------------------------------------------

    def _fit(self, features, logits, y, last_layer):
        """Record what scoring needs; the inputs are checked (None where not needed)."""

    def _score(self, features, logits):
        raise NotImplementedError

    # -- input checks ------------------------------------------------------------------------

    def _check_inputs(self, features, logits, *, fitting):
        name = type(self).__name__
        given = {"features": features, "logits": logits}
        checked = {}
        for key in INPUTS:
            if key not in self.needs:
                checked[key] = None
                continue
            if given[key] is None:
                raise ValueError(
                    f"{name} needs {key} (it reads {sorted(self.needs)}); got None. "
                    + ("Compute them with skood.detectors.extract_features(network, X)."
                       if key == "features" else "Pass the network's outputs for these rows."))
            checked[key] = _as_rows(given[key], key, name)
        rows = {key: value.shape[0] for key, value in checked.items() if value is not None}
        if len(set(rows.values())) > 1:
            raise ValueError(f"{name}: features and logits must have one row per sample, got "
                             f"{rows['features']} and {rows['logits']} rows.")
        for key, value in checked.items():
            if value is None:
                continue
            attribute = f"n_{key}_in_"
            if fitting:
                if value.shape[0] == 0:
                    raise ValueError(f"{name}.fit got 0 rows of {key}; pass the training rows.")
                setattr(self, attribute, value.shape[1])
            elif hasattr(self, attribute) and value.shape[1] != getattr(self, attribute):
                raise ValueError(
                    f"{name} was fitted on {key} with {getattr(self, attribute)} columns, got "
                    f"{value.shape[1]}; score rows of the same network (and feature layer).")
        return checked["features"], checked["logits"]


def _as_rows(value, key, caller):
    """A 2-D floating torch tensor (no copy for float numpy arrays and tensors), all finite."""
    if isinstance(value, torch.Tensor):
        tensor = value.detach()
    else:
        try:
            array = np.asarray(value)
        except Exception as error:  # ragged lists and the like
            raise ValueError(f"{caller}: {key} could not be read as an array ({error}).") from None
        if array.dtype.kind not in "iuf":
            raise ValueError(f"{caller}: {key} must hold real numbers, got dtype {array.dtype}.")
        tensor = torch.from_numpy(np.ascontiguousarray(array))
    if tensor.dim() != 2:
        raise ValueError(f"{caller}: {key} must be 2-D (one row per sample), got shape "
                         f"{tuple(tensor.shape)}. Flatten the rows or add a batch dimension.")
    if not tensor.is_floating_point():
        tensor = tensor.to(torch.float64)
    finite = torch.isfinite(tensor).all(dim=1)
    if not bool(finite.all()):
        bad = torch.nonzero(~finite).flatten()[:5].tolist()
        raise ValueError(f"{caller}: {key} has NaN or inf values (rows {bad}); scores need "
                         "finite inputs. Check the network for non-finite outputs.")
    return tensor


def _check_labels(y, arrays, caller):
    if y is None:
        raise ValueError(f"{caller} needs the class labels y of the training rows; got None.")
    y = np.asarray(y.detach().cpu() if isinstance(y, torch.Tensor) else y)
    n = next(a.shape[0] for a in arrays if a is not None)
    if y.ndim != 1 or y.shape[0] != n:
        raise ValueError(f"{caller}: y must be 1-D with one label per training row ({n}), got "
                         f"shape {y.shape}.")
    return y


def _check_last_layer(last_layer, arrays, caller):
    """(weight, bias) as float64 tensors on the CPU, shapes checked against the inputs."""
    if isinstance(last_layer, torch.nn.Linear):
        weight, bias = last_layer.weight, last_layer.bias
    elif isinstance(last_layer, (tuple, list)) and len(last_layer) == 2:
        weight, bias = last_layer
    else:
        raise ValueError(
            f"{caller} needs last_layer, the network's last linear layer: a torch.nn.Linear or "
            f"a (weight, bias) pair; got {type(last_layer).__name__}. "
            "skood.detectors.last_linear(network) finds it.")
    # A copy (clone): the detector must not share memory with the network's parameters.
    weight = torch.as_tensor(weight).detach().cpu().to(torch.float64).clone()
    if weight.dim() != 2:
        raise ValueError(f"{caller}: the last layer's weight must be 2-D (n_classes, n_features),"
                         f" got shape {tuple(weight.shape)}.")
    bias = (torch.zeros(weight.shape[0], dtype=torch.float64) if bias is None
            else torch.as_tensor(bias).detach().cpu().to(torch.float64).clone())
    if tuple(bias.shape) != (weight.shape[0],):
        raise ValueError(f"{caller}: the last layer's bias must have shape ({weight.shape[0]},),"
                         f" got {tuple(bias.shape)}.")
    features, logits = arrays
    if features is not None and features.shape[1] != weight.shape[1]:
        raise ValueError(
            f"{caller}: the features have {features.shape[1]} columns but the last layer takes "
            f"{weight.shape[1]} inputs; the features must be the input of last_layer.")
    if logits is not None and logits.shape[1] != weight.shape[0]:
        raise ValueError(f"{caller}: the logits have {logits.shape[1]} columns but the last "
                         f"layer has {weight.shape[0]} outputs.")
    return weight, bias


class NoFitMixin:
    """For the detectors that score without fitting (their ``fit`` only checks parameters)."""

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.requires_fit = False
        return tags
