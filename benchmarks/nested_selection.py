"""Nested selection without OOD data: does a search on held-out classes choose well?

On each outer class split of the digits benchmark (the generator and data of
``skood benchmark``: :class:`skood.benchmark.BenchmarkConfig`'s class splits
and the benchmark's run data per split and seed), a ``GridSearchCV`` on the 6
known classes' training rows *alone* chooses ``lambda_grad`` and the outlier
source of :class:`skood.GradRegOODClassifier` (the benchmark's digits MLP and
settings), with ``cv=HeldOutClassSplit(n_splits=--inner-folds, n_heldout=2)``:
each inner fold trains on 4 known classes and is scored on the other 2 as
near OOD. No OOD data of the outer split is used to choose.

**Outlier sources** in the grid (``synthesizer=``): the photograph crops of
the benchmark (``photos``: the run's ``X_aux``, handed over by
:class:`PhotoCrops`, a synthesizer that returns them whatever the training
rows), a synthesizer of :mod:`skood.synthesis` (made from each fit's training
rows only), or both (``photos+<synthesizer>``, :class:`Union`). The names are
those of ``skood benchmark --aux``.

**Far-OOD guard.** Held-out classes measure near OOD only, and a source that
helps there may leave noise or textures accepted. Each candidate is therefore
also scored, per inner fold, against images generated on the fly from the
training data's image shape and no OOD data: textures
(:func:`skood.datasets.make_texture_images`), Gaussian and uniform noise
(:func:`skood.datasets.make_noise_images`), ``--n-generated`` of each; the
*far* inner score is the worst (highest) FPR95 of the three. The search
chooses the candidate with the best **mean of the near FPR95 on the held-out
classes and that worst far FPR95** (``refit="selection"``), a combined score
rather than a hard constraint, so that a candidate that is perfect on the
generated images cannot win with poor near-OOD detection, and one that
accepts noise pays for it. Caveat: textures and noise come from the same
generators as three of the benchmark's four far test sets (with other seeds),
so the far guard is not blind to those; Fashion-MNIST (when installed) is the
far set it has never seen, reported on its own column.

**Compared on the outer split** (near = the 4 held-out digit classes, far =
the mean over the benchmark's far sets; FPR95, ID positive):

- ``selected``: the chosen candidate refit on all known training rows;
- ``greg``: fixed GReg (photos, ``lambda_grad=1``), the benchmark's ``greg``;
- ``energy_oe``: fixed energy-OE (photos), the benchmark's ``energy_oe``;
- ``ce_energy``: cross-entropy only, scored by -energy;
- ``oracle``: the grid candidate with the lowest near FPR95 on the *outer*
  near set, each candidate refit on all known training rows (``selected`` is
  one of those refits: ``refit`` of the search is the same fit).

Over splits (each split's value is the mean over its seeds), the report gives
the mean difference of ``selected`` to each of the others with a 95%
t-interval (:func:`skood.benchmark.paired_difference`), "better on K of N",
and the selection target as met or missed: near FPR95 below CE-energy's by
at least 20 points on average *and* better than CE-energy on at least 90% of
the splits (the splits better by at least 20 points are counted as well), far
FPR95 (mean over splits of the far-set mean) at most 1%, and near FPR95 within
3 points of the oracle on average.

Writes ``results.csv`` (one row per outer split, seed and model),
``candidates.csv`` (one row per outer split, seed and grid candidate: inner
scores, outer near and far) and ``report.md`` into ``--out``.

Run: python benchmarks/nested_selection.py [--splits 20] [--seeds 0] [--grid full]
     [--inner-folds 3] [--n-jobs 2] [--out nested-selection]

Cost (one torch thread per process; the digits benchmark's 12 epochs): the
default grid (``full``: 4 values of ``lambda_grad`` x 9 sources = 36
candidates, each fitted on 3 inner folds and refit once, plus the 3 fixed
models: 147 fits per split) took 94 s of wall-clock time and 70 s of CPU time
for one split, ``OMP_NUM_THREADS=1 python benchmarks/nested_selection.py
--splits 1 --n-jobs 1 --grid full --out /tmp/nested1full``, on a shared 2-core machine
(the process got 67% of a core). The default run, 20 splits in 2 processes,
thus takes about 12 minutes on 2 free cores (20 x 70 s / 2) and about 16
minutes at that load (20 x 94 s / 2). ``--grid small`` (3 x 5 = 15
candidates) took 45 s wall, 29 s CPU, for one split.
"""
import os

# One torch thread per process (before torch is imported): the digits MLP is too small
# for intra-op threads to pay, and --n-jobs runs class splits in parallel processes.
os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse  # noqa: E402
import math  # noqa: E402
import shlex  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import torch  # noqa: E402
from joblib import Parallel, delayed  # noqa: E402
from sklearn.base import BaseEstimator, clone  # noqa: E402
from sklearn.model_selection import GridSearchCV  # noqa: E402
from skorch.dataset import ValidSplit  # noqa: E402

from skood import GradRegOODClassifier  # noqa: E402
from skood.benchmark import (BenchmarkConfig, BenchmarkConfigError,  # noqa: E402
                             paired_difference)
from skood.benchmark.data import load_far, load_run, outlier_pool  # noqa: E402
from skood.benchmark.outlier_sources import PHOTOS, SYNTHESIZERS, parse_aux  # noqa: E402
from skood.benchmark.runner import make_estimator  # noqa: E402
from skood.datasets import make_noise_images, make_texture_images  # noqa: E402
from skood.metrics import fpr_at_tpr, make_ood_scorer, ood_report  # noqa: E402
from skood.model_selection import HeldOutClassSplit  # noqa: E402

DATASET = "digits"
#: the models of results.csv; ``selected`` is compared with each of the others
MODELS = ("selected", "oracle", "greg", "energy_oe", "ce_energy")
COMPARATORS = MODELS[1:]
#: image synthesizers of skood.synthesis (FeatureShuffle is for tabular rows)
IMAGE_SYNTHESIZERS = tuple(name for name in SYNTHESIZERS if name != "feature-shuffle")
#: ``--grid`` -> lambda_grad values and outlier sources (``--aux`` names)
GRIDS = {
    "small": dict(lambda_grad=(0.0, 1.0, 3.0),
                  sources=(PHOTOS, "patch-shuffle", "rotation",
                           "photos+patch-shuffle", "photos+rotation")),
    "full": dict(lambda_grad=(0.0, 0.3, 1.0, 3.0),
                 sources=(PHOTOS, *IMAGE_SYNTHESIZERS,
                          *(f"{PHOTOS}+{name}" for name in IMAGE_SYNTHESIZERS))),
}
#: the target of the selection, in FPR95 points
TARGET = dict(gain_over_ce=20.0, share_better=0.9, far_max=1.0, oracle_gap=3.0)


class PhotoCrops(BaseEstimator):
    """An outlier source that returns the given photograph crops, whatever the training rows.

    Lets a grid of ``synthesizer=`` values choose the photographs (the run's
    ``X_aux``) like any synthesizer.

    Parameters
    ----------
    images : ndarray of shape (n, 1, height, width)
    """

    def __init__(self, images=None):
        self.images = images

    def make_outliers(self, X, y=None, random_state=None):
        """The photographs (``X``, ``y`` and ``random_state`` unused)."""
        return self.images


class Union(BaseEstimator):
    """The outliers of several sources, one after the other.

    Parameters
    ----------
    sources : tuple of objects with ``make_outliers``
        Each is called once per fit with its own seed drawn from ``random_state``.
    """

    def __init__(self, sources=()):
        self.sources = sources

    def make_outliers(self, X, y=None, random_state=None):
        """Every source's outliers, concatenated in the order of ``sources``."""
        seeds = np.random.SeedSequence(random_state).spawn(len(self.sources))
        made = [source.make_outliers(X, y, int(seed.generate_state(1)[0]))
                for source, seed in zip(self.sources, seeds)]
        return np.concatenate([np.asarray(part, dtype=np.float32) for part in made])


def make_source(name, photos):
    """The ``synthesizer=`` value of the outlier source ``name`` (an ``--aux`` name)."""
    parts = [PhotoCrops(photos) if part == PHOTOS else SYNTHESIZERS[part]()
             for part in parse_aux(name)]
    return parts[0] if len(parts) == 1 else Union(tuple(parts))


def source_name(source):
    """The ``--aux`` name of a :func:`make_source` value."""
    if isinstance(source, PhotoCrops):
        return PHOTOS
    if isinstance(source, Union):
        return "+".join(source_name(part) for part in source.sources)
    return next(name for name, cls in SYNTHESIZERS.items() if type(source) is cls)


def network_training_rows(clf, X, y):
    """Indices of the rows of ``X, y`` that ``clf.fit(X, y, ...)`` trained its network on.

    ``X, y``: the in-distribution rows given to ``fit`` (no rows labelled ``-1``). The
    estimator's ``train_split``, a skorch ``ValidSplit``, keeps the training part of its
    split of these rows (stratified by class index); the rest are the held-out rows that
    calibrate ``offset_``. A detector must be fitted on these training rows alone, as the
    estimator fits its ``detector_``.

    Raises
    ------
    ValueError
        For another ``train_split`` (``None`` draws the calibration rows from the
        estimator's random state), or a ``ValidSplit`` whose split is not reproducible
        (a fraction without ``random_state``).
    """
    split = clf.train_split
    if not isinstance(split, ValidSplit) or (isinstance(split.cv, float)
                                             and split.random_state is None):
        raise ValueError(f"network_training_rows reproduces a ValidSplit with an integer cv "
                         f"or a seeded fraction, got train_split={split!r}.")
    encoded = np.searchsorted(clf.classes_, np.asarray(y))
    cv = split.check_cv(encoded)
    train, _ = next(iter(cv.split(np.arange(len(encoded)), encoded)))
    return train


def generated_sets(image_shape, n, random_state):
    """Textures, Gaussian and uniform noise made on the fly: no OOD data."""
    seeds = np.random.SeedSequence(random_state).generate_state(3)
    return {"textures": make_texture_images(n, image_shape, random_state=int(seeds[0])),
            "gaussian-noise": make_noise_images(n, image_shape, kind="gaussian",
                                                random_state=int(seeds[1])),
            "uniform-noise": make_noise_images(n, image_shape, kind="uniform",
                                               random_state=int(seeds[2]))}


class FarScorer:
    """The negated worst FPR95 of the known classes' rows against generated images.

    ``scorer(estimator, X, y)``: the rows of ``X`` whose label is among the
    estimator's ``classes_`` are in-distribution (positive); each generated set
    is OOD in turn.
    """

    def __init__(self, sets):
        self.sets = sets

    def __call__(self, estimator, X, y):
        scores_id = estimator.score_samples(np.asarray(X)[np.isin(y, estimator.classes_)])
        worst = 0.0
        for images in self.sets.values():
            scores = np.r_[scores_id, estimator.score_samples(images)]
            truth = np.r_[np.ones(len(scores_id)), np.zeros(len(images))]
            worst = max(worst, fpr_at_tpr(truth, scores))
        return 0.0 - worst


class SelectionScorer:
    """The search's criterion: minus the mean of near FPR95 (held-out classes) and far FPR95
    (:class:`FarScorer`); greater is better."""

    def __init__(self, sets):
        self.near = make_ood_scorer("fpr95")
        self.far = FarScorer(sets)

    def __call__(self, estimator, X, y):
        return (self.near(estimator, X, y) + self.far(estimator, X, y)) / 2


def grid_estimator(config, data):
    """The benchmark's GReg estimator, with the network's sizes left to each fit (an
    inner fold knows fewer classes than the outer split)."""
    params = make_estimator(config, "greg", data).get_params(deep=False)
    for name in ("module__n_features", "module__n_classes"):
        params.pop(name, None)
    return GradRegOODClassifier(**params)


def outer_scores(clf, data, energy=True):
    """Near and far FPR95 (fractions), near AUROC and accuracy of a fitted model."""
    scores_id = clf.score_samples(data.X_test)
    row, near, far = {}, [], []
    for name, images in data.ood.items():
        scores = np.r_[scores_id, clf.score_samples(images)]
        report = ood_report(np.r_[np.ones(len(scores_id)), np.zeros(len(images))], scores)
        if data.groups[name] == "near":
            near.append(report)
        else:
            far.append(report)
            row[f"far_fpr95:{name}"] = report["fpr95"]
    row.update(near_fpr95=np.mean([r["fpr95"] for r in near]),
               near_auroc=np.mean([r["auroc"] for r in near]),
               far_fpr95=np.mean([r["fpr95"] for r in far]),
               far_max_fpr95=np.max([r["fpr95"] for r in far]),
               accuracy=clf.score(data.X_test, data.y_test))
    return row


def run_split(config, split, seed, far, pool, grid, inner_folds, n_generated):
    """One outer (class split, seed): the search, every candidate's refit, the fixed models.

    Returns the rows of results.csv and of candidates.csv.
    """
    torch.set_num_threads(1)
    known = config.known_splits[split]
    data = load_run(DATASET, protocol="heldout", known_classes=known, seed=seed,
                    n_train=config.n_train, n_test=config.n_test, n_aux=config.n_aux,
                    n_ood=config.n_ood, data_home=config.data_home, far=far, pool=pool)
    cv_seed, generated_seed = np.random.SeedSequence([seed, *known, 22]).generate_state(2)
    sets = generated_sets(data.image_shape, n_generated, int(generated_seed))
    base = grid_estimator(config, data)
    param_grid = {"lambda_grad": list(grid["lambda_grad"]),
                  "synthesizer": [make_source(name, data.X_aux) for name in grid["sources"]]}
    search = GridSearchCV(
        base, param_grid, refit=False, error_score="raise", n_jobs=1,
        cv=HeldOutClassSplit(n_splits=inner_folds, n_heldout=2, random_state=int(cv_seed)),
        scoring={"near": make_ood_scorer("fpr95"), "far": FarScorer(sets),
                 "selection": SelectionScorer(sets)})
    start = time.perf_counter()
    search.fit(data.X_train, data.y_train)
    search_s = time.perf_counter() - start
    results = search.cv_results_
    # GridSearchCV's choice with refit="selection": the first candidate of rank 1
    chosen = int(np.flatnonzero(results["rank_test_selection"] == 1)[0])
    info = dict(split=split, seed=seed, known_classes=" ".join(map(str, known)),
                heldout_classes=" ".join(map(str, data.heldout_classes)))
    candidates = []
    for index, params in enumerate(results["params"]):
        start = time.perf_counter()
        clf = clone(base).set_params(**params).fit(data.X_train, data.y_train)
        candidates.append(dict(
            **info, candidate=index, lambda_grad=params["lambda_grad"],
            source=source_name(params["synthesizer"]),
            inner_near_fpr95=0.0 - results["mean_test_near"][index],
            inner_far_fpr95=0.0 - results["mean_test_far"][index],
            inner_selection=results["mean_test_selection"][index],
            chosen=index == chosen, **outer_scores(clf, data),
            train_s=time.perf_counter() - start))
    candidates = pd.DataFrame(candidates)
    oracle = int(candidates["near_fpr95"].to_numpy().argmin())
    rows = []
    for model, index in (("selected", chosen), ("oracle", oracle)):
        row = candidates.iloc[index]
        rows.append(dict(**info, model=model, **row.drop(list(info) + ["chosen"]).to_dict(),
                         search_s=search_s))
    for model, method in (("greg", "greg"), ("energy_oe", "energy_oe"), ("ce_energy", "ce")):
        start = time.perf_counter()
        clf = make_estimator(config, method, data).fit(data.X_train, data.y_train,
                                                       X_aux=data.X_aux)
        rows.append(dict(**info, model=model, candidate=-1,
                         lambda_grad=clf.lambda_grad if method != "ce" else np.nan,
                         source=PHOTOS if method != "ce" else "none",
                         **outer_scores(clf, data), train_s=time.perf_counter() - start))
    return pd.DataFrame(rows), candidates


def check_settings(*, splits=20, seeds=(0,), split_seed=0, grid="full", inner_folds=3,
                   epochs=None, n_train=None, n_aux=None, n_ood=None):
    """The run's checked settings: (:class:`skood.benchmark.BenchmarkConfig`, grid).

    Raises :class:`skood.benchmark.BenchmarkConfigError` for a bad benchmark
    setting and ValueError for a bad grid or ``inner_folds``, before any work.
    """
    grid = GRIDS[grid] if isinstance(grid, str) else grid
    for name in grid["sources"]:
        parse_aux(name)
    config = BenchmarkConfig(dataset=DATASET, splits=splits, split_seed=split_seed,
                             seeds=seeds, methods=("ce", "energy_oe", "greg"), epochs=epochs,
                             n_train=n_train, n_aux=n_aux, n_ood=n_ood, n_threads=1,
                             progress=False)
    n_known = len(config.known_splits[0])
    if not 1 <= inner_folds <= math.comb(n_known, 2):
        raise ValueError(f"inner_folds must be in [1, {math.comb(n_known, 2)}] (the choices of 2 "
                         f"held-out classes among {n_known}), got {inner_folds!r}.")
    return config, grid


def nested_selection(*, n_jobs=1, n_generated=300, log=print, **settings):
    """Run the nested selection on every (class split, seed); returns (results, candidates).

    ``settings``: those of :func:`check_settings` (checked first). ``grid``: a
    key of :data:`GRIDS` or a dict like its values. ``epochs``, ``n_train``,
    ``n_aux``, ``n_ood``: the benchmark's settings (None: its digits defaults).
    """
    config, grid = check_settings(**settings)
    inner_folds = settings.get("inner_folds", 3)
    far = load_far(DATASET, n_ood=config.n_ood, data_home=config.data_home)
    for name, why in far[1].items():
        log(f"OOD set {name} skipped: {why}.")
    pool = outlier_pool(DATASET, config.n_aux)
    runs = [(split, seed) for split in range(len(config.known_splits)) for seed in config.seeds]
    jobs = (delayed(run_split)(config, split, seed, far, pool, grid, inner_folds, n_generated)
            for split, seed in runs)
    results, candidates = [], []
    start = time.perf_counter()
    for rows, cands in Parallel(n_jobs=n_jobs, return_as="generator")(jobs):
        results.append(rows)
        candidates.append(cands)
        chosen = rows[rows["model"] == "selected"].iloc[0]
        log(f"split {chosen['split']} seed {chosen['seed']}: chose lambda_grad="
            f"{chosen['lambda_grad']:g}, {chosen['source']} "
            f"({len(results)}/{len(runs)} runs, {time.perf_counter() - start:.0f} s)")
    return pd.concat(results, ignore_index=True), pd.concat(candidates, ignore_index=True)


def per_split(results, column):
    """model x split: ``column``'s mean over each split's seeds."""
    return results.groupby(["model", "split"])[column].mean()


def comparisons(results):
    """``selected`` against every other model, over class splits, near and far FPR95.

    Returns
    -------
    pandas.DataFrame
        One row per (group, comparator): ``n`` (splits), ``mean_diff``,
        ``ci_low``, ``ci_high`` (``selected`` minus the comparator, FPR95
        points, 95% t-interval), ``n_better`` (splits where ``selected`` has
        the lower FPR95), ``selected_mean`` and ``comparator_mean`` (points).
    """
    rows = []
    for group in ("near", "far"):
        values = per_split(results, f"{group}_fpr95")
        for comparator in COMPARATORS:
            d = paired_difference(values.loc["selected"], values.loc[comparator])
            rows.append(dict(group=group, comparator=comparator, n=d["n"],
                             mean_diff=d["mean_diff"], ci_low=d["ci_low"],
                             ci_high=d["ci_high"], n_better=d["n_better"],
                             selected_mean=d["method_mean"], comparator_mean=d["baseline_mean"]))
    return pd.DataFrame(rows)


def target_check(results):
    """The selection target, criterion by criterion: (what, measured, met)."""
    near = per_split(results, "near_fpr95")
    far = per_split(results, "far_fpr95")
    gain = 100 * (near.loc["ce_energy"] - near.loc["selected"])
    n = len(gain)
    share = float((gain > 0).mean())
    oracle_gap = 100 * float((near.loc["selected"] - near.loc["oracle"]).mean())
    far_mean = 100 * float(far.loc["selected"].mean())
    n_big = int((gain >= TARGET["gain_over_ce"]).sum())
    return [
        (f"near FPR95 at least {TARGET['gain_over_ce']:g} points below CE-energy's on average",
         f"CE-energy minus selected: {gain.mean():+.2f} points",
         gain.mean() >= TARGET["gain_over_ce"]),
        (f"better than CE-energy on near FPR95 on at least {TARGET['share_better']:.0%} of "
         "the splits", f"{int((gain > 0).sum())} of {n} ({share:.0%}); at least "
         f"{TARGET['gain_over_ce']:g} points better on {n_big} of {n}",
         share >= TARGET["share_better"]),
        (f"far FPR95 at most {TARGET['far_max']:g}% (mean over splits of the far-set mean)",
         f"{far_mean:.2f}%", far_mean <= TARGET["far_max"]),
        (f"near FPR95 within {TARGET['oracle_gap']:g} points of the per-split oracle on average",
         f"selected minus oracle: {oracle_gap:+.2f} points", oracle_gap <= TARGET["oracle_gap"]),
    ]


def rank_agreement(candidates):
    """Per (split, seed): Spearman's rank correlation, over the grid's candidates, of the
    outer near FPR95 with the inner near FPR95 and with the inner selection score's FPR95
    (minus the score); 1 means the search ranks candidates as the outer near set does."""
    from scipy.stats import spearmanr

    rows = []
    for (split, seed), cands in candidates.groupby(["split", "seed"]):
        rows.append(dict(split=split, seed=seed,
                         near=spearmanr(cands["inner_near_fpr95"], cands["near_fpr95"])[0],
                         selection=spearmanr(-cands["inner_selection"], cands["near_fpr95"])[0]))
    return pd.DataFrame(rows)


def _points(value):
    return f"{100 * value:.2f}"


def report(results, candidates, *, command, grid, inner_folds, elapsed_s):
    """The markdown report."""
    lines = ["# Nested selection without OOD data (digits)", "",
             f"Command: `{command}` ({elapsed_s:.0f} s).", "",
             f"Grid: lambda_grad in {list(grid['lambda_grad'])}, outlier sources "
             f"{list(grid['sources'])}; inner cv: HeldOutClassSplit(n_splits={inner_folds}, "
             "n_heldout=2) on the known classes' training rows; chosen by the mean of the "
             "held-out-class FPR95 and the worst FPR95 on generated textures and noise.", "",
             "## Per split (FPR95, %)", "",
             "| split | known | chosen | oracle | " + " | ".join(
                 f"near {m}" for m in MODELS) + " | " + " | ".join(f"far {m}" for m in MODELS)
             + " |",
             "|" + "---|" * (4 + 2 * len(MODELS))]
    for (split, seed), rows in results.groupby(["split", "seed"]):
        rows = rows.set_index("model")
        pick = [f"{rows.loc[m, 'source']}, λ={rows.loc[m, 'lambda_grad']:g}"
                for m in ("selected", "oracle")]
        lines.append(f"| {split} (seed {seed}) | {rows.iloc[0]['known_classes']} | {pick[0]} | "
                     f"{pick[1]} | "
                     + " | ".join(_points(rows.loc[m, "near_fpr95"]) for m in MODELS) + " | "
                     + " | ".join(_points(rows.loc[m, "far_fpr95"]) for m in MODELS) + " |")
    table = comparisons(results)
    lines += ["", "## Selected against the others, over class splits", "",
              "Selected minus the other model, FPR95 points (negative: the selected model "
              "is better), 95% t-interval over splits.", "",
              "| group | against | mean (selected) | mean (other) | difference | 95% interval "
              "| better on |", "|---|---|---|---|---|---|---|"]
    for _, row in table.iterrows():
        lines.append(f"| {row['group']} | {row['comparator']} | {row['selected_mean']:.2f} | "
                     f"{row['comparator_mean']:.2f} | {row['mean_diff']:+.2f} | "
                     f"[{row['ci_low']:.2f}, {row['ci_high']:.2f}] | "
                     f"{row['n_better']} of {row['n']} |")
    lines += ["", "## Target", ""]
    for what, measured, met in target_check(results):
        lines.append(f"- {'met' if met else 'missed'}: {what}: {measured}.")
    far_sets = [c for c in results.columns if c.startswith("far_fpr95:")]
    means = results.groupby("model")[far_sets].mean().loc[list(MODELS)]
    lines += ["", "## Far sets (FPR95, %, mean over runs)", "",
              "| model | " + " | ".join(c.split(":", 1)[1] for c in far_sets) + " |",
              "|---|" + "---|" * len(far_sets)]
    lines += [f"| {model} | " + " | ".join(_points(v) for v in row) + " |"
              for model, row in means.iterrows()]
    agreement = rank_agreement(candidates)
    lines += ["", "## Does the search rank candidates as the outer near set does?", "",
              "Spearman's rank correlation over the grid's candidates between the inner "
              "score and the outer near FPR95, mean over runs (range): held-out-class FPR95 "
              f"alone {agreement['near'].mean():.2f} ({agreement['near'].min():.2f} to "
              f"{agreement['near'].max():.2f}); the selection score "
              f"{agreement['selection'].mean():.2f} ({agreement['selection'].min():.2f} to "
              f"{agreement['selection'].max():.2f})."]
    chosen = candidates[candidates["chosen"]].groupby(["source", "lambda_grad"]).size()
    lines += ["", "## Choices", "", "| source | lambda_grad | chosen on |", "|---|---|---|"]
    lines += [f"| {source} | {lam:g} | {count} |" for (source, lam), count in chosen.items()]
    return "\n".join(lines) + "\n"


def build_parser():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--splits", type=int, default=20, help="outer class splits")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--split-seed", type=int, default=0)
    parser.add_argument("--grid", choices=sorted(GRIDS), default="full")
    parser.add_argument("--inner-folds", type=int, default=3)
    parser.add_argument("--n-jobs", type=int, default=2, help="outer runs in parallel")
    parser.add_argument("--n-generated", type=int, default=300,
                        help="generated images per kind for the far guard")
    parser.add_argument("--epochs", type=int, help="training epochs (default: the benchmark's)")
    parser.add_argument("--n-train", type=int)
    parser.add_argument("--n-aux", type=int)
    parser.add_argument("--n-ood", type=int)
    parser.add_argument("--out", default="nested-selection")
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    if args.n_jobs == 0 or args.n_generated < 1:
        build_parser().error("--n-generated must be at least 1 and --n-jobs not 0")
    command = "python benchmarks/nested_selection.py " + " ".join(
        shlex.quote(a) for a in (sys.argv[1:] if argv is None else argv))
    settings = dict(splits=args.splits, seeds=tuple(args.seeds), split_seed=args.split_seed,
                    grid=args.grid, inner_folds=args.inner_folds, epochs=args.epochs,
                    n_train=args.n_train, n_aux=args.n_aux, n_ood=args.n_ood)
    try:
        check_settings(**settings)
    except BenchmarkConfigError as error:
        build_parser().error(f"--{error.parameter.replace('_', '-')}: {error}")
    except ValueError as error:
        build_parser().error(str(error).replace("inner_folds", "--inner-folds", 1))
    os.makedirs(args.out, exist_ok=True)
    start = time.perf_counter()
    results, candidates = nested_selection(n_jobs=args.n_jobs, n_generated=args.n_generated,
                                           **settings)
    elapsed = time.perf_counter() - start
    results.to_csv(os.path.join(args.out, "results.csv"), index=False)
    candidates.to_csv(os.path.join(args.out, "candidates.csv"), index=False)
    text = report(results, candidates, command=command, grid=GRIDS[args.grid],
                  inner_folds=args.inner_folds, elapsed_s=elapsed)
    with open(os.path.join(args.out, "report.md"), "w") as handle:
        handle.write(text)
    print(text)
    return results, candidates


if __name__ == "__main__":
    main()
