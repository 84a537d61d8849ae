"""Image data for OOD experiments: auxiliary outliers and OOD test sets built from
photographs and textures that scikit-image and scikit-learn ship inside their wheels.

All generators return float32 arrays of shape ``(n, 1, height, width)`` with
values in ``[0, value_range]``, deterministic for a given ``random_state``.
The auxiliary outliers and the texture OOD set come from disjoint sources, so
a model never sees an OOD test source during training.
"""
import gzip
import hashlib
import os
import struct

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.utils import Bunch, check_random_state

__all__ = ["NATURAL_IMAGE_SOURCES", "TEXTURE_SOURCES", "FASHION_MNIST_CLASSES",
           "load_fashion_mnist", "read_idx", "resize_images", "make_natural_image_outliers",
           "make_texture_images", "make_noise_images"]

#: Where Debian's package ``dataset-fashion-mnist`` puts the files.
DEBIAN_FASHION_MNIST = "/usr/share/datasets/fashion-mnist"
FASHION_MNIST_FILES = {
    "X_train": "train-images-idx3-ubyte.gz", "y_train": "train-labels-idx1-ubyte.gz",
    "X_test": "t10k-images-idx3-ubyte.gz", "y_test": "t10k-labels-idx1-ubyte.gz",
}
#: Fashion-MNIST's class names, in the order of its labels 0-9.
FASHION_MNIST_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal",
                         "Shirt", "Sneaker", "Bag", "Ankle boot")

#: Photographs used for auxiliary outliers (the analogue of the paper's 300K Random Images).
NATURAL_IMAGE_SOURCES = (
    "astronaut", "chelsea", "coffee", "hubble_deep_field", "rocket", "motorcycle_left",
    "motorcycle_right", "camera", "horse", "moon", "coins", "ihc", "retina", "cell",
    "clock_motion", "color", "logo", "china", "flower",
)
#: scikit-image textures used as an OOD test set (never among the outliers).
TEXTURE_SOURCES = ("brick", "grass", "gravel")


def read_idx(path):
    """Read an IDX file (optionally gzip-compressed) into a numpy array.

    IDX is the format of MNIST and Fashion-MNIST: a magic number whose third
    byte gives the element type and fourth the number of dimensions, then the
    dimensions as big-endian int32, then the data.

    Parameters
    ----------
    path : str or os.PathLike
        The file; read through gzip when its name ends in ``.gz``.

    Returns
    -------
    ndarray
        Of the shape and element type the file declares.

    Raises
    ------
    ValueError
        When the file is not IDX, or is truncated.

    Examples
    --------
    >>> import os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "tiny-idx1-ubyte")
    >>> with open(path, "wb") as f:
    ...     _ = f.write(bytes([0, 0, 8, 1, 0, 0, 0, 3, 7, 8, 9]))
    >>> read_idx(path).tolist()
    [7, 8, 9]
    """
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    if len(data) < 4 or data[0] != 0 or data[1] != 0:
        raise ValueError(f"{path} is not an IDX file (bad magic number).")
    dtypes = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
    if data[2] not in dtypes:
        raise ValueError(f"{path}: unknown IDX element type 0x{data[2]:02x}.")
    ndim = data[3]
    shape = struct.unpack(f">{ndim}I", data[4:4 + 4 * ndim])
    array = np.frombuffer(data, dtype=dtypes[data[2]], offset=4 + 4 * ndim)
    if array.size != int(np.prod(shape)):
        raise ValueError(f"{path}: expected {int(np.prod(shape))} values for shape {shape}, "
                         f"found {array.size}; the file is truncated or corrupt.")
    return array.reshape(shape)


def load_fashion_mnist(data_home=None):
    """Load the real Fashion-MNIST from its four IDX ``.gz`` files.

    Looked up in ``data_home``, then ``$SKOOD_DATA``, then Debian's
    ``dataset-fashion-mnist`` location (``/usr/share/datasets/fashion-mnist``).

    Parameters
    ----------
    data_home : str or None, default=None
        A folder with ``train-images-idx3-ubyte.gz``, ``train-labels-idx1-ubyte.gz``,
        ``t10k-images-idx3-ubyte.gz`` and ``t10k-labels-idx1-ubyte.gz``.

    Returns
    -------
    Bunch
        ``X_train`` (60000, 28, 28) uint8, ``y_train`` (60000,) uint8, ``X_test``
        (10000, 28, 28), ``y_test``, ``class_names`` and ``path`` (the folder used).

    Raises
    ------
    FileNotFoundError
        When no candidate folder has the four files; the message says how to get them.

    Examples
    --------
    >>> try:
    ...     data = load_fashion_mnist()
    ... except FileNotFoundError:
    ...     data = None   # not installed here
    >>> data is None or data.X_train.shape == (60000, 28, 28)
    True
    """
    candidates = [c for c in (data_home, os.environ.get("SKOOD_DATA"), DEBIAN_FASHION_MNIST) if c]
    for folder in candidates:
        paths = {key: os.path.join(folder, name) for key, name in FASHION_MNIST_FILES.items()}
        if all(os.path.exists(path) for path in paths.values()):
            arrays = {key: read_idx(path) for key, path in paths.items()}
            return Bunch(**arrays, class_names=FASHION_MNIST_CLASSES, path=folder)
    raise FileNotFoundError(
        f"Fashion-MNIST was not found in {candidates}. Get it either way: install Debian's "
        "package (apt-get install dataset-fashion-mnist), or download the four files "
        f"{sorted(FASHION_MNIST_FILES.values())} from the dataset's official page "
        "(github.com/zalandoresearch/fashion-mnist) into a folder and pass it as data_home= "
        "or set SKOOD_DATA to it.")


def resize_images(images, image_shape):
    """Resize a stack of images (n, h, w) or (n, 1, h, w) with area averaging (or
    bilinear when enlarging); returns float32 (n, 1, height, width).

    Parameters
    ----------
    images : array-like of shape (n, h, w) or (n, 1, h, w)
    image_shape : (int, int)
        ``(height, width)`` of the result.

    Returns
    -------
    ndarray of shape (n, 1, height, width), float32

    Examples
    --------
    >>> import numpy as np
    >>> resize_images(np.ones((2, 28, 28)), (8, 8)).shape
    (2, 1, 8, 8)
    """
    tensor = torch.as_tensor(np.asarray(images, dtype=np.float32))
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
    images = _random_crops(TEXTURE_SOURCES, n, image_shape, random_state, 0.03, 0.15, flips=True)
    return images * np.float32(value_range)


def make_noise_images(n, image_shape=(28, 28), *, kind="gaussian", value_range=1.0,
                      random_state=None):
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

    Returns
    -------
    ndarray of shape (n, 1, height, width), float32

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
