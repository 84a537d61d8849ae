"""Device paths that can only fail on a GPU, emulated on the CPU.

CUDA-tagged storages stand for a GPU-trained model's pickle, the ``meta``
device for a module on another device than the data, and a GradScaler with a
huge scale for fp16 overflow steps.
"""
import pickle
import warnings

import joblib
import numpy as np
import pytest
import torch
import torch.serialization as serialization

from skood import GradRegOODClassifier
from skood._network import check_module_outputs
from skood.models import MLP


def _cuda_tagged(monkeypatch, obj, dump):
    """``dump(obj)`` with every torch storage tagged 'cuda:0', as a GPU-trained model's are."""
    with monkeypatch.context() as patch:
        patch.setattr(serialization, "location_tag", lambda storage: "cuda:0")
        return dump(obj)


def test_device_none_trains_where_the_module_is(make_clf, blobs):
    """skorch's device=None (leave tensors where they are) trains on the module's
    device, the CPU for a fresh module: the same scores as device='cpu'."""
    X, y, X_aux = blobs
    expected = make_clf(device="cpu").fit(X, y, X_aux=X_aux).decision_function(X)
    clf = make_clf(device=None).fit(X, y, X_aux=X_aux)
    np.testing.assert_allclose(clf.decision_function(X), expected, rtol=1e-6, atol=1e-6)


def test_device_none_with_exact_penalty_and_fraction(make_clf, blobs):
    X, y, X_aux = blobs
    params = dict(penalty_fraction=0.5, sampler="energy")
    expected = make_clf(device="cpu", **params).fit(X, y, X_aux=X_aux).decision_function(X)
    clf = make_clf(device=None, **params).fit(X, y, X_aux=X_aux)
    np.testing.assert_allclose(clf.decision_function(X), expected, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("dump, load", [(pickle.dumps, pickle.loads), ("joblib", "joblib")])
def test_cuda_finetuned_model_loads_on_a_cpu_machine(make_clf, blobs, monkeypatch, tmp_path,
                                                     dump, load, device):
    """from_pretrained keeps a copy of the source module as its ``module`` parameter:
    on a CPU-only machine it must load from CUDA storages like module_ does (real
    ones under ``--device cuda``, CUDA-tagged CPU ones otherwise)."""
    X, y, X_aux = blobs
    source = make_clf().fit(X, y, X_aux=X_aux)
    clf = GradRegOODClassifier.from_pretrained(
        source, max_epochs=1, lr=0.01, verbose=0, m_in=-8.0, m_out=-2.0, random_state=0)
    clf.fit(X, y, X_aux=X_aux)
    assert clf.device == device     # inherited from the source
    expected = clf.decision_function(X)
    clf.device = "cuda"
    if dump == "joblib":
        path = tmp_path / "model.joblib"

        def dump(obj):
            joblib.dump(obj, path)
            return path.read_bytes()

        def load(_):
            return joblib.load(path)
    data = dump(clf) if device.startswith("cuda") else _cuda_tagged(monkeypatch, clf, dump)
    assert b"cuda:0" in data
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")     # skorch's "CUDA not available, moved to CPU"
        loaded = load(data)
    assert isinstance(loaded.module, torch.nn.Module)
    assert next(loaded.module.parameters()).device.type == "cpu"
    assert str(loaded.device) == "cpu"
    np.testing.assert_allclose(loaded.decision_function(X), expected, rtol=1e-5, atol=1e-5)
    # the loaded model's module parameter is usable: a refit trains from it
    assert loaded.fit(X, y, X_aux=X_aux).decision_function(X).shape == (len(X),)


def test_pickling_a_pretrained_model_leaves_it_unchanged(make_clf, blobs):
    X, y, X_aux = blobs
    clf = GradRegOODClassifier.from_pretrained(make_clf().fit(X, y, X_aux=X_aux), verbose=0)
    listed = list(clf.cuda_dependent_attributes_)
    loaded = pickle.loads(pickle.dumps(clf))
    assert list(clf.cuda_dependent_attributes_) == listed
    assert list(loaded.cuda_dependent_attributes_) == listed
    assert "cuda_dependent_attributes_" not in vars(clf)


def test_from_pretrained_inherits_the_device_of_a_fitted_net(make_clf, blobs):
    X, y, X_aux = blobs
    source = make_clf(max_epochs=1).fit(X, y, X_aux=X_aux)
    source.device = "meta"      # stands for "cuda" here: any device but the default
    assert GradRegOODClassifier.from_pretrained(source).device == "meta"
    assert GradRegOODClassifier.from_pretrained(source, device="cpu").device == "cpu"
    # a bare module has no device parameter: the estimator's default
    assert GradRegOODClassifier.from_pretrained(source.module_).device == "cpu"


def test_set_params_device_moves_a_fitted_model(make_clf, blobs, device):
    """To "meta" on the CPU (another device than the data's), to the GPU under
    ``--device cuda``."""
    X, y, X_aux = blobs
    target = device if device.startswith("cuda") else "meta"
    clf = make_clf(device="cpu", optimizer=torch.optim.SGD, optimizer__momentum=0.9)
    clf.fit(X, y, X_aux=X_aux)
    expected = clf.decision_function(X)
    clf.set_params(device=target)
    kind = torch.device(target).type
    assert {p.device.type for p in clf.module_.parameters()} == {kind}
    assert {s["momentum_buffer"].device.type
            for s in clf.optimizer_.state.values()} == {kind}
    if kind == "cuda":
        np.testing.assert_allclose(clf.decision_function(X), expected, rtol=1e-5, atol=1e-5)
        clf.fit(X, y, X_aux=X_aux)      # and trains there
    # and back: the model predicts as before once on the CPU (its weights are
    # gone on meta, so compare with a model moved to the CPU from the CPU)
    other = make_clf(device="cpu").fit(X, y, X_aux=X_aux)
    expected = other.decision_function(X)
    other.set_params(device="cpu")
    np.testing.assert_array_equal(other.decision_function(X), expected)


def test_set_params_device_refuses_cuda_without_a_gpu(make_clf, blobs):
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU: 'cuda' is a valid device here")
    X, y, X_aux = blobs
    clf = make_clf(device="cpu").fit(X, y, X_aux=X_aux)
    expected = clf.decision_function(X)
    before = dict(vars(clf))
    with pytest.raises(ValueError, match="device 'cuda' cannot be used here"):
        clf.set_params(device="cuda")
    assert clf.device == "cpu"
    assert set(vars(clf)) == set(before)
    np.testing.assert_array_equal(clf.decision_function(X), expected)


def test_module_check_follows_the_module_device(make_clf, blobs):
    """Under Accelerate (device=None) the module is already on the accelerator's
    device when the probe runs: the CPU sample must go there."""
    X, y, _ = blobs
    clf = make_clf(device=None).initialize()
    clf.module_.to("meta")
    # on meta, the logits have the right shape and no values; the criterion probe
    # is not reached without y
    check_module_outputs(clf, X[:4], 2)


def test_module_check_still_refuses_a_wrong_input_size(make_clf, blobs):
    X, y, _ = blobs
    clf = make_clf(device=None).initialize()
    with pytest.raises(ValueError, match="cannot forward samples"):
        check_module_outputs(clf, np.zeros((4, 5), dtype=np.float32), 2)


def test_mlp_module_device_default():
    from skood._network import module_device
    assert module_device(MLP(n_features=2, n_classes=2).to("meta")).type == "meta"
    assert module_device(torch.nn.ReLU()).type == "cpu"
    assert module_device(None).type == "cpu"


class _HugeScaleGradScaler(torch.amp.GradScaler):
    """A GradScaler whose first scale overflows fp16 gradients (and fp32 ones at 1e38)."""

    made = []

    def __init__(self, *args, init_scale=2.0 ** 40, **kwargs):
        super().__init__(*args, init_scale=init_scale, **kwargs)
        self.made.append(self)


@pytest.mark.parametrize("penalty", ["exact", "fd"])
def test_fp16_overflow_steps_are_skipped_not_raised(make_clf, blobs, monkeypatch, penalty):
    """amp="fp16": a step whose scaled (input) gradient overflows is the GradScaler's
    to skip; the fit goes on and the scale goes down."""
    X, y, X_aux = blobs
    _HugeScaleGradScaler.made.clear()
    monkeypatch.setattr(torch.amp, "GradScaler", _HugeScaleGradScaler)
    clf = make_clf(amp="fp16", penalty=penalty, max_epochs=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")     # a chance-level warning: most steps skipped
        clf.fit(X, y, X_aux=X_aux)
    (scaler,) = _HugeScaleGradScaler.made
    assert scaler.get_scale() < 2.0 ** 40
    assert np.isfinite(clf.decision_function(X)).all()


def _accelerated(accelerator, **params):
    from skood.distributed import AcceleratedGradRegOODClassifier
    defaults = dict(module=MLP, module__n_features=4, module__n_classes=2,
                    module__hidden=(16,), max_epochs=1, lr=0.05, batch_size=32, verbose=0,
                    m_in=-8.0, m_out=-2.0, random_state=0, accelerator=accelerator)
    defaults.update(params)
    return AcceleratedGradRegOODClassifier(**defaults)


@pytest.mark.parametrize("penalty", ["exact", "fd"])
def test_accelerate_scaler_overflow_steps_are_skipped_not_raised(blobs, penalty,
                                                                 accelerator_on_device, device):
    """Under Accelerate's fp16 the GradScaler is accelerator.scaler (set by the
    Accelerator under mixed_precision="fp16"; set by hand here, so that its scale
    overflows float32 gradients too): its overflowing steps are skipped."""
    X, y, X_aux = blobs
    accelerator = accelerator_on_device
    accelerator.scaler = torch.amp.GradScaler(torch.device(device).type, init_scale=1e38)
    clf = _accelerated(accelerator, penalty=penalty).fit(X, y, X_aux=X_aux)
    assert accelerator.scaler.get_scale() < 1e38
    assert np.isfinite(clf.decision_function(X)).all()


def test_accelerate_mixed_precision_fd_forward_runs_in_float32(blobs):
    """Accelerate wraps the module's forward in its autocast and unwrap_model keeps
    it; the fd penalty's forwards (autocast off, see skood._objective) must run in
    float32 all the same."""
    accelerate = pytest.importorskip("accelerate")
    from accelerate.state import AcceleratorState
    X, y, X_aux = blobs
    # Accelerate's state is a process-wide singleton that refuses a new precision
    # once set; its private reset (what Accelerate's own tests use) starts afresh.
    AcceleratorState._reset_state(reset_partial_state=True)
    try:
        clf = _accelerated(accelerate.Accelerator(cpu=True, mixed_precision="bf16"),
                           penalty="fd").initialize()
    finally:
        AcceleratorState._reset_state(reset_partial_state=True)
    module = clf.accelerator.unwrap_model(clf.module_)
    if "forward" not in vars(module):
        pytest.skip("this Accelerate does not wrap the forward in autocast on the CPU")
    reference = MLP(n_features=4, n_classes=2, hidden=(16,))
    reference.load_state_dict(module.state_dict())
    x = torch.as_tensor(X[:64]) * 37.0       # large activations: bf16 rounding shows
    with torch.autocast("cpu", enabled=False):
        expected = reference(x)
        wrapped = module(x)
        got = clf._penalty_forward(x)
    assert not torch.equal(wrapped.float(), expected)     # the wrapper's bf16
    assert got.dtype == torch.float32
    torch.testing.assert_close(got, expected, rtol=0, atol=0)


def test_one_device_read_per_training_step():
    """docs/gpu.md's count: one device-to-host read per step (two under fp16,
    the GradScaler's own), counted by benchmarks/host_syncs.py."""
    import importlib.util
    import pathlib
    path = pathlib.Path(__file__).parents[1] / "benchmarks" / "host_syncs.py"
    spec = importlib.util.spec_from_file_location("host_syncs", path)
    host_syncs = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(host_syncs)
    for params, expected in ((dict(penalty="fd", penalty_fraction=0.5), 1),
                             (dict(penalty="exact", amp="fp16"), 2)):
        reads, _, counts, n = host_syncs.count_mode(params)
        assert n > 1
        assert reads == expected, counts
    # the counter sees a read when there is one
    counts = host_syncs.collections.Counter()
    with host_syncs.counting(counts):
        torch.ones(2).sum().item()
    assert sum(counts.values()) == 1


def test_pinned_batches_are_copied_without_blocking(make_clf, monkeypatch):
    """A batch the DataLoader pinned goes to the device with non_blocking=True."""
    clf = make_clf(device="cpu").initialize()
    calls = []
    original = torch.Tensor.to

    def to(self, *args, **kwargs):
        calls.append(kwargs.get("non_blocking", False))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(torch.Tensor, "to", to)
    batch = torch.ones(4, 4)
    clf._batch_to_device(batch)
    monkeypatch.setattr(torch.Tensor, "is_pinned", lambda self: True)
    clf._batch_to_device(batch)
    assert calls == [False, True]


def test_penalty_rows_are_drawn_on_the_generator_device(monkeypatch):
    from skood import _objective
    seen = []
    original = torch.randperm

    def randperm(n, **kwargs):
        seen.append(kwargs.get("device"))
        return original(n, **kwargs)

    monkeypatch.setattr(torch, "randperm", randperm)
    generator = torch.Generator("cpu").manual_seed(0)
    rows = _objective._random_rows(10, 0.5, generator)
    assert rows.shape == (5,) and seen == [generator.device]
    # the CPU stream is the one a CPU generator always gave (fingerprinted fits)
    expected = original(10, generator=torch.Generator().manual_seed(0))[:5]
    assert torch.equal(rows, expected)


class _FakeGPUs:
    """torch.cuda's random-state functions for two emulated GPUs: each GPU's state is a
    one-byte tensor, which ``manual_seed_all`` (called by ``torch.manual_seed``) and
    ``manual_seed`` (the current GPU, 0) overwrite with the seed."""

    def __init__(self, monkeypatch):
        self.states = {0: torch.tensor([10], dtype=torch.uint8),
                       1: torch.tensor([11], dtype=torch.uint8)}
        for name in ("is_available", "device_count", "get_rng_state", "set_rng_state",
                     "manual_seed", "manual_seed_all"):
            monkeypatch.setattr(torch.cuda, name, getattr(self, name))

    @staticmethod
    def _index(device):
        return device if isinstance(device, int) else (torch.device(device).index or 0)

    def is_available(self):
        return True

    def device_count(self):
        return len(self.states)

    def get_rng_state(self, device="cuda"):
        return self.states[self._index(device)].clone()

    def set_rng_state(self, new_state, device="cuda"):
        self.states[self._index(device)] = new_state.clone()

    def manual_seed(self, seed):
        self.states[0] = torch.tensor([seed % 256], dtype=torch.uint8)

    def manual_seed_all(self, seed):
        for index in self.states:
            self.states[index] = torch.tensor([seed % 256], dtype=torch.uint8)

    def snapshot(self):
        return {index: state.item() for index, state in self.states.items()}


@pytest.mark.parametrize("training_device", ["cpu", "cuda:1"])
def test_a_seeded_fit_leaves_every_gpu_random_state_as_it_was(monkeypatch, training_device):
    """The fit's seeding (random_state) restores the generator of every GPU it seeds,
    not only the training one's; a CPU fit leaves the GPUs' generators alone."""
    gpus = _FakeGPUs(monkeypatch)
    clf = GradRegOODClassifier(MLP, device=training_device, random_state=0)
    before_cpu = torch.get_rng_state()
    with clf._seeded(77):
        torch.rand(3)                           # the fit's own draws
        inside = gpus.snapshot()
    if training_device.startswith("cuda"):
        assert inside[1] == 77                  # the training GPU is seeded for the fit
    assert gpus.snapshot() == {0: 10, 1: 11}
    assert torch.equal(torch.get_rng_state(), before_cpu)
