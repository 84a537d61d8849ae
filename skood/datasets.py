"""Image data for OOD experiments: auxiliary outliers and OOD test sets built from
photographs and textures that scikit-image and scikit-learn ship inside their wheels, and
loaders for image data sets kept on disk (Fashion-MNIST, CIFAR-10/100, SVHN, image folders).

All generators return float32 arrays of shape ``(n, 1, height, width)`` with
values in ``[0, value_range]``, deterministic for a given ``random_state``.
The auxiliary outliers and the texture OOD set come from disjoint sources, so
a model never sees an OOD test source during training. The colour loaders
return uint8 arrays of shape ``(n, 3, height, width)``: channels first, in the
order red, green, blue.
"""
import codecs
import gzip
import hashlib
import os
import pickle
import struct
import tarfile
import zlib

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.utils import Bunch, check_random_state

__all__ = ["NATURAL_IMAGE_SOURCES", "TEXTURE_SOURCES", "FASHION_MNIST_CLASSES", "CIFAR_URL",
           "SVHN_URL", "load_fashion_mnist", "load_cifar10", "load_cifar100", "load_svhn",
           "load_image_folder", "read_idx", "resize_images", "make_natural_image_outliers",
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


def _data_folders(data_home):
    """``data_home`` then ``$SKOOD_DATA``, those that are set, with ``~`` expanded."""
    return [os.path.expanduser(c) for c in (data_home, os.environ.get("SKOOD_DATA")) if c]


#: The CIFAR authors' page (University of Toronto), where the "python version" files are.
CIFAR_URL = "https://www.cs.toronto.edu/~kriz/cifar.html"
_CIFAR = {
    "CIFAR-10": dict(folder="cifar-10-batches-py", archive="cifar-10-python.tar.gz",
                     train=[f"data_batch_{i}" for i in range(1, 6)], test=["test_batch"],
                     meta="batches.meta", url_name="CIFAR-10 python version"),
    "CIFAR-100": dict(folder="cifar-100-python", archive="cifar-100-python.tar.gz",
                      train=["train"], test=["test"], meta="meta",
                      url_name="CIFAR-100 python version"),
}
# numpy's function that rebuilds a pickled array, under whichever module this numpy has it.
_RECONSTRUCT = np.ndarray(0).__reduce__()[0]
# The only globals a CIFAR batch pickle refers to: numpy arrays (the original files name
# numpy.core.multiarray, numpy 2 writes numpy._core.multiarray) and, in files written by
# Python 3 with protocol 2, bytes (as _codecs.encode).
_CIFAR_PICKLE_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"): _RECONSTRUCT,
    ("numpy._core.multiarray", "_reconstruct"): _RECONSTRUCT,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("_codecs", "encode"): codecs.encode,
}


class _CifarUnpickler(pickle.Unpickler):
    """Builds dicts, lists, strings and numpy arrays only, so a batch file cannot run code."""

    def find_class(self, module, name):
        if (module, name) in _CIFAR_PICKLE_GLOBALS:
            return _CIFAR_PICKLE_GLOBALS[(module, name)]
        raise pickle.UnpicklingError(f"it refers to {module}.{name}, which a CIFAR batch "
                                     "never does")


def _read_cifar_pickle(file, where):
    """A CIFAR pickle as a dict with str keys (the originals have bytes keys: Python 2 str)."""
    try:
        content = _CifarUnpickler(file, encoding="bytes").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError,
            IndexError, KeyError) as exc:
        raise ValueError(f"{where} is not a CIFAR batch file (python version): {exc}.") from exc
    if not isinstance(content, dict):
        raise ValueError(f"{where} is not a CIFAR batch file (python version): it holds a "
                         f"{type(content).__name__}, not a dict.")
    return {key.decode("latin1") if isinstance(key, bytes) else key: value
            for key, value in content.items()}


def _cifar_files(name, data_home):
    """(folder, source, {file name: dict}) of the first place holding a CIFAR set."""
    spec = _CIFAR[name]
    candidates = _data_folders(data_home)
    names = spec["train"] + spec["test"] + [spec["meta"]]
    looked = []
    for folder in candidates:
        directory = os.path.join(folder, spec["folder"])
        if os.path.isdir(directory):
            missing = [n for n in names if not os.path.isfile(os.path.join(directory, n))]
            if missing:
                raise FileNotFoundError(f"{directory} lacks {missing}: the folder is incomplete; "
                                        f"extract {spec['archive']} again.")
            files = {}
            for file_name in names:
                path = os.path.join(directory, file_name)
                with open(path, "rb") as f:
                    files[file_name] = _read_cifar_pickle(f, path)
            return folder, directory, files
        archive = os.path.join(folder, spec["archive"])
        if os.path.isfile(archive):
            files = {}
            try:
                with gzip.open(archive, "rb") as gz, tarfile.open(fileobj=gz, mode="r:") as tar:
                    for member in tar:
                        parts = member.name.split("/")
                        parts = parts[1:] if parts[0] == "." else parts
                        if member.isfile() and len(parts) == 2 and parts[0] == spec["folder"] \
                                and parts[1] in names:
                            files[parts[1]] = _read_cifar_pickle(
                                tar.extractfile(member), f"{archive}:{member.name}")
                    while gz.read(1 << 20):   # to the end, where gzip checks its CRC
                        pass
            except (tarfile.TarError, OSError, EOFError, zlib.error) as exc:
                raise ValueError(f"{archive} is not a readable .tar.gz archive: {exc}") from exc
            missing = [n for n in names if n not in files]
            if missing:
                raise FileNotFoundError(f"{archive} lacks {spec['folder']}/ files {missing}; "
                                        "the archive is incomplete, download it again.")
            return folder, archive, files
        looked += [directory, archive]
    where = (f"in {looked}" if looked else
             "anywhere: no folder was given (data_home=None) and SKOOD_DATA is not set")
    raise FileNotFoundError(
        f"{name} was not found {where}. Download "
        f"{spec['archive']} (\"{spec['url_name']}\") from the CIFAR authors' page at the "
        f"University of Toronto, {CIFAR_URL}, into a folder (extracted into "
        f"{spec['folder']}/ or not) and pass that folder as data_home= or set SKOOD_DATA to it.")


def _cifar_split(files, names, label_key, n_classes, source):
    images, labels = [], []
    for name in names:
        batch = files[name]
        where = f"{source}: {name}"
        if "data" not in batch or label_key not in batch:
            raise ValueError(f"{where} has no {'data' if 'data' not in batch else label_key!r} "
                             f"entry (it has {sorted(batch)}): not a CIFAR batch of this set.")
        data = np.asarray(batch["data"])
        if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
            raise ValueError(f"{where}: data must be uint8 rows of 3072 bytes, got "
                             f"{data.dtype} of shape {data.shape}.")
        y = np.asarray(batch[label_key], dtype=np.int64).reshape(-1)
        if len(y) != len(data) or (len(y) and (y.min() < 0 or y.max() >= n_classes)):
            raise ValueError(f"{where}: expected {len(data)} labels in 0..{n_classes - 1}, got "
                             f"{len(y)} in {y.min() if len(y) else '-'}..."
                             f"{y.max() if len(y) else '-'}.")
        # Each row: the red plane, then green, then blue, each 32x32 row by row.
        images.append(data.reshape(-1, 3, 32, 32))
        labels.append(y)
    return np.concatenate(images), np.concatenate(labels)


def _class_names(meta, key, source):
    if key not in meta:
        raise ValueError(f"{source}: the meta file has no {key!r} entry (it has {sorted(meta)}).")
    return tuple(n.decode("utf-8") if isinstance(n, bytes) else str(n) for n in meta[key])


def _load_cifar(name, data_home, label_key, names_key):
    spec = _CIFAR[name]
    folder, source, files = _cifar_files(name, data_home)
    class_names = _class_names(files[spec["meta"]], names_key, source)
    X_train, y_train = _cifar_split(files, spec["train"], label_key, len(class_names), source)
    X_test, y_test = _cifar_split(files, spec["test"], label_key, len(class_names), source)
    return Bunch(X_train=X_train, y_train=y_train, X_test=X_test, y_test=y_test,
                 class_names=class_names, path=folder, source=source)


def load_cifar10(data_home=None):
    """Load CIFAR-10 from the authors' "python version" files.

    Looked up in ``data_home``, then ``$SKOOD_DATA``; in each, first the folder
    ``cifar-10-batches-py`` (``data_batch_1`` to ``data_batch_5``, ``test_batch``
    and ``batches.meta``), then the archive ``cifar-10-python.tar.gz``, which is
    read as it is (nothing is extracted to disk). The files come from the CIFAR
    page of the University of Toronto (:data:`CIFAR_URL`), "CIFAR-10 python version".

    The files are pickles; they are read with an unpickler that builds only
    dicts, lists, strings and numpy arrays, so a tampered file cannot run code.

    Parameters
    ----------
    data_home : str or os.PathLike or None, default=None
        The folder that holds ``cifar-10-batches-py`` or ``cifar-10-python.tar.gz``
        (``~`` is expanded, here and in ``$SKOOD_DATA``).

    Returns
    -------
    Bunch
        ``X_train`` (50000, 3, 32, 32) uint8, channels first, in the order red,
        green, blue (``X[i, c, row, col]``, row 0 at the top); ``y_train``
        (50000,) int64 in 0..9; ``X_test`` (10000, 3, 32, 32); ``y_test``;
        ``class_names`` (the 10 names, in label order, from ``batches.meta``);
        ``path`` (the folder where the files were found) and ``source`` (the
        folder or archive read).

    Raises
    ------
    FileNotFoundError
        When neither place holds the files (the message lists the places looked
        at and where to get the files), or a folder or archive found lacks some.
    ValueError
        When a file is not a CIFAR-10 batch.

    Examples
    --------
    >>> try:
    ...     data = load_cifar10()
    ... except FileNotFoundError:
    ...     data = None   # not on this machine
    >>> data is None or data.X_train.shape == (50000, 3, 32, 32)
    True
    """
    return _load_cifar("CIFAR-10", data_home, "labels", "label_names")


def load_cifar100(data_home=None, label="fine"):
    """Load CIFAR-100 from the authors' "python version" files.

    Looked up in ``data_home``, then ``$SKOOD_DATA``; in each, first the folder
    ``cifar-100-python`` (``train``, ``test`` and ``meta``), then the archive
    ``cifar-100-python.tar.gz``, read without extracting it. The files come from
    the CIFAR page of the University of Toronto (:data:`CIFAR_URL`), "CIFAR-100
    python version". Read as :func:`load_cifar10` reads its files.

    Parameters
    ----------
    data_home : str or os.PathLike or None, default=None
        The folder that holds ``cifar-100-python`` or ``cifar-100-python.tar.gz``
        (``~`` is expanded, here and in ``$SKOOD_DATA``).
    label : {"fine", "coarse"}, default="fine"
        The 100 classes (``"fine"``) or the 20 superclasses (``"coarse"``).

    Returns
    -------
    Bunch
        ``X_train`` (50000, 3, 32, 32) uint8, channels first (red, green,
        blue); ``y_train`` (50000,) int64 in 0..99 (or 0..19 for coarse);
        ``X_test`` (10000, 3, 32, 32); ``y_test``; ``class_names`` (from
        ``meta``, in label order); ``path`` (the folder where the files were
        found) and ``source`` (the folder or archive read).

    Raises
    ------
    FileNotFoundError
        When neither place holds the files; the message lists the places looked
        at and where to get the files.
    ValueError
        When ``label`` is not "fine" or "coarse", or a file is not a CIFAR-100 file.

    Examples
    --------
    >>> try:
    ...     data = load_cifar100(label="coarse")
    ... except FileNotFoundError:
    ...     data = None   # not on this machine
    >>> data is None or len(data.class_names) == 20
    True
    """
    if label not in ("fine", "coarse"):
        raise ValueError(f"label must be 'fine' (100 classes) or 'coarse' (20 superclasses), "
                         f"got {label!r}.")
    return _load_cifar("CIFAR-100", data_home, f"{label}_labels", f"{label}_label_names")


#: The Street View House Numbers page, where ``train_32x32.mat`` and ``test_32x32.mat`` are.
SVHN_URL = "http://ufldl.stanford.edu/housenumbers/"


def load_svhn(data_home=None, split="test"):
    """Load SVHN's cropped digits (``{split}_32x32.mat``), a far-OOD set for CIFAR.

    Looked up in ``data_home``, then ``$SKOOD_DATA``. The files ("Format 2:
    Cropped Digits") come from :data:`SVHN_URL`; they are read with
    :func:`scipy.io.loadmat`.

    Parameters
    ----------
    data_home : str or os.PathLike or None, default=None
        The folder that holds ``{split}_32x32.mat`` (``~`` is expanded).
    split : {"test", "train", "extra"}, default="test"

    Returns
    -------
    Bunch
        ``X`` (n, 3, 32, 32) uint8, channels first (red, green, blue; the file
        stores (32, 32, 3, n)); ``y`` (n,) int64, the digit 0..9 (the file's
        label 10 stands for the digit 0); ``split``; ``path`` (the file read).

    Raises
    ------
    FileNotFoundError
        When no place holds the file; the message says where to get it.
    ValueError
        When ``split`` is unknown, or the file does not hold SVHN's ``X`` and ``y``.

    Examples
    --------
    >>> try:
    ...     svhn = load_svhn()
    ... except FileNotFoundError:
    ...     svhn = None   # not on this machine
    >>> svhn is None or svhn.X.shape[1:] == (3, 32, 32)
    True
    """
    if split not in ("test", "train", "extra"):
        raise ValueError(f"split must be 'test', 'train' or 'extra', got {split!r}.")
    name = f"{split}_32x32.mat"
    paths = [os.path.join(folder, name) for folder in _data_folders(data_home)]
    path = next((p for p in paths if os.path.isfile(p)), None)
    if path is None:
        where = (f"in {paths}" if paths else
                 "anywhere: no folder was given (data_home=None) and SKOOD_DATA is not set")
        raise FileNotFoundError(
            f"SVHN's {name} was not found {where}. Download it (\"Format 2: Cropped Digits\") "
            f"from {SVHN_URL} into a folder and pass that folder as data_home= or set "
            "SKOOD_DATA to it.")
    from scipy.io import loadmat   # scipy comes with scikit-learn; imported only when used
    try:
        mat = loadmat(path)
    except (ValueError, TypeError, OSError, NotImplementedError) as exc:
        raise ValueError(f"{path} is not a MATLAB file scipy.io.loadmat can read: {exc}") from exc
    if "X" not in mat or "y" not in mat:
        raise ValueError(f"{path} has no 'X' and 'y' (it has "
                         f"{sorted(k for k in mat if not k.startswith('__'))}): not an SVHN file.")
    X, y = np.asarray(mat["X"]), np.asarray(mat["y"]).reshape(-1)
    if X.dtype != np.uint8 or X.ndim != 4 or X.shape[2] != 3 or X.shape[3] != len(y):
        raise ValueError(f"{path}: X must be uint8 of shape (height, width, 3, n) with n = "
                         f"{len(y)} labels, got {X.dtype} of shape {X.shape}.")
    if len(y) and (y.min() < 1 or y.max() > 10):
        raise ValueError(f"{path}: labels must be in 1..10, got {y.min()}..{y.max()}.")
    return Bunch(X=np.ascontiguousarray(X.transpose(3, 2, 0, 1)),
                 y=(y.astype(np.int64) % 10), split=split, path=path)


_IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".ppm", ".pgm", ".tif", ".tiff",
                     ".webp")


def load_image_folder(path, image_shape=(32, 32), max_images=None, random_state=None):
    """Read every image file under a folder, as colour images of one size.

    For OOD sets kept as image files: DTD's ``images/`` tree, Places, LSUN or
    iSUN folders. Files are found recursively by their extension (``.jpg``,
    ``.jpeg``, ``.png``, ``.bmp``, ``.gif``, ``.ppm``, ``.pgm``, ``.tif``,
    ``.tiff``, ``.webp``, in any case) and read in sorted order of their paths;
    files and folders whose names start with ``.`` are not read. Each image is converted to RGB
    (grey is repeated on the three channels, alpha dropped), scaled (bilinear,
    antialiased) so that it covers ``image_shape``, and centre-cropped to it.
    Reading needs Pillow.

    Parameters
    ----------
    path : str or os.PathLike
        The folder (``~`` is expanded).
    image_shape : (int, int), default=(32, 32)
        ``(height, width)`` of the result.
    max_images : int or None, default=None
        Read at most this many files, drawn at random without replacement (and
        kept in path order); ``None`` reads all.
    random_state : int, RandomState or None, default=None
        Draws the files when ``max_images`` is smaller than their number.

    Returns
    -------
    Bunch
        ``X`` (n, 3, height, width) uint8, channels first (red, green, blue);
        ``filenames`` (the n paths read, relative to ``path``); ``path``.

    Raises
    ------
    FileNotFoundError
        When ``path`` is not a folder, or holds no image file.
    ValueError
        When a file with an image extension cannot be read as an image, or a
        parameter is invalid.
    ImportError
        When Pillow is not installed.

    Examples
    --------
    >>> import os, tempfile
    >>> from PIL import Image
    >>> folder = tempfile.mkdtemp()
    >>> Image.new("RGB", (64, 48), (255, 0, 0)).save(os.path.join(folder, "red.png"))
    >>> images = load_image_folder(folder, image_shape=(32, 32))
    >>> images.X.shape, images.X[0, :, 0, 0].tolist()
    ((1, 3, 32, 32), [255, 0, 0])
    """
    _check_image_shape(image_shape)
    if max_images is not None and not (isinstance(max_images, (int, np.integer))
                                       and not isinstance(max_images, bool) and max_images >= 1):
        raise ValueError(f"max_images must be None or an int >= 1, got {max_images!r}.")
    path = os.path.expanduser(path)
    if not os.path.isdir(path):
        raise FileNotFoundError(f"{path} is not a folder: pass the folder that holds the image "
                                "files (for DTD, its images/ folder).")
    files = []
    for root, dirs, names in os.walk(path):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        files += [os.path.join(root, n) for n in names
                  if not n.startswith(".") and n.lower().endswith(_IMAGE_EXTENSIONS)]
    files.sort()
    if not files:
        raise FileNotFoundError(f"{path} holds no image file (looked for the extensions "
                                f"{list(_IMAGE_EXTENSIONS)}, in its sub-folders too).")
    if max_images is not None and max_images < len(files):
        chosen = check_random_state(random_state).choice(len(files), max_images, replace=False)
        files = [files[i] for i in np.sort(chosen)]
    try:
        from PIL import Image, ImageOps
    except ImportError as exc:   # Pillow comes with matplotlib and scikit-image
        raise ImportError("load_image_folder reads images with Pillow, which is not "
                          "installed: pip install Pillow") from exc
    height, width = (int(s) for s in image_shape)
    X = np.empty((len(files), 3, height, width), dtype=np.uint8)
    for i, file in enumerate(files):
        try:
            with Image.open(file) as image:
                image = ImageOps.fit(image.convert("RGB"), (width, height),
                                     method=Image.Resampling.BILINEAR)
                X[i] = np.asarray(image).transpose(2, 0, 1)
        except (OSError, ValueError, Image.DecompressionBombError) as exc:
            raise ValueError(f"{file} could not be read as an image: {exc}") from exc
    return Bunch(X=X, filenames=[os.path.relpath(f, path) for f in files], path=path)


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
