"""k-means in torch on the training device, for the energy sampler of GReg+.

The paper's code runs scikit-learn's KMeans on the CPU for every training batch,
which costs more than the training step itself (``docs/performance.md``). This version runs
all restarts at once as batched tensor operations on the device the features already live
on, with a fixed number of iterations, so that nothing inside it waits for the host. Its random
draws are made first (:func:`draw_seeding`), so the rest (:func:`kmeans_from_draws`)
is a fixed function of tensors that :class:`GraphedKMeans` replays from a CUDA
graph: at the sampler's sizes k-means is bound by kernel launches, not
arithmetic. Written here rather than taken from a library because no
maintained one does batched restarts on the GPU without host synchronisation;
its inertia is tested against scikit-learn's.
"""
import math
import warnings

import torch

# draw_seeding, kmeans_from_draws and GraphedKMeans are the sampler's
# machinery, not public API (users reach them through EnergySampler)
__all__ = ["kmeans"]


def _pairwise_sq_distances(points):
    """All squared Euclidean distances between the rows of ``points``, (n, d) -> (n, n).

    Computed once per call: the seeding then reads candidate rows from it instead
    of recomputing distances at each of its ``n_clusters - 1`` sequential steps,
    which leaves each step a handful of small kernels.
    """
    sq = (points * points).sum(1)
    return torch.addmm(sq.unsqueeze(0), points, points.T, alpha=-2.0).add_(
        sq.unsqueeze(1)).clamp_min_(0.0)


def _kmeans_plus_plus(pairwise, first, uniform):
    """Greedy k-means++ seeding (as scikit-learn's), for r restarts at once.

    pairwise: (n, n) squared distances; first: (r,) first seed of each restart;
    uniform: (k, r, n_local_trials) draws in [0, 1). Returns the seeds' indices,
    (r, k). Each new seed is the best of ``n_local_trials`` candidates drawn in
    proportion to the squared distance to the nearest chosen seed.
    """
    n_clusters, restarts, n_trials = uniform.shape
    n = pairwise.shape[0]
    closest = pairwise.index_select(0, first)                                 # (r, n)
    chosen = [first]
    for step in range(1, n_clusters):
        # inverse-CDF sampling, without torch.multinomial's host-side checks
        cdf = closest.cumsum(1)
        trials = torch.searchsorted(cdf, uniform[step] * cdf[:, -1:]).clamp_max_(n - 1)
        trial_closest = torch.minimum(
            closest.unsqueeze(1),
            pairwise.index_select(0, trials.view(-1)).view(restarts, n_trials, n))
        best = trial_closest.sum(2).argmin(1, keepdim=True)                    # (r, 1)
        closest = trial_closest.gather(1, best.unsqueeze(2).expand(-1, 1, n)).squeeze(1)
        chosen.append(trials.gather(1, best).squeeze(1))
    return torch.stack(chosen, 1)


def _check_inputs(points, n_clusters):
    if points.dim() != 2:
        raise ValueError(f"points must be 2-D (n_samples, n_features), got shape "
                         f"{tuple(points.shape)}.")
    if not 1 <= n_clusters <= points.shape[0]:
        raise ValueError(f"n_clusters must be between 1 and the number of points "
                         f"({points.shape[0]}), got {n_clusters}.")


def draw_seeding(n_samples, n_clusters, n_init, generator, device):
    """The random draws of one :func:`kmeans` call, made before any of its arithmetic.

    Drawing them up front keeps the rest of k-means a fixed function of its
    inputs (what a CUDA graph can replay).

    Returns
    -------
    first : torch.Tensor of shape (n_init,), int64
        First seed of each restart.
    uniform : torch.Tensor of shape (n_clusters, n_init, 2 + int(log(n_clusters)))
        Uniform draws in [0, 1) for the candidates of the other seeds.
    """
    n_local_trials = 2 + int(math.log(n_clusters))
    gen_device = generator.device
    first = torch.randint(n_samples, (n_init,), generator=generator, device=gen_device)
    uniform = torch.rand((n_clusters, n_init, n_local_trials), generator=generator,
                         device=gen_device)
    return first.to(device), uniform.to(device)


def kmeans_from_draws(points, first, uniform, max_iter):
    """k-means as a fixed function of its random draws (see :func:`draw_seeding`).

    Static shapes, no host synchronisation, no randomness: the part of
    :func:`kmeans` that :class:`GraphedKMeans` captures. Returns
    ``(labels, inertia)`` as :func:`kmeans` does.
    """
    # float32 arithmetic even inside an autocast region: distances in bf16 would
    # change the clustering
    with torch.autocast(points.device.type, enabled=False):
        return _kmeans_from_draws(points.float(), first, uniform, max_iter)


def _kmeans_from_draws(points, first, uniform, max_iter):
    n, dim = points.shape
    n_clusters, n_init, _ = uniform.shape
    seeds = _kmeans_plus_plus(_pairwise_sq_distances(points), first, uniform)
    centers = points[seeds]                                                   # (r, k, d)
    by_matmul = points.is_cuda
    summands = _cluster_summands(points, n_init, by_matmul)
    for _ in range(max_iter):
        labels = _center_scores(points, centers).argmin(2)                    # (n, r)
        sums, counts = _cluster_sums(summands, labels, n_clusters, by_matmul)
        updated = sums / counts.clamp_min(1.0)
        # an empty cluster keeps its center
        centers = torch.where(counts > 0, updated, centers)
    scores, labels = _center_scores(points, centers).min(2)                   # (n, r)
    inertia = scores.add_((points * points).sum(1, keepdim=True)).clamp_min_(0.0).sum(0)
    best = inertia.argmin(0, keepdim=True)
    return labels.gather(1, best.expand(n, 1)).squeeze(1), inertia[best].squeeze(0)


def _cluster_summands(points, n_init, by_matmul):
    """The rows that :func:`_cluster_sums` adds up: the points with a trailing 1
    (whose sum is the count), once for the matrix product, or once per restart
    (restart-major) for ``index_add_``."""
    with_ones = torch.cat([points, points.new_ones(points.shape[0], 1)], 1)   # (n, d+1)
    return with_ones if by_matmul else with_ones.repeat(n_init, 1)


def _cluster_sums(summands, labels, n_clusters, by_matmul):
    """Per restart and cluster, the sum of the member points and their count.

    summands: from :func:`_cluster_summands`; labels: (n, r). Returns sums
    (r, k, d) and counts (r, k, 1). ``by_matmul`` (used on CUDA) sums with a
    one-hot matrix product: CUDA's ``index_add_`` adds floats with atomics,
    whose varying order would make the clustering, and so a fit, differ from
    run to run. On the CPU ``index_add_`` is deterministic and cheaper than
    the product.
    """
    n, restarts = labels.shape
    width = summands.shape[1]
    if by_matmul:
        one_hot = labels.T.unsqueeze(1) == torch.arange(
            n_clusters, device=labels.device).view(1, n_clusters, 1)          # (r, k, n)
        totals = torch.mm(one_hot.reshape(restarts * n_clusters, n).to(summands.dtype),
                          summands)
    else:
        offsets = torch.arange(restarts, device=labels.device).unsqueeze(1) * n_clusters
        totals = summands.new_zeros(restarts * n_clusters, width).index_add_(
            0, (labels.T + offsets).reshape(-1), summands)
    totals = totals.view(restarts, n_clusters, width)
    return totals[..., :-1], totals[..., -1:]


def _center_scores(points, centers):
    """``|c|^2 - 2 p.c`` for every point, restart and center, (n, d) x (r, k, d) -> (n, r, k):
    the squared distance up to the per-point constant ``|p|^2``, which is all
    that the nearest-center search needs."""
    restarts, n_clusters, dim = centers.shape
    flat = centers.reshape(restarts * n_clusters, dim)
    return torch.addmm((flat * flat).sum(1).unsqueeze(0), points, flat.T,
                       alpha=-2.0).view(-1, restarts, n_clusters)


def kmeans(points, n_clusters, *, n_init=3, max_iter=10, generator=None):
    """Cluster ``points`` with k-means; return the labels of the best of ``n_init`` restarts.

    Parameters
    ----------
    points : torch.Tensor of shape (n_samples, n_features)
    n_clusters : int
        At most ``n_samples``.
    n_init : int, default=3
        Restarts, run together as one batch; the one with the lowest inertia wins.
    max_iter : int, default=10
        Lloyd iterations (a fixed number: no convergence test, which would
        need the host). On L2-normalised features with the sampler's cluster
        sizes, 10 reach scikit-learn's converged inertia within 1% (tested).
    generator : torch.Generator, optional
        Source of randomness for the seeding (on the CPU or on ``points``' device).

    Returns
    -------
    labels : torch.Tensor of shape (n_samples,), int64
    inertia : torch.Tensor of shape ()
        Sum of squared distances to the closest center, of the returned clustering.

    Examples
    --------
    >>> import torch
    >>> points = torch.tensor([[0.0, 0.0], [0.1, 0.0], [5.0, 5.0], [5.1, 5.0]])
    >>> labels, _ = kmeans(points, 2, generator=torch.Generator().manual_seed(0))
    >>> bool(labels[0] == labels[1]) and bool(labels[2] == labels[3])
    True
    >>> bool(labels[0] != labels[2])
    True
    """
    _check_inputs(points, n_clusters)
    if generator is None:
        generator = torch.Generator()
    first, uniform = draw_seeding(points.shape[0], n_clusters, n_init, generator, points.device)
    return kmeans_from_draws(points, first, uniform, max_iter)


class GraphedKMeans:
    """:func:`kmeans` on CUDA, replayed from a CUDA graph captured once per input shape.

    At the energy sampler's sizes (a pool of a few hundred points, 64 clusters)
    k-means costs almost nothing in arithmetic: its time is the launch of about
    ten small kernels for each of the ``n_clusters - 1`` sequential seeding
    steps and each Lloyd iteration. A captured graph launches them all at once.
    The random draws are made outside the graph (:func:`draw_seeding`) and
    copied into its input buffers, so a replay gives what :func:`kmeans` gives
    for the same generator state.

    Parameters
    ----------
    n_init, max_iter : int
        As in :func:`kmeans`.
    warmup : int, default=2
        Eager runs on a side stream before a capture (CUDA's recommended practice,
        so that lazy initialisations do not happen inside the capture).

    Notes
    -----
    A graph is captured the first time a shape (number of points, features,
    clusters) is seen, which synchronises the device once; a fit sees one or
    two shapes (a smaller last batch). If capturing fails, a warning says so
    and that shape runs eagerly. Graphs hold their own device memory until
    the object is dropped; the sampler drops it at the end of each fit.
    """

    def __init__(self, n_init=3, max_iter=10, warmup=2):
        self.n_init = n_init
        self.max_iter = max_iter
        self.warmup = warmup
        self._graphs = {}

    def __call__(self, points, n_clusters, generator):
        """Labels and inertia of the best restart, as :func:`kmeans` returns them."""
        if not points.is_cuda:
            raise ValueError(f"GraphedKMeans needs CUDA tensors, got points on {points.device}; "
                             "use skood.kmeans.kmeans elsewhere.")
        _check_inputs(points, n_clusters)
        n, dim = points.shape
        first, uniform = draw_seeding(n, n_clusters, self.n_init, generator, points.device)
        key = (n, dim, n_clusters, points.device)
        if key not in self._graphs:
            self._graphs[key] = self._capture(points, first, uniform)
        captured = self._graphs[key]
        if captured is None:    # capture failed for this shape: run eagerly
            return kmeans_from_draws(points, first, uniform, self.max_iter)
        graph, inputs, (labels, inertia) = captured
        for buffer, value in zip(inputs, (points, first, uniform)):
            buffer.copy_(value)
        graph.replay()
        # the outputs live in the graph's memory and the next replay overwrites them
        return labels.clone(), inertia.clone()

    def _capture(self, points, first, uniform):
        inputs = (points.detach().float().clone(), first.clone(), uniform.clone())
        try:
            with torch.cuda.device(points.device), torch.no_grad():
                side = torch.cuda.Stream()
                side.wait_stream(torch.cuda.current_stream())
                with torch.cuda.stream(side):
                    for _ in range(self.warmup):
                        kmeans_from_draws(*inputs, self.max_iter)
                torch.cuda.current_stream().wait_stream(side)
                graph = torch.cuda.CUDAGraph()
                # thread_local: a pin-memory or logging thread touching CUDA
                # meanwhile must not invalidate this capture
                with torch.cuda.graph(graph, capture_error_mode="thread_local"):
                    outputs = kmeans_from_draws(*inputs, self.max_iter)
        except RuntimeError as error:
            warnings.warn(f"Capturing k-means in a CUDA graph failed ({error}); it runs "
                          "eagerly instead, which is slower but gives the same result. "
                          "EnergySampler(cuda_graph=False) turns the attempt off.",
                          RuntimeWarning, stacklevel=3)
            return None
        return graph, inputs, outputs
