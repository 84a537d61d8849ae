"""Image augmentation for a torch ``Dataset``'s ``transform``, without torchvision.

Each transform is a callable that takes one image, a torch tensor or numpy
array shaped ``(C, H, W)`` (channels first) or ``(H, W)``, and returns a new
float32 tensor of the same number of dimensions, on the image's device. A uint8 image is first
scaled to ``[0, 1]`` (divided by 255, as torchvision's ``ToTensor`` does);
a floating-point image keeps its values. Other integer or boolean images are
refused: convert them to float or uint8 first.

Random transforms draw from torch's global generator by default, like
torchvision's, so a ``DataLoader`` that seeds each worker gives each worker
its own augmentations. Pass ``generator=`` (a :class:`torch.Generator`) for a
sequence of draws that depends on that generator only.

torchvision's transforms work in the same places (any callable on one image
does), and :class:`Compose` mixes them with these; torchvision is not needed
for this module.
"""
import numbers

import numpy as np
import torch
import torch.nn.functional as F
# validate_parameter_constraints is in a private scikit-learn module; it is the function that
# scikit-learn's estimators use for their _parameter_constraints, and skood's estimator too.
from sklearn.utils._param_validation import Interval, StrOptions, validate_parameter_constraints

__all__ = ["Compose", "Normalize", "RandomCrop", "RandomHorizontalFlip"]


def _as_float_image(image, caller):
    """One image as a float32 tensor (C, H, W) or (H, W); uint8 is scaled to [0, 1]."""
    if isinstance(image, np.ndarray):
        if image.dtype == np.uint8 or np.issubdtype(image.dtype, np.floating):
            image = torch.from_numpy(np.ascontiguousarray(image))
        else:
            raise TypeError(f"{caller} takes a float or uint8 image, got a numpy array of dtype "
                            f"{image.dtype}; convert it with .astype(np.float32) first.")
    elif not isinstance(image, torch.Tensor):
        raise TypeError(
            f"{caller} takes one image as a torch tensor or numpy array shaped (C, H, W) or "
            f"(H, W), got {type(image).__name__}. For a PIL image use "
            "np.asarray(image).transpose(2, 0, 1) (PIL holds images as (H, W, C)).")
    if image.dim() not in (2, 3):
        raise ValueError(f"{caller} takes one image shaped (C, H, W) or (H, W), got shape "
                         f"{tuple(image.shape)}; apply it to each image of a batch.")
    if image.dtype == torch.uint8:
        return image.to(torch.float32) / 255.0
    if not image.is_floating_point():
        raise TypeError(f"{caller} takes a float or uint8 image, got a tensor of dtype "
                        f"{image.dtype}; convert it with .float() first.")
    return image.to(torch.float32)


def _check(instance, params):
    validate_parameter_constraints(instance._parameter_constraints, params,
                                   caller_name=type(instance).__name__)
    for name, value in params.items():
        # Interval(Integral) and Interval(Real) admit bools (True is an int): a bool is a mistake.
        if isinstance(value, (bool, np.bool_)):
            raise TypeError(f"{name} of {type(instance).__name__} must be a number, "
                            f"got {value!r}.")


def _draw_device(generator):
    """Where a draw with ``generator`` must run: the generator's own device (torch
    draws on the default device otherwise, and a CUDA generator refuses the CPU);
    ``None`` (the default device) for torch's global generator."""
    return None if generator is None else generator.device


def _repr(instance, names):
    args = ", ".join(f"{name}={getattr(instance, name)!r}" for name in names)
    return f"{type(instance).__name__}({args})"


class RandomCrop:
    """Crop a random ``size`` window of an image padded by ``padding`` pixels on each side.

    For example ``RandomCrop(32, padding=4)`` pads a 32x32 image to 40x40 and
    takes a 32x32 window at a uniformly random position (one of 9 x 9).

    Parameters
    ----------
    size : int or (int, int)
        ``(height, width)`` of the crop; an int gives a square crop. At most the
        padded image's height and width.
    padding : int, default=0
        Pixels added to each of the four sides before cropping.
    padding_mode : {"constant", "reflect"}, default="constant"
        ``"constant"`` pads with ``fill``; ``"reflect"`` mirrors the image
        without repeating its edge pixel (``padding`` must then be smaller than
        the image's height and width).
    fill : float or sequence of float, default=0.0
        The value of the padded pixels with ``padding_mode="constant"``: one
        value, or one per channel (e.g. the value of black after
        standardisation, ``-mean / std``, for images already standardised).
        Applies to the image as the transform sees it (a uint8 image after
        scaling to ``[0, 1]``). Must stay 0 with ``padding_mode="reflect"``.
    generator : torch.Generator or None, default=None
        Source of the crop positions, drawn on the generator's device (a CUDA
        generator draws on its GPU); ``None`` uses torch's global generator.
        With ``DataLoader(num_workers > 0)`` every worker gets a copy of a given
        generator, so the workers repeat each other's crops: leave it ``None``
        there.

    Examples
    --------
    >>> import torch
    >>> crop = RandomCrop(32, padding=4, generator=torch.Generator().manual_seed(0))
    >>> crop(torch.rand(3, 32, 32)).shape
    torch.Size([3, 32, 32])
    """

    _parameter_constraints = {
        "size": [Interval(numbers.Integral, 1, None, closed="left"), tuple, list],
        "padding": [Interval(numbers.Integral, 0, None, closed="left")],
        "padding_mode": [StrOptions({"constant", "reflect"})],
        "fill": [numbers.Real, tuple, list],
        "generator": [None, torch.Generator],
    }

    def __init__(self, size, padding=0, padding_mode="constant", fill=0.0, generator=None):
        _check(self, {"size": size, "padding": padding, "padding_mode": padding_mode,
                      "fill": fill, "generator": generator})
        values = fill if isinstance(fill, (tuple, list)) else (fill,)
        if not values or not all(isinstance(v, numbers.Real) and not isinstance(v, (bool, np.bool_))
                                 and np.isfinite(v) for v in values):
            raise ValueError(f"fill of RandomCrop must be a finite number or a non-empty "
                             f"sequence of finite numbers (one per channel), got {fill!r}.")
        if padding_mode == "reflect" and any(v != 0 for v in values):
            raise ValueError(f"fill of RandomCrop applies to padding_mode='constant' only, got "
                             f"fill={fill!r} with padding_mode='reflect'; drop fill or use "
                             "padding_mode='constant'.")
        if isinstance(size, (tuple, list)) and not (
                len(size) == 2 and all(isinstance(s, numbers.Integral)
                                       and not isinstance(s, (bool, np.bool_)) and s >= 1
                                       for s in size)):
            raise ValueError(f"size of RandomCrop must be an int >= 1 or a pair (height, width) "
                             f"of ints >= 1, got {size!r}.")
        self.size = size
        self.padding = padding
        self.padding_mode = padding_mode
        self.fill = fill
        self.generator = generator

    def __repr__(self):
        return _repr(self, ["size", "padding", "padding_mode", "fill", "generator"])

    def __call__(self, image):
        """Crop one image.

        Parameters
        ----------
        image : torch.Tensor or ndarray of shape (C, H, W) or (H, W)
            uint8 (scaled to ``[0, 1]``) or floating point.

        Returns
        -------
        torch.Tensor of shape (C, height, width) or (height, width), float32
        """
        image = _as_float_image(image, "RandomCrop")
        flat = image.dim() == 2
        if flat:
            image = image.unsqueeze(0)
        height, width = (self.size, self.size) if isinstance(self.size, numbers.Integral) \
            else tuple(self.size)
        p = int(self.padding)
        if p:
            if self.padding_mode == "reflect" and p >= min(image.shape[1:]):
                raise ValueError(
                    f"RandomCrop: padding_mode='reflect' needs padding smaller than the image's "
                    f"height and width, got padding={p} for an image of height "
                    f"{image.shape[1]} and width {image.shape[2]}; use a smaller padding or "
                    "padding_mode='constant'.")
            if self.padding_mode == "constant" and isinstance(self.fill, (tuple, list)):
                if len(self.fill) != image.shape[0]:
                    raise ValueError(
                        f"RandomCrop: fill has {len(self.fill)} values but the image has "
                        f"{image.shape[0]} channels; give one value per channel, or one "
                        "number for all.")
                padded = torch.tensor(self.fill, dtype=image.dtype, device=image.device)
                padded = padded.view(-1, 1, 1).repeat(1, image.shape[1] + 2 * p,
                                                      image.shape[2] + 2 * p)
                padded[:, p:p + image.shape[1], p:p + image.shape[2]] = image
                image = padded
            elif self.padding_mode == "constant":
                image = F.pad(image, (p, p, p, p), mode="constant", value=float(self.fill))
            else:
                image = F.pad(image, (p, p, p, p), mode=self.padding_mode)
        if height > image.shape[1] or width > image.shape[2]:
            raise ValueError(
                f"RandomCrop: size {(height, width)} is larger than the image, which is "
                f"{tuple(image.shape[1:])} after padding by {p}; pass a smaller size or a "
                "larger padding.")
        device = _draw_device(self.generator)
        top = int(torch.randint(image.shape[1] - height + 1, (1,), generator=self.generator,
                                device=device))
        left = int(torch.randint(image.shape[2] - width + 1, (1,), generator=self.generator,
                                 device=device))
        # A copy: the result never shares memory with the caller's image.
        crop = image[:, top:top + height, left:left + width].clone()
        return crop[0] if flat else crop


class RandomHorizontalFlip:
    """Mirror an image left to right with probability ``p``.

    Parameters
    ----------
    p : float in [0, 1], default=0.5
        Probability of the flip.
    generator : torch.Generator or None, default=None
        Source of the coin tosses; ``None`` uses torch's global generator (see
        :class:`RandomCrop` on ``DataLoader`` workers).

    Examples
    --------
    >>> import torch
    >>> flip = RandomHorizontalFlip(p=1.0)
    >>> flip(torch.tensor([[1.0, 2.0, 3.0]])).tolist()
    [[3.0, 2.0, 1.0]]
    """

    _parameter_constraints = {
        "p": [Interval(numbers.Real, 0, 1, closed="both")],
        "generator": [None, torch.Generator],
    }

    def __init__(self, p=0.5, generator=None):
        _check(self, {"p": p, "generator": generator})
        self.p = p
        self.generator = generator

    def __repr__(self):
        return _repr(self, ["p", "generator"])

    def __call__(self, image):
        """Flip one image, or return it unchanged.

        Parameters
        ----------
        image : torch.Tensor or ndarray of shape (C, H, W) or (H, W)
            uint8 (scaled to ``[0, 1]``) or floating point.

        Returns
        -------
        torch.Tensor of the same shape, float32
        """
        image = _as_float_image(image, "RandomHorizontalFlip")
        # One draw per call whatever p is, so that p does not change later draws' alignment.
        if float(torch.rand(1, generator=self.generator,
                            device=_draw_device(self.generator))) < self.p:
            return image.flip(-1)
        return image.clone()   # never the caller's own memory


class Normalize:
    """Subtract a per-channel mean and divide by a per-channel standard deviation.

    Parameters
    ----------
    mean : float or sequence of float
        One value per channel, or one for all channels.
    std : float or sequence of float
        One positive value per channel, or one for all channels.

    Examples
    --------
    >>> import torch
    >>> normalize = Normalize(mean=[0.5, 0.25], std=[0.5, 0.25])
    >>> normalize(torch.ones(2, 1, 1)).flatten().tolist()
    [1.0, 3.0]
    """

    _parameter_constraints = {
        "mean": [numbers.Real, tuple, list, np.ndarray, torch.Tensor],
        "std": [numbers.Real, tuple, list, np.ndarray, torch.Tensor],
    }

    def __init__(self, mean, std):
        _check(self, {"mean": mean, "std": std})
        for name, value in (("mean", mean), ("std", std)):
            values = np.asarray(value.tolist() if isinstance(value, torch.Tensor) else value)
            if values.ndim > 1 or values.size == 0 or not np.issubdtype(values.dtype, np.number) \
                    or np.issubdtype(values.dtype, np.bool_):
                raise ValueError(f"{name} of Normalize must be a number or a flat sequence of "
                                 f"numbers (one per channel), got {value!r}.")
            if not np.all(np.isfinite(values)):
                raise ValueError(f"{name} of Normalize must be finite, got {value!r}.")
        if np.any(np.asarray(std.tolist() if isinstance(std, torch.Tensor) else std) <= 0):
            raise ValueError(f"std of Normalize must be positive (it divides), got {std!r}.")
        self.mean = mean
        self.std = std

    def __repr__(self):
        return _repr(self, ["mean", "std"])

    def __call__(self, image):
        """Normalise one image.

        Parameters
        ----------
        image : torch.Tensor or ndarray of shape (C, H, W) or (H, W)
            uint8 (scaled to ``[0, 1]`` first) or floating point. An (H, W)
            image has one channel.

        Returns
        -------
        torch.Tensor of the same shape, float32
            ``(image[c] - mean[c]) / std[c]`` for each channel ``c``.
        """
        image = _as_float_image(image, "Normalize")
        channels = image.shape[0] if image.dim() == 3 else 1
        stats = []
        for name, value in (("mean", self.mean), ("std", self.std)):
            values = torch.as_tensor(value, dtype=torch.float32, device=image.device).reshape(-1)
            if values.numel() not in (1, channels):
                raise ValueError(
                    f"Normalize: {name} has {values.numel()} values but the image has "
                    f"{channels} channel(s) (shape {tuple(image.shape)}, channels first); give "
                    "one value per channel or a single value.")
            stats.append(values.reshape(-1, 1, 1) if image.dim() == 3 else values)
        return (image - stats[0]) / stats[1]


class Compose:
    """Apply transforms one after the other.

    Parameters
    ----------
    transforms : list or tuple of callables
        Each takes an image and returns one: the transforms of this module,
        torchvision's, or your own functions.

    Examples
    --------
    >>> import torch
    >>> augment = Compose([RandomCrop(4, padding=1), RandomHorizontalFlip(),
    ...                    Normalize(mean=0.5, std=0.25)])
    >>> augment(torch.rand(3, 4, 4)).shape
    torch.Size([3, 4, 4])
    """

    _parameter_constraints = {"transforms": [list, tuple]}

    def __init__(self, transforms):
        _check(self, {"transforms": transforms})
        for i, transform in enumerate(transforms):
            if not callable(transform):
                raise TypeError(f"transforms of Compose must be callables (each takes an image "
                                f"and returns one), got {transform!r} at position {i}.")
        self.transforms = transforms

    def __repr__(self):
        return _repr(self, ["transforms"])

    def __call__(self, image):
        """Apply each transform in turn.

        Parameters
        ----------
        image : object
            What the first transform takes (for this module's transforms: a
            tensor or array of shape (C, H, W) or (H, W)).

        Returns
        -------
        object
            What the last transform returns (``image`` itself when
            ``transforms`` is empty).
        """
        for transform in self.transforms:
            image = transform(image)
        return image
