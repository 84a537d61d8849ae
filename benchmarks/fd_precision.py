"""How far the gradient penalty under mixed precision is from its float32 value.

Trains a SmallCNN (width 16) on scikit-learn's digits resized to 28x28: three
epochs of cross-entropy, then GReg (fd penalty, uniform-noise outliers, margins
-25 / -7) until the mean in-distribution energy of the last 10 steps is below
-22. Then, on ``--batches`` batches (64 digits, 128 noise images; each batch's
margins at the median energies of its ID rows and of its outliers, so that half
of each weigh in the penalty), it takes the step's gradient penalty (skood's
training objective, ``skood._objective.GRegObjective``) in float32, under bf16
autocast and under fp16 autocast (with a GradScaler, as ``amp="fp16"`` uses),
for ``penalty="exact"`` and ``penalty="fd"``. For each low-precision mode it
prints the penalty's ratio to the float32 penalty of the same mode, the cosine
between its parameter gradient and float32's, and the cosine with the float32
exact penalty's gradient, the quantity fd estimates (the row "fd, none (fp32)"
compares float32 fd itself with float32 exact). On CUDA float32 means TF32 off,
and two more rows compare torch's default there, TF32 convolutions, with it.
Batches whose penalty or gradient is not finite are counted apart.

Run: python benchmarks/fd_precision.py [--batches 8] [--size 28] [--device cpu]
"""
import argparse
import contextlib
import platform
import statistics
import sys

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits

from skood._objective import GRegObjective, frozen_batchnorm_statistics
from skood.losses import energy
from skood.models import SmallCNN

TRAIN_M_IN, TRAIN_M_OUT = -25.0, -7.0
BATCH = 64


def digits_and_noise(size, seed=0):
    """Digits scaled to [0, 1] and resized (bilinear) to ``size`` x ``size``; uniform noise."""
    X, y = load_digits(return_X_y=True)
    X = torch.as_tensor(X / 16.0, dtype=torch.float32).view(-1, 1, 8, 8)
    if size != 8:
        X = F.interpolate(X, size=(size, size), mode="bilinear", align_corners=False)
    generator = torch.Generator().manual_seed(seed)
    noise = torch.rand(4 * len(X), 1, size, size, generator=generator)
    return X, torch.as_tensor(y), noise


def train(X, y, noise, epochs, target_energy, device):
    """Cross-entropy for three epochs, then GReg (fd penalty) in float32 until the mean ID
    energy of the last 10 steps is below ``target_energy``: the measured network."""
    torch.manual_seed(0)
    net = SmallCNN(1, 10, width=16).to(device)
    generator = torch.Generator().manual_seed(1)
    phases = [(GRegObjective(lambda_energy=0.0, lambda_grad=0.0), 0.05, 3),
              (GRegObjective(lambda_energy=0.1, lambda_grad=1.0, m_in=TRAIN_M_IN,
                             m_out=TRAIN_M_OUT, penalty="fd"), 0.001, epochs)]
    for objective, lr, phase_epochs in phases:
        optimizer = torch.optim.SGD(net.parameters(), lr=lr, momentum=0.9)
        recent = []
        for _ in range(phase_epochs):
            order = torch.randperm(len(X), generator=generator)
            for start in range(0, len(X) - BATCH + 1, BATCH):
                rows = order[start:start + BATCH]
                x_aux = noise[torch.randint(0, len(noise), (2 * BATCH,), generator=generator)]
                terms = objective.step_terms(net, net, X[rows].to(device), y[rows].to(device),
                                             x_aux.to(device), F.cross_entropy)
                optimizer.zero_grad()
                terms.loss.backward()
                optimizer.step()
                if objective.uses_outliers:
                    recent = [*recent[-9:], terms.energy_in.item()]
                    if len(recent) == 10 and statistics.mean(recent) < target_energy:
                        return net
    return net


@contextlib.contextmanager
def tf32(enabled):
    """TF32 convolutions and matrix products on CUDA on or off (no-op on the CPU)."""
    saved = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = enabled
    try:
        yield
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved


def penalty_and_gradient(net, x_in, y_in, x_aux, penalty, amp, m_in, m_out):
    """The step's penalty and its gradient w.r.t. the parameters, flattened. ``amp`` is
    None (float32, TF32 off), "bf16", "fp16" or "tf32" (float32 with TF32 on CUDA)."""
    objective = GRegObjective(lambda_energy=0.1, lambda_grad=1.0, m_in=m_in, m_out=m_out,
                              penalty=penalty, amp=None if amp == "tf32" else amp)
    scaler = torch.amp.GradScaler(x_in.device.type) if amp == "fp16" else None
    torch.manual_seed(0)
    with tf32(amp == "tf32"):
        terms = objective.step_terms(net, net, x_in, y_in, x_aux, F.cross_entropy,
                                     grad_scaler=scaler)
    params = [p for p in net.parameters() if p.requires_grad]
    with tf32(amp == "tf32"):
        grads = torch.autograd.grad(terms.grad_penalty, params, allow_unused=True)
    flat = torch.cat([(g if g is not None else torch.zeros_like(p)).flatten()
                      for g, p in zip(grads, params)])
    return terms.grad_penalty.item(), flat.double()


MODES = [("exact", "bf16"), ("exact", "fp16"), ("fd", None), ("fd", "bf16"), ("fd", "fp16")]
#: on CUDA: float32 with TF32 convolutions (torch's default there) against TF32 off
CUDA_MODES = [("exact", "tf32"), ("fd", "tf32")]


def measure(net, X, y, noise, args, device):
    """Each mode's penalty and parameter gradient against float32's of the same mode
    and against float32's exact penalty, batch by batch.

    Each batch's margins are the median energies of its ID rows and of its
    outliers, so that half of each are detected and weigh in the penalty.
    """
    generator = torch.Generator().manual_seed(2)
    modes = MODES + (CUDA_MODES if device.type == "cuda" else [])
    results = {mode: {"ratio": [], "cosine": [], "cosine_exact": [], "non_finite": 0}
               for mode in modes}
    energies_in = []
    for _ in range(args.batches):
        rows = torch.randint(0, len(X), (BATCH,), generator=generator)
        x_in, y_in = X[rows].to(device), y[rows].to(device)
        x_aux = noise[torch.randint(0, len(noise), (2 * BATCH,), generator=generator)].to(device)
        with torch.no_grad(), frozen_batchnorm_statistics(net):
            e = energy(net(torch.cat([x_in, x_aux])))
        energies_in.append(e[:BATCH].mean().item())
        m_in, m_out = e[:BATCH].median().item(), e[BATCH:].median().item()
        reference = {penalty: penalty_and_gradient(net, x_in, y_in, x_aux, penalty, None,
                                                   m_in, m_out)
                     for penalty in ("exact", "fd")}
        for penalty, amp in modes:
            value, grad = (reference[penalty] if amp is None else
                           penalty_and_gradient(net, x_in, y_in, x_aux, penalty, amp,
                                                m_in, m_out))
            entry = results[penalty, amp]
            if not (np.isfinite(value) and torch.isfinite(grad).all()):
                entry["non_finite"] += 1
                continue
            # float32 fd against float32 exact: how far the estimate itself is
            same_mode = reference["exact" if amp is None else penalty]
            entry["ratio"].append(value / same_mode[0])
            entry["cosine"].append(F.cosine_similarity(grad, same_mode[1], dim=0).item())
            entry["cosine_exact"].append(
                F.cosine_similarity(grad, reference["exact"][1], dim=0).item())
    return results, energies_in


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--size", type=int, default=28,
                        help="side of the resized digits (8: as they come)")
    parser.add_argument("--epochs", type=int, default=6, help="at most this many")
    parser.add_argument("--target-energy", type=float, default=-22.0,
                        help="training stops once the mean ID energy is below this")
    parser.add_argument("--batches", type=int, default=8)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    X, y, noise = digits_and_noise(args.size)
    net = train(X, y, noise, args.epochs, args.target_energy, device)
    net.train()
    results, energies_in = measure(net, X, y, noise, args, device)
    machine = (torch.cuda.get_device_name(device) if device.type == "cuda"
               else f"CPU ({platform.machine()}), {torch.get_num_threads()} thread(s)")
    print(f"torch {torch.__version__}, {machine}; command: python {' '.join(sys.argv)}")
    print(f"mean ID energy of the {args.batches} batches: {min(energies_in):.1f} to "
          f"{max(energies_in):.1f}")
    print()
    print("| penalty | autocast | penalty / fp32 same mode: median (range) | gradient cosine "
          "with fp32 same mode: median (lowest) | gradient cosine with fp32 exact: median "
          "(lowest) | non-finite batches |")
    print("|---|---|---|---|---|---|")
    for (penalty, amp), entry in results.items():
        reference = "exact" if amp is None else penalty
        cells = [penalty, {None: "none (fp32)", "tf32": "none (fp32, TF32 on)"}.get(amp, amp)]
        if entry["ratio"]:
            for key in ("ratio", "cosine", "cosine_exact"):
                values = entry[key]
                low = (f"{min(values):.3f}-{max(values):.3f}" if key == "ratio"
                       else f"{min(values):.3f}")
                cells.append(f"{statistics.median(values):.3f} ({low})")
        else:
            cells += ["-", "-", "-"]
        cells.append(f"{entry['non_finite']} of {args.batches}")
        if amp is None:
            cells[2] = f"{cells[2]} (to fp32 {reference})"
        print("| " + " | ".join(cells) + " |")

if __name__ == "__main__":
    main()
