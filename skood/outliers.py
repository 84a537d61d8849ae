"""Auxiliary outliers: where they are kept during fit and how a step draws them.

The estimator keeps the auxiliary data here for the duration of one ``fit``
only (it is dropped afterwards, so it never travels with a pickled model).
A *sampler* decides which outliers each training step sees; GReg draws them
at random (:class:`RandomOutlierSampler`), GReg+ selects them by energy
(:class:`skood.EnergySampler`) through the same methods: ``default_ratio``,
``reset``, ``draw`` and ``clear``.
"""
import torch
from torch.utils.data._utils.collate import default_collate

__all__ = ["AuxiliaryData", "RandomOutlierSampler"]


class AuxiliaryData:
    """Outliers held either as one float32 tensor on the host or as a torch Dataset.

    Parameters
    ----------
    data : torch.Tensor or torch.utils.data.Dataset
        A tensor of shape ``(n_outliers, *input_shape)``, or a Dataset whose
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
        items = [item[0] if isinstance(item, (tuple, list)) else item for item in items]
        return torch.as_tensor(default_collate(items)).to(device, dtype=torch.float32,
                                                          non_blocking=True)


class RandomOutlierSampler:
    """Draw outliers uniformly without replacement, walking through all of them.

    The draw is a stream of random permutations of the auxiliary set: every
    outlier is used once before any is used again, and a new permutation
    starts when one is exhausted. This is GReg's sampler (no energy-based
    selection).

    Examples
    --------
    >>> sampler = RandomOutlierSampler()
    >>> sampler.reset(4, seed=0, device="cpu")
    >>> sorted(sampler.next_indices(4).tolist())   # one walk through all outliers
    [0, 1, 2, 3]
    """

    def default_ratio(self):
        """Outliers per in-distribution sample when ``aux_batch_ratio`` is None."""
        return 1.0

    def reset(self, n_outliers, seed, device, index_device="cpu"):
        """Start a new stream for a fit, seeded with the int ``seed``.

        The permutations are drawn on ``index_device``, where the outliers are
        kept (:attr:`AuxiliaryData.device`), so that gathering a batch needs no
        host-to-device copy of indices. ``device`` (the training device) is not
        needed by the random draw.
        """
        index_device = torch.device(index_device)
        self.n_outliers_ = n_outliers
        self.generator_ = torch.Generator(device=index_device).manual_seed(seed)
        self.order_ = self._permutation()
        self.position_ = 0

    def _permutation(self):
        return torch.randperm(self.n_outliers_, generator=self.generator_,
                              device=self.generator_.device)

    def next_indices(self, n):
        """Indices (long tensor on the index device) of the next ``n`` outliers of the stream."""
        chunks, needed = [], n
        while needed > 0:
            if self.position_ == self.n_outliers_:
                self.order_ = self._permutation()
                self.position_ = 0
            stop = min(self.position_ + needed, self.n_outliers_)
            chunks.append(self.order_[self.position_:stop])
            needed -= stop - self.position_
            self.position_ = stop
        return chunks[0] if len(chunks) == 1 else torch.cat(chunks)

    def draw(self, net, aux, batch_size, n_outliers, device):
        """Return ``n_outliers`` outliers on ``device`` for an ID batch of ``batch_size``.

        ``net`` is the estimator being fitted; the random sampler does not use
        it, the energy sampler scores a candidate pool with it.
        """
        return aux.take(self.next_indices(n_outliers), device)

    def clear(self):
        """Drop per-fit state so that nothing of it is pickled with the model."""
        for name in ("n_outliers_", "generator_", "order_", "position_"):
            self.__dict__.pop(name, None)
