"""KNN: distance to the k-th nearest training feature (Sun et al., ICML 2022)."""
import importlib.util
import numbers

import numpy as np
import torch
import torch.nn.functional as F
# scikit-learn's constraint types for _parameter_constraints (a private module: see _base.py)
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_random_state

from ._base import BaseDetector

__all__ = ["KNN"]

# Query rows per block of the exact search: a block's similarity matrix holds about this many
# float32 values (64 MiB; 335 query rows against 50,000 stored rows). Each block's matrix
# product repacks all stored rows, so small blocks pay that copy often: at 50,000 x 512, blocks
# of 2**23 values took 1.25x faiss's exact search and blocks of 2**24 1.14x (one thread, 2-core
# AMD EPYC); larger blocks gained no more and cost memory.
_BLOCK_VALUES = 2 ** 24


def faiss_available():
    """Whether ``import faiss`` would work (without importing it)."""
    return importlib.util.find_spec("faiss") is not None


class KNN(BaseDetector):
    r"""Minus the distance from the L2-normalised features to their k-th nearest training row.

    .. math::

        s(x) = -\lVert z(x) - z_{(k)}(x) \rVert_2, \qquad z(x) = h(x) / \lVert h(x) \rVert_2

    where :math:`z_{(k)}(x)` is the k-th nearest of the stored, normalised training
    features. Higher means more in-distribution. (The paper's code scores minus the
    *squared* distance; the order, and so every metric and conformal decision, is the same.)
    A row of zeros stays zero after normalisation, at distance 1 from every stored row.

    The search is exact. Features are unit vectors, so the nearest rows are those of largest
    dot product: blocks of query rows are multiplied with the stored rows (one float32
    matrix product with numpy) and ``torch.topk`` picks the k largest; the k-th distance is then
    recomputed as the norm of the difference (no cancellation for near-duplicates). When
    the ``faiss`` package (``pip install faiss-cpu``) is installed and ``backend="auto"``,
    its exact brute-force search (``faiss.knn`` with the inner product, the search of an
    ``IndexFlatIP``) finds the neighbours instead; both give the same scores up to float32
    rounding. ``fit`` and scoring run on the CPU.

    Parameters
    ----------
    k : int >= 1 or "auto", default="auto"
        Which neighbour. ``"auto"`` is ``max(1, round(n_stored / 1000))``: the paper's
        choices are k = 50 on CIFAR-10 (50,000 training rows: 1 in 1,000) and k = 1000 on
        ImageNet (1.28 million rows: about 1 in 1,300), so k grows with the number of
        stored rows as the paper's does, and on small training sets (a few thousand rows)
        it is 1 to a few, where a large k would reach into other classes.
    max_stored : int >= 1 or None, default=None
        Keep at most this many training rows, drawn at random without replacement (seeded by
        ``random_state``), to bound the fitted size and the search time; None keeps all.
        The fitted model holds ``n_stored x n_features`` float32 values (about 100 MB for
        50,000 rows of width 512). ``"auto"`` k is computed from the rows kept.
    random_state : int, RandomState instance or None, default=None
        Seeds the draw of ``max_stored`` rows.
    backend : {"auto", "builtin", "faiss"}, default="auto"
        The search: ``"builtin"`` the blocked matrix product above (no extra package),
        ``"faiss"`` faiss's exact search (an ImportError if faiss is missing), ``"auto"``
        faiss when it is installed, else the built-in search. Decided at each
        ``score_samples`` call, so a fitted detector moves between machines with and without
        faiss.

    Attributes
    ----------
    train_features_ : ndarray of shape (n_stored, n_features), float32
        The stored training features, normalised.
    k_ : int
        The k used.
    n_features_in_ : int

    References
    ----------
    Sun, Ming, Zhu, Li, "Out-of-distribution detection with deep nearest neighbors",
    ICML 2022.

    Examples
    --------
    >>> import numpy as np
    >>> from skood.detectors import KNN
    >>> train = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    >>> detector = KNN(k=1).fit(train)
    >>> -detector.score_samples([[2.0, 0.0], [-1.0, 0.0]]).round(4)   # the distances
    array([0.    , 1.4142])
    """

    needs = frozenset({"features"})
    _parameter_constraints = {
        "k": [Interval(numbers.Integral, 1, None, closed="left"), StrOptions({"auto"})],
        "max_stored": [Interval(numbers.Integral, 1, None, closed="left"), None],
        "random_state": ["random_state"],
        "backend": [StrOptions({"auto", "builtin", "faiss"})],
    }

    def __init__(self, k="auto", max_stored=None, random_state=None, backend="auto"):
        self.k = k
        self.max_stored = max_stored
        self.random_state = random_state
        self.backend = backend

    def _fit(self, features, logits, y, last_layer):
        stored = _normalise(features)
        if self.max_stored is not None and stored.shape[0] > self.max_stored:
            rng = check_random_state(self.random_state)
            keep = np.sort(rng.choice(stored.shape[0], self.max_stored, replace=False))
            stored = stored[torch.from_numpy(keep)]
        n_stored = stored.shape[0]
        k = max(1, (n_stored + 500) // 1000) if self.k == "auto" else int(self.k)
        if k > n_stored:
            raise ValueError(f"KNN: k={k} but only {n_stored} training rows are stored; use "
                             f"k <= {n_stored} (or k='auto').")
        self._search_backend()   # an unusable backend fails at fit, not later
        self.k_ = k
        self.train_features_ = stored.numpy()

    def _score(self, features, logits):
        queries = _normalise(features)
        stored = torch.from_numpy(self.train_features_)
        if self._search_backend() == "faiss":
            import faiss
            _, found = faiss.knn(queries.numpy(), self.train_features_, self.k_,
                                 metric=faiss.METRIC_INNER_PRODUCT)
            kth = torch.from_numpy(found[:, -1].astype(np.int64))
        else:
            kth = _kth_nearest(queries, stored, self.k_)
        return -torch.linalg.vector_norm(queries - stored[kth], dim=1)

    def _search_backend(self):
        if self.backend == "builtin":
            return "builtin"
        if faiss_available():
            return "faiss"
        if self.backend == "faiss":
            raise ImportError("KNN(backend='faiss') needs the faiss package: "
                              "pip install faiss-cpu, or use backend='builtin' or 'auto'.")
        return "builtin"


def _normalise(features):
    """Rows scaled to unit L2 norm, float32 on the CPU (zero rows stay zero)."""
    return F.normalize(features.detach().cpu().to(torch.float32), dim=1).contiguous()


def _kth_nearest(queries, stored, k):
    """Index in ``stored`` of the k-th largest dot product of each query (exact, blocked)."""
    rows = max(1, min(queries.shape[0], _BLOCK_VALUES // max(1, stored.shape[0])))
    # numpy's matmul (OpenBLAS) into one reused buffer: on the CPUs measured it multiplies
    # float32 faster than torch's; torch.topk then selects without a copy.
    queries, stored = queries.numpy(), stored.numpy()
    buffer = np.empty((rows, stored.shape[0]), dtype=np.float32)
    found = torch.empty(queries.shape[0], dtype=torch.int64)
    for start in range(0, queries.shape[0], rows):
        block = queries[start:start + rows]
        similarity = np.matmul(block, stored.T, out=buffer[:block.shape[0]])
        found[start:start + rows] = torch.from_numpy(similarity).topk(k, dim=1).indices[:, -1]
    return found
