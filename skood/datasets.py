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
import os
import pickle
import struct
import tarfile
import zlib

import numpy as np
from sklearn.utils import Bunch, check_random_state

from ._generated_images import (NATURAL_IMAGE_SOURCES, TEXTURE_SOURCES, _check_image_shape,
                                make_natural_image_outliers, make_noise_images,
                                make_texture_images, resize_images)

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

# The generated image sets are made in skood/_generated_images.py; this module is where they
# are imported from. The constants are re-bound so that their API pages, which Sphinx makes
# from this module's source, show these comments.

#: Photographs used for auxiliary outliers (the analogue of the paper's 300K Random Images).
NATURAL_IMAGE_SOURCES = NATURAL_IMAGE_SOURCES
#: scikit-image textures used as an OOD test set (never among the outliers).
TEXTURE_SOURCES = TEXTURE_SOURCES


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
# numpy's functions that rebuild a pickled array, under whichever module this numpy has
# them: _reconstruct for protocols up to 4, _frombuffer (a contiguous array's bytes
# out of band) for protocol 5, Python 3.14's default.
_RECONSTRUCT = np.ndarray(0).__reduce__()[0]
_FROMBUFFER = np.zeros(1).__reduce_ex__(5)[0]
# The only globals a CIFAR batch pickle refers to: numpy arrays (the original files name
# numpy.core.multiarray, numpy 2 writes numpy._core.multiarray; protocol 5 names
# numpy.core.numeric or numpy._core.numeric) and, in files written by Python 3 with
# protocol 2, bytes (as _codecs.encode).
_CIFAR_PICKLE_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"): _RECONSTRUCT,
    ("numpy._core.multiarray", "_reconstruct"): _RECONSTRUCT,
    ("numpy.core.numeric", "_frombuffer"): _FROMBUFFER,
    ("numpy._core.numeric", "_frombuffer"): _FROMBUFFER,
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
