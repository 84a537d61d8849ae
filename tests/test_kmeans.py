import numpy as np
import pytest
import torch
from sklearn.cluster import KMeans
from sklearn.datasets import load_digits

from skood.kmeans import kmeans


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
