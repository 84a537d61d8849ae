"""The generated image sets of :mod:`skood.datasets`: auxiliary outliers cropped from
photographs, texture and noise OOD test sets, and the resizing they use.

The photographs and textures are those scikit-image and scikit-learn ship inside their
wheels. Every generator returns float32 arrays of shape ``(n, 1, height, width)`` (noise:
``(n, channels, height, width)``) with values in ``[0, value_range]``, deterministic for a
given ``random_state``. The public names import from :mod:`skood.datasets`.
"""
import hashlib
import os

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.utils import check_random_state


#: Photographs used for auxiliary outliers (the analogue of the paper's 300K Random Images).
NATURAL_IMAGE_SOURCES = (
    "astronaut", "chelsea", "coffee", "hubble_deep_field", "rocket", "motorcycle_left",
    "motorcycle_right", "camera", "horse", "moon", "coins", "ihc", "retina", "cell",
    "clock_motion", "color", "logo", "china", "flower",
)
#: scikit-image textures used as an OOD test set (never among the outliers).
TEXTURE_SOURCES = ("brick", "grass", "gravel")


def _check_image_shape(image_shape):
    """``image_shape`` as a pair of ints, or a ValueError naming it."""
    if not (isinstance(image_shape, (tuple, list)) and len(image_shape) == 2 and all(
            isinstance(s, (int, np.integer)) and not isinstance(s, (bool, np.bool_)) and s >= 1
            for s in image_shape)):
        raise ValueError(f"image_shape must be a pair (height, width) of ints >= 1, "
                         f"got {image_shape!r}.")
    return tuple(int(s) for s in image_shape)


def _check_count(n):
    """``n``, the number of images, as an int, or a ValueError naming it."""
    if not isinstance(n, (int, np.integer)) or isinstance(n, (bool, np.bool_)) or n < 0:
        raise ValueError(f"n (the number of images) must be an int >= 0, got {n!r}.")
    return int(n)


def resize_images(images, image_shape):
    """Resize a stack of images (n, h, w) or (n, 1, h, w) with area averaging (or
    bilinear when enlarging); returns float32 (n, 1, height, width).

    Parameters
    ----------
    images : array-like of shape (n, h, w) or (n, channels, h, w)
    image_shape : (int, int)
        ``(height, width)`` of the result, each at least 1.

    Returns
    -------
    ndarray of shape (n, 1, height, width) or (n, channels, height, width), float32

    Examples
    --------
    >>> import numpy as np
    >>> resize_images(np.ones((2, 28, 28)), (8, 8)).shape
    (2, 1, 8, 8)
    """
    image_shape = _check_image_shape(image_shape)
    tensor = torch.as_tensor(np.asarray(images, dtype=np.float32))
    if tensor.dim() not in (3, 4):
        raise ValueError(f"images must be a stack of shape (n, height, width) or (n, channels, "
                         f"height, width), got shape {tuple(tensor.shape)}.")
    if tensor.dim() == 3:
        tensor = tensor.unsqueeze(1)
    enlarging = tensor.shape[-1] < image_shape[-1]
    mode = "bilinear" if enlarging else "area"
    kwargs = {"align_corners": False} if enlarging else {}
    return F.interpolate(tensor, size=tuple(image_shape), mode=mode, **kwargs).numpy()


def _load_source(name):
    """Greyscale image in [0, 1] as float32 from scikit-image's or scikit-learn's bundled files."""
    if name not in NATURAL_IMAGE_SOURCES + TEXTURE_SOURCES:
        raise ValueError(f"Unknown image source {name!r}; choose from "
                         f"{list(NATURAL_IMAGE_SOURCES)} (outliers) or {list(TEXTURE_SOURCES)}.")
    if name in ("china", "flower"):
        from sklearn.datasets import load_sample_image
        image = load_sample_image(f"{name}.jpg")
    else:
        try:
            import skimage.io
            import skimage.data
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise ImportError(
                "skood.datasets needs scikit-image for its bundled images: "
                'pip install -e ".[datasets]" in the skood checkout') from exc
        import os
        path = os.path.join(os.path.dirname(skimage.data.__file__), f"{name}.png")
        if not os.path.exists(path):
            path = path[:-4] + ".jpg"
        image = skimage.io.imread(path)
    image = np.asarray(image, dtype=np.float32)
    if image.ndim == 3:
        image = image[..., :3].mean(axis=2)  # drop alpha, average the colour channels
    if image.max() > 1.0:
        image = image / 255.0
    return image


def _random_crops(sources, n, image_shape, random_state, min_scale, max_scale, flips):
    rng = check_random_state(random_state)
    height, width = image_shape
    images = [_load_source(name) for name in sources]
    which = rng.randint(len(images), size=n)
    out = np.empty((n, 1, height, width), dtype=np.float32)
    for i in range(n):
        image = images[which[i]]
        side = min(image.shape)
        crop = int(rng.uniform(min_scale, max_scale) * side)
        crop = max(crop, max(height, width))
        top = rng.randint(image.shape[0] - crop + 1)
        left = rng.randint(image.shape[1] - crop + 1)
        patch = torch.from_numpy(np.ascontiguousarray(image[top:top + crop, left:left + crop]))
        patch = F.interpolate(patch[None, None], size=(height, width), mode="area")[0, 0]
        patch = patch.numpy()
        if flips and rng.rand() < 0.5:
            patch = patch[:, ::-1]
        if flips and rng.rand() < 0.5:
            patch = patch[::-1, :]
        out[i, 0] = patch
    return out


def make_natural_image_outliers(n, image_shape=(28, 28), *, value_range=1.0, random_state=None,
                                sources=NATURAL_IMAGE_SOURCES, dtype=np.float32, cache_dir=None):
    """Random crops, scales and flips of bundled photographs, greyscale, as auxiliary outliers.

    Each image is a crop of 5% to 100% of a photograph's shorter side at a
    random position, area-resized to ``image_shape`` and flipped at random. The
    result is deterministic for an int ``random_state``.

    Parameters
    ----------
    n : int
        Number of images (any size; 300,000 takes a few minutes once, then
        comes from ``cache_dir``).
    image_shape : (int, int), default=(28, 28)
    value_range : float, default=1.0
        Pixel values are scaled to ``[0, value_range]`` (16 for scikit-learn's digits).
        Ignored for ``dtype=np.uint8``, whose values are ``0..255``.
    random_state : int, RandomState or None
    sources : sequence of str
        Names from :data:`NATURAL_IMAGE_SOURCES`.
    dtype : np.float32 or np.uint8, default=np.float32
        ``np.uint8`` keeps a large set at a quarter of the memory; scale it to
        the range of your in-distribution data before fitting.
    cache_dir : str or None
        Needs an int ``random_state``. The images are kept there as a uint8
        ``.npy`` file and read back on the next call with the same arguments
        (float32 output then comes from those uint8 values: within 1/510 of the
        uncached float32 images).

    Returns
    -------
    ndarray of shape (n, 1, height, width)

    Examples
    --------
    >>> make_natural_image_outliers(3, (8, 8), random_state=0).shape
    (3, 1, 8, 8)
    >>> make_natural_image_outliers(3, (8, 8), random_state=0, dtype=np.uint8).dtype
    dtype('uint8')
    """
    n, image_shape = _check_count(n), _check_image_shape(image_shape)
    if np.dtype(dtype) not in (np.dtype(np.float32), np.dtype(np.uint8)):
        raise ValueError(f"dtype must be np.float32 or np.uint8, got {dtype!r}.")
    cache_path = None
    if cache_dir is not None:
        if not isinstance(random_state, (int, np.integer)) or isinstance(random_state, bool):
            raise ValueError(f"cache_dir needs an int random_state (it names the cached file), "
                             f"got random_state={random_state!r}.")
        key = hashlib.sha1(repr((tuple(sources),)).encode()).hexdigest()[:10]
        cache_path = os.path.join(
            cache_dir, f"natural_{n}_{image_shape[0]}x{image_shape[1]}_{random_state}_{key}.npy")
    if cache_path is not None and os.path.exists(cache_path):
        images = np.load(cache_path)
    else:
        images = _random_crops(sources, n, image_shape, random_state, 0.05, 1.0, flips=True)
        if cache_path is None and np.dtype(dtype) == np.float32:
            return images * np.float32(value_range)   # no uint8 round trip
        images = np.clip(np.rint(images * 255.0), 0, 255).astype(np.uint8)
        if cache_path is not None:
            os.makedirs(cache_dir, exist_ok=True)
            np.save(cache_path, images)
    if np.dtype(dtype) == np.uint8:
        return images
    return images.astype(np.float32) * np.float32(value_range / 255.0)


def make_texture_images(n, image_shape=(28, 28), *, value_range=1.0, random_state=None):
    """Crops of scikit-image's brick, grass and gravel textures: an OOD test set.

    Each image is a crop of 3% to 15% of a texture's shorter side (so that the
    texture's grain is visible at small sizes), resized and flipped at random.

    Parameters
    ----------
    n : int
        Number of images.
    image_shape : (int, int), default=(28, 28)
    value_range : float, default=1.0
        Pixel values are scaled to ``[0, value_range]``.
    random_state : int, RandomState or None, default=None

    Returns
    -------
    ndarray of shape (n, 1, height, width), float32

    Examples
    --------
    >>> make_texture_images(2, (8, 8), random_state=0).shape
    (2, 1, 8, 8)
    """
    n, image_shape = _check_count(n), _check_image_shape(image_shape)
    images = _random_crops(TEXTURE_SOURCES, n, image_shape, random_state, 0.03, 0.15, flips=True)
    return images * np.float32(value_range)


def make_noise_images(n, image_shape=(28, 28), *, kind="gaussian", value_range=1.0,
                      random_state=None, channels=1):
    """Gaussian (mean 0.5, std 0.25) or uniform noise images, clipped to ``[0, value_range]``.

    Parameters
    ----------
    n : int
        Number of images.
    image_shape : (int, int), default=(28, 28)
    kind : {"gaussian", "uniform"}, default="gaussian"
    value_range : float, default=1.0
        Pixel values are scaled to ``[0, value_range]``.
    random_state : int, RandomState or None, default=None
    channels : int, default=1
        Channels per image, each drawn independently (3: colour noise).

    Returns
    -------
    ndarray of shape (n, channels, height, width), float32

    Examples
    --------
    >>> make_noise_images(2, (8, 8), kind="uniform", random_state=0).shape
    (2, 1, 8, 8)
    >>> make_noise_images(2, (8, 8), random_state=0, channels=3).shape
    (2, 3, 8, 8)
    """
    n, image_shape = _check_count(n), _check_image_shape(image_shape)
    if (not isinstance(channels, (int, np.integer)) or isinstance(channels, (bool, np.bool_))
            or channels < 1):
        raise ValueError(f"channels must be an int >= 1, got {channels!r}.")
    rng = check_random_state(random_state)
    shape = (n, int(channels), *image_shape)
    if kind == "gaussian":
        images = rng.normal(0.5, 0.25, size=shape)
    elif kind == "uniform":
        images = rng.uniform(0.0, 1.0, size=shape)
    else:
        raise ValueError(f"kind must be 'gaussian' or 'uniform', got {kind!r}.")
    return (np.clip(images, 0.0, 1.0) * value_range).astype(np.float32)
