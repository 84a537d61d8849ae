"""GReg+'s energy sampler: the selection rule, the features, and its life inside fit."""
import pickle

import numpy as np
import pytest
import torch
from sklearn.base import clone

from skood import EnergySampler
from skood.energy_sampler import select_by_energy
from skood.models import MLP
from skood._outliers import AuxiliaryData, PoolScorer


def test_selection_keeps_lowest_and_highest_energy_per_cluster():
    labels = torch.tensor([0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2])
    energies = torch.tensor([5., 1., 3., 9., 2., 8., 4., 6., 0., 7., 10., 11.])
    picked = select_by_energy(labels, energies, 3, 1, True, 6, torch.Generator())
    # cluster 0: lowest index 1 (1.), highest index 3 (9.); cluster 1: 4 (2.), 5 (8.);
    # cluster 2: 8 (0.), 11 (11.)
    assert sorted(picked.tolist()) == [1, 3, 4, 5, 8, 11]
    one_way = select_by_energy(labels, energies, 3, 2, False, 6, torch.Generator())
    assert sorted(one_way.tolist()) == [1, 2, 4, 6, 8, 9]


def test_selection_fills_at_random_without_duplicates():
    labels = torch.tensor([0, 0, 0, 1, 1, 1, 1, 1])
    energies = torch.arange(8.0)
    for seed in range(5):
        picked = select_by_energy(labels, energies, 2, 1, False, 5,
                                  torch.Generator().manual_seed(seed))
        assert len(set(picked.tolist())) == 5
        assert set(picked[:2].tolist()) == {0, 3}       # the chosen come first
        assert set(picked[2:].tolist()) <= {1, 2, 4, 5, 6, 7}


def test_selection_clips_to_small_clusters():
    # per_cluster 3 but cluster 1 has only 2 members: both chosen once, no duplicates
    labels = torch.tensor([0, 0, 0, 0, 0, 0, 0, 1, 1])
    energies = torch.tensor([0., 1., 2., 3., 4., 5., 6., 7., 8.])
    picked = select_by_energy(labels, energies, 2, 3, True, 8, torch.Generator())
    assert sorted(picked.tolist()) == [0, 1, 2, 4, 5, 6, 7, 8]


def test_selection_random_subset_when_too_many_are_chosen():
    labels = torch.zeros(10, dtype=torch.long)
    energies = torch.arange(10.0)
    picked = select_by_energy(labels, energies, 1, 3, True, 4, torch.Generator().manual_seed(0))
    assert set(picked.tolist()) <= {0, 1, 2, 7, 8, 9} and len(set(picked.tolist())) == 4


def scorer(module, temperature=1.0):
    """What the estimator hands the sampler: the module and an eval-mode energy forward."""
    def energies(x):
        module.eval()
        with torch.no_grad():
            out = -temperature * torch.logsumexp(module(x) / temperature, 1)
        module.train()
        return out
    return PoolScorer(module, energies)


@pytest.fixture
def pool():
    torch.manual_seed(0)
    return AuxiliaryData(torch.randn(300, 4))


def test_draw_returns_the_asked_number_and_is_deterministic(pool):
    module = MLP(4, 3, hidden=(8,))
    draws = []
    for _ in range(2):
        sampler = EnergySampler(n_clusters=4, pool_factor=6)
        state = sampler.reset(len(pool), 0, "cpu", pool_scorer=scorer(module))
        draws.append(torch.cat([sampler.draw(state, pool, 16, 32, "cpu") for _ in range(3)]))
    assert draws[0].shape == (96, 4)
    assert torch.equal(draws[0], draws[1])
    sampler = EnergySampler(n_clusters=4)
    state = sampler.reset(len(pool), 1, "cpu", pool_scorer=scorer(module))
    assert not torch.equal(sampler.draw(state, pool, 16, 32, "cpu"), draws[0][:32])


class ModeRecorder(torch.nn.Module):
    """Records, at each forward, the batch size, train mode and whether grad is on."""

    def __init__(self, n_features, n_classes, hidden):
        super().__init__()
        self.body = MLP(n_features, n_classes, hidden=hidden)
        self.calls = []

    def forward(self, x):
        self.calls.append((x.shape[0], self.training, torch.is_grad_enabled()))
        return self.body(x)


def test_fit_scores_the_pool_in_eval_mode_and_trains_in_train_mode(make_clf, blobs):
    X, y, X_aux = blobs
    clf = make_clf(module=ModeRecorder, max_epochs=1, batch_size=20,
                   sampler=EnergySampler(n_clusters=4, pool_factor=5))
    clf.fit(X, y, X_aux=X_aux)
    calls = clf.module_.calls
    pool_forwards = [c for c in calls if c[0] == 100]   # 5 x batch 20
    training_forwards = [c for c in calls if c[2]]
    assert pool_forwards and all(not training and not grad for _, training, grad in pool_forwards)
    assert training_forwards and all(training for _, training, _ in training_forwards)


def test_n_clusters_is_clipped_to_the_batch(pool, monkeypatch):
    import skood.energy_sampler as module
    seen = []
    original = module.kmeans

    def spy(points, n_clusters, **kwargs):
        seen.append((points.shape[0], n_clusters))
        return original(points, n_clusters, **kwargs)

    monkeypatch.setattr(module, "kmeans", spy)
    sampler = EnergySampler(n_clusters=64, pool_factor=6)
    state = sampler.reset(len(pool), 0, "cpu", pool_scorer=scorer(MLP(4, 3, hidden=(8,))))
    sampler.draw(state, pool, 10, 20, "cpu")
    assert seen == [(60, 10)]


def test_features_default_to_the_input_of_the_last_linear(pool):
    module = MLP(4, 3, hidden=(8,))
    energies, features = EnergySampler().score_pool(scorer(module), pool.data[:5])
    with torch.no_grad():
        expected = module.features(pool.data[:5])
        logits = module.classifier(expected)
    assert torch.allclose(features, expected)
    assert torch.allclose(energies, -torch.logsumexp(logits, 1))
    named = EnergySampler(feature_layer="features.1").score_pool(scorer(module),
                                                                 pool.data[:5])
    with torch.no_grad():
        assert torch.allclose(named[1], module.features[1](pool.data[:5]))


def test_module_without_linear_needs_a_feature_layer(pool):
    module = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Identity())
    with pytest.raises(ValueError, match="feature_layer="):
        EnergySampler().score_pool(scorer(module), pool.data[:5])
    with pytest.raises(ValueError, match="no submodule of that name"):
        EnergySampler(feature_layer="head").score_pool(scorer(module), pool.data[:5])


def test_greg_plus_fit_is_deterministic_clonable_and_picklable(make_clf, blobs):
    X, y, X_aux = blobs
    first = make_clf(sampler=EnergySampler(n_clusters=8, pool_factor=4)).fit(X, y, X_aux=X_aux)
    second = make_clf(sampler=EnergySampler(n_clusters=8, pool_factor=4)).fit(X, y, X_aux=X_aux)
    np.testing.assert_array_equal(first.decision_function(X), second.decision_function(X))
    # no fit state on the parameter or the estimator
    assert set(vars(first.sampler)) == set(first.sampler.get_params())
    assert "_fit_state" not in vars(first)
    assert clone(first).get_params()["sampler"].get_params()["n_clusters"] == 8
    loaded = pickle.loads(pickle.dumps(first))
    np.testing.assert_array_equal(loaded.decision_function(X), first.decision_function(X))
    random = make_clf(sampler="random").fit(X, y, X_aux=X_aux)
    assert not np.array_equal(random.decision_function(X), first.decision_function(X))


def test_paper_default_ratio_is_two_outliers_per_sample_when_two_way(make_clf, blobs,
                                                                      monkeypatch):
    X, y, X_aux = blobs
    sizes = []
    original = EnergySampler.draw

    def spy(self, state, aux, batch_size, n_outliers, device):
        sizes.append((batch_size, n_outliers))
        return original(self, state, aux, batch_size, n_outliers, device)

    monkeypatch.setattr(EnergySampler, "draw", spy)
    make_clf(max_epochs=1, sampler="energy").fit(X, y, X_aux=X_aux)
    assert all(n == 2 * b for b, n in sizes)
    sizes.clear()
    make_clf(max_epochs=1, sampler=EnergySampler(two_way=False)).fit(X, y, X_aux=X_aux)
    assert all(n == b for b, n in sizes)
    sizes.clear()
    make_clf(max_epochs=1, sampler="energy", aux_batch_ratio=0.5).fit(X, y, X_aux=X_aux)
    assert all(n == round(0.5 * b) for b, n in sizes)


def test_bad_sampler_parameters(make_clf, blobs):
    X, y, X_aux = blobs
    with pytest.raises(ValueError, match="n_clusters must be a positive int"):
        make_clf(sampler=EnergySampler(n_clusters=0)).fit(X, y, X_aux=X_aux)
    with pytest.raises(ValueError, match="cuda_graph must be True or False"):
        make_clf(sampler=EnergySampler(cuda_graph="yes")).fit(X, y, X_aux=X_aux)


def test_cuda_graph_state_is_made_only_on_cuda_and_kept_in_the_fit_state(device):
    sampler = EnergySampler()
    scorer = PoolScorer(MLP(4, 3, hidden=(8,)), lambda x: x.sum(1))
    state = sampler.reset(100, seed=0, device=device, pool_scorer=scorer)
    assert (state.graphed_kmeans is not None) == device.startswith("cuda")
    assert set(vars(sampler)) == set(sampler.get_params())
    state = sampler.set_params(cuda_graph=False).reset(100, seed=0, device=device,
                                                       pool_scorer=scorer)
    assert state.graphed_kmeans is None
