"""Cross-check of skood's detectors against an independent implementation on trained networks.

Trains the digits benchmark's networks (``skood benchmark``'s MLP, data and settings: the
first ``--splits`` class splits of :class:`skood.benchmark.BenchmarkConfig`, one network per
training method of ``--methods``, cross-entropy and GReg by default), then fits every
detector of :data:`skood.detectors.DETECTORS` on the features and logits of the rows each
network trained on, and the same detector of **pytorch-ood** (0.4.0, the field's peer
library) on the same rows, and compares their scores on the run's test rows (known
classes), its held-out digits (near OOD) and its far sets:

- Spearman's rank correlation of the two scores over all of these rows (1: the same order,
  so the same FPR95, AUROC and conformal decisions);
- FPR95 (ID positive, :func:`skood.metrics.fpr_at_tpr`) of each on the near set and on
  every far set, and their difference.

pytorch-ood's scores are outlier scores (higher = more OOD); they are negated. Its detectors
are imported from their modules (``pytorch_ood.detector.knn``, ...) without running the
package's ``__init__``, which imports torchvision for its model zoo; install it beside the
environment without its dependencies, ``python -m pip install --target DIR --no-deps
pytorch-ood``, and run with ``PYTHONPATH=DIR``. The references, with the parameters skood's
fitted detector used (its ``k_``, ``n_components_``, percentile):

- energy, MSP, MaxLogit: ``EnergyBased``, ``MaxSoftmax``, ``MaxLogit`` on the logits;
- Mahalanobis: ``Mahalanobis.fit_features`` (class means, shared covariance; its inverse of
  the covariance plus 1e-6 on the diagonal, where skood takes the pseudo-inverse);
- KNN: ``KNN(k=k_)`` (scikit-learn's ``NearestNeighbors`` on normalised features; the
  distance, where skood scores minus the distance);
- ViM: ``ViM(d=n_components_, w, b)`` with the network's last layer (float32);
- ReAct: ``ReAct(percentile=0.9)`` with the last layer as head, fitted on the features;
- fused (no counterpart in pytorch-ood): pytorch-ood's energy, ViM and KNN scores, each
  turned into the conformal p-value ``(1 + #{calibration <= s}) / (n + 1)`` against the
  network's held-out rows (those skorch's validation split kept out of training),
  combined by Bonferroni's rule ``min(1, 3 min_j p_j)`` and with the tie break that
  ``Fused`` documents (``tie_break=True``), written here with numpy.

Two detectors follow another convention in pytorch-ood, so each gets a second reference
that isolates it: Mahalanobis with scikit-learn's ``EmpiricalCovariance`` (whose precision is
the pseudo-inverse, as skood's), and ViM with pytorch-ood's formulas computed in float64 with
numpy (pytorch-ood computes in float32); the fused score, too, with that ViM.

The rows a network trained on are those ``GradRegOODClassifier.fit`` trained it on: its
``train_split`` (skorch's ``ValidSplit``) applied to the known classes' rows
(:func:`nested_selection.network_training_rows`); the detectors are fitted on them and on
nothing else, as the estimator fits its ``detector_``.

Writes ``crosscheck.csv`` (one row per network, detector and OOD set) and ``report.md``
into ``--out``.

Run: PYTHONPATH=.:/path/to/pytorch-ood python benchmarks/detector_crosscheck.py
     [--splits 3] [--methods ce greg] [--out detector-crosscheck]
"""
import os

os.environ.setdefault("OMP_NUM_THREADS", "1")   # before torch: the digits MLP is small

import argparse  # noqa: E402
import importlib  # noqa: E402
import importlib.util  # noqa: E402
import shlex  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import types  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import torch  # noqa: E402
from scipy.stats import spearmanr  # noqa: E402

from skood.benchmark import BenchmarkConfig  # noqa: E402
from skood.benchmark.data import load_far, load_run, outlier_pool  # noqa: E402
from skood.benchmark.runner import make_estimator  # noqa: E402
from skood.detectors import DETECTORS, extract_features, last_linear, make_detector  # noqa: E402
from skood.metrics import fpr_at_tpr  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from detector_cost import cpu_name  # noqa: E402
from nested_selection import network_training_rows  # noqa: E402

DATASET = "digits"
#: the members of skood's default Fused detector, scored here by pytorch-ood
FUSED_MEMBERS = ("energy", "vim", "knn")


def import_pytorch_ood():
    """pytorch-ood's detector modules, imported without the package's ``__init__`` files
    (which import torchvision). Returns a namespace of the classes used, or None when
    pytorch-ood is not installed."""
    if "pytorch_ood" in sys.modules:               # imported before (by this function)
        root = Path(sys.modules["pytorch_ood"].__path__[0])
    else:
        spec = importlib.util.find_spec("pytorch_ood")
        if spec is None:
            return None
        root = Path(spec.submodule_search_locations[0])
    for name, path in (("pytorch_ood", root), ("pytorch_ood.detector", root / "detector")):
        if name not in sys.modules:
            # an empty package whose submodules import from their files
            package = types.ModuleType(name)
            package.__path__ = [str(path)]
            sys.modules[name] = package
    modules = {name: importlib.import_module(f"pytorch_ood.detector.{name}")
               for name in ("energy", "softmax", "maxlogit", "mahalanobis", "knn", "vim",
                            "react")}
    version = importlib.metadata.version("pytorch-ood")
    return types.SimpleNamespace(
        version=version, EnergyBased=modules["energy"].EnergyBased,
        MaxSoftmax=modules["softmax"].MaxSoftmax, MaxLogit=modules["maxlogit"].MaxLogit,
        Mahalanobis=modules["mahalanobis"].Mahalanobis, KNN=modules["knn"].KNN,
        ViM=modules["vim"].ViM, ReAct=modules["react"].ReAct)


# -- the references: fitted on the training rows, returning ID scores (higher = more ID) ------

def reference_scorer(ood, name, fitted, train, last_layer, calibration):
    """A function ``(features, logits) -> ID scores`` computed with pytorch-ood.

    ``fitted`` is skood's fitted detector (its parameters are reused), ``train`` the
    training rows' ``(features, logits, labels)``, ``calibration`` the held-out rows'
    ``(features, logits)`` (for ``fused``).
    """
    features, logits, labels = (torch.as_tensor(a) for a in train)
    weight, bias = (p.detach().cpu().float() for p in (last_layer.weight, last_layer.bias))
    if name == "energy":
        return lambda f, z: -ood.EnergyBased(None).predict_logits(torch.as_tensor(z))
    if name == "msp":
        return lambda f, z: -ood.MaxSoftmax(None).predict_logits(torch.as_tensor(z))
    if name == "maxlogit":
        return lambda f, z: -ood.MaxLogit(None).predict_logits(torch.as_tensor(z))
    if name == "mahalanobis":
        detector = ood.Mahalanobis(None).fit_features(features.float(), labels)
        return lambda f, z: -detector.predict_features(torch.as_tensor(f).float())
    if name == "knn":
        detector = ood.KNN(None, k=fitted.k_).fit_features(features.float(), labels)
        return lambda f, z: -detector.predict_features(torch.as_tensor(f).float())
    if name == "vim":
        detector = ood.ViM(None, d=fitted.n_components_, w=weight, b=bias)
        detector.fit_features(features.float(), labels)
        return lambda f, z: -detector.predict_features(torch.as_tensor(f).float())
    if name == "react":
        head = torch.nn.Linear(weight.shape[1], weight.shape[0])
        with torch.no_grad():
            head.weight.copy_(weight)
            head.bias.copy_(bias)
        detector = ood.ReAct(backbone=None, head=head, percentile=fitted.percentile / 100)
        detector.fit_feature_maps(features.float(), labels)
        return lambda f, z: -detector.predict_feature_maps(torch.as_tensor(f).float())
    if name == "fused":
        members = [reference_scorer(ood, member, member_fitted, train, last_layer, None)
                   for member, member_fitted in zip(FUSED_MEMBERS, fitted.detectors_)]
        return fused_reference(members, calibration)
    raise ValueError(f"no reference for detector {name!r}")


def fused_reference(members, calibration):
    """Each member's conformal p-value against its calibration scores, Bonferroni, then the
    tie break that ``Fused`` documents: minus ``0.01 / (n + 1) * (1/2 - arctan(t) / pi)``,
    ``t`` the lowest over members of (score - calibration median) / calibration IQR."""
    cal_scores = [np.sort(_numpy(member(*calibration))) for member in members]
    n = len(cal_scores[0])

    def fused(f, z):
        scores = [_numpy(member(f, z)) for member in members]
        pvalues = [(1 + np.searchsorted(cal, score, side="right")) / (n + 1)
                   for score, cal in zip(scores, cal_scores)]
        combined = np.minimum(1.0, len(members) * np.min(pvalues, axis=0))
        typical = []
        for score, cal in zip(scores, cal_scores):
            q25, q50, q75 = np.percentile(cal, [25, 50, 75])
            spread = q75 - q25 if q75 > q25 else (cal.std() or 1.0)
            typical.append((score - q50) / spread)
        return combined - 0.01 / (n + 1) * (0.5 - np.arctan(np.min(typical, axis=0)) / np.pi)
    return fused


def _numpy(scores):
    if isinstance(scores, torch.Tensor):
        scores = scores.detach().cpu().numpy()
    return np.asarray(scores, dtype=np.float64)


# Second references, for the two detectors whose pytorch-ood score follows another convention:
# each isolates that convention (see the module docstring).

def sklearn_mahalanobis(train):
    """Mahalanobis with scikit-learn's EmpiricalCovariance precision (its pseudo-inverse)."""
    from sklearn.covariance import EmpiricalCovariance
    features, _, labels = (np.asarray(a, dtype=np.float64) for a in train)
    classes = np.unique(labels)
    means = np.stack([features[labels == c].mean(axis=0) for c in classes])
    codes = np.searchsorted(classes, labels)
    precision = EmpiricalCovariance(assume_centered=True).fit(
        features - means[codes]).precision_

    def score(f, z):
        f = np.asarray(f, dtype=np.float64)
        return -np.min([np.einsum("ij,jk,ik->i", f - m, precision, f - m) for m in means],
                       axis=0)
    return score


def float64_vim(train, last_layer, n_components):
    """pytorch-ood's ViM formulas (centre u = -pinv(W) b, eigh of the uncentred covariance,
    alpha = mean max logit / mean residual norm) in float64 with numpy."""
    features = np.asarray(train[0], dtype=np.float64)
    weight = last_layer.weight.detach().double().numpy()
    bias = last_layer.bias.detach().double().numpy()
    origin = -np.linalg.pinv(weight) @ bias
    centred = features - origin
    _, vectors = np.linalg.eigh(centred.T @ centred / len(centred))
    basis = vectors[:, :features.shape[1] - n_components]
    alpha = ((features @ weight.T + bias).max(axis=1).mean()
             / np.linalg.norm(centred @ basis, axis=1).mean())

    def score(f, z):
        f = np.asarray(f, dtype=np.float64)
        logits = f @ weight.T + bias
        top = logits.max(axis=1)
        energy = top + np.log(np.exp(logits - top[:, None]).sum(axis=1))
        return energy - alpha * np.linalg.norm((f - origin) @ basis, axis=1)
    return score


def references(ood, name, fitted, train, last_layer, calibration):
    """``{label: scorer}``: pytorch-ood's, and for Mahalanobis and ViM a second reference."""
    found = {"pytorch-ood": reference_scorer(ood, name, fitted, train, last_layer, calibration)}
    if name == "mahalanobis":
        found["scikit-learn EmpiricalCovariance (pseudo-inverse)"] = sklearn_mahalanobis(train)
    if name == "vim":
        found["pytorch-ood's formulas in float64 (numpy)"] = float64_vim(
            train, last_layer, fitted.n_components_)
    if name == "fused":
        members = [reference_scorer(ood, member, member_fitted, train, last_layer, None)
                   if member != "vim" else float64_vim(train, last_layer,
                                                       member_fitted.n_components_)
                   for member, member_fitted in zip(FUSED_MEMBERS, fitted.detectors_)]
        found["pytorch-ood, its ViM formulas in float64"] = fused_reference(members,
                                                                          calibration)
    return found


# -- one network ------------------------------------------------------------------------------

def crosscheck_network(ood, clf, data, names, info):
    """Rows of crosscheck.csv for one fitted estimator: every detector of ``names``."""
    rows_train = network_training_rows(clf, data.X_train, data.y_train)
    held_out = np.setdiff1d(np.arange(len(data.y_train)), rows_train)
    labels = np.searchsorted(clf.classes_, data.y_train)        # class indices 0..C-1
    module, layer = clf.module_, last_linear(clf.module_)
    train = (*extract_features(module, data.X_train[rows_train]), labels[rows_train])
    calibration = extract_features(module, data.X_train[held_out])
    sets = {"id": data.X_test, **data.ood}
    outputs = {name: extract_features(module, rows) for name, rows in sets.items()}
    rows = []
    for name in names:
        detector = make_detector(name)
        detector.fit(train[0], train[1], train[2], last_layer=layer)
        if name == "fused":
            detector.calibrate(*calibration)
        ours = {s: detector.score_samples(*outputs[s]) for s in sets}
        for label, reference in references(ood, name, detector, train, layer,
                                           calibration).items():
            theirs = {s: _numpy(reference(*outputs[s])) for s in sets}
            rho = spearmanr(np.concatenate(list(ours.values())),
                            np.concatenate(list(theirs.values()))).statistic
            for ood_set in data.ood:
                truth = np.r_[np.ones(len(ours["id"])), np.zeros(len(ours[ood_set]))]
                fpr = [fpr_at_tpr(truth, np.r_[scores["id"], scores[ood_set]])
                       for scores in (ours, theirs)]
                rows.append(dict(**info, detector=name, reference=label, ood_set=ood_set,
                                 group=data.groups[ood_set], spearman=rho,
                                 skood_fpr95=fpr[0], reference_fpr95=fpr[1],
                                 fpr95_diff=fpr[0] - fpr[1], n_fit_rows=len(rows_train),
                                 n_calibration_rows=len(held_out),
                                 feature_width=train[0].shape[1],
                                 **diagnose(name, detector, train, outputs)))
    return rows


def diagnose(name, detector, train, outputs):
    """What explains a disagreement. Mahalanobis: feature columns never active (zero) on the
    training rows, and the share of scored rows active on them. ViM: the largest eigenvalue
    of its residual space over the largest eigenvalue (float32 resolves about 1e-7), and
    its alpha."""
    if name == "mahalanobis":
        dead = np.asarray(train[0]).max(axis=0) <= 0
        scored = np.concatenate([features for features, _ in outputs.values()])
        return dict(dead_columns=int(dead.sum()),
                    rows_on_dead_columns=float((scored[:, dead] > 0).any(axis=1).mean()))
    if name == "vim":
        centred = np.asarray(train[0], dtype=np.float64) - detector.origin_
        values = np.linalg.eigvalsh(centred.T @ centred / len(centred))
        residual = values[len(values) - detector.n_components_ - 1]
        return dict(residual_eigenvalue_ratio=float(residual / values[-1]),
                    alpha=float(detector.alpha_))
    return {}


def crosscheck(*, splits=3, methods=("ce", "greg"), seed=0, epochs=None, n_train=None,
               n_ood=None, names=tuple(DETECTORS), log=print):
    """Train the networks and compare every detector; returns the rows as a DataFrame."""
    ood = import_pytorch_ood()
    if ood is None:
        raise ModuleNotFoundError(
            "pytorch-ood is not installed: python -m pip install --target DIR --no-deps "
            "pytorch-ood, then run with PYTHONPATH=DIR (torchvision is not needed).")
    torch.set_num_threads(1)
    config = BenchmarkConfig(dataset=DATASET, splits=splits, seeds=(seed,), methods=methods,
                             epochs=epochs, n_train=n_train, n_ood=n_ood, n_threads=1,
                             progress=False)
    far = load_far(DATASET, n_ood=config.n_ood, data_home=config.data_home)
    pool = outlier_pool(DATASET, config.n_aux)
    rows = []
    for split in range(splits):
        known = config.known_splits[split]
        data = load_run(DATASET, protocol="heldout", known_classes=known, seed=seed,
                        n_train=config.n_train, n_test=config.n_test, n_aux=config.n_aux,
                        n_ood=config.n_ood, data_home=config.data_home, far=far, pool=pool)
        for method in methods:
            start = time.perf_counter()
            clf = make_estimator(config, method, data).fit(data.X_train, data.y_train,
                                                           X_aux=data.X_aux)
            info = dict(split=split, known_classes=" ".join(map(str, known)), method=method)
            rows += crosscheck_network(ood, clf, data, names, info)
            log(f"split {split}, {method}: {time.perf_counter() - start:.0f} s")
    return pd.DataFrame(rows), ood.version


def report(table, *, command, version, elapsed_s):
    """The markdown report: one row per detector, over networks."""
    networks = table[["split", "method"]].drop_duplicates()
    lines = [
        "# skood's detectors against pytorch-ood", "",
        f"Command: `{command}` ({elapsed_s:.0f} s).", "",
        f"Machine: {cpu_name()}, {os.cpu_count()} cores, torch {torch.__version__} "
        f"(one thread); pytorch-ood {version}.", "",
        f"{len(networks)} networks: splits {sorted(networks['split'].unique().tolist())} x "
        f"methods {sorted(networks['method'].unique().tolist())}. Spearman: rank "
        "correlation of skood's and pytorch-ood's scores over each network's test, near and "
        "far rows (lowest over networks). FPR95 in %, mean over networks; |diff|: largest "
        "absolute difference of the two FPR95 over networks (near) and over networks and far "
        "sets (far).", "",
        "| detector | reference | Spearman (lowest) | near FPR95 skood | near FPR95 reference "
        "| near \\|diff\\| max | far FPR95 skood | far FPR95 reference | far \\|diff\\| max |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for (name, label), rows in table.groupby(["detector", "reference"], sort=False):
        near, far = rows[rows["group"] == "near"], rows[rows["group"] == "far"]
        lines.append(
            f"| {name} | {label} | {rows['spearman'].min():.6f} "
            f"| {100 * near['skood_fpr95'].mean():.2f} "
            f"| {100 * near['reference_fpr95'].mean():.2f} "
            f"| {100 * near['fpr95_diff'].abs().max():.2f} "
            f"| {100 * far['skood_fpr95'].mean():.2f} "
            f"| {100 * far['reference_fpr95'].mean():.2f} "
            f"| {100 * far['fpr95_diff'].abs().max():.2f} |")
    if "dead_columns" in table:
        maha = table.dropna(subset=["dead_columns"]).drop_duplicates(["split", "method"])
        lines += ["", "Mahalanobis: feature columns never active on a network's training rows: "
                  f"{maha['dead_columns'].min():.0f} to {maha['dead_columns'].max():.0f} of "
                  f"{table['feature_width'].iloc[0]}; scored rows active on at least one of "
                  f"them: {100 * maha['rows_on_dead_columns'].min():.1f}% to "
                  f"{100 * maha['rows_on_dead_columns'].max():.1f}%."]
    if "residual_eigenvalue_ratio" in table:
        vim = table.dropna(subset=["residual_eigenvalue_ratio"]).drop_duplicates(
            ["split", "method"])
        lines += ["", "ViM: the largest eigenvalue of the residual space over the largest "
                  f"eigenvalue: {vim['residual_eigenvalue_ratio'].min():.1e} to "
                  f"{vim['residual_eigenvalue_ratio'].max():.1e}; alpha from "
                  f"{vim['alpha'].min():.3g} to {vim['alpha'].max():.3g}."]
    return "\n".join(lines) + "\n"


def build_parser():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--splits", type=int, default=3, help="class splits (networks each)")
    parser.add_argument("--methods", nargs="+", default=["ce", "greg"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, help="training epochs (default: the benchmark's)")
    parser.add_argument("--n-train", type=int)
    parser.add_argument("--n-ood", type=int)
    parser.add_argument("--out", default="detector-crosscheck")
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    command = "python benchmarks/detector_crosscheck.py " + " ".join(
        shlex.quote(a) for a in (sys.argv[1:] if argv is None else argv))
    start = time.perf_counter()
    table, version = crosscheck(splits=args.splits, methods=tuple(args.methods),
                                seed=args.seed, epochs=args.epochs, n_train=args.n_train,
                                n_ood=args.n_ood)
    text = report(table, command=command.strip(), version=version,
                  elapsed_s=time.perf_counter() - start)
    os.makedirs(args.out, exist_ok=True)
    table.to_csv(os.path.join(args.out, "crosscheck.csv"), index=False)
    with open(os.path.join(args.out, "report.md"), "w") as handle:
        handle.write(text)
    print(text)
    return table


if __name__ == "__main__":
    main()
