"""The input of one fit: ``X``, ``y``, ``X_aux``, ``X_eval`` and the fit parameters, checked.

:func:`fit_input` runs every check of a fit's input before the model is
changed, and returns what training and calibration need as one
:class:`FitInput`: the in-distribution rows left to skorch, their encoded
classes, the outliers, the held-out rows and the fit's seed. A refused input
leaves the estimator as it was.
"""
import inspect
from dataclasses import dataclass

import numpy as np
import torch
from sklearn.utils import check_random_state

from ._labels import encode_labels, fit_classes
from ._outliers import collect_outliers, synthesized_outliers
from ._seeds import fit_seed
from ._splits import held_out_split, split_name
# _refuse_loader: the one message for a DataLoader given where a Dataset belongs
from ._validation import (_refuse_loader, check_dataset, check_device, check_features,
                          check_labels, dataset_labels, is_dataset, loader_params)
from .data import LabelledRows, as_float_sample, sample_of

__all__ = ["INPUT_ATTRIBUTES", "FitInput", "fit_input"]

# Recorded by the input checks of fit; restored when a check refuses the input.
INPUT_ATTRIBUTES = ("n_features_in_", "feature_names_in_", "input_shape_")


@dataclass
class FitInput:
    """What one fit trains and calibrates on, made by :func:`fit_input`.

    Attributes
    ----------
    X_train : ndarray or skood.data.LabelledRows
        The in-distribution rows handed to skorch (its validation split, if
        any, is made from them); float32.
    y_train : ndarray of int64
        Their class indices into ``classes``.
    classes : ndarray
        The classes the network's outputs stand for, in output order.
    outliers : skood._outliers.AuxiliaryData or None
        ``X_aux``, the rows labelled -1 and the synthesizer's; ``None`` for a
        fit whose objective uses no outliers.
    X_sample : ndarray or torch.Tensor
        The first (up to) two training samples, float32: the data's shape for
        the network, and the probe of its outputs.
    split : tuple or None
        ``(dataset_train, dataset_valid)`` made before training (for ``X_eval``
        or a synthesizer); skorch then uses it.
    X_calibration : ndarray, Dataset or None
        With ``train_split=None``: the held-out calibration rows.
    seed : int
        The fit's seed (see :mod:`skood._seeds`).
    fit_params : dict
        skorch's fit parameters.
    """

    X_train: object
    y_train: np.ndarray
    classes: np.ndarray
    outliers: object
    X_sample: object
    split: object
    X_calibration: object
    seed: int
    fit_params: dict


def fit_input(estimator, X, y, X_aux, X_eval, fit_params, *, fitted_before, classes):
    """Check every input of a fit before the model is changed; return a :class:`FitInput`.

    Parameters
    ----------
    estimator : GradRegOODClassifier
        Records ``n_features_in_``, ``feature_names_in_`` and ``input_shape_``
        on a new fit (checks against them when ``fitted_before``); they are
        restored if a check refuses the input.
    X, y, X_aux, X_eval
        As :meth:`skood.GradRegOODClassifier.fit` takes them.
    fit_params : dict
        skorch's fit parameters; ``sample_weight`` and names that neither the
        module's forward nor ``train_split`` take are refused.
    fitted_before : bool
        Whether a fitted model goes on training (``partial_fit``).
    classes : array-like or None
        ``partial_fit``'s ``classes``.

    Returns
    -------
    FitInput
    """
    if "sample_weight" in fit_params:
        raise ValueError(
            f"sample_weight is not supported: {type(estimator).__name__}'s loss weighs every "
            "in-distribution row alike. Weigh classes with criterion__weight (a tensor of "
            "class weights for CrossEntropyLoss), or resample the rows.")
    _check_fit_params(estimator, fit_params)
    check_device(estimator.device)
    recorded = {name: vars(estimator)[name] for name in INPUT_ATTRIBUTES
                if name in vars(estimator)}
    try:
        return _checked_input(estimator, X, y, X_aux, X_eval, fit_params, fitted_before,
                              classes)
    except BaseException:
        # A refused input leaves the model as it was.
        for name in INPUT_ATTRIBUTES:
            vars(estimator).pop(name, None)
        vars(estimator).update(recorded)
        raise


def _checked_input(estimator, X, y, X_aux, X_eval, fit_params, fitted_before, classes):
    """All checks of fit's input; the synthesizer's outliers (made from the training
    rows) included."""
    dataset = is_dataset(X)
    if dataset:
        if estimator.synthesizer is not None:
            raise ValueError(
                "synthesizer needs the training rows as one array, and X is a Dataset. "
                "Make the outliers from an array of your images beforehand, "
                "X_made = synthesizer.make_outliers(X_array, y_array, seed), and pass "
                "them as X_aux (or a Dataset of them); or fit on arrays.")
        check_dataset(estimator, X, reset=not fitted_before)
        X_eval = _check_eval_dataset(estimator, X_eval, X)
        y, outlier_rows = dataset_labels(X, y, loader_params(estimator))
    else:
        if X_eval is not None:
            raise ValueError(
                "X_eval is for a Dataset X whose transform augments the training images; "
                f"X is a {type(X).__name__}, read as it is. Leave X_eval=None.")
        X = check_features(estimator, X, reset=not fitted_before)
        y, outlier_rows = check_labels(y, X.shape[0])
    if outlier_rows.all():
        raise ValueError(
            "y has no in-distribution rows: every label is -1. Pass the class "
            "labels of the in-distribution rows; -1 marks auxiliary outliers only.")
    y_id = y[~outlier_rows]
    X_id = None if dataset else X[~outlier_rows]    # a Dataset's: below, once encoded
    classes = fit_classes(estimator, y_id, classes, fitted_before)
    y_encoded = encode_labels(y_id, classes)
    eval_rows = None
    if dataset:
        # The ID items as (float32 sample, encoded label); the held-out rows are
        # read from X_eval when given (the same rows, without augmentation).
        X_id = LabelledRows(X, np.flatnonzero(~outlier_rows), y_encoded,
                            shape=estimator.input_shape_)
        eval_rows = None if X_eval is None else X_id.with_data(X_eval)

    random_state = check_random_state(estimator.random_state)
    torch_seed = fit_seed(random_state)
    X_id, y_encoded, split, X_calibration = held_out_split(
        estimator, X_id, y_encoded, classes, random_state, fit_params, eval_rows)
    made, split = synthesized_outliers(estimator, X_id, y_encoded, classes, split, torch_seed,
                                       fit_params)
    if dataset:
        outlier_part = torch.utils.data.Subset(X, np.flatnonzero(outlier_rows).tolist())
        with torch.random.fork_rng(devices=[]):   # a random transform draws from it
            X_sample = torch.stack([as_float_sample(sample_of(X_id[i]))
                                    for i in range(min(2, len(X_id)))])
    else:
        outlier_part, X_sample = X[outlier_rows], X_id[:2]
    aux = collect_outliers(estimator, outlier_part, X_aux, made)
    return FitInput(X_train=X_id, y_train=y_encoded, classes=classes, outliers=aux,
                    X_sample=X_sample, split=split, X_calibration=X_calibration, seed=torch_seed,
                    fit_params=fit_params)



def _check_fit_params(estimator, fit_params):
    """Refuse a fit parameter that skorch would hand to a callee that does not take it:
    beside ``epochs``, skorch passes each to the module's forward and to ``train_split``."""
    def takes(func, skip):
        try:
            parameters = list(inspect.signature(func).parameters.values())
        except (TypeError, ValueError):     # a builtin or C callable: cannot tell
            return None
        if any(p.kind is p.VAR_KEYWORD for p in parameters):
            return None
        return {p.name for p in parameters[skip:]
                if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}

    module = estimator.module
    receivers = []
    if isinstance(module, torch.nn.Module):         # bound forward: the input first
        receivers.append(("the module's forward", takes(module.forward, 1)))
    elif isinstance(module, type) and issubclass(module, torch.nn.Module):
        receivers.append(("the module's forward", takes(module.forward, 2)))   # estimator, input
    if estimator.train_split is not None:
        receivers.append((f"train_split={split_name(estimator)}", takes(estimator.train_split, 2)))
    accepted = None
    for _, names in receivers:
        if names is not None:
            accepted = names if accepted is None else accepted & names
    if accepted is None:
        return
    for name in fit_params:
        if name == "epochs" or name in accepted:
            continue
        refusing = [what for what, names in receivers
                    if names is not None and name not in names]
        raise TypeError(
            f"fit got the unexpected keyword argument {name!r}: beside X, y, X_aux and "
            f"X_eval, fit takes epochs and the keyword arguments that skorch passes on to "
            f"both the module's forward and train_split, here {sorted(accepted | {'epochs'})}"
            f"; {' and '.join(refusing)} {'do' if len(refusing) > 1 else 'does'} not take "
            f"{name!r}.")


def _check_eval_dataset(estimator, X_eval, X):
    """Refuse an ``X_eval`` that cannot be another view of the Dataset ``X``."""
    if X_eval is None:
        return None
    _refuse_loader(X_eval, "X_eval")
    if not is_dataset(X_eval):
        raise TypeError(
            f"X_eval must be a torch Dataset holding the samples of X without augmentation, "
            f"got a {type(X_eval).__name__}; for an array use "
            "skood.data.ArrayDataset(X_array, y_array).")
    if len(X_eval) != len(X):
        raise ValueError(
            f"X_eval has {len(X_eval)} items but X has {len(X)}; X_eval must hold the same "
            "samples as X, in the same order, without augmentation.")
    check_dataset(estimator, X_eval, reset=False, input_name="X_eval")
    return X_eval
