"""Data-parallel GReg through Accelerate: 2 CPU processes (gloo)."""
import copy
import os

import numpy as np
import pytest
import torch

accelerate = pytest.importorskip("accelerate", reason="needs the [accelerate] extra")

from skood import GradRegOODClassifier  # noqa: E402
from skood.distributed import AcceleratedGradRegOODClassifier  # noqa: E402

from helpers import TanhNet, run_one_step  # noqa: E402

B, N_FEATURES = 8, 4


def launch_two_processes(function, args):
    """accelerate's debug_launcher, but with spawned processes: forking a process
    whose OpenMP thread pool is already running (as it is after the rest of the
    suite) can hang the child."""
    import os
    import shutil
    import socket
    import tempfile

    from accelerate.utils import PrepareForLaunch, patch_environment
    from torch.multiprocessing import start_processes
    with socket.socket() as sock:                  # a free port on loopback
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    folder = tempfile.mkdtemp()
    # torch's file store removes the rendezvous file itself when it is done
    rendezvous = os.path.join(folder, "rendezvous")
    try:
        with patch_environment(
                world_size=2, master_addr="127.0.0.1", master_port=str(port),
                accelerate_mixed_precision="no", accelerate_debug_rdv_file=rendezvous,
                accelerate_use_cpu="yes", gloo_socket_ifname="lo", omp_num_threads="1"):
            start_processes(PrepareForLaunch(function, debug=True), args=args, nprocs=2,
                            start_method="spawn")
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def rank_batch(rank):
    generator = torch.Generator().manual_seed(100 + rank)
    x_in = torch.randn(B, N_FEATURES, generator=generator, dtype=torch.float64)
    y_in = torch.randint(0, 3, (B,), generator=generator)
    x_aux = 3 * torch.randn(B, N_FEATURES, generator=generator, dtype=torch.float64)
    return x_in, y_in, x_aux


PARAMS = dict(m_in=-6.0, m_out=-3.0, lambda_energy=0.1, verbose=0)


def local_gradients(module, rank, **params):
    """One process's gradient of the GReg loss on its batch, without any parallelism."""
    x_in, y_in, x_aux = rank_batch(rank)

    class AtRank(GradRegOODClassifier):
        # draws what that rank's process draws (the penalty rows of penalty_fraction < 1)
        _process_index = rank

    clf = AtRank(copy.deepcopy(module), **PARAMS, **params).initialize()
    run_one_step(clf, x_in, y_in, x_aux)
    return [p.grad.clone() for p in clf.module_.parameters()]


# (penalty, lambda_grad, penalty_fraction): one step of each, all in one launch of the two
# processes, whose start-up takes far longer than the steps
SETTINGS = [("exact", 1.0, 1.0), ("fd", 1.0, 1.0), ("fd", 1.0, 0.5), ("exact", 1.0, 0.5),
            ("exact", 0.0, 1.0)]


def _file(setting, rank):
    return "{}-{}-{}-rank{}.npz".format(*setting, rank)


def _worker(out_dir, settings):
    from accelerate import Accelerator
    accelerator = Accelerator(cpu=True)
    rank = accelerator.process_index
    for penalty, lambda_grad, penalty_fraction in settings:
        torch.manual_seed(0)
        module = TanhNet(hidden=16).double()
        x_in, y_in, x_aux = rank_batch(rank)
        clf = AcceleratedGradRegOODClassifier(copy.deepcopy(module), accelerator=accelerator,
                                              penalty=penalty, lambda_grad=lambda_grad,
                                              penalty_fraction=penalty_fraction,
                                              fd_step=1e-5, **PARAMS).initialize()
        run_one_step(clf, x_in, y_in, x_aux)          # DDP averages the gradients in backward
        params = accelerator.unwrap_model(clf.module_).parameters()
        grads = [p.grad.detach().numpy() for p in params]
        reference = [local_gradients(module, r, penalty=penalty, lambda_grad=lambda_grad,
                                     penalty_fraction=penalty_fraction, fd_step=1e-5)
                     for r in range(accelerator.num_processes)]
        np.savez(os.path.join(out_dir, _file((penalty, lambda_grad, penalty_fraction), rank)),
                 world=accelerator.num_processes,
                 wrapped=type(clf.module_).__name__,
                 penalty=clf.history[-1, "batches", -1, "train_grad_penalty"],
                 **{f"ddp_{i}": g for i, g in enumerate(grads)},
                 **{f"rank{r}_{i}": g.numpy() for r, ref in enumerate(reference)
                    for i, g in enumerate(ref)})


@pytest.fixture(scope="module")
def steps(tmp_path_factory):
    """What each rank saved for a setting of SETTINGS: ``steps(setting)[rank]``."""
    folder = tmp_path_factory.mktemp("ddp")
    launch_two_processes(_worker, (str(folder), SETTINGS))
    return lambda setting: [np.load(folder / _file(setting, r)) for r in range(2)]


@pytest.mark.parametrize("penalty, penalty_fraction", [("exact", 1.0), ("fd", 1.0), ("fd", 0.5),
                                                       ("exact", 0.5)])
def test_two_processes_average_the_greg_gradients(steps, penalty, penalty_fraction):
    results = steps((penalty, 1.0, penalty_fraction))
    assert all(int(r["world"]) == 2 for r in results)
    assert all(str(r["wrapped"]) == "DistributedDataParallel" for r in results)
    assert all(float(r["penalty"]) > 0 for r in results)        # the penalty was applied
    n_params = len([k for k in results[0].files if k.startswith("ddp_")])
    for i in range(n_params):
        expected = (results[0][f"rank0_{i}"] + results[0][f"rank1_{i}"]) / 2
        for r in results:
            np.testing.assert_allclose(r[f"ddp_{i}"], expected, rtol=1e-6, atol=1e-10)


def test_the_penalty_changes_the_averaged_gradients(steps):
    """Guards against the plain AccelerateMixin step, which would drop the penalty."""
    a, b = steps(("exact", 1.0, 1.0))[0], steps(("exact", 0.0, 1.0))[0]
    assert not np.allclose(a["ddp_0"], b["ddp_0"])
    assert AcceleratedGradRegOODClassifier.train_step_single is \
        GradRegOODClassifier.train_step_single


# one epoch: whether fd is allowed is checked, not the fit
@pytest.mark.filterwarnings("ignore::skood.exceptions.ChanceLevelWarning")
def test_exact_penalty_refuses_static_graph(blobs):
    from accelerate import Accelerator, DistributedDataParallelKwargs
    from skood.models import MLP
    X, y, X_aux = blobs
    accelerator = Accelerator(cpu=True, kwargs_handlers=[
        DistributedDataParallelKwargs(static_graph=True)])
    clf = AcceleratedGradRegOODClassifier(MLP, module__n_features=4, module__n_classes=2,
                                          accelerator=accelerator, penalty="exact", verbose=0)
    with pytest.raises(ValueError, match="static_graph=True"):
        clf.fit(X, y, X_aux=X_aux)
    clf.set_params(penalty="fd", max_epochs=1)
    clf.fit(X, y, X_aux=X_aux)      # fd has no double backward: allowed


def test_amp_is_refused_in_favour_of_the_accelerator(blobs):
    from accelerate import Accelerator
    from skood.models import MLP
    X, y, X_aux = blobs
    clf = AcceleratedGradRegOODClassifier(MLP, module__n_features=4, module__n_classes=2,
                                          accelerator=Accelerator(cpu=True), amp="bf16",
                                          verbose=0)
    with pytest.raises(ValueError, match="mixed_precision"):
        clf.fit(X, y, X_aux=X_aux)
