"""k-means in torch on the training device, for the energy sampler of GReg+.

The paper's code runs scikit-learn's KMeans on the CPU for every training batch,
which costs more than the training step itself (DESIGN.md: 14x an energy-OE step
on an H100). This version runs all restarts at once as batched tensor
operations on the device the features already live on, with a fixed number of
iterations, so that nothing inside it waits for the host. Written here rather
than taken from a library because no maintained one does batched restarts on
the GPU without host synchronisation; its inertia is tested against
scikit-learn's.
"""
import math

import torch

__all__ = ["kmeans"]


def _sq_distances(points, centers):
    """Squared Euclidean distances, (r, n, d) x (r, k, d) -> (r, n, k), clamped at 0."""
    cross = torch.baddbmm((centers * centers).sum(-1).unsqueeze(1), points,
                          centers.transpose(1, 2), alpha=-2.0)
    return (cross + (points * points).sum(-1, keepdim=True)).clamp_min_(0.0)


def _kmeans_plus_plus(points, n_clusters, generator, n_local_trials):
    """Greedy k-means++ seeding (as scikit-learn's), for r restarts at once.

    points: (r, n, d). Returns centers (r, k, d). Each new center is the best of
    ``n_local_trials`` candidates drawn in proportion to the squared distance to
    the nearest chosen center.
    """
    restarts, n, dim = points.shape
    device = points.device
    first = torch.randint(n, (restarts, 1), generator=generator, device=generator.device)
    first = first.to(device)
    centers = torch.gather(points, 1, first.unsqueeze(-1).expand(-1, -1, dim))
    closest = _sq_distances(points, centers).squeeze(-1)                    # (r, n)
    for _ in range(1, n_clusters):
        weights = closest.clamp_min(1e-12)
        uniform = torch.rand((restarts, n_local_trials), generator=generator,
                             device=generator.device).to(device)
        # inverse-CDF sampling, without torch.multinomial's host-side checks
        cdf = weights.cumsum(1)
        trials = torch.searchsorted(cdf, uniform * cdf[:, -1:]).clamp_max_(n - 1)
        candidates = torch.gather(points, 1, trials.unsqueeze(-1).expand(-1, -1, dim))
        trial_dist = torch.minimum(closest.unsqueeze(1),
                                   _sq_distances(points, candidates).transpose(1, 2))
        best = trial_dist.sum(-1).argmin(1)                                  # (r,)
        rows = torch.arange(restarts, device=device)
        centers = torch.cat([centers, candidates[rows, best].unsqueeze(1)], 1)
        closest = trial_dist[rows, best]
    return centers


def kmeans(points, n_clusters, *, n_init=3, max_iter=30, generator=None):
    """Cluster ``points`` with k-means; return the labels of the best of ``n_init`` restarts.

    Parameters
    ----------
    points : torch.Tensor of shape (n_samples, n_features)
    n_clusters : int
        At most ``n_samples``.
    n_init : int, default=3
        Restarts, run together as one batch; the one with the lowest inertia wins.
    max_iter : int, default=30
        Lloyd iterations (a fixed number: no convergence test, which would
        need the host).
    generator : torch.Generator, optional
        Source of randomness for the seeding (on the CPU or on ``points``' device).

    Returns
    -------
    labels : torch.Tensor of shape (n_samples,), int64
    inertia : torch.Tensor, scalar
        Sum of squared distances to the closest center, of the returned clustering.

    Examples
    --------
    >>> import torch
    >>> points = torch.tensor([[0.0, 0.0], [0.1, 0.0], [5.0, 5.0], [5.1, 5.0]])
    >>> labels, _ = kmeans(points, 2, generator=torch.Generator().manual_seed(0))
    >>> bool(labels[0] == labels[1]) and bool(labels[2] == labels[3]) and bool(labels[0] != labels[2])
    True
    """
    n, dim = points.shape
    if not 1 <= n_clusters <= n:
        raise ValueError(f"n_clusters must be between 1 and the number of points ({n}), "
                         f"got {n_clusters}.")
    if generator is None:
        generator = torch.Generator()
    points = points.float()
    batched = points.unsqueeze(0).expand(n_init, n, dim).contiguous()
    n_local_trials = 2 + int(math.log(n_clusters))
    centers = _kmeans_plus_plus(batched, n_clusters, generator, n_local_trials)
    for _ in range(max_iter):
        labels = _sq_distances(batched, centers).argmin(-1)                  # (r, n)
        one_hot = torch.nn.functional.one_hot(labels, n_clusters).to(points.dtype)
        counts = one_hot.sum(1).unsqueeze(-1)                                # (r, k, 1)
        sums = one_hot.transpose(1, 2) @ batched                             # (r, k, d)
        # an empty cluster keeps its center
        centers = torch.where(counts > 0, sums / counts.clamp_min(1.0), centers)
    distances = _sq_distances(batched, centers)
    closest, labels = distances.min(-1)
    inertia = closest.sum(1)
    best = inertia.argmin()
    return labels[best], inertia[best]
