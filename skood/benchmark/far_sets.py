"""The benchmark's far OOD sets that come from files: one loader per set.

A loader is called as ``load(image_shape, channels, n_ood, rng, data_home)`` and
returns at most ``n_ood`` images, float32 in ``[0, 1]``, shaped ``(n, channels,
height, width)``, drawn with ``rng``; it raises :class:`FileNotFoundError`, whose
message says where to get the files, when they are not on this machine (the
benchmark then skips the set and prints that message). The generated far sets
(textures and noise) are made by :func:`skood.benchmark.data.load_far` itself.
"""
import os

import numpy as np
from sklearn.datasets import load_digits

from .. import datasets as _datasets
# _data_folders: data_home then $SKOOD_DATA, the lookup skood.datasets' loaders use
from ..datasets import _data_folders, load_image_folder, resize_images

__all__ = ["IMAGE_FOLDER_SETS", "FASHION_MNIST_MISSING", "fashion_mnist_far", "digits_far",
           "svhn_far", "image_folder_far", "to_channels"]

FASHION_MNIST_MISSING = ("Fashion-MNIST not installed: apt-get install dataset-fashion-mnist, "
                         "or pass --data-home (data_home=) or set SKOOD_DATA to a folder with "
                         "its four IDX files")

#: CIFAR's far sets kept as image files: set name -> (folder under ``data_home`` or
#: ``$SKOOD_DATA``, what it is and where it comes from). The folder names are
#: those of the archives the OOD literature distributes (LSUN, LSUN_resize and iSUN
#: as released with ODIN, Liang et al. 2018); sub-folders are read too.
IMAGE_FOLDER_SETS = {
    "dtd": (os.path.join("dtd", "images"),
            "the Describable Textures Dataset (https://www.robots.ox.ac.uk/~vgg/data/dtd/), "
            "its images/ folder"),
    "places365": ("places365", "a folder of Places365 images (http://places2.csail.mit.edu/, "
                               "e.g. its test images)"),
    "lsun-c": ("LSUN", "LSUN crops, the LSUN.tar.gz of ODIN's release "
                       "(https://github.com/facebookresearch/odin)"),
    "lsun-r": ("LSUN_resize", "LSUN resized, the LSUN_resize.tar.gz of ODIN's release "
                              "(https://github.com/facebookresearch/odin)"),
    "isun": ("iSUN", "iSUN, the iSUN.tar.gz of ODIN's release "
                     "(https://github.com/facebookresearch/odin)"),
}


def to_channels(images, channels):
    """Images with ``channels`` channels: grey ones repeated, colour ones averaged to grey.

    Parameters
    ----------
    images : ndarray of shape (n, c, height, width)
    channels : int
        The channels wanted.

    Returns
    -------
    ndarray of shape (n, channels, height, width)
        ``images`` itself when ``c == channels``; a grey image (``c == 1``)
        repeated on each channel; for ``channels == 1``, the mean over the
        ``c`` channels (float32).

    Raises
    ------
    ValueError
        For any other pair of channel counts (e.g. 2 to 3).
    """
    if images.shape[1] == channels:
        return images
    if channels == 1:
        return images.mean(axis=1, keepdims=True, dtype=np.float32)
    if images.shape[1] != 1:
        raise ValueError(f"to_channels turns grey images into {channels} channels or any into "
                         f"grey; got {images.shape[1]} channels for {channels}.")
    return np.repeat(images, channels, axis=1)


def _pick(n_total, n_ood, rng):
    return rng.choice(n_total, size=min(n_ood, n_total), replace=False)


def fashion_mnist_far(image_shape, channels, n_ood, rng, data_home):
    """Fashion-MNIST's test images, resized: the digits' far set."""
    try:
        fashion = _datasets.load_fashion_mnist(data_home)
    except FileNotFoundError:
        raise FileNotFoundError(FASHION_MNIST_MISSING) from None
    pick = _pick(len(fashion.X_test), n_ood, rng)
    return to_channels(resize_images(fashion.X_test[pick], image_shape) / 255.0, channels)


def digits_far(image_shape, channels, n_ood, rng, data_home):
    """scikit-learn's digits, resized: Fashion-MNIST's far set."""
    digits = load_digits().images / 16.0
    pick = _pick(len(digits), n_ood, rng)
    return to_channels(np.clip(resize_images(digits[pick], image_shape), 0.0, 1.0), channels)


def svhn_far(image_shape, channels, n_ood, rng, data_home):
    """SVHN's test digits (``test_32x32.mat``, :func:`skood.datasets.load_svhn`)."""
    svhn = _datasets.load_svhn(data_home, split="test")
    pick = np.sort(_pick(len(svhn.X), n_ood, rng))
    images = svhn.X[pick].astype(np.float32) / 255.0
    if images.shape[2:] != tuple(image_shape):
        images = resize_images(images, image_shape)
    return to_channels(images, channels)


def image_folder_far(name):
    """The loader of the image-folder set ``name`` of :data:`IMAGE_FOLDER_SETS`.

    The folder is looked up in ``data_home``, then ``$SKOOD_DATA``; its images
    are read by :func:`skood.datasets.load_image_folder` (scaled to cover the
    image shape, centre-cropped), at most ``n_ood`` drawn with ``rng``.
    """
    if name not in IMAGE_FOLDER_SETS:
        raise ValueError(f"name must be one of {list(IMAGE_FOLDER_SETS)}, got {name!r}.")
    relative, what = IMAGE_FOLDER_SETS[name]

    def load(image_shape, channels, n_ood, rng, data_home):
        folders = [os.path.join(home, relative) for home in _data_folders(data_home)]
        for folder in folders:   # the first that holds images: an empty one hides nothing
            if not os.path.isdir(folder):
                continue
            try:
                images = load_image_folder(folder, image_shape=tuple(image_shape),
                                           max_images=n_ood, random_state=rng).X
            except FileNotFoundError:
                continue
            return to_channels(images.astype(np.float32) / 255.0, channels)
        where = (f"in {folders}" if folders else "anywhere: no --data-home (data_home=) "
                 "was given and SKOOD_DATA is not set")
        raise FileNotFoundError(f"no folder {relative!r} with images found {where}; put "
                                f"{what} there")

    load.__name__ = f"{name.replace('-', '_')}_far"
    load.__doc__ = f"Images of {what} (folder {relative!r})."
    return load
