import torch

from skood._outliers import AuxiliaryData, RandomOutlierSampler


def test_random_sampler_walks_through_permutations():
    stream = RandomOutlierSampler().reset(10, 0, "cpu")
    drawn = torch.cat([stream.next_indices(4) for _ in range(5)])   # 20 draws = 2 walks
    assert sorted(drawn[:10].tolist()) == list(range(10))
    assert sorted(drawn[10:].tolist()) == list(range(10))
    assert drawn[:10].tolist() != list(range(10))                     # shuffled


def test_random_sampler_is_deterministic_for_a_seed():
    def draws(seed):
        stream = RandomOutlierSampler().reset(50, seed, "cpu")
        return torch.cat([stream.next_indices(7) for _ in range(10)])
    assert torch.equal(draws(3), draws(3))
    assert not torch.equal(draws(3), draws(4))


def test_sampler_keeps_no_per_fit_state():
    sampler = RandomOutlierSampler()
    stream = sampler.reset(5, 0, "cpu")
    sampler.draw(stream, AuxiliaryData(torch.zeros(5, 2)), 2, 2, "cpu")
    assert vars(sampler) == {} and stream.position == 2


def test_auxiliary_data_from_tensor_and_dataset_agree():
    data = torch.arange(24, dtype=torch.float32).reshape(6, 2, 2)
    indices = torch.tensor([4, 0, 4])
    from_tensor = AuxiliaryData(data).take(indices, "cpu")
    labelled = torch.utils.data.TensorDataset(data, torch.zeros(6))   # (x, y) items
    from_dataset = AuxiliaryData(labelled).take(indices, "cpu")
    assert torch.equal(from_tensor, data[indices])
    assert torch.equal(from_dataset, data[indices])
    assert from_dataset.dtype == torch.float32
    as_uint8 = AuxiliaryData(torch.utils.data.TensorDataset(data.to(torch.uint8)))
    assert torch.equal(as_uint8.take(indices, "cpu"), data[indices])


class ReadCounting(torch.utils.data.Dataset):
    """A Dataset that records how it is read, with or without a batched read."""

    def __init__(self, data, batched):
        self.data, self.reads = data, []
        if batched:
            self.__getitems__ = self.read_many

    def __len__(self):
        return len(self.data)

    def __getitem__(self, i):
        self.reads.append(("one", i))
        return self.data[i], 0

    def read_many(self, positions):
        self.reads.append(("many", tuple(positions)))
        return [(self.data[i], 0) for i in positions]


def test_a_dataset_with_a_batched_read_is_read_once_per_draw():
    data = torch.arange(24, dtype=torch.float32).reshape(6, 4)
    indices = torch.tensor([5, 1, 3])
    batched = ReadCounting(data, batched=True)
    assert torch.equal(AuxiliaryData(batched).take(indices, "cpu"), data[indices])
    assert batched.reads == [("many", (5, 1, 3))]
    one_by_one = ReadCounting(data, batched=False)
    assert torch.equal(AuxiliaryData(one_by_one).take(indices, "cpu"), data[indices])
    assert one_by_one.reads == [("one", 5), ("one", 1), ("one", 3)]
