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
