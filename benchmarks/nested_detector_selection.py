"""Nested selection of the training method and the detector, without OOD data.

On each outer class split of ``skood benchmark``'s data (digits or Fashion-MNIST: the class
splits of :class:`skood.benchmark.BenchmarkConfig` and the benchmark's run data, network
and settings), the candidates are every (training method, detector) pair: the methods of
``--methods`` (cross-entropy ``ce`` and ``greg`` by default, trained as the benchmark trains
them, GReg on the run's photograph crops) and the detectors of
:data:`skood.detectors.DETECTORS` (``--detectors``, all of them by default, ``fused``
included). They are ranked on the known classes' training rows alone, with
``HeldOutClassSplit(n_splits=--inner-folds, n_heldout=2)``: each inner fold trains on the
other known classes and scores its 2 held-out classes as near OOD. The chosen candidate is
refit on all known classes and measured on the outer split's held-out classes (near) and
the benchmark's far sets. No OOD data of the outer split is used to choose.

**One network per (fold, method).** The detector does not change training, so each inner
fold trains one network per method and scores it with every detector through the
estimator's ``set_params(detector=...)``, which refits only the detector on the rows the
network trained on and recalibrates (as :class:`skood.model_selection.DetectorSearchCV`
does for one method). The same is done for the refit on all known classes, so every
candidate's outer scores come from 2 networks per split.

**Selection rules**, each applied to the same inner scores (a column of the report):

- ``classes``: the lowest mean FPR95 on the held-out classes alone;
- ``generated``: the lowest mean of that FPR95 and the worst FPR95 of the fold's
  known-class test rows against generated textures, Gaussian and uniform noise
  (``--n-generated`` each, :func:`nested_selection.generated_sets`): the far guard of
  ``docs/selection.md``;
- ``photos``: the same with held-out photograph crops added to the guard's sets:
  ``--n-generated`` crops of the benchmark's outlier pool that are not among the run's
  auxiliary outliers (rows of the outlier source no candidate trained on);
- ``synthesized``: ``generated`` with outliers that :mod:`skood.synthesis` makes from the
  fold's known-class test rows (rows no candidate trained on): ``BlurNoise``, ``ClassMix``,
  ``PatchShuffle`` and ``Rotation``, one set each;
- ``all``: every guard set above.

**Compared on the outer split** (FPR95, ID positive; near: the held-out classes, far: the
mean over the far sets): each rule's choice against the candidates ``ce+energy``
(cross-entropy scored by the energy), ``greg+energy`` (the benchmark's GReg), ``ce+vim``,
``greg+knn`` and ``greg+fused``, and the ``oracle`` (the candidate with the lowest outer
near FPR95). Over splits: mean
difference with a 95% t-interval and "better on K of N"; the targets: near FPR95 at least
20 points below ``ce+energy``'s on average and lower on at least 90% of the splits, far
FPR95 at most 1 point above ``greg+energy``'s on average.

Writes ``candidates.csv`` (one row per outer split, method and detector: inner and outer
scores), ``inner.csv`` (one row per inner fold, method and detector), ``timing.csv`` and
``report.md`` into ``--out``.

Run: python benchmarks/nested_detector_selection.py [--dataset digits] [--splits 20]
     [--seed 0] [--inner-folds 3] [--n-jobs 2] [--out nested-detector-selection]
"""
import os

# One torch thread per process (before torch is imported), as in nested_selection.py.
os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse  # noqa: E402
import shlex  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import torch  # noqa: E402
from joblib import Parallel, delayed  # noqa: E402

from skood import GradRegOODClassifier  # noqa: E402
from skood.benchmark import BenchmarkConfig, BenchmarkConfigError, paired_difference  # noqa: E402
from skood.benchmark.data import load_far, load_run, outlier_pool  # noqa: E402
from skood.benchmark.runner import make_estimator  # noqa: E402
from skood.detectors import DETECTORS, make_detector  # noqa: E402
from skood.metrics import fpr_at_tpr  # noqa: E402
from skood.model_selection import HeldOutClassSplit  # noqa: E402
from skood.synthesis import BlurNoise, ClassMix, PatchShuffle, Rotation  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from nested_selection import generated_sets  # noqa: E402

#: the selection rules: which inner guards join the held-out classes' FPR95
RULES = {"classes": (), "generated": ("generated",), "photos": ("generated", "photos"),
         "synthesized": ("generated", "synthesized"),
         "all": ("generated", "photos", "synthesized")}
GUARDS = ("generated", "photos", "synthesized")
#: the synthesizers of the ``synthesized`` guard, made from each fold's known-class test rows
GUARD_SYNTHESIZERS = {"blur-noise": BlurNoise, "class-mix": ClassMix,
                      "patch-shuffle": PatchShuffle, "rotation": Rotation}
#: the fixed candidates every choice is compared with, besides the oracle
FIXED = ("ce+energy", "greg+energy", "ce+vim", "greg+knn", "greg+fused")
#: the targets, in FPR95 points
TARGET = dict(gain_over_ce=20.0, share_better=0.9, far_over_greg=1.0)


def candidate_name(method, detector):
    return f"{method}+{detector}"


# -- scoring every detector on one network --------------------------------------------------

def detector_scores(clf, sets, names):
    """``{detector: {set: scores}}`` of the fitted estimator ``clf`` for each detector of
    ``names``: ``clf.set_params(detector=name)`` refits only the detector on the rows the
    network trained on and recalibrates, without training (``fused`` is calibrated on half
    of the estimator's calibration rows); then ``score_samples`` scores every array of
    ``sets`` (float32 scores, as the estimator returns them, widened)."""
    scores = {}
    for name in names:
        clf.set_params(detector=name)
        scores[name] = {key: clf.score_samples(X).astype(np.float64) for key, X in sets.items()}
    clf.set_params(detector="energy")
    return scores


def fpr95(id_scores, ood_scores):
    truth = np.r_[np.ones(len(id_scores)), np.zeros(len(ood_scores))]
    return fpr_at_tpr(truth, np.r_[id_scores, ood_scores])


def method_estimator(config, method, data, inner=False):
    """The benchmark's estimator for ``method``; for an inner fold (fewer classes than the
    outer split) the network's sizes are left to the fit."""
    clf = make_estimator(config, method, data)
    if not inner:
        return clf
    params = clf.get_params(deep=False)
    for name in ("module__n_features", "module__n_classes"):
        params.pop(name, None)
    return GradRegOODClassifier(**params)


def held_out_photos(pool, X_aux, n, random_state):
    """``n`` rows of the outlier pool equal to none of the run's outliers ``X_aux`` (the pool
    holds some identical crops: a copy of a training outlier is not held out)."""
    used = {row.tobytes() for row in np.ascontiguousarray(X_aux, dtype=np.float32)}
    pool = np.ascontiguousarray(pool, dtype=np.float32).reshape(-1, *X_aux.shape[1:])
    in_pool = [row.tobytes() for row in pool]
    if not used <= set(in_pool):
        raise ValueError("the run's outliers are not rows of the outlier pool as they are; "
                         "held-out photographs cannot be told apart.")
    unused = np.flatnonzero([row not in used for row in in_pool])
    pick = np.random.default_rng(random_state).choice(unused, min(n, len(unused)),
                                                      replace=False)
    return pool[np.sort(pick)]


def synthesized_sets(X, y, random_state):
    """Outliers made by each synthesizer of :data:`GUARD_SYNTHESIZERS` from ``X, y`` (rows
    of the known classes that the fold's networks did not train on), one each."""
    seeds = np.random.SeedSequence(random_state).generate_state(len(GUARD_SYNTHESIZERS))
    return {name: cls().make_outliers(X, y, random_state=int(seed))
            for (name, cls), seed in zip(GUARD_SYNTHESIZERS.items(), seeds)}


# -- one outer split --------------------------------------------------------------------------

def run_split(config, split, seed, far, pool, methods, names, inner_folds, n_generated):
    """Inner scores of every candidate, then the refit's outer scores.

    Returns (candidates, inner, timing) DataFrames.
    """
    torch.set_num_threads(1)
    known = config.known_splits[split]
    data = load_run(config.dataset, protocol="heldout", known_classes=known, seed=seed,
                    n_train=config.n_train, n_test=config.n_test, n_aux=config.n_aux,
                    n_ood=config.n_ood, data_home=config.data_home, far=far, pool=pool)
    cv_seed, generated_seed, photo_seed, synthesized_seed = np.random.SeedSequence(
        [seed, *known, 22]).generate_state(4)
    guards = {"generated": generated_sets(data.image_shape, n_generated, int(generated_seed)),
              "photos": {"photos": held_out_photos(pool, data.X_aux, n_generated,
                                                   int(photo_seed))}}
    cv = HeldOutClassSplit(n_splits=inner_folds, n_heldout=2, random_state=int(cv_seed))
    info = dict(split=split, seed=seed, known_classes=" ".join(map(str, known)),
                heldout_classes=" ".join(map(str, data.heldout_classes)))
    inner, timing = [], []
    X, y = data.X_train, data.y_train
    for fold, (train, test) in enumerate(cv.split(X, y)):
        known_rows = np.isin(y[test], y[train])
        fold_guards = dict(guards, synthesized=synthesized_sets(
            X[test][known_rows], y[test][known_rows], random_state=[int(synthesized_seed), fold]))
        fold_sets = {name: X_ for sets in fold_guards.values() for name, X_ in sets.items()}
        for method in methods:
            start = time.perf_counter()
            clf = method_estimator(config, method, data, inner=True).fit(
                X[train], y[train], X_aux=data.X_aux)
            trained = time.perf_counter()
            scores = detector_scores(clf, {"test": X[test], **fold_sets}, names)
            timing.append(dict(**info, fold=fold, method=method, train_s=trained - start,
                               score_s=time.perf_counter() - trained))
            for name in names:
                test_scores = scores[name]["test"]
                row = dict(**info, fold=fold, method=method, detector=name,
                           near=fpr95(test_scores[known_rows], test_scores[~known_rows]))
                for guard, sets in fold_guards.items():
                    each = {key: fpr95(test_scores[known_rows], scores[name][key])
                            for key in sets}
                    row.update({f"{guard}:{key}": value for key, value in each.items()})
                    row[guard] = max(each.values())
                inner.append(row)
    inner = pd.DataFrame(inner)
    means = inner.groupby(["method", "detector"], sort=False)[["near", *GUARDS]].mean()
    candidates = []
    for method in methods:
        start = time.perf_counter()
        clf = method_estimator(config, method, data).fit(X, y, X_aux=data.X_aux)
        accuracy = clf.score(data.X_test, data.y_test)
        scores = detector_scores(clf, {"id": data.X_test, **data.ood}, names)
        timing.append(dict(**info, fold=-1, method=method, train_s=np.nan,
                           score_s=time.perf_counter() - start))
        for name in names:
            inner_means = means.loc[(method, name)]
            row = dict(**info, method=method, detector=name,
                       candidate=candidate_name(method, name), accuracy=accuracy,
                       **{f"inner_{key}": value for key, value in inner_means.items()})
            near, far_sets = [], []
            for ood_set, group in data.groups.items():
                value = fpr95(scores[name]["id"], scores[name][ood_set])
                (near if group == "near" else far_sets).append(value)
                if group == "far":
                    row[f"far_fpr95:{ood_set}"] = value
            row.update(near_fpr95=float(np.mean(near)), far_fpr95=float(np.mean(far_sets)))
            candidates.append(row)
    return pd.DataFrame(candidates), inner, pd.DataFrame(timing)


# -- choosing and comparing -------------------------------------------------------------------

def rule_score(candidates, rule):
    """The inner score a rule minimises: the held-out classes' FPR95, or its mean with the
    worst FPR95 of the rule's guards."""
    guards = RULES[rule]
    if not guards:
        return candidates["inner_near"]
    worst = candidates[[f"inner_{guard}" for guard in guards]].max(axis=1)
    return (candidates["inner_near"] + worst) / 2


def choices(candidates):
    """model x (split, seed) -> the candidate's row: each rule's choice, the oracle and the
    fixed candidates. Ties go to the first candidate in grid order."""
    rows = []
    for _, cands in candidates.groupby(["split", "seed"], sort=True):
        cands = cands.reset_index(drop=True)
        picks = {f"chosen:{rule}": int(np.argmin(rule_score(cands, rule).to_numpy()))
                 for rule in RULES}
        picks["oracle"] = int(np.argmin(cands["near_fpr95"].to_numpy()))
        for name in FIXED:
            match = np.flatnonzero(cands["candidate"] == name)
            if len(match):
                picks[name] = int(match[0])
        for model, index in picks.items():
            rows.append(dict(cands.iloc[index].to_dict(), model=model))
    return pd.DataFrame(rows)


def per_split(chosen, column):
    """model x split: ``column``'s mean over each split's seeds."""
    return chosen.groupby(["model", "split"])[column].mean()


def comparisons(chosen):
    """Each rule's choice against the oracle and the fixed candidates, over splits."""
    rows = []
    for rule in RULES:
        model = f"chosen:{rule}"
        for group in ("near", "far"):
            values = per_split(chosen, f"{group}_fpr95")
            for other in ("oracle", *FIXED):
                if other not in values.index.get_level_values(0):
                    continue
                d = paired_difference(values.loc[model], values.loc[other])
                rows.append(dict(rule=rule, group=group, against=other, n=d["n"],
                                 chosen_mean=d["method_mean"], other_mean=d["baseline_mean"],
                                 mean_diff=d["mean_diff"], ci_low=d["ci_low"],
                                 ci_high=d["ci_high"], n_better=d["n_better"]))
    return pd.DataFrame(rows)


def fixed_comparisons(candidates):
    """Every candidate, fixed on all splits: near FPR95 against ce+energy's and far FPR95
    against greg+energy's, over splits (points)."""
    near = candidates.groupby(["candidate", "split"], sort=False)["near_fpr95"].mean()
    far = candidates.groupby(["candidate", "split"], sort=False)["far_fpr95"].mean()
    rows = {}
    for name in candidates["candidate"].unique():
        n = paired_difference(near.loc[name], near.loc["ce+energy"])
        f = paired_difference(far.loc[name], far.loc["greg+energy"])
        rows[name] = dict(n=n["n"], near_mean=n["method_mean"], near_diff=n["mean_diff"],
                          near_low=n["ci_low"], near_high=n["ci_high"],
                          near_better=n["n_better"], far_mean=f["method_mean"],
                          far_diff=f["mean_diff"], far_low=f["ci_low"], far_high=f["ci_high"],
                          far_better=f["n_better"])
    return pd.DataFrame.from_dict(rows, orient="index")


def target_check(chosen, rule):
    """The targets for one rule's choice: (what, measured, met)."""
    near, far = per_split(chosen, "near_fpr95"), per_split(chosen, "far_fpr95")
    model = f"chosen:{rule}"
    gain = 100 * (near.loc["ce+energy"] - near.loc[model])
    far_over = 100 * (far.loc[model] - far.loc["greg+energy"])
    oracle_gap = 100 * (near.loc[model] - near.loc["oracle"])
    n, better = len(gain), int((gain > 0).sum())
    return [
        (f"near FPR95 at least {TARGET['gain_over_ce']:g} points below ce+energy's on average",
         f"{gain.mean():+.2f} points", gain.mean() >= TARGET["gain_over_ce"]),
        (f"lower near FPR95 than ce+energy on at least {TARGET['share_better']:.0%} of the "
         "splits", f"{better} of {n}", better >= TARGET["share_better"] * n),
        (f"far FPR95 at most {TARGET['far_over_greg']:g} point above greg+energy's on average",
         f"{far_over.mean():+.2f} points", far_over.mean() <= TARGET["far_over_greg"]),
        ("distance to the per-split oracle (near FPR95, reported)",
         f"{oracle_gap.mean():+.2f} points on average, at most {oracle_gap.max():.2f}", None),
    ]


def _points(value):
    return f"{100 * value:.2f}"


def report(candidates, timing, *, command, settings, elapsed_s):
    """The markdown report."""
    chosen = choices(candidates)
    lines = [f"# Nested selection of the training method and the detector ({settings})", "",
             f"Command: `{command}` ({elapsed_s:.0f} s).", "",
             "## Each rule's choice against the others, over class splits", "",
             "Chosen minus the other model, FPR95 points (negative: the choice is better), "
             "95% t-interval over splits.", "",
             "| rule | group | against | chosen | other | difference | 95% interval | "
             "better on |", "|---|---|---|---:|---:|---:|---|---|"]
    for _, row in comparisons(chosen).iterrows():
        lines.append(f"| {row['rule']} | {row['group']} | {row['against']} | "
                     f"{row['chosen_mean']:.2f} | {row['other_mean']:.2f} | "
                     f"{row['mean_diff']:+.2f} | [{row['ci_low']:.2f}, {row['ci_high']:.2f}] | "
                     f"{row['n_better']} of {row['n']} |")
    lines += ["", "## Every candidate against the fixed baselines, over class splits", "",
              "Near: the candidate minus ce+energy; far: the candidate minus greg+energy "
              "(FPR95 points, 95% t-interval, better on).", "",
              "| candidate | near | near: minus ce+energy | far | far: minus greg+energy |",
              "|---|---:|---|---:|---|"]
    for name, row in fixed_comparisons(candidates).iterrows():
        lines.append(f"| {name} | {row['near_mean']:.2f} | {row['near_diff']:+.2f} "
                     f"[{row['near_low']:+.2f}, {row['near_high']:+.2f}], "
                     f"{row['near_better']:.0f} of {row['n']:.0f} | {row['far_mean']:.2f} | "
                     f"{row['far_diff']:+.2f} [{row['far_low']:+.2f}, {row['far_high']:+.2f}], "
                     f"{row['far_better']:.0f} of {row['n']:.0f} |")
    lines += ["", "## Targets", ""]
    for rule in RULES:
        for what, measured, met in target_check(chosen, rule):
            verdict = "" if met is None else ("met: " if met else "missed: ")
            lines.append(f"- {rule}: {verdict}{what}: {measured}.")
    lines += ["", "## Choices (candidate: splits)", "", "| rule | choices |", "|---|---|"]
    for model, rows in chosen.groupby("model", sort=False):
        if model.startswith("chosen:") or model == "oracle":
            counts = rows["candidate"].value_counts()
            lines.append(f"| {model.split(':')[-1]} | "
                         + ", ".join(f"{name} {count}" for name, count in counts.items()) + " |")
    grid = candidates.groupby("candidate", sort=False)
    lines += ["", "## Every candidate (mean over splits, FPR95 %)", "",
              "Inner: mean over inner folds of the held-out classes' FPR95 (near) and of each "
              "guard's worst FPR95; outer: the refit on all known classes.", "",
              "| candidate | inner near | " + " | ".join(f"inner {g}" for g in GUARDS)
              + " | outer near | outer far |", "|---|" + "---:|" * (len(GUARDS) + 3)]
    for name, rows in grid:
        lines.append(f"| {name} | {_points(rows['inner_near'].mean())} | "
                     + " | ".join(_points(rows[f"inner_{g}"].mean()) for g in GUARDS)
                     + f" | {_points(rows['near_fpr95'].mean())} | "
                     f"{_points(rows['far_fpr95'].mean())} |")
    far_sets = [c for c in candidates.columns if c.startswith("far_fpr95:")]
    lines += ["", "## Far sets (FPR95 %, mean over splits)", "",
              "| model | " + " | ".join(c.split(":", 1)[1] for c in far_sets) + " |",
              "|---|" + "---|" * len(far_sets)]
    for model, rows in chosen.groupby("model", sort=False):
        lines.append(f"| {model} | " + " | ".join(_points(rows[c].mean()) for c in far_sets)
                     + " |")
    inner_cost = timing[timing["fold"] >= 0]
    one = inner_cost["train_s"].sum()
    lines += ["", "## Cost", "",
              f"Inner folds: {one:.0f} s training, {inner_cost['score_s'].sum():.0f} s fitting "
              "and scoring every detector (features included), summed over splits, folds and "
              f"methods: scoring all {candidates['detector'].nunique()} detectors adds "
              f"{100 * inner_cost['score_s'].sum() / one:.0f}% to the training time."]
    return "\n".join(lines) + "\n"


# -- the run ----------------------------------------------------------------------------------

def check_settings(*, dataset="digits", splits=None, seed=0, split_seed=0, methods=("ce", "greg"),
                   detectors=tuple(DETECTORS), inner_folds=3, epochs=None, n_train=None,
                   n_aux=None, n_ood=None, model=None):
    """The checked :class:`skood.benchmark.BenchmarkConfig`; raises its
    :class:`~skood.benchmark.BenchmarkConfigError` or ValueError before any work."""
    for name in detectors:
        make_detector(name)
    if inner_folds < 1:
        raise ValueError(f"inner_folds must be at least 1, got {inner_folds!r}.")
    return BenchmarkConfig(dataset=dataset, splits=splits, split_seed=split_seed, seeds=(seed,),
                           methods=tuple(methods), epochs=epochs, n_train=n_train, n_aux=n_aux,
                           n_ood=n_ood, model=model, n_threads=1, progress=False)


def nested_detector_selection(*, n_jobs=1, n_generated=300, log=print, **settings):
    """Run every outer split; returns (candidates, inner, timing) DataFrames."""
    config = check_settings(**settings)
    methods = tuple(settings.get("methods", ("ce", "greg")))
    names = tuple(settings.get("detectors", tuple(DETECTORS)))
    far = load_far(config.dataset, n_ood=config.n_ood, data_home=config.data_home)
    for name, why in far[1].items():
        log(f"OOD set {name} skipped: {why}.")
    pool = outlier_pool(config.dataset, config.n_aux)
    runs = [(split, seed) for split in range(len(config.known_splits)) for seed in config.seeds]
    jobs = (delayed(run_split)(config, split, seed, far, pool, methods, names,
                               settings.get("inner_folds", 3), n_generated)
            for split, seed in runs)
    out = ([], [], [])
    start = time.perf_counter()
    for parts in Parallel(n_jobs=n_jobs, return_as="generator")(jobs):
        for store, part in zip(out, parts):
            store.append(part)
        picked = choices(parts[0]).set_index("model")["candidate"]
        log(f"split {parts[0]['split'].iloc[0]}: " + ", ".join(
            f"{rule} chose {picked[f'chosen:{rule}']}" for rule in RULES)
            + f" ({len(out[0])}/{len(runs)}, {time.perf_counter() - start:.0f} s)")
    return tuple(pd.concat(store, ignore_index=True) for store in out)


def build_parser():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="digits", choices=["digits", "fashion-mnist"])
    parser.add_argument("--splits", type=int, help="outer class splits (default: the "
                        "dataset's, 20 for digits and 10 for Fashion-MNIST)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--split-seed", type=int, default=0)
    parser.add_argument("--methods", nargs="+", default=["ce", "greg"])
    parser.add_argument("--detectors", nargs="+", default=list(DETECTORS))
    parser.add_argument("--inner-folds", type=int, default=3)
    parser.add_argument("--n-jobs", type=int, default=2, help="outer splits in parallel")
    parser.add_argument("--n-generated", type=int, default=300,
                        help="images per guard set (generated kinds, held-out photographs)")
    parser.add_argument("--model", help="the network (default: the dataset's)")
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--n-train", type=int)
    parser.add_argument("--n-aux", type=int)
    parser.add_argument("--n-ood", type=int)
    parser.add_argument("--out", default="nested-detector-selection")
    return parser


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.n_jobs == 0 or args.n_generated < 1:
        parser.error("--n-generated must be at least 1 and --n-jobs not 0")
    command = "python benchmarks/nested_detector_selection.py " + " ".join(
        shlex.quote(a) for a in (sys.argv[1:] if argv is None else argv))
    settings = dict(dataset=args.dataset, splits=args.splits, seed=args.seed,
                    split_seed=args.split_seed, methods=tuple(args.methods),
                    detectors=tuple(args.detectors), inner_folds=args.inner_folds,
                    epochs=args.epochs, n_train=args.n_train, n_aux=args.n_aux,
                    n_ood=args.n_ood, model=args.model)
    try:
        config = check_settings(**settings)
    except BenchmarkConfigError as error:
        parser.error(f"--{error.parameter.replace('_', '-')}: {error}")
    except (ValueError, TypeError) as error:
        parser.error(str(error).replace("inner_folds", "--inner-folds", 1))
    os.makedirs(args.out, exist_ok=True)
    start = time.perf_counter()
    candidates, inner, timing = nested_detector_selection(
        n_jobs=args.n_jobs, n_generated=args.n_generated, **settings)
    elapsed = time.perf_counter() - start
    for name, frame in (("candidates", candidates), ("inner", inner), ("timing", timing)):
        frame.to_csv(os.path.join(args.out, f"{name}.csv"), index=False)
    described = (f"{config.dataset}, {len(config.known_splits)} class splits, model "
                 f"{config.model}, {config.epochs} epochs")
    text = report(candidates, timing, command=command.strip(), settings=described,
                  elapsed_s=elapsed)
    with open(os.path.join(args.out, "report.md"), "w") as handle:
        handle.write(text)
    print(text)
    return candidates, inner, timing


if __name__ == "__main__":
    main()
