"""Auxiliary outliers made from the training data itself.

Each class here is a *synthesizer*: an object with
``make_outliers(X, y, random_state)`` that returns rows shaped like ``X``'s
rows that are *not* like the in-distribution data: the in-distribution images
cut up and shuffled, mixed across classes, rotated, or blurred beyond
recognition; tabular rows whose features are drawn independently of each
other. Passed as ``synthesizer=`` to :class:`skood.GradRegOODClassifier`, one
is called once per fit on that fit's training rows, and the rows it makes
join the fit's other auxiliary outliers. With
:class:`skood.model_selection.HeldOutClassSplit`, ``GridSearchCV`` can then
choose the outlier source without any OOD data (see ``docs/selection.md``).

All of them are scikit-learn estimators as far as parameters go
(``get_params``, ``set_params``, ``clone``); the parameters are checked when
:meth:`make_outliers` runs. The output has the dtype of ``X`` (rounded for an
integer dtype) and the shape of its rows; ``n_outliers`` sets the number of
rows (default: as many as ``X``).
"""
import numbers

import numpy as np
from scipy import ndimage
from sklearn.base import BaseEstimator
from sklearn.utils import check_array, check_random_state
from sklearn.utils._param_validation import Interval

__all__ = ["BlurNoise", "ClassMix", "FeatureShuffle", "PatchShuffle", "Rotation"]


class _Synthesizer(BaseEstimator):
    """Shared checks: parameters, ``X``, the number of rows, and the output's dtype."""

    #: True for the synthesizers that read ``X`` as images (n, H, W) or (n, C, H, W).
    _images = True
    _min_side = 2

    _parameter_constraints = {
        "n_outliers": [Interval(numbers.Integral, 1, None, closed="left"), None],
    }

    def _check_X(self, X):
        X = check_array(np.asarray(X), dtype="numeric", allow_nd=True,
                        ensure_all_finite=True, input_name="X")
        if self._images:
            if X.ndim not in (3, 4):
                raise ValueError(
                    f"{type(self).__name__} reads X as images, of shape (n, height, width) or "
                    f"(n, channels, height, width) (channels first, as torch), got shape "
                    f"{X.shape}. For tabular rows (n, n_features) use FeatureShuffle or "
                    "ClassMix.")
            if min(X.shape[-2:]) < self._min_side:
                raise ValueError(
                    f"{type(self).__name__} needs images of at least {self._min_side}x"
                    f"{self._min_side} pixels with these parameters, got {X.shape[-2:]}.")
        return X

    def make_outliers(self, X, y=None, random_state=None):
        """Make outliers from the rows of ``X``.

        Parameters
        ----------
        X : array-like of shape (n_samples, ...)
            In-distribution rows (the training rows of a fit); images
            channels first, as torch takes them.
        y : array-like of shape (n_samples,), optional
            Their class labels; only :class:`ClassMix` needs them.
        random_state : int, RandomState instance or None, default=None
            Seeds every random choice; with an int, the output is the same at
            every call.

        Returns
        -------
        ndarray of shape (n_outliers, ...)
            The dtype of ``X`` and the shape of its rows.
        """
        # BaseEstimator's private checker of _parameter_constraints: sklearn's own estimators'
        # way of checking parameters when they are used rather than when they are stored.
        self._validate_params()
        self._check_more_params()
        X = self._check_X(X)
        if X.shape[0] == 0:
            raise ValueError(f"{type(self).__name__} needs at least one row in X, got none.")
        rng = check_random_state(random_state)
        n_outliers = X.shape[0] if self.n_outliers is None else int(self.n_outliers)
        out = self._make(X, y, n_outliers, rng)
        if X.dtype.kind in "iu":
            info = np.iinfo(X.dtype)
            out = np.clip(np.rint(out), info.min, info.max)
        return np.ascontiguousarray(out, dtype=X.dtype)

    def _check_more_params(self):
        """Checks that _parameter_constraints cannot express (none by default)."""

    def _make(self, X, y, n_outliers, rng):
        raise NotImplementedError


def _pick_rows(X, n_outliers, rng):
    return X[rng.randint(0, X.shape[0], size=n_outliers)]


def _as_nchw(images):
    """A view of (n, H, W) or (n, C, H, W) images as (n, C, H, W)."""
    return images[:, None] if images.ndim == 3 else images


class PatchShuffle(_Synthesizer):
    """Images cut into a grid of tiles whose tiles are put back in a shuffled order.

    Each outlier is a training image (drawn at random) cut into
    ``grid x grid`` tiles of ``height // grid`` by ``width // grid`` pixels,
    the tiles put back in a random order in which every tile moves (a
    derangement); the rows and columns left over when ``grid`` does not divide
    the size stay in place. Local statistics (strokes, textures, colours)
    are those of the data while the global layout is broken: near the data,
    but not of any class. The "jigsaw" negative augmentation of Sinha et al.,
    "Negative Data Augmentation", ICLR 2021.

    Assumes images of shape (n, H, W) or (n, C, H, W), channels first, with
    ``H`` and ``W`` at least ``grid``; any value range. The output holds the
    pixel values of ``X``, moved.

    Parameters
    ----------
    grid : int, default=2
        Tiles per side (at least 2).
    n_outliers : int or None, default=None
        Rows to make; ``None``: as many as ``X`` has.

    Examples
    --------
    >>> import numpy as np
    >>> from skood.synthesis import PatchShuffle
    >>> X = np.arange(16, dtype=np.float32).reshape(1, 4, 4)
    >>> PatchShuffle(grid=2).make_outliers(X, random_state=0)[0]
    array([[ 8.,  9., 10., 11.],
           [12., 13., 14., 15.],
           [ 0.,  1.,  2.,  3.],
           [ 4.,  5.,  6.,  7.]], dtype=float32)
    """

    _parameter_constraints = {
        **_Synthesizer._parameter_constraints,
        "grid": [Interval(numbers.Integral, 2, None, closed="left")],
    }

    def __init__(self, grid=2, n_outliers=None):
        self.grid = grid
        self.n_outliers = n_outliers

    @property
    def _min_side(self):
        return self.grid

    def _make(self, X, y, n_outliers, rng):
        images = _as_nchw(_pick_rows(X, n_outliers, rng)).copy()
        g = self.grid
        n, c, height, width = images.shape
        th, tw = height // g, width // g
        # (n, C, g, th, g, tw) -> tiles (n, g * g, C, th, tw)
        region = images[:, :, :g * th, :g * tw]
        tiles = region.reshape(n, c, g, th, g, tw).transpose(0, 2, 4, 1, 3, 5)
        tiles = tiles.reshape(n, g * g, c, th, tw)
        order = _derangements(n, g * g, rng)
        tiles = tiles[np.arange(n)[:, None], order]
        region = tiles.reshape(n, g, g, c, th, tw).transpose(0, 3, 1, 4, 2, 5)
        images[:, :, :g * th, :g * tw] = region.reshape(n, c, g * th, g * tw)
        return images.reshape((n_outliers,) + X.shape[1:])


def _derangements(n, size, rng):
    """``n`` random permutations of ``size`` items in which no item stays in place."""
    order = np.argsort(rng.random_sample((n, size)), axis=1)
    fixed = np.any(order == np.arange(size), axis=1)
    while fixed.any():     # about 1 in e permutations is a derangement: few rounds
        order[fixed] = np.argsort(rng.random_sample((int(fixed.sum()), size)), axis=1)
        fixed = np.any(order == np.arange(size), axis=1)
    return order


class ClassMix(_Synthesizer):
    """Blends of two training rows of different classes.

    Each outlier is ``w * x_a + (1 - w) * x_b`` for a row ``x_a`` drawn at
    random, a row ``x_b`` drawn at random among the rows of *other* classes,
    and a weight ``w`` drawn uniformly from ``weight_range``. Near the middle
    of the range a blend belongs to neither class, and lies between the
    classes: mixing in-distribution samples to make outliers is the idea of
    mixup used as a negative augmentation (Sinha et al., "Negative Data
    Augmentation", ICLR 2021) and of MixOE (Zhang et al., "Mixture Outlier
    Exposure", WACV 2023), which mixes with auxiliary outliers instead.

    Works on rows of any shape (images or tabular features); needs ``y`` with
    at least two classes. Blends are convex, so every output value lies
    between the smallest and the largest value of ``X``.

    Parameters
    ----------
    weight_range : tuple of two floats, default=(0.3, 0.7)
        ``(low, high)`` with ``0 <= low <= high <= 1``: the range of ``w``.
    n_outliers : int or None, default=None
        Rows to make; ``None``: as many as ``X`` has.

    Examples
    --------
    >>> import numpy as np
    >>> from skood.synthesis import ClassMix
    >>> X, y = np.array([[0.0, 0.0], [1.0, 1.0]]), np.array([0, 1])
    >>> ClassMix(weight_range=(0.5, 0.5)).make_outliers(X, y, random_state=0)
    array([[0.5, 0.5],
           [0.5, 0.5]])
    """

    _images = False

    _parameter_constraints = {
        **_Synthesizer._parameter_constraints,
        "weight_range": [tuple, list],
    }

    def __init__(self, weight_range=(0.3, 0.7), n_outliers=None):
        self.weight_range = weight_range
        self.n_outliers = n_outliers

    def _check_more_params(self):
        value = self.weight_range
        if (len(value) != 2 or not all(isinstance(v, numbers.Real) and not isinstance(v, bool)
                                       for v in value)
                or not 0 <= value[0] <= value[1] <= 1):
            raise ValueError(
                f"weight_range must be (low, high) with 0 <= low <= high <= 1, got {value!r}.")

    def _make(self, X, y, n_outliers, rng):
        if y is None:
            raise ValueError("ClassMix mixes rows of different classes: pass y, the class "
                             "of each row of X.")
        y = np.asarray(y)
        if y.shape != (X.shape[0],):
            raise ValueError(f"y must hold one label per row of X ({X.shape[0]}), got shape "
                             f"{y.shape}.")
        _, codes = np.unique(y, return_inverse=True)
        counts = np.bincount(codes)
        if len(counts) < 2:
            raise ValueError("ClassMix needs rows of at least two classes in y, got one.")
        by_class = np.argsort(codes, kind="stable")
        starts = np.r_[0, np.cumsum(counts)[:-1]]
        first = rng.randint(0, X.shape[0], size=n_outliers)
        c = codes[first]
        # a position among the rows of the other classes, skipping class c's block
        position = (rng.random_sample(n_outliers) * (X.shape[0] - counts[c])).astype(np.int64)
        position = np.where(position >= starts[c], position + counts[c], position)
        second = by_class[position]
        low, high = self.weight_range
        weight = rng.uniform(low, high, size=n_outliers)
        weight = weight.reshape((-1,) + (1,) * (X.ndim - 1))
        a, b = X[first].astype(np.float64), X[second].astype(np.float64)
        out = weight * a + (1 - weight) * b
        # rounding error must not leave X's range
        return np.clip(out, np.minimum(a, b), np.maximum(a, b))


class Rotation(_Synthesizer):
    """Training images turned by a large angle.

    Each outlier is a training image (drawn at random) rotated by one of
    ``angles`` (degrees, counter-clockwise, drawn at random). Upright data
    (digits, objects, scenes) turned by 90, 180 or 270 degrees keeps its
    strokes and textures but has the wrong orientation; CSI (Tack et al.,
    "CSI: Novelty Detection via Contrastive Learning on Distributionally
    Shifted Instances", NeurIPS 2020) uses such rotations as shifted,
    out-of-distribution versions of the data. Do not use it on data that has
    no upright orientation (textures, aerial views), nor where a rotated class
    is another class you mean to accept (a 6 turned by 180 degrees is a 9).

    Square images turned by a multiple of 90 degrees are rotated exactly;
    other angles and non-square images are rotated about the centre with
    bilinear interpolation, the corners filled by reflection, in the same
    height and width. Assumes images (n, H, W) or (n, C, H, W), channels first;
    any value range, and every output value lies within ``X``'s.

    Parameters
    ----------
    angles : sequence of float, default=(90, 180, 270)
        The angles to draw from; none may be a multiple of 360.
    n_outliers : int or None, default=None
        Rows to make; ``None``: as many as ``X`` has.

    Examples
    --------
    >>> import numpy as np
    >>> from skood.synthesis import Rotation
    >>> X = np.array([[[1, 2], [3, 4]]], dtype=np.uint8)
    >>> Rotation(angles=(180,)).make_outliers(X, random_state=0)
    array([[[4, 3],
            [2, 1]]], dtype=uint8)
    """

    _parameter_constraints = {
        **_Synthesizer._parameter_constraints,
        "angles": [tuple, list, np.ndarray],
    }

    def __init__(self, angles=(90, 180, 270), n_outliers=None):
        self.angles = angles
        self.n_outliers = n_outliers

    def _check_more_params(self):
        angles = list(self.angles)
        if not angles or not all(isinstance(a, numbers.Real) and not isinstance(a, bool)
                                 and np.isfinite(a) for a in angles):
            raise ValueError(f"angles must be a non-empty sequence of degrees, got "
                             f"{self.angles!r}.")
        if any(a % 360 == 0 for a in angles):
            raise ValueError(f"angles must not hold a multiple of 360 (no rotation), got "
                             f"{self.angles!r}.")

    def _make(self, X, y, n_outliers, rng):
        images = _pick_rows(X, n_outliers, rng).astype(np.float64)
        angles = np.asarray(self.angles, dtype=np.float64)[
            rng.randint(0, len(self.angles), size=n_outliers)]
        square = X.shape[-1] == X.shape[-2]
        out = np.empty_like(images)
        for angle in np.unique(angles):
            rows = angles == angle
            if square and angle % 90 == 0:
                out[rows] = np.rot90(images[rows], k=int(angle // 90) % 4, axes=(-2, -1))
            else:
                turned = ndimage.rotate(images[rows], angle, axes=(-1, -2), reshape=False,
                                        order=1, mode="reflect")
                out[rows] = np.clip(turned, X.min(), X.max())
        return out


class BlurNoise(_Synthesizer):
    """Training images blurred beyond recognition, with added noise.

    Each outlier is a training image (drawn at random) smoothed by a Gaussian
    filter over height and width (each channel apart) whose standard
    deviation is ``blur`` times the image's smaller side, plus Gaussian noise
    of standard deviation ``noise`` times the value range of ``X``, clipped
    to that range. What is left are the data's brightness and colours without
    shapes: a far outlier, like the blurred noise and blob images used as
    synthetic OOD test sets (Hendrycks et al., "Deep Anomaly Detection with
    Outlier Exposure", ICLR 2019).

    Assumes images (n, H, W) or (n, C, H, W), channels first; any value
    range, and every output value lies within ``X``'s.

    Parameters
    ----------
    blur : float, default=0.15
        Standard deviation of the blur, as a fraction of the smaller side
        (1.2 pixels on 8x8 images, 4.8 on 32x32); > 0.
    noise : float, default=0.1
        Standard deviation of the noise, as a fraction of ``X.max() - X.min()``;
        >= 0.
    n_outliers : int or None, default=None
        Rows to make; ``None``: as many as ``X`` has.

    Examples
    --------
    >>> import numpy as np
    >>> from skood.synthesis import BlurNoise
    >>> X = np.zeros((3, 1, 8, 8), dtype=np.float32)
    >>> X[:, :, 2:6, 2:6] = 1.0
    >>> out = BlurNoise(noise=0.0).make_outliers(X, random_state=0)
    >>> out.shape, float(out.max()) < 1.0
    ((3, 1, 8, 8), True)
    """

    _parameter_constraints = {
        **_Synthesizer._parameter_constraints,
        "blur": [Interval(numbers.Real, 0, None, closed="neither")],
        "noise": [Interval(numbers.Real, 0, None, closed="left")],
    }

    def __init__(self, blur=0.15, noise=0.1, n_outliers=None):
        self.blur = blur
        self.noise = noise
        self.n_outliers = n_outliers

    def _make(self, X, y, n_outliers, rng):
        images = _pick_rows(X, n_outliers, rng).astype(np.float64)
        sigma = self.blur * min(X.shape[-2:])
        spatial = (0,) * (images.ndim - 2) + (sigma, sigma)
        out = ndimage.gaussian_filter(images, sigma=spatial, mode="reflect")
        low, high = float(X.min()), float(X.max())
        if self.noise > 0:
            out = out + rng.normal(scale=self.noise * (high - low), size=out.shape)
        return np.clip(out, low, high)


class FeatureShuffle(_Synthesizer):
    """Rows whose every feature is drawn independently from that feature's values in ``X``.

    Each outlier's value of feature ``j`` is the value of feature ``j`` in a
    row of ``X`` drawn at random, a new row for every feature: the outliers
    follow the product of the features' marginal distributions. Each feature
    on its own looks like the data; the dependencies between features, which
    make the classes, are gone. This is the synthetic contrast class of
    unsupervised random forests (Breiman and Cutler; Shi and Horvath,
    "Unsupervised Learning With Random Forest Predictors", Journal of
    Computational and Graphical Statistics, 2006).

    Made for tabular rows (n, n_features) and works on rows of any shape (on
    images, each pixel is a feature). Every output value is a value of the
    same feature in ``X``. With a few features that are nearly independent
    given the class, the outliers can be close to in-distribution rows.

    Parameters
    ----------
    n_outliers : int or None, default=None
        Rows to make; ``None``: as many as ``X`` has.

    Examples
    --------
    >>> import numpy as np
    >>> from skood.synthesis import FeatureShuffle
    >>> X = np.array([[0, 10], [1, 11], [2, 12]])
    >>> FeatureShuffle(n_outliers=4).make_outliers(X, random_state=0)
    array([[ 0, 11],
           [ 0, 11],
           [ 1, 12],
           [ 0, 12]])
    """

    _images = False

    def __init__(self, n_outliers=None):
        self.n_outliers = n_outliers

    def _make(self, X, y, n_outliers, rng):
        flat = X.reshape(X.shape[0], -1)
        rows = rng.randint(0, X.shape[0], size=(n_outliers, flat.shape[1]))
        out = flat[rows, np.arange(flat.shape[1])]
        return out.reshape((n_outliers,) + X.shape[1:])
