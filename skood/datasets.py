"""Image data for OOD experiments: auxiliary outliers and OOD test sets built from
photographs and textures that scikit-image and scikit-learn ship inside their wheels.

All generators return float32 arrays of shape ``(n, 1, height, width)`` with
values in ``[0, value_range]``, deterministic for a given ``random_state``.
The auxiliary outliers and the texture OOD set come from disjoint sources, so
a model never sees an OOD test source during training.
"""
import numpy as np
import torch
import torch.nn.functional as F
from sklearn.utils import check_random_state

__all__ = ["NATURAL_IMAGE_SOURCES", "TEXTURE_SOURCES", "make_natural_image_outliers",
           "make_texture_images", "make_noise_images"]

#: Photographs used for auxiliary outliers (the analogue of the paper's 300K Random Images).
NATURAL_IMAGE_SOURCES = (
    "astronaut", "chelsea", "coffee", "hubble_deep_field", "rocket", "motorcycle_left",
    "motorcycle_right", "camera", "horse", "moon", "coins", "ihc", "retina", "cell",
    "clock_motion", "color", "logo", "china", "flower",
)
#: scikit-image textures used as an OOD test set (never among the outliers).
TEXTURE_SOURCES = ("brick", "grass", "gravel")


def _load_source(name):
    """Greyscale image in [0, 1] as float32 from scikit-image's or scikit-learn's bundled files."""
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
                "pip install 'skood[datasets]'") from exc
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
                                sources=NATURAL_IMAGE_SOURCES):
    """Random crops, scales and flips of bundled photographs, greyscale, as auxiliary outliers.

    Parameters
    ----------
    n : int
        Number of images.
    image_shape : (int, int), default=(28, 28)
    value_range : float, default=1.0
        Pixel values are scaled to ``[0, value_range]`` (16 for scikit-learn's digits).
    random_state : int, RandomState or None
    sources : sequence of str
        Names from :data:`NATURAL_IMAGE_SOURCES`.

    Returns
    -------
    ndarray of shape (n, 1, height, width), float32

    Examples
    --------
    >>> make_natural_image_outliers(3, (8, 8), random_state=0).shape
    (3, 1, 8, 8)
    """
    images = _random_crops(sources, n, image_shape, random_state, 0.05, 1.0, flips=True)
    return images * np.float32(value_range)


def make_texture_images(n, image_shape=(28, 28), *, value_range=1.0, random_state=None):
    """Crops of scikit-image's brick, grass and gravel textures: an OOD test set.

    Examples
    --------
    >>> make_texture_images(2, (8, 8), random_state=0).shape
    (2, 1, 8, 8)
    """
    images = _random_crops(TEXTURE_SOURCES, n, image_shape, random_state, 0.03, 0.15, flips=True)
    return images * np.float32(value_range)


def make_noise_images(n, image_shape=(28, 28), *, kind="gaussian", value_range=1.0,
                      random_state=None):
    """Gaussian (mean 0.5, std 0.25) or uniform noise images, clipped to ``[0, value_range]``.

    Examples
    --------
    >>> make_noise_images(2, (8, 8), kind="uniform", random_state=0).shape
    (2, 1, 8, 8)
    """
    rng = check_random_state(random_state)
    shape = (n, 1, *image_shape)
    if kind == "gaussian":
        images = rng.normal(0.5, 0.25, size=shape)
    elif kind == "uniform":
        images = rng.uniform(0.0, 1.0, size=shape)
    else:
        raise ValueError(f"kind must be 'gaussian' or 'uniform', got {kind!r}.")
    return (np.clip(images, 0.0, 1.0) * value_range).astype(np.float32)
