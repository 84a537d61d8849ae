"""Features and logits of a trained network, computed in batches with a forward hook."""
import contextlib

import numpy as np
import torch
from torch import nn

__all__ = ["capture_features", "extract_features", "last_linear"]


def _first(output):
    """The logits of a module that returns a tuple (logits first) or the logits alone."""
    return output[0] if isinstance(output, (tuple, list)) else output


def _submodule_names(module, limit=8):
    names = [name for name, _ in module.named_modules() if name]
    shown = ", ".join(repr(name) for name in names[:limit])
    return (shown + (f", ... ({len(names)} in all)" if len(names) > limit else "")) or "none"


def last_linear(module):
    """The network's last :class:`torch.nn.Linear`: the output layer of the usual networks.

    "Last" is in the order of ``module.modules()`` (the order in which the layers were
    registered in ``__init__``), which is the output layer in :mod:`skood.models`,
    torchvision's classifiers and most hand-written networks. A network that registers its
    head before another linear layer needs ``layer=`` in :func:`extract_features` instead.

    Parameters
    ----------
    module : torch.nn.Module

    Returns
    -------
    torch.nn.Linear
        The layer itself (not a copy); pass it as ``last_layer`` to the detectors that need
        it (:class:`~skood.detectors.ViM`, :class:`~skood.detectors.ReAct`).

    Raises
    ------
    ValueError
        When the module has no ``nn.Linear``, with the names of its submodules.

    Examples
    --------
    >>> from skood.detectors import last_linear
    >>> from skood.models import MLP
    >>> last_linear(MLP(64, 10, hidden=(32,)))
    Linear(in_features=32, out_features=10, bias=True)
    """
    found = None
    for layer in module.modules():
        if isinstance(layer, nn.Linear):
            found = layer
    if found is None:
        raise ValueError(
            f"{type(module).__name__} has no torch.nn.Linear layer, so its features (the input "
            "of the last linear layer) are undefined; pass layer='name' to take the output of "
            f"a named submodule instead. Its submodules: {_submodule_names(module)}.")
    return found


def _named_layer(module, layer):
    layers = dict(module.named_modules())
    if layer not in layers:
        raise ValueError(f"{type(module).__name__} has no submodule named {layer!r}. Its "
                         f"submodules: {_submodule_names(module)}.")
    return layers[layer]


@contextlib.contextmanager
def capture_features(module, layer=None):
    """Within the block, each forward of ``module`` appends its batch's features to a list.

    A forward hook, for callers that run the network themselves (with their own data
    loading, device and precision). The features are detached and flattened to
    ``(batch, -1)``, and stay on the device of the forward.

    Parameters
    ----------
    module : torch.nn.Module
    layer : str or None, default=None
        None: the input of the last ``nn.Linear`` (:func:`last_linear`). A name of
        ``module.named_modules()`` (for example ``"features"`` or ``"layer4.1"``): that
        submodule's output (its first element if it returns a tuple).

    Yields
    ------
    list of torch.Tensor
        One tensor per forward, appended as the forwards run; the hook is removed on exit.

    Examples
    --------
    >>> import torch
    >>> from skood.detectors import capture_features
    >>> from skood.models import MLP
    >>> net = MLP(4, 3, hidden=(8,))
    >>> with capture_features(net) as captured:
    ...     logits = net(torch.zeros(5, 4))
    >>> captured[0].shape
    torch.Size([5, 8])
    """
    captured = []
    if layer is None:
        def keep_input(_, inputs):
            captured.append(inputs[0].detach().flatten(1))
        handle = last_linear(module).register_forward_pre_hook(keep_input)
    else:
        def keep_output(_, inputs, output):
            captured.append(_first(output).detach().flatten(1))
        handle = _named_layer(module, layer).register_forward_hook(keep_output)
    try:
        yield captured
    finally:
        handle.remove()


def _batches(X, batch_size, dtype):
    if isinstance(X, torch.utils.data.Dataset) and not isinstance(X, torch.Tensor):
        for batch in torch.utils.data.DataLoader(X, batch_size=batch_size):
            yield _first(batch)
        return
    tensor = X if isinstance(X, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(X))
    if tensor.is_floating_point() and dtype is not None:
        tensor = tensor.to(dtype)   # float64 numpy data into a float32 network
    for start in range(0, tensor.shape[0], batch_size):
        yield tensor[start:start + batch_size]


def extract_features(module, X, *, layer=None, batch_size=256, device=None):
    """The features and logits of every row of ``X``, computed in batches.

    The network runs in eval mode and without gradients; the train/eval mode of each of its
    submodules is restored afterwards, and so is its device if ``device`` moved it.

    Parameters
    ----------
    module : torch.nn.Module
        The trained network; its forward returns the logits (or a tuple, logits first).
        For a fitted :class:`skood.GradRegOODClassifier`, ``clf.module_``.
    X : array-like, torch.Tensor or torch Dataset
        The input rows, as the network takes them (a Dataset's items are ``x`` or
        ``(x, ...)``). Floating arrays are cast to the dtype of the network's parameters.
    layer : str or None, default=None
        Where the features are taken: None for the input of the last ``nn.Linear`` (see
        :func:`last_linear`), or the name of a submodule for its output, flattened.
    batch_size : int, default=256
    device : str, torch.device or None, default=None
        Where to compute; None keeps the network where it is.

    Returns
    -------
    features : ndarray of shape (n_samples, n_features)
    logits : ndarray of shape (n_samples, n_classes)
        In the network's precision (float32 for most networks), on the host.

    Raises
    ------
    ValueError
        When the network has no ``nn.Linear`` (for ``layer=None``) or no submodule of that
        name, with the names of its submodules; or when the layer does not run exactly once
        per forward.

    Examples
    --------
    >>> import numpy as np
    >>> from skood.detectors import extract_features
    >>> from skood.models import MLP
    >>> net = MLP(4, 3, hidden=(8,))
    >>> features, logits = extract_features(net, np.zeros((10, 4), dtype=np.float32))
    >>> features.shape, logits.shape
    ((10, 8), (10, 3))
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}.")
    parameter = next(module.parameters(), None)
    home = parameter.device if parameter is not None else None
    target = torch.device(device) if device is not None else (home or torch.device("cpu"))
    modes = [(layer_, layer_.training) for layer_ in module.modules()]
    features, logits = [], []
    try:
        if device is not None and home is not None and home != target:
            module.to(target)
        module.eval()
        with torch.no_grad(), capture_features(module, layer) as captured:
            for batch in _batches(X, batch_size, parameter.dtype if parameter is not None
                                  else None):
                output = _first(module(batch.to(target)))
                if len(captured) != 1 or captured[0].shape[0] != output.shape[0]:
                    raise ValueError(
                        f"The feature layer ran {len(captured)} times in one forward of "
                        f"{output.shape[0]} rows; features need a layer that runs once per "
                        "forward on the whole batch. Pass layer='name' of such a submodule.")
                features.append(captured.pop().cpu())
                logits.append(output.detach().cpu())
    finally:
        for layer_, training in modes:
            layer_.training = training   # each its own: train() would recurse
        if device is not None and home is not None and home != target:
            module.to(home)
    if not logits:
        raise ValueError("X has no rows; pass at least one.")
    return torch.cat(features).numpy(), torch.cat(logits).numpy()
