"""The OOD benchmark behind ``skood benchmark``: four training methods, real OOD data.

With the same network, epochs, data order and seed it trains

- ``ce``: cross-entropy only (scored with the maximum softmax probability,
  ``ce_msp``, and with the energy, ``ce_energy``),
- ``energy_oe``: energy outlier exposure (``lambda_grad=0``),
- ``greg``: GReg (random outliers),
- ``greg_plus``: GReg+ (the energy sampler),

then scores the in-distribution test set and every OOD test set. None of the
OOD test sources is among the auxiliary outliers (see :mod:`skood.datasets`).
Metrics follow :mod:`skood.metrics`: ID is the positive class.
"""
import os
import time

import joblib
import numpy as np
import pandas as pd
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from sklearn.utils import Bunch, check_random_state

from ._classifier import GradRegOODClassifier
from .datasets import (load_fashion_mnist, make_natural_image_outliers, make_noise_images,
                       make_texture_images, resize_images)
from .energy_sampler import EnergySampler
from .metrics import ood_report
from .models import MLP, ResNet18, SmallCNN

__all__ = ["METHODS", "DEFAULTS", "load_benchmark_data", "run_benchmark", "summarize",
           "write_report"]

#: training methods, in table order
METHODS = ("ce", "energy_oe", "greg", "greg_plus")
#: rows of the tables: CE is scored two ways
SCORED_METHODS = ("ce_msp", "ce_energy", "energy_oe", "greg", "greg_plus")
METRICS = ("fpr95", "auroc", "aupr_in", "aupr_out")

#: Per-dataset defaults, sized for 2 CPU cores (digits: under 3 minutes;
#: fashion-mnist with the small CNN: under 30 minutes per seed).
DEFAULTS = {
    "digits": dict(model="mlp", epochs=12, n_train=None, n_test=None, n_aux=5000, n_ood=1000,
                   batch_size=64, lr=0.05, m_in=-12.0, m_out=-4.0),
    "fashion-mnist": dict(model="cnn", epochs=5, n_train=10000, n_test=None, n_aux=20000,
                          n_ood=1000, batch_size=64, lr=0.05, m_in=-12.0, m_out=-4.0),
}


def _subsample(X, y, n, rng):
    if n is None or n >= len(X):
        return X, y
    index = rng.choice(len(X), size=n, replace=False)
    return X[index], y[index]


def load_benchmark_data(dataset="digits", *, n_train=None, n_test=None, n_aux=5000, n_ood=1000,
                        data_home=None, random_state=0):
    """In-distribution train/test data, auxiliary outliers and named OOD test sets.

    Images are float32 in ``[0, 1]``, shaped ``(n, 1, height, width)``.

    - ``digits``: scikit-learn's 8x8 digits (70/30 stratified split). OOD:
      Fashion-MNIST downscaled to 8x8 (when installed), textures, Gaussian and
      uniform noise.
    - ``fashion-mnist``: the real Fashion-MNIST (28x28). OOD: scikit-learn's
      handwritten digits upscaled to 28x28, textures, Gaussian and uniform noise.

    Returns
    -------
    Bunch with ``X_train, y_train, X_test, y_test, X_aux, ood`` (dict name ->
    images), ``image_shape`` and ``n_classes``.

    Examples
    --------
    >>> data = load_benchmark_data("digits", n_train=100, n_aux=10, n_ood=5)
    >>> data.X_train.shape, data.X_aux.shape, data.ood["textures"].shape
    ((100, 1, 8, 8), (10, 1, 8, 8), (5, 1, 8, 8))
    """
    rng = check_random_state(random_state)
    ood = {}
    if dataset == "digits":
        image_shape = (8, 8)
        X, y = load_digits(return_X_y=True)
        X = (X / 16.0).astype(np.float32).reshape(-1, 1, 8, 8)
        X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.3, stratify=y,
                                                            random_state=0)
        try:
            fashion = load_fashion_mnist(data_home)
            pick = rng.choice(len(fashion.X_test), size=min(n_ood, len(fashion.X_test)),
                              replace=False)
            ood["fashion-mnist"] = resize_images(fashion.X_test[pick], image_shape) / 255.0
        except FileNotFoundError:
            pass
    elif dataset == "fashion-mnist":
        image_shape = (28, 28)
        fashion = load_fashion_mnist(data_home)
        X_train = fashion.X_train.reshape(-1, 1, 28, 28).astype(np.float32) / 255.0
        X_test = fashion.X_test.reshape(-1, 1, 28, 28).astype(np.float32) / 255.0
        y_train, y_test = fashion.y_train.astype(np.int64), fashion.y_test.astype(np.int64)
        digits = load_digits().images / 16.0
        pick = rng.choice(len(digits), size=min(n_ood, len(digits)), replace=False)
        ood["digits"] = np.clip(resize_images(digits[pick], image_shape), 0.0, 1.0)
    else:
        raise ValueError(f"dataset must be 'digits' or 'fashion-mnist', got {dataset!r}.")
    X_train, y_train = _subsample(X_train, y_train, n_train, rng)
    X_test, y_test = _subsample(X_test, y_test, n_test, rng)
    ood["textures"] = make_texture_images(n_ood, image_shape, random_state=rng.randint(2**31))
    ood["gaussian-noise"] = make_noise_images(n_ood, image_shape, kind="gaussian",
                                              random_state=rng.randint(2**31))
    ood["uniform-noise"] = make_noise_images(n_ood, image_shape, kind="uniform",
                                             random_state=rng.randint(2**31))
    X_aux = make_natural_image_outliers(n_aux, image_shape, random_state=rng.randint(2**31))
    return Bunch(X_train=X_train, y_train=y_train, X_test=X_test, y_test=y_test, X_aux=X_aux,
                 ood=ood, image_shape=image_shape, n_classes=int(len(np.unique(y_train))))


def _module_params(model, image_shape, n_classes):
    if model == "mlp":
        return dict(module=MLP, module__n_features=int(np.prod(image_shape)),
                    module__n_classes=n_classes, module__hidden=(128, 128))
    if model == "cnn":
        return dict(module=SmallCNN, module__in_channels=1, module__n_classes=n_classes,
                    module__width=32)
    if model == "resnet18":
        return dict(module=ResNet18, module__in_channels=1, module__n_classes=n_classes)
    raise ValueError(f"model must be 'mlp', 'cnn' or 'resnet18', got {model!r}.")


def _method_params(method, n_clusters):
    if method == "ce":
        return dict(lambda_energy=0.0, lambda_grad=0.0)
    if method == "energy_oe":
        return dict(lambda_grad=0.0)
    if method == "greg":
        return dict(lambda_grad=1.0)
    if method == "greg_plus":
        return dict(lambda_grad=1.0, sampler=EnergySampler(n_clusters=n_clusters))
    raise ValueError(f"unknown method {method!r}")


def _scores(clf, X, kind):
    if kind == "msp":
        return clf.predict_proba(X).max(axis=1)
    return clf.score_samples(X)


def run_benchmark(dataset="digits", *, model=None, epochs=None, device="cpu", seeds=(0,),
                  methods=METHODS, save_models=None, progress=True, data_home=None,
                  penalty="exact", **overrides):
    """Train every method for every seed and score it on every OOD set.

    Parameters
    ----------
    dataset : {"digits", "fashion-mnist"}
    model, epochs : optional
        Default per dataset (:data:`DEFAULTS`).
    device : str
    seeds : sequence of int
        One training run per seed and method (the estimator's ``random_state``).
    methods : subset of :data:`METHODS`
    save_models : str or None
        Folder to save every fitted model in with joblib.
    progress : bool
        Progress bars.
    data_home : str or None
        Folder with Fashion-MNIST's files (see :func:`skood.datasets.load_fashion_mnist`).
    penalty : {"exact", "fd"}
    **overrides
        ``n_train, n_test, n_aux, n_ood, batch_size, lr, m_in, m_out``: replace
        the dataset's default (None keeps it); any other name is an error.

    Returns
    -------
    results : pandas.DataFrame
        One row per (seed, scored method, OOD set) with the four metrics, the ID
        accuracy and the training time in seconds.
    scores : dict
        ``scores[seed][scored_method]`` = dict with ``"id"`` and one entry per
        OOD set: the score arrays (for figures).
    data : Bunch
        What :func:`load_benchmark_data` returned.

    Examples
    --------
    >>> results, scores, _ = run_benchmark("digits", epochs=1, methods=("ce",), progress=False,
    ...                                    n_train=100, n_aux=100, n_ood=20)
    >>> sorted(results["method"].unique())
    ['ce_energy', 'ce_msp']
    """
    if dataset not in DEFAULTS:
        raise ValueError(f"dataset must be one of {sorted(DEFAULTS)}, got {dataset!r}.")
    unknown = sorted(set(methods) - set(METHODS))
    if unknown or not methods:
        raise ValueError(f"methods must be a non-empty subset of {list(METHODS)}, got "
                         f"{list(methods)!r}.")
    settable = set(DEFAULTS[dataset]) - {"model", "epochs"}
    if set(overrides) - settable:
        raise TypeError(f"run_benchmark got unknown settings {sorted(set(overrides) - settable)}; "
                        f"it takes {sorted(settable)} (and model=, epochs=).")
    config = {**DEFAULTS[dataset], **{k: v for k, v in overrides.items() if v is not None}}
    model = model or config["model"]
    epochs = epochs or config["epochs"]
    data = load_benchmark_data(dataset, n_train=config["n_train"], n_test=config["n_test"],
                               n_aux=config["n_aux"], n_ood=config["n_ood"],
                               data_home=data_home, random_state=0)
    rows, scores = [], {}
    runs = [(seed, method) for seed in seeds for method in methods]
    bar = _progress(total=len(runs), desc="benchmark", disable=not progress)
    for seed, method in runs:
        bar.set_postfix_str(f"seed {seed}, {method}")
        callbacks = []
        if progress:
            from skorch.callbacks import ProgressBar
            callbacks.append(ProgressBar(postfix_keys=["train_loss"]))
        clf = GradRegOODClassifier(
            **_module_params(model, data.image_shape, data.n_classes),
            **_method_params(method, min(64, config["batch_size"])),
            penalty=penalty, m_in=config["m_in"], m_out=config["m_out"],
            max_epochs=epochs, lr=config["lr"], optimizer__momentum=0.9,
            optimizer__weight_decay=5e-4, batch_size=config["batch_size"],
            callbacks=callbacks or None, device=device, random_state=seed, verbose=0)
        start = time.perf_counter()
        clf.fit(data.X_train, data.y_train, X_aux=data.X_aux)
        train_s = time.perf_counter() - start
        if save_models:
            os.makedirs(save_models, exist_ok=True)
            joblib.dump(clf, os.path.join(save_models, f"{dataset}_{method}_seed{seed}.joblib"))
        accuracy = clf.score(data.X_test, data.y_test)
        for kind in (("msp", "energy") if method == "ce" else ("energy",)):
            name = f"ce_{kind}" if method == "ce" else method
            sets = {"id": _scores(clf, data.X_test, kind)}
            for ood_name, X_ood in _progress(data.ood.items(), desc=f"scoring {name}",
                                             disable=not progress, leave=False):
                sets[ood_name] = _scores(clf, X_ood, kind)
                y_true = np.r_[np.ones(len(sets["id"])), np.zeros(len(sets[ood_name]))]
                score = np.r_[sets["id"], sets[ood_name]]
                rows.append(dict(seed=seed, method=name, ood_set=ood_name,
                                 **ood_report(y_true, score), accuracy=accuracy,
                                 train_s=train_s))
            scores.setdefault(seed, {})[name] = sets
        bar.update(1)
    bar.close()
    return pd.DataFrame(rows), scores, data


def _progress(iterable=None, **kwargs):
    from tqdm.auto import tqdm
    return tqdm(iterable, **kwargs)


def summarize(results):
    """Mean and standard deviation over seeds, per method, of the OOD-set average
    of each metric, with ID accuracy and training time.

    Examples
    --------
    >>> import pandas as pd
    >>> rows = [dict(seed=s, method="greg", ood_set=o, fpr95=f, auroc=0.9, aupr_in=0.9,
    ...              aupr_out=0.9, accuracy=0.95, train_s=1.0)
    ...         for s, f in ((0, 0.1), (1, 0.3)) for o in ("a", "b")]
    >>> mean, std = summarize(pd.DataFrame(rows))
    >>> round(float(mean.loc["greg", "fpr95"]), 3), round(float(std.loc["greg", "fpr95"]), 3)
    (0.2, 0.1)
    """
    per_seed = results.groupby(["method", "seed"], sort=False)[
        [*METRICS, "accuracy", "train_s"]].mean()
    order = [m for m in SCORED_METHODS if m in per_seed.index.get_level_values(0)]
    grouped = per_seed.groupby(level="method", sort=False)
    mean = grouped.mean().reindex(order)
    std = grouped.std(ddof=0).reindex(order)
    return mean, std


def _cell(mean, std, percent):
    scale = 100.0 if percent else 1.0
    return f"{scale * mean:.2f} ± {scale * std:.2f}"


def markdown_tables(results):
    """The summary table (mean over OOD sets) and one table per OOD set, as markdown."""
    mean, std = summarize(results)
    n_seeds = results["seed"].nunique()
    lines = [f"Mean ± standard deviation over {n_seeds} seed(s); metrics in %, averaged over "
             "the OOD sets; ID is the positive class; FPR95 lower is better.", "",
             "| method | FPR95 | AUROC | AUPR-In | AUPR-Out | ID accuracy | train s |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for method in mean.index:
        m, s = mean.loc[method], std.loc[method]
        cells = [_cell(m[k], s[k], True) for k in (*METRICS, "accuracy")]
        lines.append(f"| {method} | " + " | ".join(cells) + f" | {m['train_s']:.1f} |")
    for ood_set, frame in results.groupby("ood_set", sort=False):
        per = frame.groupby("method", sort=False)[list(METRICS)]
        m, s = per.mean(), per.std(ddof=0)
        lines += ["", f"OOD set **{ood_set}**:", "",
                  "| method | FPR95 | AUROC | AUPR-In | AUPR-Out |", "|---|---:|---:|---:|---:|"]
        for method in [x for x in SCORED_METHODS if x in m.index]:
            cells = [_cell(m.loc[method, k], s.loc[method, k], True) for k in METRICS]
            lines.append(f"| {method} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write_report(results, scores, out, *, title="skood benchmark", command=None):
    """Write ``results.md``, ``results.csv`` and the PNG figures into ``out``.

    Figures (from the first seed): ``hist_<method>.png`` (score histograms, ID
    against each OOD set) and ``roc.png`` (ROC curves per OOD set, one line per
    method). Returns the list of written paths.

    Examples
    --------
    >>> import tempfile
    >>> results, scores, _ = run_benchmark("digits", epochs=1, methods=("ce",), progress=False,
    ...                                    n_train=100, n_aux=100, n_ood=20)
    >>> paths = write_report(results, scores, tempfile.mkdtemp())
    >>> sorted(p.rsplit("/", 1)[-1] for p in paths)[:3]
    ['hist_ce_energy.png', 'hist_ce_msp.png', 'results.csv']
    """
    os.makedirs(out, exist_ok=True)
    written = []
    csv_path = os.path.join(out, "results.csv")
    results.to_csv(csv_path, index=False)
    written.append(csv_path)
    md_path = os.path.join(out, "results.md")
    with open(md_path, "w") as f:
        f.write(f"# {title}\n\n")
        if command:
            f.write(f"Command: `{command}`\n\n")
        f.write(markdown_tables(results) + "\n")
    written.append(md_path)
    written += _write_figures(scores, out)
    return written


def _write_figures(scores, out):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.metrics import roc_curve

    seed = min(scores)
    per_method = scores[seed]
    paths = []
    for method, sets in per_method.items():
        ood_names = [name for name in sets if name != "id"]
        fig, axes = plt.subplots(1, len(ood_names), figsize=(4 * len(ood_names), 3.2),
                                 squeeze=False)
        for ax, name in zip(axes[0], ood_names):
            both = np.r_[sets["id"], sets[name]]
            bins = np.linspace(both.min(), both.max(), 50)
            ax.hist(sets["id"], bins=bins, alpha=0.6, density=True, label="in-distribution")
            ax.hist(sets[name], bins=bins, alpha=0.6, density=True, label=name)
            ax.set_title(f"{method}: ID vs {name}", fontsize=9)
            ax.set_xlabel("score (higher = more in-distribution)", fontsize=8)
            ax.legend(fontsize=7)
        fig.tight_layout()
        path = os.path.join(out, f"hist_{method}.png")
        fig.savefig(path, dpi=90)
        plt.close(fig)
        paths.append(path)
    ood_names = [name for name in next(iter(per_method.values())) if name != "id"]
    fig, axes = plt.subplots(1, len(ood_names), figsize=(4 * len(ood_names), 3.6), squeeze=False)
    for ax, name in zip(axes[0], ood_names):
        for method, sets in per_method.items():
            y_true = np.r_[np.ones(len(sets["id"])), np.zeros(len(sets[name]))]
            fpr, tpr, _ = roc_curve(y_true, np.r_[sets["id"], sets[name]])
            ax.plot(fpr, tpr, label=method)
        ax.axhline(0.95, color="grey", lw=0.5, ls="--")
        ax.set_title(f"ROC, ID vs {name}", fontsize=9)
        ax.set_xlabel("FPR (OOD accepted)", fontsize=8)
        ax.set_ylabel("TPR (ID accepted)", fontsize=8)
        ax.legend(fontsize=7)
    fig.tight_layout()
    path = os.path.join(out, "roc.png")
    fig.savefig(path, dpi=90)
    plt.close(fig)
    paths.append(path)
    return paths
