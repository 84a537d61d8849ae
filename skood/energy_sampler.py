"""GReg+'s energy-based outlier sampler.

For each in-distribution batch of size B (the paper's rule, ``docs/method.md``):

1. take a candidate pool of ``pool_factor * B`` auxiliary samples, walking
   through the auxiliary data without replacement;
2. forward it without gradients in eval mode, keeping energies and features;
3. L2-normalise the features and cluster them with k-means into
   ``min(n_clusters, B)`` clusters;
4. keep, per cluster, the ``B // n_clusters`` lowest-energy samples (the hardest
   outliers) and, with ``two_way=True``, as many highest-energy ones;
5. fill up to the number of outliers the step asks for with random unchosen
   candidates.

Everything after the pool's host-to-device copy runs on the training device
with fixed shapes, so a step never waits for the host.
"""
import numbers
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.base import BaseEstimator
from sklearn.utils import check_random_state

from .exceptions import warn_at_caller
from .kmeans import GraphedKMeans, kmeans
from ._outliers import OutlierStream

__all__ = ["EnergySampler", "EnergySamplerState", "select_by_energy"]


def select_by_energy(labels, energies, n_clusters, per_cluster, two_way, n_select, generator):
    """Indices of the outliers GReg+ keeps from a clustered candidate pool.

    Per cluster the ``per_cluster`` lowest-energy candidates are chosen and, with
    ``two_way``, also the ``per_cluster`` highest-energy ones (a candidate that
    is both is chosen once). If fewer than ``n_select`` are chosen, random
    unchosen candidates fill up; if more, a random subset of the chosen is kept.

    Parameters
    ----------
    labels : torch.Tensor of shape (n_pool,), int64
        Cluster of each candidate, in ``[0, n_clusters)``.
    energies : torch.Tensor of shape (n_pool,)
    n_clusters, per_cluster : int
    two_way : bool
    n_select : int
        At most ``n_pool``.
    generator : torch.Generator on the device of ``energies``

    Returns
    -------
    torch.Tensor of shape (n_select,), int64, no duplicates; chosen candidates first.

    Examples
    --------
    >>> import torch
    >>> labels = torch.tensor([0, 0, 0, 1, 1, 1])
    >>> energies = torch.tensor([3.0, 1.0, 2.0, 9.0, 7.0, 8.0])
    >>> sorted(select_by_energy(labels, energies, 2, 1, False, 2, torch.Generator()).tolist())
    [1, 4]
    """
    n_pool = labels.shape[0]
    # Group by cluster, ascending energy inside each group (two stable sorts).
    by_energy = torch.argsort(energies, stable=True)
    order = by_energy[torch.argsort(labels[by_energy], stable=True)]
    # (bincount would need the host on CUDA to size its output)
    counts = torch.zeros(n_clusters, dtype=torch.long, device=labels.device).index_add_(
        0, labels, torch.ones_like(labels))
    starts = torch.cumsum(counts, 0) - counts
    sorted_labels = labels[order]
    rank = torch.arange(n_pool, device=labels.device) - starts[sorted_labels]
    chosen_sorted = rank < per_cluster
    if two_way:
        chosen_sorted |= rank >= counts[sorted_labels] - per_cluster
    chosen = torch.zeros(n_pool, dtype=torch.bool, device=labels.device)
    chosen[order] = chosen_sorted
    # Chosen candidates get priority in [1, 2), the others [0, 1): the top
    # n_select are the chosen ones (a random subset if too many) then a random fill.
    priority = torch.rand(n_pool, generator=generator, device=generator.device)
    priority = priority.to(energies.device) + chosen.to(priority.dtype)
    return torch.topk(priority, n_select, sorted=True).indices


class EnergySampler(BaseEstimator):
    """GReg+'s outlier sampler: clusters a candidate pool and keeps extreme energies.

    Pass it as ``GradRegOODClassifier(sampler=EnergySampler(...))``, or
    ``sampler="energy"`` for the defaults.

    Parameters
    ----------
    n_clusters : int, default=64
        Clusters per pool; clipped to the batch size as in the paper. Any
        integer type (``numbers.Integral``, e.g. ``np.int64``) except bool.
    pool_factor : int, default=6
        Candidates per in-distribution sample in each step (the paper's CIFAR
        setting: 6). Scoring them is one no-gradient forward of the pool, most
        of what GReg+ costs beyond GReg; a smaller pool is cheaper and filters
        less. It must hold more than the step's outliers to filter at all
        (``pool_factor`` above the outliers per ID sample, 2 for the two-way
        sampler); a fit whose pool cannot filter warns once.
        The tuning guide measures both.
    two_way : bool, default=True
        Keep the highest-energy samples of each cluster too (the paper's setting).
    feature_layer : str or None, default=None
        Dotted name of the submodule whose output are the features to cluster.
        By default, the input of the module's last ``nn.Linear``.
    n_init : int, default=3
        k-means restarts.
    max_iter : int, default=10
        k-means (Lloyd) iterations.
    random_state : int, RandomState or None, default=None
        Seeds the sampler (an int directly; a ``RandomState`` gives one seed per
        fit); by default it follows the estimator's ``random_state``.
    cuda_graph : bool, default=True
        When training on CUDA, replay k-means from a CUDA graph (captured once
        per pool shape in each fit) instead of launching its few hundred small
        kernels one by one at every step. Same result either way; ignored off
        CUDA. Turn it off if a capture fails in your setup (a warning says so).

    Examples
    --------
    >>> EnergySampler(n_clusters=16)
    EnergySampler(n_clusters=16)
    """

    def __init__(self, n_clusters=64, pool_factor=6, two_way=True, feature_layer=None,
                 n_init=3, max_iter=10, random_state=None, cuda_graph=True):
        self.n_clusters = n_clusters
        self.pool_factor = pool_factor
        self.two_way = two_way
        self.feature_layer = feature_layer
        self.n_init = n_init
        self.max_iter = max_iter
        self.random_state = random_state
        self.cuda_graph = cuda_graph

    def default_ratio(self):
        """Outliers per in-distribution sample when the estimator's ``aux_batch_ratio`` is None.

        Returns
        -------
        float
            2.0 with ``two_way=True`` (the paper's two-way sampler), else 1.0.
        """
        return 2.0 if self.two_way else 1.0

    def check_params(self):
        """Raise a ValueError for a parameter out of its range."""
        for name in ("n_clusters", "pool_factor", "n_init", "max_iter"):
            value = getattr(self, name)
            if (not isinstance(value, numbers.Integral) or isinstance(value, (bool, np.bool_))
                    or value < 1):
                raise ValueError(f"EnergySampler's {name} must be a positive int, got {value!r}.")
        if not isinstance(self.two_way, (bool, np.bool_)):
            raise ValueError(f"EnergySampler's two_way must be True or False, "
                             f"got {self.two_way!r}.")
        if not isinstance(self.cuda_graph, bool):
            raise ValueError(f"EnergySampler's cuda_graph must be True or False, "
                             f"got {self.cuda_graph!r}.")
        if self.random_state is not None and not isinstance(self.random_state, numbers.Integral):
            try:
                check_random_state(self.random_state)
            except ValueError:
                raise ValueError(f"EnergySampler's random_state must be None, an int or a "
                                 f"numpy RandomState, got {self.random_state!r}.") from None

    def reset(self, n_outliers, seed, device, *, index_device="cpu", pool_scorer=None):
        """Start a fit: return its state (the sampler itself keeps none).

        Parameters
        ----------
        n_outliers : int
            Size of the auxiliary set.
        seed : int
            Seeds the candidate stream and k-means; ``random_state``, when set, wins.
        device : torch.device or str
            The training device, where k-means and the selection run.
        index_device : torch.device or str, default="cpu"
            Where the outliers are kept; the candidate stream is drawn there.
        pool_scorer : skood._outliers.PoolScorer
            The network of the fit and how to score candidates with it; the
            estimator passes it.

        Returns
        -------
        EnergySamplerState
        """
        self.check_params()
        if pool_scorer is None:
            raise ValueError("EnergySampler.reset needs the pool_scorer of the fit (the "
                             "estimator passes it).")
        if isinstance(self.random_state, numbers.Integral):
            seed = int(self.random_state)
        elif self.random_state is not None:
            seed = int(check_random_state(self.random_state).randint(np.iinfo(np.int32).max))
        device = torch.device(device)
        graphed = (GraphedKMeans(int(self.n_init), int(self.max_iter))
                   if self.cuda_graph and device.type == "cuda" else None)
        return EnergySamplerState(
            stream=OutlierStream(n_outliers, seed, index_device),
            generator=torch.Generator(device=device).manual_seed(seed),
            pool_scorer=pool_scorer,
            feature_target=self._feature_hook_target(pool_scorer.module),
            graphed_kmeans=graphed, warned=set())

    def _feature_hook_target(self, module):
        if self.feature_layer is not None:
            modules = dict(module.named_modules())
            if self.feature_layer not in modules:
                names = [name for name in modules if name][:20]
                raise ValueError(
                    f"EnergySampler(feature_layer={self.feature_layer!r}): the module has no "
                    f"submodule of that name. Some of its submodules: {names}.")
            return modules[self.feature_layer], "output"
        linears = [m for m in module.modules() if isinstance(m, torch.nn.Linear)]
        if not linears:
            names = [name for name, _ in module.named_modules() if name][:20]
            raise ValueError(
                "EnergySampler needs penultimate features: the module has no nn.Linear "
                "whose input could be used. Name the submodule whose output are the features "
                f"with EnergySampler(feature_layer=...); its submodules: {names}.")
        return linears[-1], "input"

    def score_pool(self, pool_scorer, x_pool, feature_target=None):
        """Energies and features of the candidates ``x_pool``.

        Parameters
        ----------
        pool_scorer : skood._outliers.PoolScorer
            Forwards the pool in eval mode without gradients.
        x_pool : torch.Tensor of shape (n_pool, ...)
        feature_target : tuple, optional
            ``(layer, "input" or "output")``, as looked up once per fit; by
            default looked up from ``feature_layer``.

        Returns
        -------
        energies : torch.Tensor of shape (n_pool,), float32
        features : torch.Tensor of shape (n_pool, n_features), float32
        """
        if feature_target is None:
            feature_target = self._feature_hook_target(pool_scorer.module)
        target, kind = feature_target
        captured = {}

        def hook(module, args, output):
            captured["features"] = args[0] if kind == "input" else output

        handle = target.register_forward_hook(hook)
        try:
            energies = pool_scorer.energies(x_pool)
        finally:
            handle.remove()
        features = captured["features"]
        if isinstance(features, (tuple, list)):
            features = features[0]
        return energies.float(), features.flatten(1).float()

    def draw(self, state, aux, batch_size, n_outliers, device):
        """Return ``n_outliers`` outliers for an in-distribution batch of ``batch_size``.

        Parameters
        ----------
        state : EnergySamplerState
            What :meth:`reset` returned for this fit.
        aux : skood._outliers.AuxiliaryData
        batch_size : int
            Size of the in-distribution batch: the pool is ``pool_factor *
            batch_size`` candidates and ``n_clusters`` is clipped to it.
        n_outliers : int
        device : torch.device or str

        Returns
        -------
        torch.Tensor of shape (n_outliers, ...), float32
        """
        pool_size = min(int(self.pool_factor) * batch_size, state.stream.n_outliers)
        if pool_size <= n_outliers and "pool" not in state.warned:
            state.warned.add("pool")
            warn_at_caller(
                f"EnergySampler(pool_factor={self.pool_factor}) cannot filter: a step needs "
                f"{n_outliers} outliers for {batch_size} in-distribution samples, and the "
                f"candidate pool holds {pool_size} (pool_factor * batch size, at most the "
                f"{state.stream.n_outliers} auxiliary outliers), so outliers are drawn "
                "without selection by energy. Raise pool_factor above the outliers per ID "
                "sample (aux_batch_ratio, 2 for the two-way sampler) or pass more auxiliary "
                "outliers.")
        x_pool = aux.take_next(state.stream, pool_size, device)
        energies, features = self.score_pool(state.pool_scorer, x_pool, state.feature_target)
        n_clusters = max(1, min(int(self.n_clusters), batch_size, pool_size))
        features = F.normalize(features, dim=1)
        if state.graphed_kmeans is not None and features.is_cuda:
            labels, _ = state.graphed_kmeans(features, n_clusters, state.generator)
        else:
            labels, _ = kmeans(features, n_clusters, n_init=int(self.n_init),
                               max_iter=int(self.max_iter), generator=state.generator)
        per_cluster = max(1, batch_size // n_clusters)
        picked = select_by_energy(labels, energies, n_clusters, per_cluster, self.two_way,
                                  min(n_outliers, pool_size), state.generator)
        if n_outliers > pool_size:  # fewer outliers than one step needs: repeat some
            extra = torch.randint(pool_size, (n_outliers - pool_size,),
                                  generator=state.generator, device=state.generator.device)
            picked = torch.cat([picked, extra.to(picked.device)])
        return x_pool[picked]


class EnergySamplerState(NamedTuple):
    """The state of one fit of :class:`EnergySampler`, returned by its ``reset``.

    Parameters
    ----------
    stream : skood._outliers.OutlierStream
        Walks through the candidates.
    generator : torch.Generator
        Seeds k-means and the random fill.
    pool_scorer : skood._outliers.PoolScorer
        Scores a candidate pool: energies and features from one forward.
    feature_target : tuple
        ``(layer, "input" or "output")``: the layer whose input or output are
        the features.
    graphed_kmeans : skood.kmeans.GraphedKMeans or None
        Set when k-means replays a CUDA graph.
    warned : set
        The warnings this fit has issued (each is issued once per fit).

    Examples
    --------
    >>> import torch
    >>> from skood._outliers import PoolScorer
    >>> module = torch.nn.Linear(4, 3)
    >>> state = EnergySampler().reset(100, seed=0, device="cpu",
    ...                               pool_scorer=PoolScorer(module, lambda x: x.sum(1)))
    >>> state.feature_target[1], state.graphed_kmeans is None
    ('input', True)
    """

    stream: OutlierStream
    generator: torch.Generator
    pool_scorer: object
    feature_target: tuple
    graphed_kmeans: object
    warned: set
