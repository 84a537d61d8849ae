"""Input checks that turn user data into float32 arrays, with errors that say what to do."""
import numpy as np
import pandas as pd
import torch
from sklearn.exceptions import DataConversionWarning
from sklearn.utils import check_array
from sklearn.utils.validation import validate_data

from skorch.dataset import Dataset as SkorchDataset

from .data import sample_of
from .exceptions import warn_at_caller
from ._labels import is_outlier_label

__all__ = ["check_features", "check_outliers", "check_labels", "is_dataset", "check_dataset",
           "dataset_labels", "check_device", "loader_params"]

LOADER_HINT = (
    "batching comes from the estimator's batch_size and iterator_train__* / iterator_valid__* "
    "parameters (e.g. iterator_train__num_workers=4, iterator_train__pin_memory=True)")


def check_device(device, name="device"):
    """Refuse a torch device that cannot be used on this machine, naming ``name``.

    ``None`` (skorch: leave tensors where they are) passes. Returns ``device``.
    """
    if device is None:
        return device
    if not isinstance(device, (str, torch.device)):
        raise ValueError(f"{name} must be a torch device name such as 'cpu' or 'cuda', got "
                         f"{device!r}.")
    try:
        torch.empty(0, device=device)
    except (RuntimeError, AssertionError, ValueError) as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ValueError(f"{name} {str(device)!r} cannot be used here ({first}); use 'cpu', or "
                         "'cuda' on a machine with a CUDA GPU.") from None
    return device


def is_dataset(X):
    """True for a torch Dataset (a tensor is one too, but is read as an array)."""
    return isinstance(X, torch.utils.data.Dataset) and not isinstance(X, torch.Tensor)


def _refuse_loader(X, input_name):
    if isinstance(X, torch.utils.data.DataLoader):
        raise TypeError(
            f"{input_name} is a DataLoader; pass its Dataset instead "
            f"({input_name}=loader.dataset): {LOADER_HINT}.")


def _to_numpy(X):
    if isinstance(X, torch.Tensor):
        return X.detach().cpu().numpy()
    return X


def _check_numeric_frame(X, input_name):
    if isinstance(X, pd.DataFrame):
        bad = [str(col) for col, dtype in X.dtypes.items()
               if not (pd.api.types.is_numeric_dtype(dtype) or pd.api.types.is_bool_dtype(dtype))]
        if bad:
            raise TypeError(
                f"{input_name} has non-numeric columns {bad}. Encode them first, e.g. with "
                "a ColumnTransformer and OneHotEncoder in a Pipeline before the "
                "GradRegOODClassifier.")


def check_features(estimator, X, *, reset):
    """Validate ``X`` for ``estimator``; return a C-contiguous float32 array.

    On ``reset=True`` (fit) it records ``n_features_in_``, ``feature_names_in_``
    (for DataFrames) and ``input_shape_`` (the shape of one sample, which may be
    an image shape); otherwise it checks ``X`` against them (those that were
    recorded: an estimator rebuilt from saved weights may have none). float64 input is
    cast to float32; NaN and inf are refused.

    Examples
    --------
    >>> import numpy as np
    >>> from skood import GradRegOODClassifier
    >>> est = GradRegOODClassifier(None)
    >>> check_features(est, np.zeros((2, 3)), reset=True).dtype, est.input_shape_
    (dtype('float32'), (3,))
    """
    _refuse_loader(X, "X")
    if is_dataset(X):
        raise TypeError(
            "X must be an array-like (numpy array, torch tensor or pandas DataFrame) here, "
            f"got a {type(X).__name__}.")
    _check_numeric_frame(X, "X")
    X = _to_numpy(X)
    shape = getattr(X, "shape", None)
    if not reset and shape is not None and not (
            len(shape) == 2 and len(getattr(estimator, "input_shape_", ())) == 1):
        # Before validate_data, whose message counts only X.shape[1] ("8 features");
        # tabular X keeps scikit-learn's message.
        _check_sample_shape(estimator, shape)
    X = validate_data(estimator, X, reset=reset, dtype=np.float32, allow_nd=True,
                      ensure_all_finite=True, order="C", copy=_read_only(X))
    if reset:
        estimator.input_shape_ = tuple(X.shape[1:])
    else:
        _check_sample_shape(estimator, X.shape)
    return X


def _check_sample_shape(estimator, shape):
    if (hasattr(estimator, "input_shape_") and len(shape) > 1
            and tuple(shape[1:]) != estimator.input_shape_):
        raise ValueError(
            f"X has samples of shape {tuple(shape[1:])}, but {type(estimator).__name__} "
            f"expects samples of shape {estimator.input_shape_} (the shape of a sample of X "
            "at fit).")


def _read_only(X):
    """True for a read-only array (e.g. a memmap opened with mode "r"): torch warns on
    such arrays and cannot share their memory, so they are copied once here."""
    return isinstance(X, np.ndarray) and not X.flags.writeable


def check_outliers(estimator, X_aux):
    """Validate auxiliary outliers against the fitted input shape.

    Returns a float32 CPU tensor, or the torch Dataset unchanged (its items are
    read during training; their shape is checked on the first one).

    Examples
    --------
    >>> import numpy as np
    >>> from skood import GradRegOODClassifier
    >>> est = GradRegOODClassifier(None)
    >>> _ = check_features(est, np.zeros((2, 3)), reset=True)
    >>> check_outliers(est, np.ones((4, 3))).shape
    torch.Size([4, 3])
    """
    _refuse_loader(X_aux, "X_aux")
    if is_dataset(X_aux):
        if len(X_aux) == 0:
            raise ValueError("X_aux is an empty Dataset; pass at least one auxiliary outlier.")
        shape = _first_sample_shape(X_aux)
        if shape != estimator.input_shape_:
            raise ValueError(
                f"X_aux items have samples of shape {shape}, but the samples of X have shape "
                f"{estimator.input_shape_}; outliers must look like inputs to the same network.")
        return X_aux
    _check_numeric_frame(X_aux, "X_aux")
    if isinstance(X_aux, pd.DataFrame) and hasattr(estimator, "feature_names_in_"):
        columns = np.asarray(X_aux.columns, dtype=object)
        if not np.array_equal(columns, estimator.feature_names_in_):
            raise ValueError(
                "X_aux's columns differ from X's; pass outliers with the same columns in "
                f"the same order: {estimator.feature_names_in_.tolist()}.")
    arr = _to_numpy(X_aux)
    if hasattr(arr, "shape") and arr.shape[0] == 0:
        raise ValueError("X_aux is empty; pass at least one auxiliary outlier or leave X_aux=None.")
    arr = check_array(arr, dtype=np.float32, allow_nd=True, ensure_all_finite=True,
                      input_name="X_aux", order="C", copy=_read_only(arr))
    if tuple(arr.shape[1:]) != estimator.input_shape_:
        raise ValueError(
            f"X_aux has samples of shape {tuple(arr.shape[1:])}, but the samples of X have "
            f"shape {estimator.input_shape_}; outliers must look like inputs to the same network.")
    return torch.from_numpy(arr)


def check_labels(y, n_samples):
    """Validate ``y`` for fit; return it as a 1-D array and the mask of outlier rows (-1).

    Examples
    --------
    >>> import numpy as np
    >>> check_labels(np.array(["cat", -1], dtype=object), 2)[1].tolist()
    [False, True]
    """
    if y is None:
        raise ValueError(
            "This estimator requires y to be passed, but the target y is None: pass the "
            "class of each in-distribution row of X, and -1 for rows that are auxiliary "
            "outliers.")
    y = np.asarray(_to_numpy(y))
    hint = ("If you passed the auxiliary outliers as the second argument, pass them by "
            "keyword instead: fit(X, y, X_aux=outliers).")
    if y.ndim == 2 and y.shape[1] == 1:
        # scikit-learn's convention for a column vector: warn, then use it as 1-D
        warn_at_caller(f"A column-vector y was passed when a 1d array was expected (shape "
                       f"{y.shape}); it is used as 1-D. Pass y.ravel() to silence this warning.",
                       DataConversionWarning)
        y = y.ravel()
    if y.ndim != 1:
        raise ValueError(f"y must be 1-D with one label per row of X, got shape {y.shape}. {hint}")
    if y.shape[0] != n_samples:
        raise ValueError(
            f"y has {y.shape[0]} labels but X has {n_samples} rows; they must match. {hint}")
    if (y.dtype.kind in "US" and np.any(y == "-1")) or (
            y.dtype.kind == "O" and any(isinstance(label, str) and label == "-1"
                                        for label in y.tolist())):
        raise ValueError(
            "y contains the string '-1'. Mark auxiliary-outlier rows with the integer -1 "
            "in an object array, e.g. y = np.array(['cat', 'dog', -1], dtype=object).")
    if y.dtype.kind == "f" and not np.all(np.isfinite(y)):
        raise ValueError("y contains NaN or inf; use -1 to mark auxiliary-outlier rows.")
    outlier_rows = is_outlier_label(y)
    if y.dtype.kind == "O":
        _check_one_label_type(y[~outlier_rows])
    return y, outlier_rows


def _check_one_label_type(y_id):
    """Refuse class labels that mix strings with other types (scikit-learn cannot sort them)."""
    kinds = {isinstance(label, str) for label in y_id.tolist()}
    if len(kinds) > 1:
        types = sorted({type(label).__name__ for label in y_id.tolist()})
        examples = {}
        for label in y_id.tolist():
            examples.setdefault(type(label).__name__, label)
        raise ValueError(
            f"y mixes label types {types} (e.g. {sorted(map(repr, examples.values()))}); the "
            "class labels must be all strings or all numbers. Convert them to one type, "
            "e.g. y.astype(str); -1 is the only number allowed among string labels, to "
            "mark auxiliary-outlier rows.")



def _first_sample_shape(dataset):
    """The shape of the sample of ``dataset[0]``, read without touching torch's global
    random state (a random transform would draw from it)."""
    with torch.random.fork_rng(devices=[]):
        return tuple(np.shape(sample_of(dataset[0])))


def check_dataset(estimator, X, *, reset, input_name="X"):
    """Check the first sample of a torch Dataset ``X``; record or compare its shape.

    On ``reset=True`` (fit) it records ``input_shape_`` (the shape of the first
    item's sample: the first element of a ``(sample, label)`` pair, else the
    item) and ``n_features_in_`` (its first dimension, as for an array ``X``)
    and drops ``feature_names_in_``; otherwise it refuses a sample shape other
    than ``input_shape_``. Only the first item is read.

    Examples
    --------
    >>> import numpy as np
    >>> from skood import GradRegOODClassifier
    >>> from skood.data import ArrayDataset
    >>> est = GradRegOODClassifier(None)
    >>> check_dataset(est, ArrayDataset(np.zeros((5, 1, 8, 8)), [0, 1, 0, 1, 0]), reset=True)
    >>> est.input_shape_, est.n_features_in_
    ((1, 8, 8), 1)
    """
    if len(X) == 0:
        raise ValueError(f"{input_name} is an empty Dataset; pass at least one sample.")
    shape = _first_sample_shape(X)
    if reset:
        if len(shape) == 0:
            with torch.random.fork_rng(devices=[]):
                item = X[0]
            raise ValueError(
                f"{input_name}'s items must be (sample, label) tuples or a sample; its first "
                f"item is a {type(item).__name__} whose sample is a "
                f"{type(sample_of(item)).__name__} with no shape. Each sample must be an "
                "array or tensor of shape (n_features,) or an image shape such as "
                "(channels, height, width).")
        vars(estimator).pop("feature_names_in_", None)
        estimator.input_shape_ = shape
        estimator.n_features_in_ = int(shape[0])
    elif hasattr(estimator, "input_shape_") and shape != tuple(estimator.input_shape_):
        raise ValueError(
            f"{input_name}'s items have samples of shape {shape}, but "
            f"{type(estimator).__name__} expects samples of shape {tuple(estimator.input_shape_)} "
            "(the shape of a sample of X at fit).")


def _label_attribute(dataset):
    """The labels a Dataset holds as an attribute (torchvision's ``targets``, SVHN's
    ``labels``, a TensorDataset's second tensor, skorch's ``y``; through ``Subset`` and
    ``ConcatDataset``), as a numpy array, or None."""
    if isinstance(dataset, torch.utils.data.Subset):
        parent = _label_attribute(dataset.dataset)
        return None if parent is None else parent[np.asarray(dataset.indices, dtype=np.int64)]
    if isinstance(dataset, torch.utils.data.ConcatDataset):
        parts = [_label_attribute(part) for part in dataset.datasets]
        return None if any(part is None for part in parts) else np.concatenate(parts)
    if isinstance(dataset, torch.utils.data.TensorDataset):
        labels = dataset.tensors[1] if len(dataset.tensors) == 2 else None
    elif isinstance(dataset, SkorchDataset):
        labels = dataset.y
    else:
        labels = getattr(dataset, "targets", None)
        if labels is None:
            labels = getattr(dataset, "labels", None)
    if labels is None or isinstance(labels, (str, bytes)):
        return None
    try:
        labels = _label_array(list(_to_numpy(labels)) if isinstance(labels, torch.Tensor)
                              else list(labels))
    except TypeError:
        return None
    return labels if labels.shape == (len(dataset),) else None


def _label_array(labels):
    """Labels as a numpy array; an object array when they mix strings with other types, so
    that ``check_labels`` sees a ``-1`` among string labels as the integer it is."""
    labels = [label.item() if isinstance(label, (torch.Tensor, np.generic)) else label
              for label in labels]
    kinds = {isinstance(label, str) for label in labels}
    return np.array(labels, dtype=object) if len(kinds) > 1 else np.asarray(labels)


def _item_labels(batch):
    """A DataLoader's ``collate_fn`` that keeps the labels of a batch of items only."""
    return [item[1] for item in batch]


def loader_params(estimator):
    """The DataLoader settings of ``iterator_train__*`` that say how items are read
    (not how they are batched), for the reads fit makes outside skorch's iterators:
    the labels of a Dataset ``X`` and the outliers of a Dataset ``X_aux``.

    Parameters
    ----------
    estimator : skorch net

    Returns
    -------
    dict
        Those of ``num_workers``, ``pin_memory``, ``timeout``, ``worker_init_fn``,
        ``multiprocessing_context`` and ``prefetch_factor`` that are set.
    """
    given = estimator.get_params_for("iterator_train")
    return {name: given[name] for name in ("num_workers", "pin_memory", "timeout",
                                           "worker_init_fn", "multiprocessing_context",
                                           "prefetch_factor") if name in given}


def dataset_labels(X, y, loader_params):
    """The labels of a Dataset ``X`` for fit, as checked by :func:`check_labels`.

    ``y`` when given; else a label attribute of ``X`` (see ``_label_attribute``)
    whose first label is the first item's; else the second element of every
    item, read in one pass through a DataLoader with ``loader_params``
    (``num_workers``, ...): each item is read (and transformed) once and only
    its label kept. The pass leaves torch's global random state as it was.
    """
    first = _first_item(X)
    if y is None:
        if not (isinstance(first, (tuple, list)) and len(first) == 2):
            raise ValueError(
                "X's items are not (sample, label) pairs, so fit cannot read the labels from "
                f"them (the first item is a {type(first).__name__}); pass them as y=..., or "
                "use a Dataset whose items are (sample, label), e.g. "
                "skood.data.ArrayDataset(X, y, transform=...).")
        labels = _label_attribute(X)
        if labels is None or not _same_label(labels[0], first[1]):
            # no attribute, or one the items do not follow (e.g. a target_transform)
            params = {name: value for name, value in loader_params.items()
                      if name != "pin_memory"}            # labels only: nothing to pin
            loader = torch.utils.data.DataLoader(
                X, batch_size=256, shuffle=False, collate_fn=_item_labels, **params)
            with torch.random.fork_rng(devices=[]):
                labels = _label_array([label for batch in loader for label in batch])
        y = labels
    return check_labels(y, len(X))


def _first_item(dataset):
    with torch.random.fork_rng(devices=[]):
        return dataset[0]


def _same_label(a, b):
    a, b = (value.item() if isinstance(value, (torch.Tensor, np.generic)) else value
            for value in (a, b))
    if isinstance(a, str) or isinstance(b, str):
        return type(a) is type(b) and a == b
    return bool(a == b)
