"""The benchmark on CIFAR, run on made-up files in the real formats (nothing is downloaded)."""
import os

import numpy as np
import pandas as pd
import pytest
import torch
from cifar_files import make_cifar10, make_cifar100, make_svhn

from skood import GradRegOODClassifier
from skood.benchmark import (BenchmarkConfig, BenchmarkConfigError, draw_class_splits,
                             scored_methods)
from skood.benchmark.data import load_benchmark_data
from skood.benchmark.recipe import PAPER_CIFAR_RECIPE, TrainingRecipe
from skood.benchmark.runner import make_estimator
from skood.cli import main
from skood.data import ArrayDataset
from skood.datasets import CIFAR_URL, make_noise_images
from skood.models import MLP, ResNet18
from helpers import SMOKE_RUN_WARNINGS

pytestmark = SMOKE_RUN_WARNINGS

# CIFAR-10's per-channel mean and standard deviation, as the GReg paper's code has them
CIFAR10_MEAN = np.array([0.4914, 0.4822, 0.4465], dtype=np.float32)
CIFAR10_STD = np.array([0.2470, 0.2435, 0.2616], dtype=np.float32)


@pytest.fixture
def no_env(monkeypatch):
    monkeypatch.delenv("SKOOD_DATA", raising=False)


def save_images(folder, n, size, seed):
    from PIL import Image
    os.makedirs(folder)
    rng = np.random.default_rng(seed)
    for i in range(n):
        Image.fromarray(rng.integers(0, 256, size=(size, size, 3), dtype=np.uint8)).save(
            os.path.join(folder, f"{i}.png"))


@pytest.fixture
def cifar_home(tmp_path, no_env):
    """CIFAR-10 (200 training and 40 test images), SVHN's test file, DTD and iSUN
    folders; no Places365, LSUN or LSUN_resize."""
    home = tmp_path / "data"
    home.mkdir()
    rows, labels = make_cifar10(str(home), n=40)
    make_svhn(str(home), n=6)
    save_images(str(home / "dtd" / "images" / "banded"), 5, 48, seed=1)
    save_images(str(home / "iSUN" / "iSUN_patches"), 4, 36, seed=2)
    return home, rows, labels


def test_cifar10_benchmark_runs_end_to_end_on_files_in_the_real_formats(cifar_home, capsys,
                                                                         device):
    """The paper's CIFAR recipe (augmented Datasets for X and X_aux) on the test device."""
    home, _, _ = cifar_home
    out = home.parent / "out"
    code = main(["benchmark", "--dataset", "cifar10", "--data-home", str(home), "--splits", "2",
                 "--epochs", "1", "--n-train", "60", "--n-aux", "64", "--n-ood", "20",
                 "--batch-size", "16", "--model", "cnn", "--device", device, "--quiet",
                 "--out", str(out)])
    assert code == 0
    printed = capsys.readouterr().out
    results = pd.read_csv(out / "results.csv")
    # every network scored by the default detectors, fitted on its augmented training rows
    assert sorted(results["method"].unique()) == sorted(scored_methods())
    assert (results["status"] == "ok").all()
    sets = results.groupby("ood_set")["group"].first().to_dict()
    assert sets == {"cifar10-heldout": "near", "svhn": "far", "dtd": "far", "isun": "far",
                    "textures": "far", "gaussian-noise": "far", "uniform-noise": "far"}
    assert results["split"].nunique() == 2
    assert set(results["known_classes"]) == {" ".join(map(str, known))
                                             for known in draw_class_splits(10, 4, 2)}
    for name, folder in (("places365", "places365"), ("lsun-c", "LSUN"),
                         ("lsun-r", "LSUN_resize")):
        line = next(line for line in printed.splitlines()
                    if line.startswith(f"OOD set {name} skipped:"))
        assert repr(folder) in line and str(home) in line
    assert np.isfinite(results["fpr95"]).all()


def test_cifar_images_reach_the_network_standardized_in_channel_order(cifar_home):
    home, rows, labels = cifar_home
    data = load_benchmark_data("cifar10", split=(0, 1, 2, 3, 4, 5), n_aux=8, n_ood=5,
                               data_home=str(home))
    # the first known-class image of data_batch_1, by hand from the file's bytes
    first = next(i for i, label in enumerate(labels["data_batch_1"]) if label <= 5)
    raw = rows["data_batch_1"][first].reshape(3, 32, 32).astype(np.float32) / 255
    expected = (raw - CIFAR10_MEAN[:, None, None]) / CIFAR10_STD[:, None, None]
    np.testing.assert_allclose(data.X_train[0], expected, rtol=1e-5, atol=1e-6)
    assert data.y_train[0] == labels["data_batch_1"][first]
    assert data.X_train.shape[1:] == data.X_aux.shape[1:] == (3, 32, 32)
    for name, images in data.ood.items():
        assert images.shape[1:] == (3, 32, 32), name
    # colour noise: each channel drawn on its own
    noise = make_noise_images(5, (32, 32), channels=3, random_state=0)
    assert noise.shape == (5, 3, 32, 32) and not np.array_equal(noise[:, 0], noise[:, 1])


def test_the_cifar_recipe_is_the_papers(cifar_home):
    home, _, _ = cifar_home
    config = BenchmarkConfig(dataset="cifar10", data_home=str(home), splits=1)
    assert (config.model, config.epochs, config.batch_size, config.lr, config.m_in,
            config.m_out) == ("resnet18", 60, 64, 0.1, -25.0, -7.0)
    data = load_benchmark_data("cifar10", split=config.known_splits[0], n_aux=8, n_ood=5,
                               data_home=str(home))
    clf = make_estimator(config, "greg", data)
    params = clf.get_params()
    assert params["module"] is ResNet18 and params["module__in_channels"] == 3
    assert params["optimizer__nesterov"] is True and params["optimizer__momentum"] == 0.9
    assert params["optimizer__weight_decay"] == 1e-4 and params["max_epochs"] == 60
    (schedule,) = [c for c in params["callbacks"] if type(c).__name__ == "LRScheduler"]
    assert schedule.policy is torch.optim.lr_scheduler.MultiStepLR
    assert schedule.kwargs == {"milestones": [50], "gamma": 0.1}


@pytest.mark.filterwarnings("ignore")   # 40 random rows: chance level, few calibration rows
def test_the_learning_rate_drops_once_after_the_recipes_epoch():
    recipe = TrainingRecipe(lr_drop_at=0.5)
    params = recipe.estimator_params(epochs=4)
    schedule = params.pop("schedule")
    X = np.random.RandomState(0).rand(40, 4).astype(np.float32)
    clf = GradRegOODClassifier(MLP, module__n_features=4, module__n_classes=2, max_epochs=4,
                               lr=0.2, callbacks=schedule, train_split=None, random_state=0,
                               lambda_energy=0.0, lambda_grad=0.0,
                               **params).fit(X, np.arange(40) % 2)
    # the learning rate each epoch trained with, as the optimizer held it
    assert clf.history[:, "event_lr"] == pytest.approx([0.2, 0.2, 0.02, 0.02])
    assert TrainingRecipe(lr_drop_at=0.5).drop_epoch(1) is None
    assert PAPER_CIFAR_RECIPE.drop_epoch(60) == 50


def test_cifar_training_reads_augmented_images_and_calibrates_on_clean_ones(
        cifar_home, monkeypatch):
    home, _, _ = cifar_home
    seen = []

    def spy(self, X, y=None, X_aux=None, X_eval=None, **kwargs):
        seen.append((X, y, X_aux, X_eval))
        raise KeyboardInterrupt   # nothing to train: what fit got is the test

    monkeypatch.setattr(GradRegOODClassifier, "fit", spy)
    config = BenchmarkConfig(dataset="cifar10", data_home=str(home), splits=1,
                             methods=("greg",), n_aux=8, n_ood=5, progress=False)
    from skood.benchmark.runner import run
    with pytest.raises(KeyboardInterrupt):
        run(config)
    (X, y, X_aux, X_eval), = seen
    data = load_benchmark_data("cifar10", split=config.known_splits[0], n_aux=8, n_ood=5,
                               data_home=str(home))
    assert isinstance(X, ArrayDataset) and y is None and isinstance(X_eval, ArrayDataset)
    assert isinstance(X_aux, ArrayDataset) and len(X_aux) == 8
    np.testing.assert_array_equal(X_eval.X, data.X_train)
    clean = [np.asarray(X_eval[i][0]) for i in range(len(X))]
    for i, expected in enumerate(clean):
        assert X_eval[i][1] == X[i][1] == data.y_train[i]
        np.testing.assert_array_equal(expected, data.X_train[i])
    augmented = [np.asarray(X[i][0]) for i in range(len(X))]
    changed = [not np.array_equal(a, c) for a, c in zip(augmented, clean)]
    assert sum(changed) > len(X) // 2   # a crop moves almost every image
    # each training image is its clean image shifted by at most 4 pixels, maybe mirrored,
    # padded with black: -mean / std once standardised, as the paper pads the raw image
    black = -CIFAR10_MEAN / CIFAR10_STD
    for image, crop in zip(clean[:5], augmented[:5]):
        candidates = [np.stack([np.pad(flip[c], 4, constant_values=black[c]) for c in range(3)])
                      [:, top:top + 32, left:left + 32]
                      for flip in (image, image[:, :, ::-1]) for top in range(9)
                      for left in range(9)]
        assert any(np.allclose(crop, c, rtol=0, atol=1e-6) for c in candidates)


def test_cifar100_holds_out_50_classes_drawn_without_listing_the_choices():
    splits = draw_class_splits(100, 50, 4, random_state=3)
    assert len(set(splits)) == 4 and all(len(known) == 50 for known in splits)
    assert draw_class_splits(100, 50, 3, random_state=3) == splits[:3]
    assert draw_class_splits(100, 50, 4, random_state=4) != splits
    with pytest.raises(BenchmarkConfigError, match="n_train must be at least 500"):
        BenchmarkConfig(dataset="cifar100", n_train=499)


def test_cifar100_loads_50_known_classes(tmp_path, no_env):
    make_cifar100(str(tmp_path), n=300)
    data = load_benchmark_data("cifar100", split=tuple(range(0, 100, 2)), n_aux=4, n_ood=10,
                               data_home=str(tmp_path))
    assert data.n_classes == 50 and len(data.heldout_classes) == 50
    assert set(np.unique(data.y_train)) <= set(range(50))
    assert len(data.ood["cifar100-heldout"]) == 10


@pytest.mark.parametrize("kwargs, parameter, match", [
    (dict(splits="neal"), "splits", "digits and fashion-mnist only"),
    (dict(aux="patch-shuffle"), "aux", "augmenting Dataset; use aux='photos'"),
])
def test_cifar_settings_that_cannot_apply_are_refused(kwargs, parameter, match):
    with pytest.raises(BenchmarkConfigError, match=match) as error:
        BenchmarkConfig(dataset="cifar10", **kwargs)
    assert error.value.parameter == parameter


def test_missing_cifar_stops_the_command_with_where_to_get_it(tmp_path, no_env, capsys):
    with pytest.raises(SystemExit) as stop:
        main(["benchmark", "--dataset", "cifar10", "--data-home", str(tmp_path), "--splits", "1",
              "--epochs", "1", "--n-train", "60", "--n-aux", "8", "--n-ood", "5", "--quiet",
              "--out", str(tmp_path / "out")])
    assert stop.value.code == 1
    message = capsys.readouterr().err
    assert "skood benchmark: error:" in message and CIFAR_URL in message
    assert "Traceback" not in message


def test_an_index_split_is_refused_for_cifar(cifar_home):
    home, _, _ = cifar_home
    with pytest.raises(ValueError, match="digits and fashion-mnist only; give cifar10's known"):
        load_benchmark_data("cifar10", split=0, n_aux=4, n_ood=5, data_home=str(home))


@pytest.mark.parametrize("kwargs, match", [
    (dict(crop_padding=-1), "crop_padding must be None"),
    (dict(crop_padding=2.5), "crop_padding must be None"),
    (dict(nesterov=1), "nesterov must be True or False"),
    (dict(weight_decay=-1e-4), "weight_decay must be a finite number >= 0"),
    (dict(lr_drop_at=1.5), r"lr_drop_at must be None .* in \(0, 1\)"),
    (dict(lr_drop_at=0.0), r"lr_drop_at must be None .* in \(0, 1\)"),
    (dict(lr_drop_factor=1.0), r"lr_drop_factor must be a number in \(0, 1\)"),
])
def test_a_recipe_refuses_values_outside_their_range(kwargs, match):
    with pytest.raises(ValueError, match=match):
        TrainingRecipe(**kwargs)


def test_to_channels_repeats_grey_averages_to_grey_and_refuses_the_rest():
    from skood.benchmark.far_sets import to_channels
    grey = np.arange(8, dtype=np.float32).reshape(2, 1, 2, 2)
    colour = to_channels(grey, 3)
    assert colour.shape == (2, 3, 2, 2) and (colour == grey).all()
    np.testing.assert_array_equal(to_channels(colour, 1), grey)
    with pytest.raises(ValueError, match="got 2 channels for 3"):
        to_channels(np.zeros((1, 2, 2, 2)), 3)


def test_an_empty_far_folder_does_not_hide_one_with_images(tmp_path, monkeypatch):
    from skood.benchmark.far_sets import image_folder_far
    empty, full = tmp_path / "here", tmp_path / "there"
    (empty / "dtd" / "images").mkdir(parents=True)
    save_images(str(full / "dtd" / "images" / "striped"), 3, 40, seed=0)
    monkeypatch.setenv("SKOOD_DATA", str(full))
    images = image_folder_far("dtd")((32, 32), 3, 10, np.random.RandomState(0), str(empty))
    assert images.shape == (3, 3, 32, 32)
    monkeypatch.delenv("SKOOD_DATA")
    with pytest.raises(FileNotFoundError, match="no folder .* with images found .* put the "
                                                "Describable Textures Dataset"):
        image_folder_far("dtd")((32, 32), 3, 10, np.random.RandomState(0), str(empty))


def test_fine_tuning_keeps_its_learning_rate(cifar_home):
    home, _, _ = cifar_home
    config = BenchmarkConfig(dataset="cifar10", data_home=str(home), splits=1, finetune=True,
                             epochs=6, finetune_epochs=6)
    data = load_benchmark_data("cifar10", split=config.known_splits[0], n_aux=8, n_ood=5,
                               data_home=str(home))
    scratch = make_estimator(config, "ce", data)
    assert [type(c).__name__ for c in scratch.callbacks] == ["LRScheduler", "HeldOutRows"]
    tuned = make_estimator(config, "greg", data, start_from=ResNet18(3, 6, width=8))
    assert not [c for c in (tuned.callbacks or []) if type(c).__name__ == "LRScheduler"]


def test_an_unknown_image_folder_set_is_named_with_the_choices():
    from skood.benchmark.far_sets import image_folder_far
    with pytest.raises(ValueError, match=r"name must be one of \['dtd', 'places365'"):
        image_folder_far("lsun")
