import numpy as np
import pytest
import torch
from sklearn.cluster import KMeans
from sklearn.datasets import load_digits

from skood.kmeans import (GraphedKMeans, _cluster_sums, _cluster_summands, draw_seeding, kmeans,
                          kmeans_from_draws)


def inertia_of(points, labels):
    """Inertia of a labelling with each cluster at its mean (independent of kmeans' own)."""
    total = 0.0
    for c in np.unique(labels):
        members = points[labels == c]
        total += ((members - members.mean(0)) ** 2).sum()
    return total


@pytest.fixture(scope="module")
def features():
    # real data: L2-normalised digit images, as the sampler normalises features
    X = load_digits().data[:384].astype(np.float32)
    return X / np.linalg.norm(X, axis=1, keepdims=True)


@pytest.mark.parametrize("k", [8, 64])
def test_inertia_within_two_percent_of_scikit_learn(features, k):
    ours = []
    theirs = []
    for seed in range(3):
        labels, inertia = kmeans(torch.from_numpy(features), k, n_init=3,
                                 generator=torch.Generator().manual_seed(seed))
        assert inertia.item() == pytest.approx(inertia_of(features, labels.numpy()), rel=1e-3)
        ours.append(inertia.item())
        theirs.append(KMeans(k, n_init=3, random_state=seed).fit(features).inertia_)
    assert np.mean(ours) <= 1.02 * np.mean(theirs)


def test_deterministic_for_a_seed_and_uses_all_clusters(features):
    points = torch.from_numpy(features)
    a, _ = kmeans(points, 16, generator=torch.Generator().manual_seed(1))
    b, _ = kmeans(points, 16, generator=torch.Generator().manual_seed(1))
    assert torch.equal(a, b)
    assert len(torch.unique(a)) == 16


def test_separated_blobs_are_found():
    rng = np.random.RandomState(0)
    centers = rng.normal(scale=10, size=(5, 3))
    points = np.concatenate([c + rng.normal(scale=0.1, size=(30, 3)) for c in centers])
    labels, _ = kmeans(torch.tensor(points, dtype=torch.float32), 5,
                       generator=torch.Generator().manual_seed(0))
    blocks = labels.numpy().reshape(5, 30)
    assert all(len(set(block)) == 1 for block in blocks)
    assert len(set(blocks[:, 0])) == 5


def test_too_many_clusters_is_refused():
    with pytest.raises(ValueError, match="n_clusters must be between 1"):
        kmeans(torch.zeros(3, 2), 4)
    with pytest.raises(ValueError, match="points must be 2-D"):
        kmeans(torch.zeros(3), 1)


def test_kmeans_is_its_draws_then_a_fixed_function_of_them(features):
    # what lets GraphedKMeans replay k-means: all randomness is drawn up front
    points = torch.from_numpy(features)
    labels, inertia = kmeans(points, 32, n_init=3, generator=torch.Generator().manual_seed(4))
    first, uniform = draw_seeding(len(points), 32, 3, torch.Generator().manual_seed(4), "cpu")
    replayed, replayed_inertia = kmeans_from_draws(points, first, uniform, max_iter=10)
    assert torch.equal(labels, replayed)
    assert torch.equal(inertia, replayed_inertia)
    other, _ = kmeans_from_draws(points, torch.flip(first, [0]), uniform.flip(0), max_iter=10)
    assert not torch.equal(labels, other)


def test_cluster_sums_by_matmul_equal_index_add(features):
    points = torch.from_numpy(features)
    labels = torch.randint(0, 16, (len(features), 3), generator=torch.Generator().manual_seed(0))
    sums_a, counts_a = _cluster_sums(_cluster_summands(points, 3, False), labels, 16, False)
    sums_b, counts_b = _cluster_sums(_cluster_summands(points, 3, True), labels, 16, True)
    torch.testing.assert_close(sums_a, sums_b)
    assert torch.equal(counts_a, counts_b)
    # against a direct computation for one restart and cluster
    members = labels[:, 2] == 5
    torch.testing.assert_close(sums_a[2, 5], points[members].sum(0))
    assert counts_a[2, 5, 0] == members.sum()


def test_kmeans_ignores_an_enclosing_autocast(features):
    points = torch.from_numpy(features)
    plain, _ = kmeans(points, 16, generator=torch.Generator().manual_seed(0))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        inside, _ = kmeans(points, 16, generator=torch.Generator().manual_seed(0))
    assert torch.equal(plain, inside)


def test_graphed_kmeans_refuses_cpu_tensors():
    with pytest.raises(ValueError, match="needs CUDA tensors"):
        GraphedKMeans()(torch.zeros(8, 2), 2, torch.Generator())


cuda_only = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")


@cuda_only
def test_graphed_kmeans_replays_what_eager_kmeans_gives(features):
    graphed = GraphedKMeans(n_init=3, max_iter=10)
    generator = torch.Generator("cuda").manual_seed(0)
    reference = torch.Generator("cuda").manual_seed(0)
    base = torch.from_numpy(features).cuda()
    # new points and new draws at each call: a replay must read its fresh inputs
    for shift in range(3):
        points = torch.nn.functional.normalize(base + 0.05 * shift * base.roll(1, 0), dim=1)
        labels, inertia = graphed(points, 64, generator)
        expected, expected_inertia = kmeans(points, 64, generator=reference)
        assert torch.equal(labels, expected)
        torch.testing.assert_close(inertia, expected_inertia)
    assert len(graphed._graphs) == 1
    graphed(base[:100], 16, generator)      # a new shape gets its own graph
    assert len(graphed._graphs) == 2


@cuda_only
def test_graphed_kmeans_falls_back_to_eager_when_capture_fails(features, monkeypatch):
    def failing_graph(*args, **kwargs):
        raise RuntimeError("capture not possible here")

    monkeypatch.setattr(torch.cuda, "graph", failing_graph)
    points = torch.from_numpy(features).cuda()
    with pytest.warns(RuntimeWarning, match="runs eagerly instead"):
        labels, _ = GraphedKMeans()(points, 16, torch.Generator("cuda").manual_seed(1))
    expected, _ = kmeans(points, 16, generator=torch.Generator("cuda").manual_seed(1))
    assert torch.equal(labels, expected)
