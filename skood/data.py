"""torch Datasets for :meth:`skood.GradRegOODClassifier.fit`: in-memory arrays with a transform.

:class:`ArrayDataset` serves arrays that are already in memory (e.g. from
:mod:`skood.datasets`) as ``(image, label)`` pairs, each image passed through a
``transform`` when it is read, so that ``fit`` trains on augmented images.
Any other torch ``Dataset`` (torchvision's, one of your own) is accepted in the
same places.
"""
import numpy as np
import torch

__all__ = ["ArrayDataset"]


class ArrayDataset(torch.utils.data.Dataset):
    """Rows of an array as a torch Dataset, each sample transformed when it is read.

    Parameters
    ----------
    X : array-like of shape (n_samples, ...)
        numpy array or torch tensor; kept as it is (no copy), e.g. uint8
        images, which the transforms of :mod:`skood.transforms` scale to
        ``[0, 1]`` when they read them.
    y : array-like of shape (n_samples,), optional
        Labels; -1 marks auxiliary-outlier rows, as in ``fit(X, y)``. Without
        ``y`` the items are bare samples (e.g. for ``X_aux`` or ``predict``).
    transform : callable, optional
        Called on each sample when it is read, e.g.
        ``skood.transforms.RandomHorizontalFlip()``; its result is the item's
        sample. ``None``: the sample as stored.

    Attributes
    ----------
    targets : ndarray of shape (n_samples,) or None
        ``y`` as a numpy array; ``fit`` reads the labels from it, without
        reading the samples.

    Examples
    --------
    >>> import numpy as np
    >>> from skood.data import ArrayDataset
    >>> from skood.transforms import RandomHorizontalFlip
    >>> data = ArrayDataset(np.zeros((4, 1, 8, 8), dtype=np.uint8), [0, 1, 0, -1],
    ...                     transform=RandomHorizontalFlip())
    >>> image, label = data[3]
    >>> tuple(image.shape), image.dtype, label
    ((1, 8, 8), torch.float32, -1)
    """

    def __init__(self, X, y=None, transform=None):
        if not hasattr(X, "shape") or len(X.shape) < 2:
            raise ValueError(
                "ArrayDataset's X must be an array or tensor of shape (n_samples, ...), got "
                f"{type(X).__name__} of shape {getattr(X, 'shape', None)}.")
        if transform is not None and not callable(transform):
            raise TypeError(f"ArrayDataset's transform must be callable or None, got "
                            f"{type(transform).__name__}.")
        targets = None
        if y is not None:
            targets = np.asarray(y.detach().cpu() if isinstance(y, torch.Tensor) else y)
            if targets.shape != (len(X),):
                raise ValueError(
                    f"ArrayDataset's y must hold one label per row of X ({len(X)}), got shape "
                    f"{targets.shape}.")
        self.X = X
        self.targets = targets
        self.transform = transform

    def __len__(self):
        return len(self.X)

    def __getitem__(self, index):
        sample = self.X[index]
        if self.transform is not None:
            sample = self.transform(sample)
        if self.targets is None:
            return sample
        label = self.targets[index]
        return sample, (label.item() if isinstance(label, np.generic) else label)


def as_float_sample(sample):
    """One sample as a float32 tensor (no copy when it is one already)."""
    if isinstance(sample, torch.Tensor):
        return sample.to(torch.float32)
    return torch.from_numpy(np.asarray(sample, dtype=np.float32))


def sample_of(item):
    """The sample of a Dataset item: the first element of a ``(sample, label)`` pair, else
    the item itself."""
    return item[0] if isinstance(item, (tuple, list)) else item


class LabelledRows(torch.utils.data.Dataset):
    """Rows ``indices`` of a user's Dataset as ``(float32 sample, label)`` pairs, the labels
    given (the items' own second elements are not used): what ``fit`` trains on.

    Parameters
    ----------
    dataset : torch Dataset
    indices : ndarray of int
    labels : ndarray of shape (len(indices),), int64, optional
        The encoded class of each row; ``None`` gives 0 (prediction).
    shape : tuple, optional
        The shape every sample must have (the first item's); a sample of another
        shape raises a ``ValueError`` naming its item, instead of torch's error
        when the batch is stacked.
    """

    def __init__(self, dataset, indices, labels=None, shape=None):
        self.dataset = dataset
        self.indices = np.asarray(indices, dtype=np.int64)
        self.labels = (np.zeros(len(self.indices), dtype=np.int64) if labels is None
                       else np.asarray(labels, dtype=np.int64))
        self.shape = None if shape is None else tuple(shape)

    def __len__(self):
        return len(self.indices)

    def __getitem__(self, index):
        item_index = int(self.indices[index])
        sample = as_float_sample(sample_of(self.dataset[item_index]))
        if self.shape is not None and tuple(sample.shape) != self.shape:
            raise ValueError(
                f"X's item {item_index} has a sample of shape {tuple(sample.shape)}, but the "
                f"first item's has shape {self.shape}: every sample of X must have the same "
                "shape (e.g. resize or crop the images in the Dataset's transform).")
        return sample, self.labels[index]

    def subset(self, positions):
        """The rows at ``positions`` (of this Dataset), as a LabelledRows of the same data."""
        positions = np.asarray(positions, dtype=np.int64)
        return LabelledRows(self.dataset, self.indices[positions], self.labels[positions],
                            self.shape)

    def with_data(self, dataset):
        """The same rows and labels, read from ``dataset`` (another view of the same samples)."""
        return LabelledRows(dataset, self.indices, self.labels, self.shape)
