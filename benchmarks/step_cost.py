"""What one GReg / GReg+ training step costs, against energy outlier exposure and the paper's code.

Times, in one run, on the same network and the same batch (ID batch B, outlier
batch 2B, candidate pool ``pool_factor * B``):

- skood steps (``GradRegOODClassifier.train_step``): cross-entropy only,
  energy outlier exposure (``lambda_grad=0``), GReg exact / fd, GReg+ exact / fd
  (energy sampler included), each GReg / GReg+ mode again with the penalty on
  ``--fractions`` of the rows (``penalty_fraction``), the energy sampler alone and
  its k-means alone (on CUDA also with k-means not replayed from a CUDA graph);
  with ``--pool-factors``, the sampler and GReg+ fd again with smaller (or
  larger) candidate pools;
- the paper's code re-stated in plain torch: the penalty through a second
  forward inside ``torch.autograd.functional.jacobian``, and its sampler
  (pool forward, then scikit-learn's KMeans on the CPU, then a per-cluster loop);
- bare torch loops of the same work, the floor that skood's overhead is judged
  against: energy-OE step, fd step, pool forward;
- whole fits (skood's ``fit`` per training batch against a bare loop over the
  same batches; GReg fd and GReg+ fd fits, whole-batch and at each fraction,
  against skood's energy-OE fit, as the median of the per-repeat ratios) and
  ``score_samples`` over 10,000 samples against a bare
  no-grad loop with the same batch size.

Each step figure is a median over ``--reps`` rounds, each round running every
variant once (after ``--warmup`` runs of each), so that a slow spell of a shared
machine hits all variants alike. Ratios are to skood's energy-OE step of the
same run. Peak memory is reported on CUDA.

Run: python benchmarks/step_cost.py [--device cpu|cuda] [--models resnet18 smallcnn]
     [--resnet-width 64] [--reps 10] [--fractions 0.25] [--pool-factors 3 4]
     [--variants energy_oe greg_fd ...] [--no-fits] [--threads N] [--out results.md]
"""
import argparse
import contextlib
import json
import platform
import statistics
import sys
import time
import warnings

import numpy as np
import torch
import torch.nn.functional as F

from skood import ChanceLevelWarning, EnergySampler, GradRegOODClassifier
from skood.kmeans import GraphedKMeans, kmeans
from skood.models import ResNet18, SmallCNN
from skood._outliers import AuxiliaryData
from skood._paper_reference import paper_greg_loss

M_IN, M_OUT, LAMBDA_ENERGY, LAMBDA_GRAD = -25.0, -7.0, 0.1, 1.0


# --------------------------------------------------------------- timing


def sync_for(device):
    if device.type == "cuda":
        return torch.cuda.synchronize
    return lambda: None


def measure_interleaved(pending, device, sync):
    """Median time of each variant, measured in rounds that run every variant once,
    so that a slow spell of a shared machine hits all variants alike; then the
    peak memory of one more run of each (CUDA only)."""
    for _, _, fn, _, warmup in pending:
        for _ in range(warmup):
            fn()
    sync()
    times = {key: [] for key, *_ in pending}
    for round_index in range(max(reps for *_, reps, _ in pending)):
        for key, _, fn, reps, _ in pending:
            if round_index < reps:
                start = time.perf_counter()
                fn()
                sync()
                times[key].append(time.perf_counter() - start)
    rows = {}
    for key, label, fn, _, _ in pending:
        entry = {"label": label, "s": statistics.median(times[key])}
        if device.type == "cuda":
            with peak_memory(device, entry):
                fn()
        rows[key] = entry
        print(f"  {label}: {1000 * entry['s']:.1f} ms", file=sys.stderr, flush=True)
    return rows


@contextlib.contextmanager
def peak_memory(device, record):
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    yield
    if device.type == "cuda":
        torch.cuda.synchronize()
        record["peak_mib"] = torch.cuda.max_memory_allocated() / 2 ** 20


# -------------------------------------------------- bare torch reference


def energy(logits):
    return -torch.logsumexp(logits, 1)


def margin(e_in, e_out):
    return LAMBDA_ENERGY * (F.relu(e_in - M_IN).pow(2).mean() + F.relu(M_OUT - e_out).pow(2).mean())


def detected(e_in, e_out):
    return -F.relu(M_IN - e_in).mean() + F.relu(e_out - M_OUT).mean()


def bare_energy_oe_step(net, opt, x_in, y, x_out):
    n = x_in.shape[0]
    logits = net(torch.cat([x_in, x_out]))
    e = energy(logits)
    loss = F.cross_entropy(logits[:n], y) + margin(e[:n], e[n:])
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()


def bare_fd_step(net, opt, x_in, y, x_out, step=1e-2):
    n = x_in.shape[0]
    x = torch.cat([x_in, x_out]).requires_grad_(True)
    logits = net(x)
    e = energy(logits)
    (g,) = torch.autograd.grad(detected(e[:n], e[n:]), x, retain_graph=True)
    d = g / g.flatten(1).norm(dim=1).clamp_min(1e-12).view(-1, *[1] * (g.dim() - 1))
    e_shift = energy(net(x.detach() + step * d))
    weight = torch.cat([(e[:n] < M_IN).float() / n, (e[n:] > M_OUT).float() / (e.shape[0] - n)])
    penalty = (weight * (e_shift - e).abs()).mean() / step
    loss = F.cross_entropy(logits[:n], y) + margin(e[:n], e[n:]) + LAMBDA_GRAD * penalty
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()


def bare_pool_forward(net, pool):
    net.eval()
    with torch.no_grad():
        net(pool)
    net.train()


# ------------------------------------------------ the paper's code, restated


def paper_step(net, opt, x_in, y, x_out):
    """The penalty as the public code computes it: a second forward inside jacobian."""
    loss = paper_greg_loss(net, x_in, y, x_out, lambda_energy=LAMBDA_ENERGY,
                           lambda_grad=LAMBDA_GRAD, m_in=M_IN, m_out=M_OUT)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()


def paper_sampler(net, pool, batch_size, n_clusters):
    """Pool forward, then scikit-learn's KMeans on the CPU and a per-cluster loop."""
    from sklearn.cluster import KMeans
    features = {}
    handle = net.classifier.register_forward_hook(lambda m, a, o: features.update(f=a[0]))
    net.eval()
    with torch.no_grad():
        logits = net(pool)
    net.train()
    handle.remove()
    e = energy(logits).cpu().numpy()
    z = F.normalize(features["f"], dim=1).cpu().numpy()
    labels = KMeans(n_clusters=n_clusters, n_init=3).fit(z).labels_
    per = max(1, batch_size // n_clusters)
    chosen = []
    for c in range(n_clusters):
        members = np.where(labels == c)[0]
        ordered = members[np.argsort(e[members])]
        chosen.extend(np.unique(np.concatenate([ordered[:per], ordered[-per:]])))
    return pool[torch.as_tensor(np.array(chosen[:2 * batch_size]), device=pool.device)]


# ------------------------------------------------------------ skood steps


def make_estimator(module_factory, device, **params):
    settings = dict(lambda_energy=LAMBDA_ENERGY, m_in=M_IN, m_out=M_OUT, lr=1e-3,
                    optimizer__momentum=0.9, aux_batch_ratio=2.0, device=str(device), verbose=0)
    clf = GradRegOODClassifier(module_factory, **{**settings, **params})
    torch.manual_seed(0)
    return clf.initialize()


def prepare_step(clf, aux, stack, seed=0):
    """Enter the per-fit state that fit() creates (outliers, sampler state, GradScaler),
    kept until ``stack`` closes; return it."""
    return stack.enter_context(clf._fit_state_for(AuxiliaryData(aux), seed))


def skood_step_fn(clf, x_in, y):
    def run():
        clf.history.new_epoch()
        clf.history.new_batch()
        clf.train_step((x_in, y))
    return run


# ------------------------------------------------------------------ runs


def bench_model(name, module_factory, input_shape, args, device):
    with contextlib.ExitStack() as stack:
        return _bench_model(name, module_factory, input_shape, args, device, stack)


def _bench_model(name, module_factory, input_shape, args, device, stack):
    sync = sync_for(device)
    batch = args.batch
    generator = torch.Generator().manual_seed(0)
    x_in = torch.randn(batch, *input_shape, generator=generator).to(device)
    y = torch.randint(0, 10, (batch,), generator=generator).to(device)
    x_out = torch.randn(2 * batch, *input_shape, generator=generator).to(device)
    pool_size = args.pool_factor * batch
    aux = torch.randn(max(4 * pool_size, 2048), *input_shape, generator=generator)
    pool = aux[:pool_size].to(device)
    n_clusters = min(64, batch)
    rows, pending = {}, []

    def wanted(key):
        # energy-OE is always timed: every ratio is to it
        return not args.variants or key in args.variants or key == "energy_oe"

    def record(key, label, fn, reps=args.reps, warmup=args.warmup):
        if wanted(key):
            pending.append((key, label, fn, reps, warmup))

    def bare(fn):
        torch.manual_seed(0)
        net = module_factory().to(device)
        opt = torch.optim.SGD(net.parameters(), lr=1e-3, momentum=0.9)
        return lambda: fn(net, opt, x_in, y, x_out), net

    print(f"{name} on {device}:", file=sys.stderr)
    # skood's steps
    variants = [
        ("ce", "CE only (skood, lambda 0/0)", dict(lambda_energy=0.0, lambda_grad=0.0)),
        ("energy_oe", "energy outlier exposure (skood, lambda_grad=0)", dict(lambda_grad=0.0)),
        ("greg_exact", "GReg exact (skood)", dict(penalty="exact")),
        ("greg_fd", "GReg fd (skood)", dict(penalty="fd")),
        ("greg_plus_exact", "GReg+ exact, sampler included (skood)",
         dict(penalty="exact", sampler=EnergySampler(pool_factor=args.pool_factor))),
        ("greg_plus_fd", "GReg+ fd, sampler included (skood)",
         dict(penalty="fd", sampler=EnergySampler(pool_factor=args.pool_factor))),
    ]
    penalized = variants[2:]
    for fraction in args.fractions:
        for key, label, params in penalized:
            variants.append((f"{key}_f{fraction:g}", f"{label}, penalty_fraction={fraction:g}",
                             dict(params, penalty_fraction=fraction)))
    for pool_factor in args.pool_factors:
        for fraction in [1.0, *args.fractions]:
            variants.append((
                f"greg_plus_fd_f{fraction:g}_pool{pool_factor}",
                f"GReg+ fd, sampler included (skood), penalty_fraction={fraction:g}, "
                f"pool_factor={pool_factor}",
                dict(penalty="fd", penalty_fraction=fraction,
                     sampler=EnergySampler(pool_factor=pool_factor))))
    for amp in args.amp:
        variants += [(f"greg_exact_{amp}", f"GReg exact (skood, amp={amp})",
                      dict(penalty="exact", amp=amp)),
                     (f"greg_fd_{amp}", f"GReg fd (skood, amp={amp})", dict(penalty="fd", amp=amp))]
    for key, label, params in variants:
        if not wanted(key):
            continue
        clf = make_estimator(module_factory, device, **params)
        prepare_step(clf, aux, stack)
        record(key, label, skood_step_fn(clf, x_in, y))
    clf = make_estimator(module_factory, device,
                         sampler=EnergySampler(pool_factor=args.pool_factor))
    state = prepare_step(clf, aux, stack)
    record("sampler", "energy sampler alone (skood)",
           lambda: state.draw_outliers(batch, device))
    for pool_factor in args.pool_factors:
        if not wanted(f"sampler_pool{pool_factor}"):
            continue
        clf = make_estimator(module_factory, device, sampler=EnergySampler(pool_factor=pool_factor))
        pool_state = prepare_step(clf, aux, stack)
        record(f"sampler_pool{pool_factor}",
               f"energy sampler alone (skood), pool_factor={pool_factor}",
               lambda pool_state=pool_state: pool_state.draw_outliers(batch, device))
    # where the sampler's time goes: its k-means alone, on the pool's features
    _, features = state.sampler.score_pool(state.sampler_state.pool_scorer, pool)
    features = F.normalize(features, dim=1)
    kmeans_generator = torch.Generator(device=device).manual_seed(0)
    record("kmeans", "k-means alone, eager (skood)",
           lambda: kmeans(features, n_clusters, n_init=3, generator=kmeans_generator))
    if device.type == "cuda" and wanted("sampler_eager"):
        eager_clf = make_estimator(module_factory, device, sampler=EnergySampler(
            pool_factor=args.pool_factor, cuda_graph=False))
        eager_state = prepare_step(eager_clf, aux, stack)
        record("sampler_eager", "energy sampler alone, k-means not graphed (skood)",
               lambda: eager_state.draw_outliers(batch, device))
    if device.type == "cuda":
        graphed = GraphedKMeans(n_init=3)
        record("kmeans_graphed", "k-means alone, CUDA graph (skood)",
               lambda: graphed(features, n_clusters, kmeans_generator))

    # the paper's code
    run, _ = bare(paper_step)
    record("paper_step", "GReg step as the paper's code (jacobian, 2nd forward)", run,
           reps=max(3, args.reps // 2))
    torch.manual_seed(0)
    net = module_factory().to(device)
    record("paper_sampler", "sampler as the paper's code (sklearn KMeans on CPU)",
           lambda: paper_sampler(net, pool, batch, n_clusters), reps=max(3, args.reps // 2),
           warmup=1)

    # bare torch floor
    run, _ = bare(bare_energy_oe_step)
    record("bare_energy_oe", "bare torch energy-OE step", run)
    run, _ = bare(bare_fd_step)
    record("bare_fd", "bare torch fd step", run)
    run, net = bare(bare_pool_forward)
    record("bare_pool_forward", "bare torch pool forward", lambda: bare_pool_forward(net, pool))

    rows.update(measure_interleaved(pending, device, sync))
    base = rows["energy_oe"]["s"]
    for entry in rows.values():
        entry["ratio"] = entry["s"] / base
    if "paper_step" in rows and "paper_sampler" in rows:
        rows["paper_greg_plus"] = {
            "label": "GReg+ step as the paper's code (step + sampler)",
            "s": rows["paper_step"]["s"] + rows["paper_sampler"]["s"],
        }
        rows["paper_greg_plus"]["ratio"] = rows["paper_greg_plus"]["s"] / base
    if args.no_fits:
        return {"rows": rows}
    fits = bench_fits(module_factory, input_shape, args, device, aux)
    scoring = bench_scoring(module_factory, input_shape, args, device)
    return {"rows": rows, "fits": fits, "scoring": scoring}


def bench_fits(module_factory, input_shape, args, device, aux):
    """skood's fit per training batch against a bare loop over the same batches."""
    sync = sync_for(device)
    batch, n_batches = args.batch, args.fit_batches
    generator = torch.Generator().manual_seed(1)
    # train_split=None holds out calibration_fraction of the rows: size X so that
    # exactly n_batches full batches are trained on.
    n_train = batch * n_batches
    n_total = int(round(n_train / 0.9))
    X = torch.randn(n_total, *input_shape, generator=generator).numpy()
    y = (np.arange(n_total) % 10).astype(np.int64)
    aux_np = aux.numpy()
    results = {}

    def skood_fit(**params):
        settings = dict(lambda_energy=LAMBDA_ENERGY, m_in=M_IN, m_out=M_OUT, lr=1e-3,
                        optimizer__momentum=0.9, batch_size=batch, max_epochs=1,
                        train_split=None, calibration_fraction=1 - n_train / n_total,
                        aux_batch_ratio=2.0, device=str(device), verbose=0, random_state=0)
        clf = GradRegOODClassifier(module_factory, **{**settings, **params})
        sync()
        start = time.perf_counter()
        clf.fit(X, y, X_aux=aux_np)
        sync()
        return (time.perf_counter() - start) / n_batches

    def bare_loop(step_fn, with_pool):
        # timed from the network's construction, as skood's fit is
        sync()
        start = time.perf_counter()
        torch.manual_seed(0)
        net = module_factory().to(device)
        opt = torch.optim.SGD(net.parameters(), lr=1e-3, momentum=0.9)
        X_t, y_t = torch.from_numpy(X[:n_train]), torch.from_numpy(y[:n_train])
        order = torch.randperm(n_train)
        aux_order = torch.randperm(len(aux))
        pool_size = args.pool_factor * batch
        for i in range(n_batches):
            idx = order[i * batch:(i + 1) * batch]
            x_in, y_in = X_t[idx].to(device), y_t[idx].to(device)
            if with_pool:
                pool = aux[aux_order[:pool_size]].to(device)
                bare_pool_forward(net, pool)
            x_out = aux[aux_order[:2 * batch]].to(device)
            step_fn(net, opt, x_in, y_in, x_out)
        sync()
        return (time.perf_counter() - start) / n_batches

    def greg_plus(pool_factor=args.pool_factor, **params):
        return lambda: skood_fit(penalty="fd", **params,
                                 sampler=EnergySampler(pool_factor=pool_factor))

    fits = [("bare_energy_oe", lambda: bare_loop(bare_energy_oe_step, False)),
            ("skood_energy_oe", lambda: skood_fit(lambda_grad=0.0)),
            ("bare_fd_plus_pool", lambda: bare_loop(bare_fd_step, True)),
            ("skood_greg_plus_fd", greg_plus()),
            ("skood_greg_fd", lambda: skood_fit(penalty="fd"))]
    for fraction in args.fractions:
        fits += [(f"skood_greg_fd_f{fraction:g}",
                  lambda f=fraction: skood_fit(penalty="fd", penalty_fraction=f)),
                 (f"skood_greg_plus_fd_f{fraction:g}", greg_plus(penalty_fraction=fraction))]
    for pool_factor in args.pool_factors:
        fits += [(f"skood_greg_plus_fd_f{fraction:g}_pool{pool_factor}",
                  greg_plus(pool_factor=pool_factor, penalty_fraction=fraction))
                 for fraction in args.fractions]
    for _ in range(args.fit_repeats):
        for key, fn in fits:
            results.setdefault(key, []).append(fn())
    summary = {key: statistics.median(values) for key, values in results.items()}
    # Each repeat times every fit once, so the ratio within a repeat is paired.
    summary["over_energy_oe_fit"] = {
        key: statistics.median(np.array(values) / np.array(results["skood_energy_oe"]))
        for key, values in results.items() if key.startswith("skood_greg")}
    summary["energy_oe_fit_over_bare"] = summary["skood_energy_oe"] / summary["bare_energy_oe"]
    floor_ratio = summary["bare_fd_plus_pool"] / summary["bare_energy_oe"]
    summary["floor_ratio"] = floor_ratio
    summary["greg_plus_fd_fit_ratio"] = summary["skood_greg_plus_fd"] / summary["bare_energy_oe"]
    summary["greg_plus_fd_over_floor"] = summary["greg_plus_fd_fit_ratio"] / floor_ratio
    return summary


def bench_scoring(module_factory, input_shape, args, device, n=10_000):
    sync = sync_for(device)
    generator = torch.Generator().manual_seed(2)
    X = torch.randn(n, *input_shape, generator=generator).numpy()
    batch = args.score_batch
    clf = make_estimator(module_factory, device, batch_size=batch)
    clf.offset_ = 0.0   # scoring needs no calibration here
    clf.input_shape_ = tuple(input_shape)
    clf.n_features_in_ = input_shape[0]
    net = clf.module_

    def bare():
        net.eval()
        X_t = torch.from_numpy(X)
        out = []
        with torch.no_grad():
            for i in range(0, n, batch):
                out.append(torch.logsumexp(net(X_t[i:i + batch].to(device)), 1))
        return torch.cat(out).cpu().numpy()

    np.testing.assert_allclose(clf.score_samples(X), bare(), rtol=1e-4, atol=1e-4)
    # alternate the two, as the steps are, so that a slow spell hits both alike
    times = {"bare": [], "skood": []}
    for _ in range(max(3, args.reps // 2)):
        for key, fn in (("bare", bare), ("skood", lambda: clf.score_samples(X))):
            sync()
            start = time.perf_counter()
            fn()
            sync()
            times[key].append(time.perf_counter() - start)
    bare_s, skood_s = statistics.median(times["bare"]), statistics.median(times["skood"])
    return {"bare_s": bare_s, "skood_s": skood_s, "ratio": skood_s / bare_s, "batch": batch}


def markdown(name, result, device_name):
    lines = [f"### {name} ({device_name})", "",
             "| step | ms | x energy-OE (skood) | peak MiB |", "|---|---:|---:|---:|"]
    for entry in result["rows"].values():
        peak = f"{entry['peak_mib']:.0f}" if "peak_mib" in entry else "n/a"
        lines.append(f"| {entry['label']} | {1000 * entry['s']:.1f} | {entry['ratio']:.2f} "
                     f"| {peak} |")
    if "fits" not in result:
        return "\n".join(lines + [""])
    fits, scoring = result["fits"], result["scoring"]
    lines += ["", "| whole fit, per training batch | ms |", "|---|---:|",
              f"| bare torch energy-OE loop | {1000 * fits['bare_energy_oe']:.1f} |",
              f"| skood energy-OE fit | {1000 * fits['skood_energy_oe']:.1f} |",
              "| bare torch fd step + pool forward loop "
              f"| {1000 * fits['bare_fd_plus_pool']:.1f} |",
              f"| skood GReg+ fd fit | {1000 * fits['skood_greg_plus_fd']:.1f} |", "",
              "- skood energy-OE fit / bare energy-OE loop: "
              f"**{fits['energy_oe_fit_over_bare']:.3f}**"
              " (aim: at most 1.10)",
              "- floor ratio (bare fd + pool forward) / bare energy-OE: "
              f"{fits['floor_ratio']:.3f}; "
              f"skood GReg+ fd fit / bare energy-OE: {fits['greg_plus_fd_fit_ratio']:.3f}; "
              f"over the floor: **{fits['greg_plus_fd_over_floor']:.3f}** (aim: at most 1.15)",
              f"- score_samples over 10,000 samples (batch {scoring['batch']}): "
              f"{1000 * scoring['skood_s']:.1f} ms vs bare no-grad loop "
              f"{1000 * scoring['bare_s']:.1f} ms: **{scoring['ratio']:.3f}** (aim: at most 1.20)",
              "",
              "| whole fit, per training batch | ms | x skood energy-OE fit |", "|---|---:|---:|"]
    for key, ratio in fits["over_energy_oe_fit"].items():
        label = key.replace("skood_", "").replace("greg_plus", "GReg+").replace("greg", "GReg")
        label = label.replace("_fd", " fd").replace("_f", ", penalty_fraction=")
        label = label.replace("_pool", ", pool_factor=")
        lines.append(f"| {label} | {1000 * fits[key]:.1f} | {ratio:.2f} |")
    lines += ["", "(x skood energy-OE fit: the median over the repeats of the ratio to the "
              "energy-OE fit of the same repeat.)", ""]
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--models", nargs="+", default=["resnet18", "smallcnn"],
                        choices=["resnet18", "smallcnn"])
    parser.add_argument("--resnet-width", type=int, default=64,
                        help="channels of ResNet-18's first stage (64 = the standard network)")
    parser.add_argument("--batch", type=int, default=64, help="in-distribution batch size B")
    parser.add_argument("--pool-factor", type=int, default=6)
    parser.add_argument("--reps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--fit-batches", type=int, default=20)
    parser.add_argument("--fit-repeats", type=int, default=3)
    parser.add_argument("--score-batch", type=int, default=128)
    parser.add_argument("--amp", nargs="*", choices=["bf16", "fp16"], default=None,
                        help="mixed-precision modes to time too (default: both on CUDA, none "
                             "on the CPU)")
    parser.add_argument("--fractions", nargs="*", type=float, default=[0.25],
                        help="penalty_fraction values to time besides 1 (default: 0.25)")
    parser.add_argument("--pool-factors", nargs="*", type=int, default=[],
                        help="GReg+ pool factors to time besides --pool-factor: the sampler "
                             "alone, and GReg+ fd at fraction 1 and each of --fractions "
                             "(default: none)")
    parser.add_argument("--variants", nargs="*", default=None,
                        help="time only these rows, by key (energy_oe, greg_exact, greg_fd, "
                             "greg_plus_fd, greg_fd_bf16, sampler, kmeans_graphed, paper_step, "
                             "bare_fd, ...; energy-OE is always timed; default: all)")
    parser.add_argument("--no-fits", action="store_true",
                        help="skip the whole-fit and score_samples timings")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's)")
    parser.add_argument("--out", help="write the markdown tables here (and JSON beside it)")
    args = parser.parse_args()
    # The timed fits train for 20 batches on random labels: at chance by design.
    warnings.filterwarnings("ignore", category=ChanceLevelWarning)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    if args.amp is None:
        args.amp = ["bf16", "fp16"] if device.type == "cuda" else []
    device_name = (torch.cuda.get_device_name(device) if device.type == "cuda"
                   else f"CPU, {torch.get_num_threads()} threads, "
                        f"{platform.processor() or platform.machine()}")
    configs = {
        "resnet18": (f"CIFAR-style ResNet-18, width {args.resnet_width}, 32x32x3, "
                     f"ID batch {args.batch} + outliers {2 * args.batch}, pool {args.pool_factor}x",
                     lambda: ResNet18(3, 10, width=args.resnet_width), (3, 32, 32)),
        "smallcnn": (f"SmallCNN, 28x28x1, ID batch {args.batch} + outliers {2 * args.batch}, "
                     f"pool {args.pool_factor}x", lambda: SmallCNN(1, 10), (1, 28, 28)),
    }
    report, raw = [f"torch {torch.__version__}; command: python {' '.join(sys.argv)}", ""], {}
    for key in args.models:
        title, factory, shape = configs[key]
        result = bench_model(title, factory, shape, args, device)
        raw[key] = result
        report.append(markdown(title, result, device_name))
    text = "\n".join(report)
    print(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text + "\n")
        with open(args.out.rsplit(".", 1)[0] + ".json", "w") as f:
            json.dump(raw, f, indent=1)


if __name__ == "__main__":
    main()
