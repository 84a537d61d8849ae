"""Why a GReg fit from scratch can stay at chance: per-term gradient norms, epoch by epoch.

Trains the README's digits network (``skood.models.MLP`` 64-128-128-10,
``m_in=-12, m_out=-4, lambda_energy=0.1, lambda_grad=1.0``, 12 epochs, skorch's
batch size 128, 3,000 natural-image outliers) in several configurations and, at
every training step, before the estimator's own step and on the same ID batch,
recomputes each term of the loss on the current weights with an outlier batch of
the same size drawn from the same outliers:

- ``|g_ce|``, ``|g_in|``, ``|g_aux|``, ``|g_pen|``: norms of the gradients w.r.t. all
  parameters of cross-entropy, of ``lambda_energy * mean relu(E_in - m_in)^2`` (the ID
  half of the margin loss), of ``lambda_energy * mean relu(m_out - E_aux)^2`` (the
  outlier half) and of ``lambda_grad * penalty``, with the weights in force at that step;
- ``cos(ce,in)``: cosine between the cross-entropy gradient and the ID margin gradient;
- ``logit mean`` and ``logit spread`` (mean over the ID batch of the mean and of the
  standard deviation of a row of logits), ``top class`` (the share of the ID batch
  predicted as its most frequent class) and ``bias share`` (share of ``|g_in|^2`` that
  falls on the last layer's bias, i.e. on moving all logits up together).

Configurations (``--configs``):

- ``skorch-sgd``: the README snippet with skorch's optimizer defaults (SGD, lr 0.01, no
  momentum);
- ``skorch-sgd-ce``: the same with ``lambda_energy=0, lambda_grad=0`` (cross-entropy alone);
- ``defaults``: the README snippet as written, with the estimator's defaults (SGD,
  ``lr=0.05``, ``momentum=0.9``; what docs/getting_started.md and the benchmark use);
- ``defaults-ce``: cross-entropy alone with that optimizer;
- ``skorch-sgd-warmup`` / ``defaults-warmup``: those two with both outlier weights ramped
  linearly from 0 over the first ``--warmup-epochs`` epochs (default a third of
  ``--epochs``; the :class:`OutlierWarmup` callback, per step);
- ``adam``: the README snippet with ``optimizer=torch.optim.Adam, lr=1e-3``.

``--m-in/--m-out`` replace the README's margins in every configuration (e.g. the
estimator's defaults ``-25 -7``), ``--batch-size`` skorch's 128.

Prints one markdown table per configuration: per epoch, the history's ``train_ce``
and ``valid_acc`` next to the epoch means of the per-step measurements (the
unweighted margin loss and the mean energies are measured on the same batches, so
they are there for the cross-entropy-only configurations too; ``CE share`` is
``|g_ce| / (|g_ce| + |g_in| + |g_aux| + |g_pen|)``), and the test accuracy; with
``--out`` also a PNG of the curves.

Run (2 CPU cores, one thread: a few seconds per configuration):

    python benchmarks/training_dynamics.py [--configs skorch-sgd defaults] [--seed 0]
        [--epochs 12] [--m-in -12 --m-out -4] [--batch-size 128] [--warmup-epochs 4]
        [--first-steps 0] [--out dynamics.png]

The tables and figure of the training-dynamics report (seed 0)::

    python benchmarks/training_dynamics.py --configs skorch-sgd skorch-sgd-ce defaults \
        defaults-ce defaults-warmup --first-steps 6 --out dynamics.png
    python benchmarks/training_dynamics.py --configs defaults defaults-warmup \
        --m-in -25 --m-out -7 --batch-size 64 --out dynamics_default_margins.png
"""
import argparse
import math
import time

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from skorch.callbacks import Callback

from skood import GradRegOODClassifier
from skood.datasets import make_natural_image_outliers
from skood.losses import detected_score, energy, input_gradient_penalty
from skood.models import MLP

README = dict(module=MLP, module__n_features=64, module__n_classes=10, lambda_grad=1.0,
              m_in=-12.0, m_out=-4.0, max_epochs=12)
CE_ONLY = dict(lambda_energy=0.0, lambda_grad=0.0)
SKORCH_SGD = dict(lr=0.01, optimizer__momentum=0.0)
CONFIGS = {
    "skorch-sgd": SKORCH_SGD,
    "skorch-sgd-ce": {**SKORCH_SGD, **CE_ONLY},
    "defaults": {},
    "defaults-ce": CE_ONLY,
    "skorch-sgd-warmup": {**SKORCH_SGD, "warmup": True},
    "defaults-warmup": {"warmup": True},
    "adam": dict(optimizer=torch.optim.Adam, lr=1e-3),
}
TERMS = ("ce", "in", "aux", "pen")


class OutlierWarmup(Callback):
    """Ramp ``lambda_energy`` and ``lambda_grad`` linearly from 0 to their values over
    the first ``epochs`` epochs (per training step), then leave them; restored at the end."""

    def __init__(self, epochs):
        self.epochs = epochs

    def on_train_begin(self, net, **kwargs):
        self.base_ = (net.lambda_energy, net.lambda_grad)
        self.step_ = 0

    def on_epoch_begin(self, net, dataset_train=None, **kwargs):
        self.steps_per_epoch_ = max(1, math.ceil(len(dataset_train) / net.batch_size))

    def on_batch_begin(self, net, training=False, **kwargs):
        if not training:
            return
        ramp = min(1.0, self.step_ / (self.epochs * self.steps_per_epoch_))
        net.lambda_energy, net.lambda_grad = (ramp * w for w in self.base_)
        self.step_ += 1

    def on_train_end(self, net, **kwargs):
        net.lambda_energy, net.lambda_grad = self.base_


class TermGradientNorms(Callback):
    """Before each training step, the gradient of each loss term w.r.t. the parameters,
    on the step's ID batch and an outlier batch of the same size; recorded per batch.

    Measures without changing the fit: no ``.grad``, torch's random state and the
    module's buffers are left as they were (the estimator's own outlier draw is not
    touched; this callback draws its own with numpy). The penalty is always the
    exact one (``penalty="exact"``)."""

    def __init__(self, X_aux, seed=0):
        self.X_aux = torch.as_tensor(X_aux)
        self.seed = seed

    def on_train_begin(self, net, **kwargs):
        self.rng_ = np.random.RandomState(self.seed)

    def on_batch_begin(self, net, batch=None, training=False, **kwargs):
        if not training:
            return
        module = net.module_
        x_in = torch.as_tensor(batch[0]).to(net.device)
        y_in = torch.as_tensor(batch[1]).to(net.device)
        n_in = len(x_in)
        pick = self.rng_.randint(len(self.X_aux), size=n_in)
        x = torch.cat([x_in, self.X_aux[pick].to(x_in)]).detach().requires_grad_(True)
        params = [p for p in module.parameters() if p.requires_grad]
        buffers = {k: v.clone() for k, v in module.named_buffers()}
        was_training = module.training
        module.train()          # the estimator's step runs in training mode too
        with torch.random.fork_rng():   # the fit draws the same random numbers as without it
            logits = module(x)
        module.train(was_training)
        with torch.no_grad():   # leave BatchNorm's running statistics as they were
            for k, v in module.named_buffers():
                v.copy_(buffers[k])
        energies = energy(logits, net.temperature)
        e_in, e_aux = energies[:n_in], energies[n_in:]
        terms = {
            "ce": F.cross_entropy(logits[:n_in], y_in),
            "in": net.lambda_energy * F.relu(e_in - net.m_in).pow(2).mean(),
            "aux": net.lambda_energy * F.relu(net.m_out - e_aux).pow(2).mean(),
            "pen": net.lambda_grad * input_gradient_penalty(
                detected_score(e_in, e_aux, net.m_in, net.m_out), x),
        }
        grads = {}
        for name, term in terms.items():
            g = torch.autograd.grad(term, params, retain_graph=True, allow_unused=True)
            grads[name] = torch.cat([(gi if gi is not None else torch.zeros_like(p)).flatten()
                                     for gi, p in zip(g, params)])
        record = net.history.record_batch
        with torch.no_grad():
            record("e_in", e_in.mean().item())
            record("e_aux", e_aux.mean().item())
            record("margin_loss", (F.relu(e_in - net.m_in).pow(2).mean()
                                   + F.relu(net.m_out - e_aux).pow(2).mean()).item())
        for name in TERMS:
            record(f"gn_{name}", grads[name].norm().item())
        norm_ce, norm_in = grads["ce"].norm(), grads["in"].norm()
        cos = (grads["ce"] @ grads["in"]) / (norm_ce * norm_in) if norm_in > 0 else norm_in
        record("cos_ce_in", cos.item())
        last_bias = getattr(getattr(module, "classifier", None), "bias", None)
        if last_bias is not None and norm_in > 0:
            offset = sum(p.numel() for p in params[:[id(p) for p in params].index(
                id(last_bias))])
            share = grads["in"][offset:offset + last_bias.numel()].pow(2).sum() / norm_in ** 2
            record("bias_share", share.item())
        else:
            record("bias_share", float("nan"))
        with torch.no_grad():
            z = logits[:n_in]
            record("logit_mean", z.mean().item())
            record("logit_spread", z.std(dim=1).mean().item())
            counts = torch.bincount(z.argmax(dim=1), minlength=z.shape[1])
            record("top_class", (counts.max() / n_in).item())


def digits_data():
    """docs/getting_started.md's digits split and 3,000 natural-image outliers."""
    X, y = load_digits(return_X_y=True)
    X = (X / 16.0).astype(np.float32).reshape(-1, 1, 8, 8)
    X_train, X_test, y_train, y_test = train_test_split(X, y, stratify=y, random_state=0)
    X_aux = make_natural_image_outliers(3000, (8, 8), random_state=0)
    return X_train, X_test, y_train, y_test, X_aux


def run(config, data, seed=0, epochs=12, warmup_epochs=None, **overrides):
    """Fit one configuration with the measuring callback; returns the fitted estimator.

    ``overrides`` (e.g. ``m_in``, ``m_out``, ``batch_size``) replace the README's values."""
    X_train, X_test, y_train, y_test, X_aux = data
    params = {**README, **CONFIGS[config], "max_epochs": epochs, **overrides}
    callbacks = [("terms", TermGradientNorms(X_aux, seed=seed))]
    if params.pop("warmup", False):
        callbacks.insert(0, ("warmup", OutlierWarmup(
            epochs / 3 if warmup_epochs is None else warmup_epochs)))
    clf = GradRegOODClassifier(**params, callbacks=callbacks, random_state=seed, verbose=0)
    start = time.perf_counter()
    clf.fit(X_train, y_train, X_aux=X_aux)
    clf.fit_seconds_ = time.perf_counter() - start
    clf.test_accuracy_ = clf.score(X_test, y_test)
    return clf


BATCH_KEYS = ("e_in", "e_aux", "margin_loss", "gn_ce", "gn_in", "gn_aux", "gn_pen",
              "cos_ce_in", "bias_share", "logit_mean", "logit_spread", "top_class")
EPOCH_KEYS = ("train_ce", "valid_acc")


def epoch_table(clf):
    """Per epoch: the history's values and the epoch means of the per-step measurements."""
    rows = []
    for epoch in clf.history:
        row = {key: epoch[key] for key in EPOCH_KEYS}
        for key in BATCH_KEYS:
            values = np.array([b[key] for b in epoch["batches"] if key in b], dtype=float)
            finite = values[np.isfinite(values)]
            row[key] = float(finite.mean()) if finite.size else float("nan")
        total = row["gn_ce"] + row["gn_in"] + row["gn_aux"] + row["gn_pen"]
        row["ce_share"] = row["gn_ce"] / total if total > 0 else float("nan")
        rows.append(row)
    return rows


def markdown(config, clf, first_steps=0):
    head = ("| epoch | CE | valid acc | margin loss | E_in | E_aux | \\|g_ce\\| | \\|g_in\\| "
            "| \\|g_aux\\| | \\|g_pen\\| | CE share | cos(ce,in) | bias share | logit mean "
            "| logit spread | top class |")
    lines = [f"**{config}** (m_in={clf.m_in:g}, m_out={clf.m_out:g}, batch {clf.batch_size}; "
             f"test accuracy {clf.test_accuracy_:.3f}, fit {clf.fit_seconds_:.1f} s)",
             "", head, "|" + "---:|" * 16]
    for i, r in enumerate(epoch_table(clf), 1):
        lines.append(
            f"| {i} | {r['train_ce']:.3f} | {r['valid_acc']:.3f} | {r['margin_loss']:.1f} | "
            f"{r['e_in']:.2f} | {r['e_aux']:.2f} | {r['gn_ce']:.3f} | {r['gn_in']:.3f} | "
            f"{r['gn_aux']:.3f} | {r['gn_pen']:.4f} | {r['ce_share']:.2f} | "
            f"{r['cos_ce_in']:+.2f} | {r['bias_share']:.2f} | {r['logit_mean']:+.2f} | "
            f"{r['logit_spread']:.2f} | {r['top_class']:.2f} |")
    if first_steps:
        lines += ["", f"first {first_steps} steps:", "",
                  "| step | \\|g_ce\\| | \\|g_in\\| | \\|g_aux\\| | cos(ce,in) | bias share |",
                  "|---:|---:|---:|---:|---:|---:|"]
        steps = [b for epoch in clf.history for b in epoch["batches"]][:first_steps]
        for i, b in enumerate(steps):
            lines.append(f"| {i} | {b['gn_ce']:.3f} | {b['gn_in']:.3f} | {b['gn_aux']:.3f} | "
                         f"{b['cos_ce_in']:+.2f} | {b['bias_share']:.2f} |")
    return "\n".join(lines)


def plot(results, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [("train_ce", "cross-entropy"), ("valid_acc", "validation accuracy"),
              ("e_in", "mean ID energy"), ("gn_ce", "|grad| cross-entropy"),
              ("gn_in", "|grad| lambda_E * ID margin"),
              ("gn_aux", "|grad| lambda_E * outlier margin")]
    fig, axes = plt.subplots(2, 3, figsize=(12, 6))
    for ax, (key, title) in zip(axes.flat, panels):
        for config, clf in results.items():
            table = epoch_table(clf)
            values = [r[key] if not key.startswith("gn_") or r[key] > 0 else np.nan
                      for r in table]
            ax.plot(range(1, len(table) + 1), values, marker="o", ms=3, label=config)
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("epoch", fontsize=8)
        if key.startswith("gn_"):
            ax.set_yscale("log")   # zero (a term switched off) is left out
    axes.flat[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", nargs="+", default=["skorch-sgd", "defaults"],
                        choices=sorted(CONFIGS))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--m-in", type=float, help="replace the README's m_in=-12")
    parser.add_argument("--m-out", type=float, help="replace the README's m_out=-4")
    parser.add_argument("--batch-size", type=int, help="replace skorch's 128")
    parser.add_argument("--warmup-epochs", type=float,
                        help="ramp length of the *-warmup configurations (default: epochs / 3)")
    parser.add_argument("--first-steps", type=int, default=0,
                        help="also print the first N steps of each configuration")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", help="PNG of the curves")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    data = digits_data()
    overrides = {name: value for name, value in (("m_in", args.m_in), ("m_out", args.m_out),
                                                 ("batch_size", args.batch_size))
                 if value is not None}
    print(f"digits, seed {args.seed}, {args.epochs} epochs, torch threads {args.threads}\n")
    results = {}
    for config in args.configs:
        results[config] = run(config, data, seed=args.seed, epochs=args.epochs,
                              warmup_epochs=args.warmup_epochs, **overrides)
        print(markdown(config, results[config], args.first_steps) + "\n")
    if args.out:
        plot(results, args.out)
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
