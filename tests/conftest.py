"""Shared fixtures.

Point the suite at a GPU with ``--device cuda`` or ``SKOOD_TEST_DEVICE=cuda``;
``--device-only`` keeps the tests that the device reaches.
"""
import os

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits


@pytest.hookimpl(tryfirst=True)      # before pytest-xdist reads -n
def pytest_cmdline_main(config):
    """Run the suite on every core with pytest-xdist (``-n auto``), one test file per worker
    (``--dist loadfile``: a module's fixtures, such as a fitted model or a built site, are made
    once). A single file runs in this process: one worker would get it all, after seconds of
    start-up. ``-n 0`` or ``-p no:xdist`` runs the suite in this process. Set here rather than
    in addopts so that ``-p no:xdist``, and a checkout without pytest-xdist, still run."""
    one_file = len(config.args) == 1 and os.path.isfile(config.args[0].split("::")[0])
    if (config.pluginmanager.has_plugin("xdist") and config.option.numprocesses is None
            and not hasattr(config, "workerinput") and not one_file):
        config.option.numprocesses = "auto"
        if config.option.dist == "no":
            config.option.dist = "loadfile"


def pytest_configure(config):
    """Refuse a CUDA ``--device`` without CUDA before any test (and before pytest-xdist's
    workers start: an exit inside a worker is an internal error). Under pytest-xdist, share
    the cores among the workers: without this each worker's torch (and the processes its
    tests start) would run one thread per core."""
    device = config.getoption("--device")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise pytest.UsageError(f"--device {device} was asked for but CUDA is not available")
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    if workers > 1:
        threads = max(1, torch.get_num_threads() // workers)
        torch.set_num_threads(threads)
        os.environ.setdefault("OMP_NUM_THREADS", str(threads))


def pytest_addoption(parser):
    parser.addoption("--device", default=os.environ.get("SKOOD_TEST_DEVICE", "cpu"),
                     help="torch device the estimator tests train on (default: cpu, or "
                          "$SKOOD_TEST_DEVICE)")
    parser.addoption("--device-only", action="store_true",
                     help="run only the tests that take the device fixture (directly or "
                          "through another fixture): those that --device moves")


def pytest_collection_modifyitems(config, items):
    if not config.getoption("--device-only"):
        return
    kept = [item for item in items if "device" in getattr(item, "fixturenames", ())]
    config.hook.pytest_deselected(items=[item for item in items if item not in kept])
    items[:] = kept


@pytest.fixture(scope="session")
def device(request):
    device = request.config.getoption("--device")
    if device.startswith("cuda") and not torch.cuda.is_available():
        pytest.exit(f"--device {device} was asked for but CUDA is not available", returncode=4)
    return device


@pytest.fixture(scope="session")
def digits():
    """scikit-learn's digits, scaled to [0, 1], as (n, 64) float32 features and int labels."""
    X, y = load_digits(return_X_y=True)
    return (X / 16.0).astype(np.float32), y


@pytest.fixture(scope="session")
def blobs():
    """A small 2-class tabular problem with far-away uniform outliers."""
    rng = np.random.RandomState(0)
    X = np.r_[rng.normal(-1.5, 1.0, size=(150, 4)), rng.normal(1.5, 1.0, size=(150, 4))]
    y = np.r_[np.zeros(150, dtype=int), np.ones(150, dtype=int)]
    X_aux = rng.uniform(-8, 8, size=(300, 4))
    return X.astype(np.float32), y, X_aux.astype(np.float32)


@pytest.fixture
def accelerator_on_device(device):
    """A one-process Accelerate ``Accelerator`` on the test device (the CPU, or the GPU
    under ``--device cuda``). Accelerate's state is a process-wide singleton that keeps
    the device and precision it was first given; its private reset (what Accelerate's
    own tests use) starts it afresh before and after the test."""
    accelerate = pytest.importorskip("accelerate")
    from accelerate.state import AcceleratorState
    AcceleratorState._reset_state(reset_partial_state=True)
    try:
        yield accelerate.Accelerator(cpu=not device.startswith("cuda"))
    finally:
        AcceleratorState._reset_state(reset_partial_state=True)


@pytest.fixture
def make_clf(device):
    """Build a small, fast GradRegOODClassifier with margins that suit a tiny MLP."""
    from skood import GradRegOODClassifier
    from skood.models import MLP

    def factory(**params):
        defaults = dict(module=MLP, module__n_features=4, module__n_classes=2,
                        module__hidden=(16,), max_epochs=3, lr=0.05, batch_size=32, verbose=0,
                        m_in=-8.0, m_out=-2.0, random_state=0, device=device)
        defaults.update(params)
        return GradRegOODClassifier(**defaults)

    return factory


@pytest.fixture
def no_training(monkeypatch):
    """Make loading the benchmark's data or training a model fail the test: for checks that
    must refuse their input before any work."""
    from skood import GradRegOODClassifier
    from skood.benchmark import runner

    def never(*args, **kwargs):
        raise AssertionError("data was loaded or a model trained before the options were "
                             "checked")

    for name in ("load_far", "load_run", "outlier_pool"):
        monkeypatch.setattr(runner, name, never)
    monkeypatch.setattr(GradRegOODClassifier, "fit", never)
