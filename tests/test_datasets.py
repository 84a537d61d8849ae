import numpy as np
import pytest

from skood.datasets import (NATURAL_IMAGE_SOURCES, TEXTURE_SOURCES, make_natural_image_outliers,
                            make_noise_images, make_texture_images)

pytest.importorskip("skimage")


def test_outliers_are_deterministic_and_in_range():
    a = make_natural_image_outliers(50, (8, 8), value_range=16.0, random_state=0)
    b = make_natural_image_outliers(50, (8, 8), value_range=16.0, random_state=0)
    c = make_natural_image_outliers(50, (8, 8), value_range=16.0, random_state=1)
    assert a.shape == (50, 1, 8, 8) and a.dtype == np.float32
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert a.min() >= 0 and a.max() <= 16.0 and a.std() > 0.5


def test_every_outlier_source_loads():
    for name in NATURAL_IMAGE_SOURCES:
        image = make_natural_image_outliers(1, (4, 4), random_state=0, sources=(name,))
        assert np.isfinite(image).all(), name


def test_unknown_source_is_refused():
    with pytest.raises(ValueError, match="Unknown image source 'lena'"):
        make_natural_image_outliers(2, (8, 8), random_state=0, sources=("lena",))


def test_ood_test_sources_are_not_among_the_outlier_sources():
    assert not set(TEXTURE_SOURCES) & set(NATURAL_IMAGE_SOURCES)


def test_textures_and_noise():
    textures = make_texture_images(20, (28, 28), random_state=0)
    assert textures.shape == (20, 1, 28, 28) and 0 <= textures.min() and textures.max() <= 1
    for kind in ("gaussian", "uniform"):
        noise = make_noise_images(20, (8, 8), kind=kind, value_range=16.0, random_state=0)
        assert noise.min() >= 0 and noise.max() <= 16.0
    with pytest.raises(ValueError, match="kind must be"):
        make_noise_images(2, kind="pink")


def write_idx(path, array):
    import gzip
    import struct
    codes = {np.dtype(np.uint8): 0x08}
    header = bytes([0, 0, codes[array.dtype], array.ndim]) + struct.pack(
        f">{array.ndim}I", *array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + array.tobytes())


def make_tiny_fashion(folder, n_train=6, n_test=4):
    from skood.datasets import FASHION_MNIST_FILES
    rng = np.random.RandomState(0)
    arrays = {"X_train": rng.randint(0, 256, (n_train, 28, 28)).astype(np.uint8),
              "y_train": rng.randint(0, 10, n_train).astype(np.uint8),
              "X_test": rng.randint(0, 256, (n_test, 28, 28)).astype(np.uint8),
              "y_test": rng.randint(0, 10, n_test).astype(np.uint8)}
    for key, name in FASHION_MNIST_FILES.items():
        write_idx(folder / name, arrays[key])
    return arrays


def test_read_idx_and_load_from_data_home(tmp_path):
    from skood.datasets import load_fashion_mnist, read_idx
    arrays = make_tiny_fashion(tmp_path)
    np.testing.assert_array_equal(read_idx(tmp_path / "t10k-labels-idx1-ubyte.gz"),
                                  arrays["y_test"])
    data = load_fashion_mnist(data_home=str(tmp_path))
    for key, value in arrays.items():
        np.testing.assert_array_equal(data[key], value)
    assert data.path == str(tmp_path)


def test_load_from_environment_variable(tmp_path, monkeypatch):
    from skood.datasets import load_fashion_mnist
    arrays = make_tiny_fashion(tmp_path)
    monkeypatch.setenv("SKOOD_DATA", str(tmp_path))
    np.testing.assert_array_equal(load_fashion_mnist().X_train, arrays["X_train"])


def test_missing_dataset_names_both_ways_to_get_it(tmp_path, monkeypatch):
    import skood.datasets as datasets
    monkeypatch.delenv("SKOOD_DATA", raising=False)
    monkeypatch.setattr(datasets, "DEBIAN_FASHION_MNIST", str(tmp_path / "nowhere"))
    with pytest.raises(FileNotFoundError, match="apt-get install dataset-fashion-mnist.*data_home"):
        datasets.load_fashion_mnist(data_home=str(tmp_path))


def test_corrupt_idx_is_refused(tmp_path):
    from skood.datasets import read_idx
    path = tmp_path / "bad.gz"
    write_idx(path, np.zeros((3, 2), dtype=np.uint8))
    import gzip
    with gzip.open(path, "rb") as f:
        data = f.read()
    with gzip.open(path, "wb") as f:
        f.write(data[:-2])
    with pytest.raises(ValueError, match="truncated"):
        read_idx(path)


def test_real_fashion_mnist_when_installed():
    from skood.datasets import load_fashion_mnist
    try:
        data = load_fashion_mnist()
    except FileNotFoundError:
        pytest.skip("Fashion-MNIST not installed (apt-get install dataset-fashion-mnist)")
    assert data.X_train.shape == (60000, 28, 28) and data.X_test.shape == (10000, 28, 28)
    assert set(np.unique(data.y_train)) == set(range(10))


def test_resize_images():
    from skood.datasets import resize_images
    images = np.ones((2, 28, 28), dtype=np.uint8) * 255
    small = resize_images(images, (8, 8))
    assert small.shape == (2, 1, 8, 8)
    np.testing.assert_allclose(small, 255.0)
    assert resize_images(np.ones((1, 8, 8)), (28, 28)).shape == (1, 1, 28, 28)


def test_outliers_as_uint8_and_cached(tmp_path):
    first = make_natural_image_outliers(20, (8, 8), random_state=3, dtype=np.uint8,
                                        cache_dir=str(tmp_path))
    assert first.dtype == np.uint8 and len(list(tmp_path.glob("*.npy"))) == 1
    again = make_natural_image_outliers(20, (8, 8), random_state=3, dtype=np.uint8,
                                        cache_dir=str(tmp_path))
    np.testing.assert_array_equal(first, again)
    as_float = make_natural_image_outliers(20, (8, 8), random_state=3, cache_dir=str(tmp_path))
    np.testing.assert_allclose(as_float, first / 255.0, rtol=1e-6)
    uncached = make_natural_image_outliers(20, (8, 8), random_state=3)
    np.testing.assert_allclose(uncached, as_float, atol=0.5 / 255 + 1e-6)
    with pytest.raises(ValueError, match="dtype must be"):
        make_natural_image_outliers(2, dtype=np.float64)
    with pytest.raises(ValueError, match="cache_dir needs an int random_state"):
        make_natural_image_outliers(2, cache_dir=str(tmp_path))
