"""Count, on the CPU, the calls of one training step that make the host wait for a GPU.

Each training step (``train_step``: the forward, the loss, the backward, the
finiteness check and the optimizer step) runs with these torch methods
patched to count their calls, by the line of skood, skorch or torch that made
them:

- device-to-host reads: ``Tensor.item``, ``tolist``, ``numpy``, ``cpu``,
  ``__bool__``, ``__float__``, ``__int__`` (on a GPU each waits for the work
  queued before it);
- blocking copies: ``Tensor.to`` with a device and ``non_blocking=False`` (on a
  GPU a host-to-device copy from pageable memory waits; on the CPU a ``.to``
  whose tensor would already be on the device is counted too, so this count is
  an upper bound: the call sites are printed to judge each).

The count is per step, averaged over the steps of a one-epoch fit on made-up
data (small MLP, batch 32, outliers 2 per ID row). Run:

    python benchmarks/host_syncs.py
"""
import collections
import contextlib
import os
import sys
import traceback
import warnings

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from skood import GradRegOODClassifier  # noqa: E402
from skood.models import MLP  # noqa: E402

READS = ("item", "tolist", "numpy", "cpu", "__bool__", "__float__", "__int__")
MODES = {
    "energy-OE": dict(lambda_grad=0.0),
    "GReg exact": dict(penalty="exact"),
    "GReg fd": dict(penalty="fd"),
    "GReg exact, penalty_fraction=0.5": dict(penalty="exact", penalty_fraction=0.5),
    "GReg+ fd (energy sampler)": dict(penalty="fd", sampler="energy"),
    "GReg exact, amp=fp16": dict(penalty="exact", amp="fp16"),
    "GReg fd, pin_memory=True": dict(penalty="fd", iterator_train__pin_memory=True),
}


def _caller():
    """The innermost frame outside this file and torch's own tensor/function wrappers."""
    for frame in reversed(traceback.extract_stack()[:-2]):
        name = frame.filename
        if name == __file__ or name.endswith(("torch/_tensor.py", "torch/overrides.py")):
            continue
        return f"{os.path.relpath(name)}:{frame.lineno} ({frame.name})"
    return "?"


@contextlib.contextmanager
def counting(counts):
    """Patch the methods above to add their call sites to ``counts`` (a Counter)."""
    originals = {name: getattr(torch.Tensor, name) for name in (*READS, "to")}

    def read(name):
        def wrapper(self, *args, **kwargs):
            counts[("read", name, _caller())] += 1
            return originals[name](self, *args, **kwargs)
        return wrapper

    def to(self, *args, **kwargs):
        targets = [a for a in (*args, kwargs.get("device")) if isinstance(a, (str, torch.device))]
        if targets and not kwargs.get("non_blocking", False):
            counts[("copy", "to", _caller())] += 1
        return originals["to"](self, *args, **kwargs)

    for name in READS:
        setattr(torch.Tensor, name, read(name))
    torch.Tensor.to = to
    try:
        yield
    finally:
        for name, method in originals.items():
            setattr(torch.Tensor, name, method)


def count_mode(params):
    """Per-step counts of one mode: (reads, copies, Counter of call sites)."""
    rng = np.random.RandomState(0)
    X = rng.normal(size=(256, 8)).astype(np.float32)
    y = (X[:, 0] > 0).astype(int)
    X_aux = rng.uniform(-6, 6, size=(512, 8)).astype(np.float32)
    counts = collections.Counter()
    steps = []

    class Counted(GradRegOODClassifier):
        def train_step(self, batch, **fit_params):
            steps.append(1)
            with counting(counts):
                return super().train_step(batch, **fit_params)

    clf = Counted(MLP, module__hidden=(16,), max_epochs=1, batch_size=32, verbose=0,
                  random_state=0, train_split=None, device="cpu", **params)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clf.fit(X, y, X_aux=X_aux)
    n = len(steps)
    reads = sum(c for (kind, _, _), c in counts.items() if kind == "read") / n
    copies = sum(c for (kind, _, _), c in counts.items() if kind == "copy") / n
    return reads, copies, counts, n


def main():
    torch.set_num_threads(1)
    print(f"torch {torch.__version__}, counted on the CPU")
    print("| mode | device-to-host reads per step | blocking .to copies per step |")
    print("|---|---|---|")
    sites = {}
    for mode, params in MODES.items():
        reads, copies, counts, n = count_mode(params)
        print(f"| {mode} | {reads:g} | {copies:g} |")
        sites[mode] = (counts, n)
    print()
    for mode, (counts, n) in sites.items():
        print(f"{mode}:")
        for (kind, name, where), count in sorted(counts.items()):
            print(f"  {kind} {name} x{count / n:g}/step at {where}")


if __name__ == "__main__":
    main()
