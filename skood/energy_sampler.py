"""GReg+'s energy-based outlier sampler.

For each in-distribution batch of size B (DESIGN.md, the paper's rule):

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
import torch
import torch.nn.functional as F
from sklearn.base import BaseEstimator

from .kmeans import GraphedKMeans, kmeans
from .losses import energy
from .outliers import RandomOutlierSampler

__all__ = ["EnergySampler", "select_by_energy"]


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
        Clusters per pool; clipped to the batch size as in the paper.
    pool_factor : int, default=6
        Candidates per in-distribution sample in each step (the paper's CIFAR
        setting: 6).
    two_way : bool, default=True
        Keep the highest-energy samples of each cluster too (the paper's setting).
    feature_layer : str or None, default=None
        Dotted name of the submodule whose output are the features to cluster.
        By default, the input of the module's last ``nn.Linear``.
    n_init : int, default=3
        k-means restarts.
    max_iter : int, default=10
        k-means (Lloyd) iterations.
    random_state : int or None, default=None
        Seeds the sampler; by default it follows the estimator's ``random_state``.
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

    #: outliers per in-distribution sample when the estimator's aux_batch_ratio is None
    def default_ratio(self):
        return 2.0 if self.two_way else 1.0

    def check_params(self):
        for name in ("n_clusters", "pool_factor", "n_init", "max_iter"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"EnergySampler's {name} must be a positive int, got {value!r}.")
        if not isinstance(self.cuda_graph, bool):
            raise ValueError(f"EnergySampler's cuda_graph must be True or False, "
                             f"got {self.cuda_graph!r}.")

    def reset(self, n_outliers, seed, device, index_device="cpu"):
        """Start the candidate stream of a fit (on ``index_device``, where the outliers
        are kept) and the random generator of k-means and the fill (on ``device``)."""
        self.check_params()
        if self.random_state is not None:
            seed = int(self.random_state)
        self.stream_ = RandomOutlierSampler()
        self.stream_.reset(n_outliers, seed, device, index_device=index_device)
        device = torch.device(device)
        self.generator_ = torch.Generator(device=device).manual_seed(seed)
        self.n_outliers_ = n_outliers
        self.graphed_kmeans_ = (GraphedKMeans(self.n_init, self.max_iter)
                                if self.cuda_graph and device.type == "cuda" else None)

    def clear(self):
        """Drop per-fit state so that nothing of it is pickled with the model."""
        for name in ("stream_", "generator_", "n_outliers_", "hook_target_", "graphed_kmeans_"):
            self.__dict__.pop(name, None)

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

    def score_pool(self, net, x_pool):
        """Energies and features of the candidates: eval mode, no gradients."""
        # the feature layer is looked up once per fit, not at every step
        hook_target = self.__dict__.get("hook_target_")
        if hook_target is None or hook_target[0] is not net.module_:
            hook_target = (net.module_, *self._feature_hook_target(net.module_))
            if "stream_" in self.__dict__:   # inside a fit: keep it until clear()
                self.hook_target_ = hook_target
        _, target, kind = hook_target
        captured = {}

        def hook(module, args, output):
            captured["features"] = args[0] if kind == "input" else output

        handle = target.register_forward_hook(hook)
        net._set_training(False)
        try:
            with torch.no_grad(), net._autocast():
                logits = net.infer(x_pool)
                if isinstance(logits, (tuple, list)):
                    logits = logits[0]
        finally:
            handle.remove()
            net._set_training(True)
        features = captured["features"]
        if isinstance(features, (tuple, list)):
            features = features[0]
        return energy(logits.float(), net.temperature), features.flatten(1).float()

    def draw(self, net, aux, batch_size, n_outliers, device):
        """Return ``n_outliers`` outliers for an in-distribution batch of ``batch_size``."""
        pool_size = min(self.pool_factor * batch_size, self.n_outliers_)
        x_pool = aux.take(self.stream_.next_indices(pool_size), device)
        energies, features = self.score_pool(net, x_pool)
        n_clusters = max(1, min(self.n_clusters, batch_size, pool_size))
        features = F.normalize(features, dim=1)
        graphed = self.__dict__.get("graphed_kmeans_")
        if graphed is not None and features.is_cuda:
            labels, _ = graphed(features, n_clusters, self.generator_)
        else:
            labels, _ = kmeans(features, n_clusters, n_init=self.n_init,
                               max_iter=self.max_iter, generator=self.generator_)
        per_cluster = max(1, batch_size // n_clusters)
        picked = select_by_energy(labels, energies, n_clusters, per_cluster, self.two_way,
                                  min(n_outliers, pool_size), self.generator_)
        if n_outliers > pool_size:  # fewer outliers than one step needs: repeat some
            extra = torch.randint(pool_size, (n_outliers - pool_size,),
                                  generator=self.generator_, device=self.generator_.device)
            picked = torch.cat([picked, extra.to(picked.device)])
        return x_pool[picked]
