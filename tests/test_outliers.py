import torch

from skood.outliers import AuxiliaryData, RandomOutlierSampler


def test_random_sampler_walks_through_permutations():
    sampler = RandomOutlierSampler()
    sampler.reset(10, 0, "cpu")
    drawn = torch.cat([sampler.next_indices(4) for _ in range(5)])   # 20 draws = 2 walks
    assert sorted(drawn[:10].tolist()) == list(range(10))
    assert sorted(drawn[10:].tolist()) == list(range(10))
    assert drawn[:10].tolist() != list(range(10))                     # shuffled


def test_random_sampler_is_deterministic_for_a_seed():
    def draws(seed):
        sampler = RandomOutlierSampler()
        sampler.reset(50, seed, "cpu")
        return torch.cat([sampler.next_indices(7) for _ in range(10)])
    assert torch.equal(draws(3), draws(3))
    assert not torch.equal(draws(3), draws(4))


def test_sampler_clear_drops_per_fit_state():
    sampler = RandomOutlierSampler()
    sampler.reset(5, 0, "cpu")
    sampler.clear()
    assert vars(sampler) == {}


def test_auxiliary_data_from_tensor_and_dataset_agree():
    data = torch.arange(24, dtype=torch.float32).reshape(6, 2, 2)
    indices = torch.tensor([4, 0, 4])
    from_tensor = AuxiliaryData(data).take(indices, "cpu")
    labelled = torch.utils.data.TensorDataset(data, torch.zeros(6))   # (x, y) items
    from_dataset = AuxiliaryData(labelled).take(indices, "cpu")
    assert torch.equal(from_tensor, data[indices])
    assert torch.equal(from_dataset, data[indices])
    assert from_dataset.dtype == torch.float32
