"""Small networks and stubs shared by the tests that look inside one training step, the
loader of the ``benchmarks/`` scripts their tests call, and the warnings of smoke runs."""
import importlib.util
from pathlib import Path

import pytest
import torch

# For the modules whose tests run `skood benchmark`: those are smoke runs (an epoch or two on
# tens of rows) that end at chance level, with fewer calibration rows than tpr=0.95 needs and
# too few outliers for the energy sampler to choose among. The tests check what a run records
# and writes, not how well it learns; and were these warnings errors, the benchmark would
# record every fit as failed.
SMOKE_RUN_WARNINGS = [
    pytest.mark.filterwarnings("ignore::skood.exceptions.ChanceLevelWarning"),
    pytest.mark.filterwarnings("ignore::skood.conformal.SmallCalibrationWarning"),
    pytest.mark.filterwarnings(r"ignore:EnergySampler\(pool_factor=:UserWarning"),
]


def load_benchmark_script(name):
    """The module ``benchmarks/<name>.py`` (the scripts are not a package)."""
    path = Path(__file__).resolve().parents[1] / "benchmarks" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"{name}_script", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class FixedOutliers:
    """A sampler stub that always returns the same outlier batch."""

    def __init__(self, x_aux):
        self.x_aux = x_aux

    def default_ratio(self):
        return 1.0

    def reset(self, n_outliers, seed, device, **kwargs):
        return None

    def draw(self, state, aux, batch_size, n_outliers, device):
        assert n_outliers == self.x_aux.shape[0]
        return self.x_aux.to(device)


class BNNet(torch.nn.Module):
    """Linear + BatchNorm + Tanh: smooth, with batch-coupled statistics as in a ResNet."""

    def __init__(self):
        super().__init__()
        self.body = torch.nn.Sequential(torch.nn.Linear(4, 16), torch.nn.BatchNorm1d(16),
                                        torch.nn.Tanh(), torch.nn.Linear(16, 3))

    def forward(self, x):
        return 6.0 * self.body(x)


class TanhNet(torch.nn.Module):
    """No batch-coupled layers; optional dropout."""

    def __init__(self, dropout=0.0, hidden=32):
        super().__init__()
        self.body = torch.nn.Sequential(torch.nn.Linear(4, hidden), torch.nn.Tanh(),
                                        torch.nn.Dropout(dropout), torch.nn.Linear(hidden, 3))

    def forward(self, x):
        return 6.0 * self.body(x)


def run_one_step(clf, x_in, y_in, x_aux):
    """One train_step_single of an initialized estimator on a given ID and outlier batch,
    inside the per-fit state that fit creates (the GradScaler under amp="fp16")."""
    with clf._fit_state_for(None, seed=0) as state:
        state.sampler = FixedOutliers(x_aux)
        state.outliers_per_id_sample = x_aux.shape[0] / x_in.shape[0]
        clf.history.new_epoch()
        clf.history.new_batch()
        clf.module_.zero_grad()
        return clf.train_step_single((x_in, y_in))
