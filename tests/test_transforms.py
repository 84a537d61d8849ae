import pickle

import numpy as np
import pytest
import torch

from skood.transforms import Compose, Normalize, RandomCrop, RandomHorizontalFlip


def image(channels=3, height=5, width=7):
    """Distinct values everywhere, so that any shift or mirror shows."""
    return torch.arange(channels * height * width, dtype=torch.float32).reshape(
        channels, height, width) + 1.0


def windows(padded, height, width):
    """Every (height, width) window of a (C, H, W) array, keyed by its (top, left)."""
    return {(top, left): padded[:, top:top + height, left:left + width]
            for top in range(padded.shape[1] - height + 1)
            for left in range(padded.shape[2] - width + 1)}


def crop_positions(crop, x, candidates, draws):
    """The (top, left) of each of ``draws`` crops of ``x``; each must be exactly one of
    the ``candidates`` windows of the padded image."""
    seen = set()
    for _ in range(draws):
        out = crop(x).numpy()
        matches = [pos for pos, window in candidates.items() if np.array_equal(out, window)]
        assert len(matches) == 1, "the crop is not a window of the padded image"
        seen.add(matches[0])
    return seen


# -- shapes and types ----------------------------------------------------------------------

@pytest.mark.parametrize("transform, size", [
    (RandomCrop(4, padding=2), (4, 4)), (RandomCrop((3, 6)), (3, 6)),
    (RandomHorizontalFlip(), None), (Normalize(0.5, 2.0), None),
    (Compose([RandomCrop(4, padding=1), RandomHorizontalFlip()]), (4, 4))])
@pytest.mark.parametrize("shape", [(3, 5, 7), (1, 5, 7), (5, 7)])
def test_output_is_a_float32_tensor_of_the_expected_shape(transform, size, shape):
    expected = shape[:-2] + (size or shape[-2:])
    for x in (torch.rand(shape), np.random.default_rng(0).random(shape),
              np.zeros(shape, dtype=np.uint8)):
        out = transform(x)
        assert isinstance(out, torch.Tensor) and out.dtype == torch.float32
        assert tuple(out.shape) == expected


@pytest.mark.parametrize("transform", [RandomCrop(5), RandomCrop(3), RandomHorizontalFlip(p=0.0),
                                       RandomHorizontalFlip(p=1.0), Normalize(0.0, 1.0),
                                       Compose([RandomCrop(5), RandomHorizontalFlip(p=0.0)])])
def test_the_result_never_shares_memory_with_the_input(transform):
    for x in (torch.zeros(1, 5, 5), np.zeros((1, 5, 5), dtype=np.float32)):
        out = transform(x)
        out += 1.0
        assert float(x.sum()) == 0.0


def test_uint8_is_scaled_to_unit_range_and_float_keeps_its_values():
    x = np.array([[0, 51, 255]], dtype=np.uint8)
    flip = RandomHorizontalFlip(p=0.0)
    np.testing.assert_allclose(flip(x).numpy(), [[0.0, 0.2, 1.0]], rtol=0, atol=1e-7)
    np.testing.assert_array_equal(flip(torch.tensor([[0.0, 51.0, 255.0]])).numpy(),
                                  [[0.0, 51.0, 255.0]])
    np.testing.assert_array_equal(flip(np.array([[2.5, -1.0]])).numpy(), [[2.5, -1.0]])


# -- the flip -------------------------------------------------------------------------------

def test_flip_is_an_exact_left_right_mirror():
    x = image()
    out = RandomHorizontalFlip(p=1.0)(x)
    for c in range(3):
        for row in range(5):
            for col in range(7):
                assert out[c, row, col] == x[c, row, 6 - col]
    assert torch.equal(RandomHorizontalFlip(p=0.0)(x), x)


def test_flip_happens_about_p_of_the_time():
    flip = RandomHorizontalFlip(p=0.3, generator=torch.Generator().manual_seed(0))
    x = image(1, 2, 3)
    flipped = sum(not torch.equal(flip(x), x) for _ in range(2000))
    assert 0.26 < flipped / 2000 < 0.34


# -- the crop -------------------------------------------------------------------------------

def test_crop_with_constant_padding_is_a_window_of_the_zero_padded_image():
    x = image()
    padded = np.pad(x.numpy(), ((0, 0), (2, 2), (2, 2)), mode="constant", constant_values=0)
    assert padded.shape == (3, 9, 11)
    candidates = windows(padded, 5, 7)
    crop = RandomCrop((5, 7), padding=2, generator=torch.Generator().manual_seed(0))
    assert crop_positions(crop, x, candidates, 300) == set(candidates), \
        "some crop positions never occur"


@pytest.mark.parametrize("fill, per_channel", [(0.5, [0.5, 0.5, 0.5]),
                                               ((-1.0, 0.25, 2.0), [-1.0, 0.25, 2.0])])
def test_crop_pads_with_fill_one_value_or_one_per_channel(fill, per_channel):
    x = image()
    padded = np.stack([np.pad(x.numpy()[c], ((2, 2), (2, 2)), mode="constant",
                              constant_values=per_channel[c]) for c in range(3)])
    candidates = windows(padded, 5, 7)
    crop = RandomCrop((5, 7), padding=2, fill=fill, generator=torch.Generator().manual_seed(0))
    assert crop_positions(crop, x, candidates, 300) == set(candidates)


def test_a_fill_per_channel_needs_the_images_channels():
    with pytest.raises(ValueError, match="fill has 2 values but the image has 3 channels"):
        RandomCrop(4, padding=1, fill=(0.0, 1.0))(torch.zeros(3, 4, 4))


def test_crop_with_reflect_padding_mirrors_without_repeating_the_edge():
    x = image(2, 4, 4)
    padded = np.pad(x.numpy(), ((0, 0), (1, 1), (1, 1)), mode="reflect")
    # numpy's "reflect" does not repeat the edge: the row above row 0 is row 1
    np.testing.assert_array_equal(padded[:, 0, 1:-1], x.numpy()[:, 1])
    candidates = windows(padded, 4, 4)
    crop = RandomCrop(4, padding=1, padding_mode="reflect",
                      generator=torch.Generator().manual_seed(1))
    assert crop_positions(crop, x, candidates, 200) == set(candidates)


def test_crop_without_padding_of_the_full_size_is_the_identity():
    x = image()
    assert torch.equal(RandomCrop((5, 7))(x), x)


def test_crop_of_a_two_dimensional_image():
    x = image(1, 5, 7)[0]
    out = RandomCrop(3, padding=1, generator=torch.Generator().manual_seed(0))(x)
    padded = np.pad(x.numpy(), 1)
    assert out.shape == (3, 3)
    assert any(np.array_equal(out.numpy(), w[0]) for w in windows(padded[None], 3, 3).values())


# -- normalisation --------------------------------------------------------------------------

def test_normalize_by_hand():
    x = torch.tensor([[[0.0, 1.0]], [[2.0, 4.0]], [[0.5, 0.5]]])   # (3, 1, 2)
    out = Normalize(mean=[0.5, 1.0, 0.0], std=[0.5, 2.0, 0.25])(x)
    expected = [[[-1.0, 1.0]], [[0.5, 1.5]], [[2.0, 2.0]]]
    np.testing.assert_allclose(out.numpy(), expected, rtol=0, atol=1e-7)
    # one value for every channel, and a uint8 image scaled to [0, 1] first
    out = Normalize(mean=0.5, std=0.5)(np.array([[[0, 255]]], dtype=np.uint8))
    np.testing.assert_allclose(out.numpy(), [[[-1.0, 1.0]]], rtol=0, atol=1e-7)
    # per-channel statistics with several decimals, on a mid-grey pixel
    mean, std = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)
    out = Normalize(mean, std)(torch.full((3, 1, 1), 0.5))
    np.testing.assert_allclose(out.flatten().numpy(),
                               [(0.5 - m) / s for m, s in zip(mean, std)], rtol=1e-6)


def test_normalize_accepts_arrays_and_tensors():
    x = torch.ones(2, 1, 1)
    for mean in (np.array([0.0, 1.0]), torch.tensor([0.0, 1.0])):
        np.testing.assert_array_equal(Normalize(mean, 1.0)(x).flatten().numpy(), [1.0, 0.0])


# -- randomness -----------------------------------------------------------------------------

def augment(generator):
    return Compose([RandomCrop(5, padding=2, generator=generator),
                    RandomHorizontalFlip(generator=generator)])


def test_a_generator_makes_the_draws_repeatable_and_independent_of_the_global_one():
    x = image(3, 5, 5)
    first = [augment(torch.Generator().manual_seed(7))(x) for _ in range(1)]
    a = augment(torch.Generator().manual_seed(7))
    torch.manual_seed(0)
    runs_a = [a(x) for _ in range(20)]
    b = augment(torch.Generator().manual_seed(7))
    torch.manual_seed(123)
    torch.rand(10)
    runs_b = [b(x) for _ in range(20)]
    assert all(torch.equal(p, q) for p, q in zip(runs_a, runs_b))
    assert torch.equal(first[0], runs_a[0])
    assert len({tuple(r.flatten().tolist()) for r in runs_a}) > 5     # it does vary


@pytest.mark.parametrize("padding", [0, 2])
def test_draws_run_on_the_generators_device_whatever_the_default_device(padding):
    # A CUDA generator refuses to draw on the CPU, where torch draws unless told:
    # emulated with a CPU generator under another default device ("meta", from
    # which no value can be read), the draws must still run on the CPU and give
    # the same crops and flips as under the CPU default.
    def seeded():
        generator = torch.Generator().manual_seed(7)
        return Compose([RandomCrop(5, padding=padding, generator=generator),
                        RandomHorizontalFlip(generator=generator)])

    x = image(3, 5, 5)
    reference = seeded()
    expected = [reference(x) for _ in range(6)]
    transform = seeded()
    with torch.device("meta"):
        runs = [transform(x) for _ in range(6)]
    assert all(torch.equal(p, q) for p, q in zip(runs, expected))


def test_without_a_generator_the_global_torch_generator_decides():
    x = image(3, 5, 5)
    transform = augment(None)
    torch.manual_seed(3)
    runs_a = [transform(x) for _ in range(20)]
    torch.manual_seed(3)
    runs_b = [transform(x) for _ in range(20)]
    torch.manual_seed(4)
    runs_c = [transform(x) for _ in range(20)]
    assert all(torch.equal(p, q) for p, q in zip(runs_a, runs_b))
    assert not all(torch.equal(p, q) for p, q in zip(runs_a, runs_c))


def test_transforms_pickle_for_dataloader_workers():
    transform = augment(torch.Generator().manual_seed(0))
    copy = pickle.loads(pickle.dumps(transform))
    x = image(3, 5, 5)
    assert torch.equal(transform(x), copy(x))


def test_as_a_dataset_transform_in_a_dataloader():
    class Images(torch.utils.data.Dataset):
        def __init__(self, X, y, transform):
            self.X, self.y, self.transform = X, y, transform

        def __len__(self):
            return len(self.X)

        def __getitem__(self, i):
            return self.transform(self.X[i]), self.y[i]

    X = np.random.default_rng(0).integers(0, 256, size=(10, 3, 8, 8), dtype=np.uint8)
    dataset = Images(X, np.arange(10), Compose([RandomCrop(8, padding=2),
                                                RandomHorizontalFlip(),
                                                Normalize((0.5,) * 3, (0.25,) * 3)]))
    images, labels = next(iter(torch.utils.data.DataLoader(dataset, batch_size=4)))
    assert images.shape == (4, 3, 8, 8) and images.dtype == torch.float32
    assert labels.tolist() == [0, 1, 2, 3]


def test_compose_takes_any_callable_in_order():
    calls = []
    out = Compose([lambda x: calls.append("a") or x + 1,
                   lambda x: calls.append("b") or x * 2])(torch.zeros(1, 1))
    assert calls == ["a", "b"] and out.item() == 2.0
    x = torch.zeros(1, 1)
    assert Compose([])(x) is x


def test_torchvision_transforms_compose_with_these_when_installed():
    try:
        from torchvision.transforms import v2
    except Exception as exc:  # noqa: BLE001 - absent, or a build that does not match this torch
        pytest.skip(f"torchvision not importable: {exc}")
    x = image(3, 5, 5)
    out = Compose([RandomCrop(5), v2.RandomHorizontalFlip(p=1.0)])(x)
    assert torch.equal(out, x.flip(-1))


def test_this_module_does_not_import_torchvision():
    import subprocess
    import sys
    code = ("import sys, skood.transforms, skood.datasets; "
            "assert 'torchvision' not in sys.modules")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=False)
    assert result.returncode == 0, result.stderr


# -- errors ---------------------------------------------------------------------------------

@pytest.mark.parametrize("make, match", [
    (lambda: RandomCrop(0), "'size' parameter of RandomCrop"),
    (lambda: RandomCrop(True), "size of RandomCrop must be a number"),
    (lambda: RandomCrop((3,)), "pair"),
    (lambda: RandomCrop((3, 0)), "pair"),
    (lambda: RandomCrop(3, padding=-1), "'padding' parameter"),
    (lambda: RandomCrop(3, padding=1.5), "'padding' parameter"),
    (lambda: RandomCrop(3, padding_mode="edge"), "'padding_mode' parameter"),
    (lambda: RandomCrop(3, generator=0), "'generator' parameter"),
    (lambda: RandomCrop(3, fill="black"), "'fill' parameter"),
    (lambda: RandomCrop(3, fill=()), "non-empty sequence of finite numbers"),
    (lambda: RandomCrop(3, fill=(0.0, float("nan"))), "non-empty sequence of finite numbers"),
    (lambda: RandomCrop(3, fill=True), "fill of RandomCrop must be a number"),
    (lambda: RandomCrop(3, padding=1, padding_mode="reflect", fill=0.5),
     "padding_mode='constant' only"),
    (lambda: RandomHorizontalFlip(p=1.5), "'p' parameter"),
    (lambda: RandomHorizontalFlip(p=True), "p of RandomHorizontalFlip must be a number"),
    (lambda: Normalize("a", 1.0), "'mean' parameter"),
    (lambda: Normalize(0.0, [1.0, 0.0]), "std of Normalize must be positive"),
    (lambda: Normalize([], 1.0), "flat sequence"),
    (lambda: Normalize([[0.0]], 1.0), "flat sequence"),
    (lambda: Normalize(float("nan"), 1.0), "finite"),
    (lambda: Compose(RandomHorizontalFlip()), "'transforms' parameter"),
])
def test_bad_parameters_are_refused_at_construction(make, match):
    with pytest.raises((ValueError, TypeError), match=match):
        make()


def test_compose_refuses_what_is_not_callable():
    with pytest.raises(TypeError, match="callables.*position 1"):
        Compose([RandomHorizontalFlip(), "flip"])


@pytest.mark.parametrize("x, error, match", [
    (np.zeros((2, 3, 4, 4), dtype=np.float32), ValueError, r"one image.*\(2, 3, 4, 4\)"),
    (np.zeros(4, dtype=np.float32), ValueError, "one image"),
    (np.zeros((3, 4, 4), dtype=np.int64), TypeError, "astype"),
    (torch.zeros(3, 4, 4, dtype=torch.int32), TypeError, r"\.float\(\)"),
    ([[0.0, 1.0]], TypeError, "tensor or numpy array"),
])
def test_bad_images_are_refused(x, error, match):
    with pytest.raises(error, match=match):
        RandomHorizontalFlip()(x)


def test_crop_errors_name_the_sizes():
    with pytest.raises(ValueError, match=r"size \(6, 6\) is larger.*\(5, 5\) after padding by 0"):
        RandomCrop(6)(torch.zeros(1, 5, 5))
    with pytest.raises(ValueError, match="padding_mode='reflect' needs padding smaller"):
        RandomCrop(4, padding=4, padding_mode="reflect")(torch.zeros(1, 4, 4))


def test_normalize_needs_one_value_per_channel():
    with pytest.raises(ValueError, match="mean has 3 values but the image has 2 channel"):
        Normalize([0.0] * 3, 1.0)(torch.zeros(2, 4, 4))
    with pytest.raises(ValueError, match="std has 2 values but the image has 1 channel"):
        Normalize(0.0, [1.0, 1.0])(torch.zeros(4, 4))
