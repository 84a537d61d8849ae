"""Auxiliary outliers: where they are kept during fit and how a step draws them.

The estimator keeps the auxiliary data here for the duration of one ``fit``
only (it is dropped afterwards, so it never travels with a pickled model).
A *sampler* decides which outliers each training step sees; GReg draws them
at random (:class:`RandomOutlierSampler`), GReg+ selects them by energy
(:class:`skood.EnergySampler`) through the same methods: ``reset`` returns the
state of one fit, ``draw`` takes it back at each step, and the optional
``default_ratio`` gives the outliers per ID sample.

A fit collects its outliers once, before training (:func:`collect_outliers`):
``X_aux``, the rows of ``X`` labelled -1 and those a ``synthesizer`` makes from
the training rows (:func:`synthesized_outliers`).
"""
from collections.abc import Callable
from typing import NamedTuple

import numpy as np
import torch

from ._seeds import synthesizer_seed
from ._validation import check_outliers, is_dataset
from .data import as_float_sample, sample_of

__all__ = ["AuxiliaryData", "OutlierStream", "PoolScorer", "RandomOutlierSampler",
           "collect_outliers", "default_ratio", "synthesized_outliers"]


class AuxiliaryData:
    """Outliers held either as one float32 tensor on the host or as a torch Dataset.

    Parameters
    ----------
    data : torch.Tensor or torch.utils.data.Dataset
        A tensor of shape ``(n_outliers, ...)``, or a Dataset whose
        items are samples (or tuples whose first element is the sample). A
        ``TensorDataset`` is kept as its first tensor.

    Examples
    --------
    >>> import torch
    >>> aux = AuxiliaryData(torch.arange(6.0).reshape(3, 2))
    >>> aux.take(torch.tensor([2, 0]), "cpu").tolist()
    [[4.0, 5.0], [0.0, 1.0]]
    """

    def __init__(self, data):
        # A TensorDataset's samples are a tensor: keep that, so that it is
        # gathered in one step and moved to the training device like one.
        if isinstance(data, torch.utils.data.TensorDataset):
            data = data.tensors[0]
        self.data = data
        self._loader_params = None
        self._feeds = {}

    #: Tensors up to this size are moved to a CUDA training device once per fit,
    #: so that a step gathers its outliers there without a host-to-device copy;
    #: larger ones stay on the host and are copied batch by batch, as skorch
    #: copies the in-distribution batches.
    max_device_bytes = 1 << 30

    def __len__(self):
        return len(self.data)

    @property
    def device(self):
        """Where the outliers are kept: a tensor's device, or the CPU for a Dataset."""
        return self.data.device if isinstance(self.data, torch.Tensor) else torch.device("cpu")

    def to_device(self, device):
        """Place a tensor for fast per-step gathers on ``device``; return self."""
        device = torch.device(device)
        if device.type != "cuda" or not isinstance(self.data, torch.Tensor):
            return self
        if self.data.numel() * self.data.element_size() <= self.max_device_bytes:
            self.data = self.data.to(device)
        return self

    def read_with(self, loader_params):
        """Read a Dataset's outliers through a DataLoader with ``loader_params``
        (``num_workers``, ``pin_memory``, ...) in :meth:`take_next`; return self.

        Only for a Dataset (a tensor is gathered in one step) and only when the
        parameters ask for worker processes or pinned memory.
        """
        if not isinstance(self.data, torch.Tensor) and (
                (loader_params.get("num_workers") or 0) > 0 or loader_params.get("pin_memory")):
            self._loader_params = dict(loader_params)
        return self

    def take_next(self, stream, n, device):
        """The next ``n`` outliers of ``stream`` (an :class:`OutlierStream`) on ``device``.

        The same outliers as ``take(stream.next_indices(n), device)``. After
        :meth:`read_with`, a Dataset is read ahead of the steps by a DataLoader
        whose batches are the stream's next indices, in its worker processes:
        only what the steps draw next is in memory, never the whole set.
        """
        if self._loader_params is None:
            return self.take(stream.next_indices(n), device)
        feed = self._feeds.get(id(stream))
        if feed is None:
            feed = self._feeds[id(stream)] = _PrefetchedStream(
                self.data, stream, n, self._loader_params)
        return feed.next(n).to(device, non_blocking=True)

    def close(self):
        """Stop the DataLoader workers of :meth:`take_next` (at the end of a fit)."""
        self._feeds = {}

    def take(self, indices, device):
        """Return the outliers at ``indices`` (a long tensor) on ``device``.

        For a tensor, and for the samples of a ``TensorDataset``, this is one
        gather and one (asynchronous when pinned) host-to-device copy. Another
        Dataset is read as a DataLoader reads it: with one ``__getitems__(indices)``
        call when it defines that batched read, else item by item.
        """
        data = self.data
        if isinstance(data, torch.Tensor):
            if data.device != indices.device:
                indices = indices.to(data.device, non_blocking=True)
            return data[indices].to(device, dtype=torch.float32, non_blocking=True)
        read_many = getattr(data, "__getitems__", None)
        positions = indices.tolist()
        items = read_many(positions) if callable(read_many) else [data[i] for i in positions]
        batch = torch.stack([as_float_sample(sample_of(item)) for item in items])
        return batch.to(device, non_blocking=True)


class PoolScorer(NamedTuple):
    """What the estimator hands a sampler to score candidate outliers with during a fit.

    ``module`` is the network being trained (for hooks on its layers);
    ``energies(x)`` forwards ``x`` in eval mode, without gradients and in the
    training precision, and returns the energy of each row (lower = more
    in-distribution).
    """

    module: torch.nn.Module
    energies: Callable[[torch.Tensor], torch.Tensor]


class OutlierStream:
    """A stream of random permutations of ``n_outliers`` indices: every index once
    before any is used again. The per-fit state of :class:`RandomOutlierSampler`.

    Parameters
    ----------
    n_outliers : int
    seed : int
    index_device : torch.device or str, default="cpu"
        Where the permutations are drawn: where the outliers are kept
        (:attr:`AuxiliaryData.device`), so that gathering a batch needs no
        host-to-device copy of indices.

    Examples
    --------
    >>> stream = OutlierStream(4, seed=0)
    >>> sorted(stream.next_indices(4).tolist())   # one walk through all outliers
    [0, 1, 2, 3]
    """

    def __init__(self, n_outliers, seed, index_device="cpu"):
        self.n_outliers = n_outliers
        self.seed = seed
        self.generator = torch.Generator(device=torch.device(index_device)).manual_seed(seed)
        self.order = self._permutation()
        self.position = 0

    def _permutation(self):
        return torch.randperm(self.n_outliers, generator=self.generator,
                              device=self.generator.device)

    def next_indices(self, n):
        """Indices (long tensor on the index device) of the next ``n`` outliers of the stream."""
        chunks, needed = [], n
        while needed > 0:
            if self.position == self.n_outliers:
                self.order = self._permutation()
                self.position = 0
            stop = min(self.position + needed, self.n_outliers)
            chunks.append(self.order[self.position:stop])
            needed -= stop - self.position
            self.position = stop
        return chunks[0] if len(chunks) == 1 else torch.cat(chunks)


class RandomOutlierSampler:
    """Draw outliers uniformly without replacement, walking through all of them.

    The draw is a stream of random permutations of the auxiliary set
    (:class:`OutlierStream`): every outlier is used once before any is used
    again, and a new permutation starts when one is exhausted. This is GReg's
    sampler (no energy-based selection).

    A sampler holds no state of its own: :meth:`reset` returns the state of one
    fit, which the estimator hands back to every :meth:`draw` and drops at the
    end of the fit.

    Examples
    --------
    >>> import torch
    >>> sampler = RandomOutlierSampler()
    >>> aux = AuxiliaryData(torch.arange(4.0).reshape(4, 1))
    >>> state = sampler.reset(4, seed=0, device="cpu")
    >>> sorted(sampler.draw(state, aux, 2, 4, "cpu").flatten().tolist())
    [0.0, 1.0, 2.0, 3.0]
    """

    def default_ratio(self):
        """Outliers per in-distribution sample when ``aux_batch_ratio`` is None."""
        return 1.0

    def reset(self, n_outliers, seed, device, *, index_device="cpu", pool_scorer=None):
        """Start the stream of a fit, seeded with the int ``seed``; return the fit's state.

        Parameters
        ----------
        n_outliers : int
            Size of the auxiliary set.
        seed : int
        device : torch.device or str
            The training device (not needed by the random draw).
        index_device : torch.device or str, default="cpu"
            Where the outliers are kept; the permutations are drawn there.
        pool_scorer : PoolScorer, optional
            Not used by the random sampler.

        Returns
        -------
        OutlierStream
        """
        return OutlierStream(n_outliers, seed, index_device)

    def draw(self, state, aux, batch_size, n_outliers, device):
        """Return ``n_outliers`` outliers on ``device`` for an ID batch of ``batch_size``.

        Parameters
        ----------
        state : OutlierStream
            What :meth:`reset` returned for this fit.
        aux : AuxiliaryData
        batch_size : int
            Size of the in-distribution batch (not used by the random draw).
        n_outliers : int
        device : torch.device or str

        Returns
        -------
        torch.Tensor of shape (n_outliers, ...), float32
        """
        return aux.take_next(state, n_outliers, device)


def default_ratio(sampler):
    """Outliers per ID sample for ``aux_batch_ratio=None``: the sampler's, else 1."""
    method = getattr(sampler, "default_ratio", None)
    return float(method()) if callable(method) else 1.0


def collect_outliers(estimator, X_outlier_rows, X_aux, made=None):
    """The fit's outliers: ``X_aux``, the rows labelled -1 and the synthesizer's, in that order.

    Parameters
    ----------
    estimator : GradRegOODClassifier
        Fitted to the input shape of ``X`` (``X_aux`` is checked against it).
    X_outlier_rows : ndarray or torch Subset
        The rows of ``X`` labelled -1 (a Subset of a Dataset ``X``).
    X_aux : array-like, tensor, DataFrame, Dataset or None
    made : torch.Tensor or None
        The synthesizer's rows (:func:`synthesized_outliers`).

    Returns
    -------
    AuxiliaryData or None
        ``None`` when there are none and the objective needs none.
    """
    parts = []
    if X_aux is not None:
        parts.append(check_outliers(estimator, X_aux))
    if len(X_outlier_rows) > 0:
        parts.append(X_outlier_rows if is_dataset(X_outlier_rows)
                     else torch.from_numpy(X_outlier_rows))
    if made is not None:
        parts.append(made)
    if not parts:
        if estimator._objective().uses_outliers:
            raise ValueError(
                "No auxiliary outliers: pass them as X_aux=... or as rows of X labelled "
                "-1 in y, or make them with synthesizer=... (see skood.synthesis). (Only "
                "with lambda_energy=0 and lambda_grad=0 does training run without "
                "outliers.)")
        return None
    if len(parts) == 1:
        return AuxiliaryData(parts[0])
    if all(isinstance(part, torch.Tensor) for part in parts):
        return AuxiliaryData(torch.cat(parts))
    tensors = [torch.utils.data.TensorDataset(p) if isinstance(p, torch.Tensor) else p
               for p in parts]
    return AuxiliaryData(torch.utils.data.ConcatDataset(tensors))


def synthesized_outliers(estimator, X_id, y_encoded, classes, split, seed, fit_params):
    """Run the estimator's ``synthesizer`` once on the rows the network trains on.

    With skorch's validation split (``train_split`` set), the split is made here,
    once, so that the synthesizer sees only the training rows; the estimator's
    ``get_split_datasets`` hands the same split to skorch.

    Parameters
    ----------
    estimator : GradRegOODClassifier
    X_id : ndarray
        The in-distribution rows left to skorch.
    y_encoded : ndarray of int64
        Their class indices.
    classes : ndarray
        The classes; the synthesizer gets the labels ``classes[y]``.
    split : tuple or None
        The split made so far (:func:`skood._splits.held_out_split`).
    seed : int
        The fit's seed; the synthesizer gets a seed derived from it.
    fit_params : dict
        skorch's fit parameters, for the split.

    Returns
    -------
    made : torch.Tensor or None
        ``None`` without a synthesizer.
    split : tuple or None
        The split skorch is to use.
    """
    if estimator.synthesizer is None:
        return None, split
    X_train, y_train = X_id, y_encoded
    if estimator.train_split is not None:
        split = estimator.get_split_datasets(X_id, y_encoded, **fit_params)
        X_train, y_train = _dataset_rows(estimator, split[0])
    return _make_outliers(estimator, X_train, classes[y_train], seed), split


def _dataset_rows(estimator, dataset):
    """The rows (X, encoded y) of a skorch training dataset, as numpy arrays."""
    Xs, ys = [], []
    for Xi, yi in estimator.get_iterator(dataset, training=False):
        Xs.append(np.asarray(Xi))
        ys.append(np.asarray(yi))
    return np.concatenate(Xs), np.concatenate(ys).astype(np.int64)


def _make_outliers(estimator, X_train, y_train, seed):
    """Call the synthesizer once on a fit's training rows; check and return its rows."""
    synthesizer = estimator.synthesizer
    made = synthesizer.make_outliers(X_train, y_train, synthesizer_seed(seed))
    shape = tuple(np.shape(made))
    if len(shape) < 1 or shape[0] == 0 or shape[1:] != estimator.input_shape_:
        rows = ", ".join(["n", *map(str, estimator.input_shape_)])
        raise ValueError(
            f"synthesizer.make_outliers returned an array of shape {shape}; it must "
            f"return at least one row shaped like X's rows, ({rows}). "
            f"synthesizer is {synthesizer!r}.")
    try:
        made = np.asarray(made, dtype=np.float32)
    except (TypeError, ValueError) as error:    # e.g. strings
        raise ValueError(
            f"synthesizer.make_outliers returned values that are not numbers ({error}); it "
            f"must return numbers. synthesizer is {synthesizer!r}.") from None
    if not np.all(np.isfinite(made)):
        raise ValueError(f"synthesizer.make_outliers returned NaN or inf values; "
                         f"synthesizer is {synthesizer!r}.")
    return torch.from_numpy(np.ascontiguousarray(made))


def _stack_samples(items):
    """A DataLoader's ``collate_fn``: the float32 samples of a batch of items, stacked."""
    return torch.stack([as_float_sample(sample_of(item)) for item in items])


class _StreamChunks:
    """A DataLoader's ``batch_sampler``: the stream's indices, ``chunk`` at a time, forever."""

    def __init__(self, stream, chunk):
        self.stream, self.chunk = stream, chunk

    def __iter__(self):
        while True:
            yield self.stream.next_indices(self.chunk).tolist()


class _PrefetchedStream:
    """The outliers of a stream in stream order, read ahead by a DataLoader."""

    def __init__(self, data, stream, chunk, loader_params):
        loader = torch.utils.data.DataLoader(
            data, batch_sampler=_StreamChunks(stream, chunk), collate_fn=_stack_samples,
            generator=torch.Generator().manual_seed(stream.seed), **loader_params)
        self.batches = iter(loader)
        self.pending, self.position = None, 0

    def next(self, n):
        parts = []
        while n > 0:
            if self.pending is None or self.position == len(self.pending):
                self.pending, self.position = next(self.batches), 0
            stop = min(self.position + n, len(self.pending))
            parts.append(self.pending[self.position:stop])
            n -= stop - self.position
            self.position = stop
        return parts[0] if len(parts) == 1 else torch.cat(parts)
