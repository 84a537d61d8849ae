"""The benchmark's runs: train and score every method on every class split and seed."""
import os
import sys
import time
from contextlib import nullcontext

import joblib
import numpy as np
import torch
from sklearn.utils import Bunch
from threadpoolctl import threadpool_limits

from .._classifier import DEFAULT_SGD_MOMENTUM, GradRegOODClassifier
from ..metrics import ood_report
from .config import _OWN_KEYWORDS, DEFAULT_POOL_FACTOR, DEFAULT_SEEDS, BenchmarkConfig
from .data import DATASETS, _capped_notes, check_id_data, load_far, load_run, outlier_pool
from .interrupt import BenchmarkInterrupted, _CtrlC
from .detector_choice import choose_detector
from .detector_scores import HeldOutRows, fit_detectors, score_rows
from .methods import (CHOSEN, DEFAULT_DETECTORS, DETECTOR_OF, METHOD_SPECS, METHODS, METRICS,
                      START_METHOD, module_params, scored_methods, scored_name)
from .outlier_sources import PHOTOS, make_synthesizer, uses_photos
from .store import FAILED, OK, ResultsFolder, _Record

__all__ = ["run_benchmark", "run", "make_estimator", "BenchmarkInterrupted"]


def run_benchmark(dataset="digits", *, protocol="heldout", splits=None, split_seed=0,
                  model=None, epochs=None, device="cpu", seeds=DEFAULT_SEEDS, methods=METHODS,
                  detectors=DEFAULT_DETECTORS, save_models=None, progress=True, data_home=None,
                  penalty="exact", penalty_fraction=1.0, log=None, pool_factor=DEFAULT_POOL_FACTOR,
                  finetune=False, finetune_epochs=None, finetune_lr=None, aux=PHOTOS,
                  **overrides):
    """Train every method on every class split for every seed, and score it on every OOD set.

    A *run* is one (class split, seed): every method of a run sees the same
    data, outliers, initial-weight seed and batch order. The seed varies all
    of a run's randomness (see :func:`load_benchmark_data`): the train/test
    split, the subsampling, the draw of auxiliary outliers, the network's
    initialisation and the batch order; these depend on the seed and the
    split's known classes only, so a split and seed give the same data in any
    run. The far OOD sets are the same for every run. Every setting is checked
    (:class:`BenchmarkConfig`) before any data is loaded or model trained.

    Parameters
    ----------
    dataset : {"digits", "fashion-mnist", "cifar10", "cifar100"}
    protocol : {"heldout", "full"}, default="heldout"
        ``heldout``: each class split trains on its known classes and the
        test images of its held-out classes are the near OOD set; ``full``: all
        classes, one split, far OOD sets only.
    splits : int, "neal" or None, default=None
        The number of class splits drawn by :func:`draw_class_splits` (seeded
        by ``split_seed``), or ``"neal"``: the five fixed splits
        :data:`HELDOUT_SPLITS`. None: the dataset's default (:data:`DEFAULTS`).
    split_seed : int, default=0
        Seeds the draw of the class splits.
    model, epochs : optional
        Default per dataset (:data:`DEFAULTS`).
    device : str
    seeds : sequence of int, default=(0,)
        Every class split runs once per seed.
    methods : subset of :data:`METHODS`
    detectors : sequence of str, default=("energy", "vim", "knn", "fused")
        Names of :data:`skood.detectors.DETECTORS`: every trained network is
        scored by each (one training, many scores), fitted on the rows that
        network trained on (see :mod:`skood.benchmark.detector_scores`). With
        two or more, each run also trains one cross-entropy network per inner
        fold of held-out classes to choose one for ``ce_chosen``
        (:mod:`skood.benchmark.detector_choice`).
    save_models : str or None
        Folder to save every fitted model in with joblib.
    progress : bool
        Progress bars, when the standard error is a terminal (off otherwise,
        so that logs get no partial lines).
    data_home : str or None
        Folder with the dataset's files (see :func:`skood.datasets.load_fashion_mnist`,
        :func:`skood.datasets.load_cifar10`) and, for CIFAR, its far sets.
    penalty : {"exact", "fd"}
    penalty_fraction : float in (0, 1], default=1.0
        The estimator's ``penalty_fraction`` for GReg and GReg+.
    log : callable or None
        Called with a line of text for each OOD set that is skipped (and why),
        before any training, and where ``n_train`` or ``n_test`` exceeds the
        rows available (the first time).
    pool_factor : int, default: :class:`skood.EnergySampler`'s
        GReg+'s candidates per ID sample (the sampler's ``pool_factor``; its
        default is the paper's setting). Scoring the candidates is most of
        what GReg+ costs beyond GReg; ``docs/tuning.md`` measures smaller pools.
    finetune : bool, default=False
        False: every method trains from scratch (random initial weights).
        True: the fine-tuning protocol: per run, ``ce`` trains from scratch as
        usual, then each outlier method (``energy_oe``, ``greg``,
        ``greg_plus``) trains a copy of that run's CE network
        (:meth:`GradRegOODClassifier.from_pretrained`) for ``finetune_epochs``
        epochs at learning rate ``finetune_lr``. ``ce`` is trained (and
        reported) even when ``methods`` leaves it out, since it is the starting
        point.
    finetune_epochs : int or None
        Fine-tuning epochs (None: the dataset's ``finetune_epochs`` in
        :data:`DEFAULTS`); only with ``finetune=True``.
    finetune_lr : float or None
        Fine-tuning learning rate (None: the dataset's ``finetune_lr`` in
        :data:`DEFAULTS`); only with ``finetune=True``.
    aux : str, default="photos"
        The outlier methods' auxiliary outliers: ``"photos"`` (crops of
        photographs, drawn per run from a fixed pool), the hyphenated
        lower-case name of a synthesizer of :mod:`skood.synthesis`
        (``"patch-shuffle"``, ``"class-mix"``, ``"rotation"``,
        ``"blur-noise"``, ``"feature-shuffle"``: ``AUX_SOURCES`` of
        ``skood.benchmark.outlier_sources``), or photos and one
        synthesizer joined with ``+`` (``"photos+patch-shuffle"``: both). A
        synthesizer is passed to each outlier method's estimator as
        ``synthesizer=`` (a new instance with its default parameters), so that
        its outliers are made from that fit's training rows only, seeded by
        the estimator's ``random_state`` (the run's estimator seed); without
        ``photos`` no ``X_aux`` is passed. ``ce`` trains without outliers
        whatever the source.
    **overrides
        ``n_train, n_test, n_aux, n_ood, batch_size, lr, m_in, m_out,
        n_threads``: replace the dataset's default (None keeps it); any other
        name is an error. ``n_threads`` sets torch's CPU threads and those
        of numpy's BLAS and OpenMP pools (threadpoolctl) for the run
        (restored afterwards). ``n_train`` and ``n_test`` are caps on random
        subsamples (all rows are used when fewer are available, which ``log``
        reports); ``n_train`` must be at least 10 per known class
        (``skood.benchmark.config.MIN_TRAIN_PER_CLASS``).

    Returns
    -------
    results : pandas.DataFrame
        One row per (class split, seed, scored method, OOD set): ``split``
        (the split's index, in run order), ``seed``, ``method`` (the scored
        method, :func:`~skood.benchmark.methods.scored_name`), ``detector``,
        ``ood_set, group`` (``near`` or ``far``), ``protocol``, ``known_classes`` and
        ``heldout_classes`` (original labels, space-separated),
        ``penalty_fraction``, ``pool_factor`` (GReg+'s, recorded on every
        row), ``aux`` (the outlier source, on every row), the four metrics,
        the ID accuracy, the training time in seconds
        (``train_s``; for a fine-tuned method, the fine-tuning only, without
        the CE training it started from), ``score_s`` (the seconds the
        detector's fit and scoring took; for ``ce_chosen``, the whole choice,
        its inner trainings included), ``choice`` (``ce_chosen`` only: each
        candidate's mean inner FPR95 in %), ``start`` (``"scratch"``, or ``"ce"``
        for a method fine-tuned from the run's CE network), the ``epochs``
        and ``lr`` the method trained with, ``status`` (``"ok"``, or
        ``"failed"`` when its fit, a detector or the choice raised: the run
        goes on) and ``error`` (the exception's type and message; empty
        when ``ok``). A failed method has one row per scored method, with
        ``ood_set``, ``group``, the metrics and the accuracy empty; the
        statistics of :mod:`skood.benchmark.stats` leave such rows out.
    scores : dict
        ``scores[(split, seed)][scored_method]`` = dict with ``"id"`` and one
        entry per OOD set: the score arrays (for figures), in run order, for
        the methods that finished.
    data : Bunch
        What :func:`load_benchmark_data` returns for the first run trained
        (the first split and the first seed listed, unless a resumed run had
        finished them), with ``split``, ``skipped`` and ``notes`` (lines
        saying where ``n_train`` or ``n_test`` exceeded the rows available,
        all of which are then used); only ``skipped`` and ``notes`` when no
        run was trained.

    Raises
    ------
    BenchmarkInterrupted
        On Ctrl-C (a KeyboardInterrupt); it holds the three values above for
        the runs that ended before it.

    Examples
    --------
    >>> results, scores, _ = run_benchmark("digits", epochs=1, methods=("ce",), progress=False,
    ...                                    detectors=("knn",), splits=1, n_train=100, n_aux=100,
    ...                                    n_ood=20)
    >>> sorted(results["method"].unique()), sorted(results["group"].unique())
    (['ce_knn'], ['far', 'near'])
    """
    settable = set(next(iter(DATASETS.values())).defaults) - set(_OWN_KEYWORDS)
    if set(overrides) - settable:
        raise TypeError(f"run_benchmark got unknown settings {sorted(set(overrides) - settable)}; "
                        f"it takes {sorted(settable)} (and model=, epochs=, splits=, "
                        "finetune_epochs=, finetune_lr=).")
    config = BenchmarkConfig(
        dataset=dataset, protocol=protocol, splits=splits, split_seed=split_seed, model=model,
        epochs=epochs, device=device, seeds=seeds, methods=methods, detectors=detectors,
        save_models=save_models, progress=progress, data_home=data_home, penalty=penalty,
        penalty_fraction=penalty_fraction, pool_factor=pool_factor, finetune=finetune,
        finetune_epochs=finetune_epochs, finetune_lr=finetune_lr, aux=aux, **overrides)
    return run(config, log=log)


def run(config, log=None):
    """Run the benchmark a :class:`BenchmarkConfig` describes; returns what
    :func:`run_benchmark` returns.

    With ``config.out`` set, each (split, seed, method) is appended to
    ``out/results.csv`` (and its scores to ``out/scores/``) as it ends
    (:class:`~skood.benchmark.store.ResultsFolder`), and the results returned
    are read back from there, in run order: with ``config.resume``, those of
    the earlier run as well. A method whose fit (or scoring) raises an
    exception gets rows with ``status="failed"`` and the error, and the run
    goes on. Ctrl-C raises :class:`BenchmarkInterrupted`, which holds what
    finished.
    """
    if config.finetune and START_METHOD not in config.methods and log is not None:
        log(f"finetune: training {START_METHOD} as well, the starting point of the other "
            "methods.")
    check_id_data(config.dataset, config.data_home)   # missing files stop the run at once
    far = load_far(config.dataset, n_ood=config.n_ood, data_home=config.data_home)
    for name, why in far[1].items():
        if log is not None:
            log(f"OOD set {name} skipped: {why}.")
    pool = outlier_pool(config.dataset, config.n_aux)
    folder = None if config.out is None else ResultsFolder(config)
    if folder is not None and folder.done and log is not None:
        log(f"resume: {len(folder.done)} (split, seed, method) runs finished in "
            f"{folder.path} are kept; the others run now.")
    record = _Record(folder)
    threads = torch.get_num_threads()
    if config.n_threads:
        torch.set_num_threads(config.n_threads)
    first, interrupted = Bunch(skipped=dict(far[1]), notes=[]), False
    # numpy's BLAS and OpenMP pools too (the detectors' algebra): on a few shared cores, their
    # default of one thread per core costs more than it gains on the benchmark's small arrays
    pools = threadpool_limits(limits=config.n_threads) if config.n_threads else nullcontext()
    try:
        with _CtrlC() as ctrl_c, pools:
            _train_and_score(config, far, pool, log, record, first, ctrl_c)
    except KeyboardInterrupt:
        interrupted = True
    finally:
        torch.set_num_threads(threads)
    results, scores = record.finish()
    if interrupted:
        raise BenchmarkInterrupted(results, scores, first)
    return results, scores, first


def _classes_text(classes):
    return " ".join(str(c) for c in classes)


def _bars(config):
    """Progress bars: asked for, and the standard error is a terminal."""
    return config.progress and sys.stderr.isatty()


def make_estimator(config, method, data, start_from=None):
    """The unfitted estimator the benchmark trains for one run and method.

    Parameters
    ----------
    config : BenchmarkConfig
    method : str
        One of :data:`METHODS`.
    data : Bunch
        The run's data (:func:`load_benchmark_data`): its image shape, number
        of classes and estimator seed.
    start_from : GradRegOODClassifier or None, default=None
        None: a new network; else a copy of this fitted one to fine-tune.

    Returns
    -------
    GradRegOODClassifier
        With a :class:`~skood.benchmark.detector_scores.HeldOutRows` among its
        ``callbacks``: after ``fit``, the rows the run's detectors are fitted on.
    """
    epochs = config.epochs if start_from is None else config.finetune_epochs
    recipe = config.spec.recipe.estimator_params(epochs)
    schedule = recipe.pop("schedule")
    # the schedule belongs to training from scratch; fine-tuning keeps finetune_lr throughout
    callbacks = schedule if start_from is None else []
    callbacks.append(HeldOutRows())     # the rows the run's detectors are fitted on
    if _bars(config):
        from skorch.callbacks import ProgressBar
        callbacks.append(ProgressBar(postfix_keys=["train_loss"]))
    common = dict(**METHOD_SPECS[method].estimator_params(config.pool_factor),
                  penalty=config.penalty, penalty_fraction=config.penalty_fraction,
                  m_in=config.m_in, m_out=config.m_out,
                  optimizer__momentum=DEFAULT_SGD_MOMENTUM, **recipe,
                  batch_size=config.batch_size, callbacks=callbacks,
                  device=config.device, random_state=data.estimator_seed, verbose=0)
    synthesizer = make_synthesizer(config.aux) if METHOD_SPECS[method].uses_outliers else None
    if synthesizer is not None:
        common["synthesizer"] = synthesizer
    if start_from is not None:
        return GradRegOODClassifier.from_pretrained(
            start_from, max_epochs=epochs, lr=config.finetune_lr, **common)
    return GradRegOODClassifier(**module_params(config.model, data.image_shape, data.n_classes,
                                                data.channels),
                                max_epochs=epochs, lr=config.lr, **common)


def _train_and_score(config, far, pool, log, record, first, ctrl_c):
    """Train and score every (split, seed, method) not in ``record.done``, adding each
    to ``record`` as it ends; under fine-tuning the outlier methods start from the run's
    network of the start method (trained first). ``first`` gets the first run's data
    and ``notes``: where ``n_train`` or ``n_test`` exceeded the rows available."""
    noted, loaded = set(), False
    runs = [(split, seed) for split in range(len(config.known_splits)) for seed in config.seeds]
    todo = [(split, seed, method) for split, seed in runs for method in config.train_methods
            if (split, seed, method) not in record.done]
    # a context, so that the bar is closed on Ctrl-C too
    with _progress(total=len(todo), desc="benchmark", disable=not _bars(config)) as bar:
        for split, seed in runs:
            methods = [m for s, d, m in todo if (s, d) == (split, seed)]
            if not methods:
                continue
            data = load_run(config.dataset, protocol=config.protocol,
                            known_classes=config.known_splits[split], seed=seed,
                            n_train=config.n_train, n_test=config.n_test, n_aux=config.n_aux,
                            n_ood=config.n_ood, data_home=config.data_home, far=far, pool=pool)
            data.split = split
            if not loaded:
                loaded = True
                first.update({k: v for k, v in data.items() if k != "notes"})
            for line in _capped_notes(config, data, noted):
                first.notes.append(line)
                if log is not None:
                    log(line)
            start_net, start_failed = None, None
            for method in methods:
                bar.set_postfix_str(f"split {split}, seed {seed}, {method}")
                clf, failure = _run_method(config, method, data, record, log, ctrl_c, start_net,
                                           start_failed)
                if config.finetune and not METHOD_SPECS[method].uses_outliers:
                    start_net, start_failed = clf, failure
                bar.update(1)


def _run_method(config, method, data, record, log, ctrl_c, start_net, start_failed):
    """Train and score one method on one run's data and add its rows to ``record``; an
    exception it raises becomes rows with ``status="failed"`` and its message. Under
    fine-tuning an outlier method starts from ``start_net``, or fails when the start
    method did (``start_failed``: its message). Returns (the estimator or None, the
    failure's message or None)."""
    spec = METHOD_SPECS[method]
    tuned = config.finetune and spec.uses_outliers
    run_info = dict(split=data.split, seed=data.seed, protocol=data.protocol,
                    known_classes=_classes_text(data.known_classes),
                    heldout_classes=_classes_text(data.heldout_classes),
                    penalty_fraction=config.penalty_fraction, pool_factor=config.pool_factor,
                    aux=config.aux, start=START_METHOD if tuned else "scratch",
                    epochs=config.finetune_epochs if tuned else config.epochs,
                    lr=config.finetune_lr if tuned else config.lr)
    start = time.perf_counter()
    try:
        if tuned and start_failed:
            raise RuntimeError(f"not trained: its starting point {START_METHOD} failed "
                               f"({start_failed})")
        clf, rows, scores = _fit_and_score(config, method, data, run_info, ctrl_c,
                                           start_net if tuned else None)
    except Exception as error:
        if ctrl_c.pressed:    # the error came from a fit cut short by Ctrl-C
            raise KeyboardInterrupt from error
        message = f"{type(error).__name__}: {error}"
        if log is not None:
            log(f"split {data.split}, seed {data.seed}: {method} failed, recorded in the "
                f"results and left out of the statistics: {message}")
        record.add([dict(run_info, method=name, detector=DETECTOR_OF.get(name),
                         train_s=time.perf_counter() - start, status=FAILED, error=message)
                    for name in scored_methods((method,), config.detectors)], None)
        return None, message
    for row in rows:
        if row["status"] == FAILED and log is not None:
            log(f"split {data.split}, seed {data.seed}: {row['method']} failed, recorded in "
                f"the results and left out of the statistics: {row['error']}")
    record.add(rows, scores)
    return clf, None


def _fit(config, data, clf, X, y, X_aux, ctrl_c):
    """Fit ``clf`` on these rows as the dataset's recipe trains; the fit's split (its
    :class:`HeldOutRows`) and the training time in seconds."""
    start = time.perf_counter()
    clf.fit(**config.spec.recipe.fit_inputs(X, y, X_aux, data.image_shape, data.estimator_seed,
                                            fill=config.spec.black_level))
    seconds = time.perf_counter() - start
    if ctrl_c.pressed:   # the fit was cut short: stop without recording it
        raise KeyboardInterrupt
    return next(cb for cb in clf.callbacks if isinstance(cb, HeldOutRows)), seconds


def _fit_and_score(config, method, data, run_info, ctrl_c, start_from):
    """Train one method on one run's data and score its network with each of the run's
    detectors (one training, many scores): (estimator, rows, scores). A detector whose fit
    or scoring fails gets rows with ``status="failed"``; the others are scored."""
    clf = make_estimator(config, method, data, start_from)
    held_out, train_s = _fit(config, data, clf, data.X_train, data.y_train,
                             data.X_aux if uses_photos(config.aux) else None, ctrl_c)
    fitted, score_s = fit_detectors(clf, config.detectors, held_out)
    held_out.forget()
    if config.save_models:
        joblib.dump(clf, os.path.join(
            config.save_models,
            f"{config.dataset}_{method}_split{data.split}_seed{data.seed}.joblib"))
    run_info = dict(run_info, accuracy=clf.score(data.X_test, data.y_test), train_s=train_s)
    per_set = {}
    for set_name, X in {"id": data.X_test, **data.ood}.items():
        per_set[set_name], seconds = score_rows(clf, fitted, X)
        score_s = {name: score_s[name] + seconds[name] for name in score_s}
    rows, scores = [], {}
    for detector in config.detectors:
        name = scored_name(method, detector)
        sets = {set_name: values[detector] for set_name, values in per_set.items()}
        info = dict(run_info, method=name, detector=detector, score_s=score_s[detector])
        error = next((v for v in sets.values() if isinstance(v, Exception)), None)
        if error is None and not all(np.isfinite(v).all() for v in sets.values()):
            error = ValueError(f"{detector} gave non-finite scores")
        if error is not None:
            rows.append(dict(info, status=FAILED, error=f"{type(error).__name__}: {error}"))
            continue
        rows += [dict(info, ood_set=ood_name, group=data.groups[ood_name],
                      **_metrics(sets["id"], sets[ood_name]), status=OK, error=None)
                 for ood_name in data.ood]
        scores[name] = sets
    if CHOSEN in scored_methods((method,), config.detectors):
        rows += _chosen_rows(config, data, rows, ctrl_c)
    return clf, rows, scores


def _metrics(id_scores, ood_scores):
    y_true = np.r_[np.ones(len(id_scores)), np.zeros(len(ood_scores))]
    return ood_report(y_true, np.r_[id_scores, ood_scores])


def _chosen_rows(config, data, ce_rows, ctrl_c):
    """The rows of :data:`CHOSEN`: those of the CE network scored by the detector chosen
    on held-out classes of the run's training rows (``choice``: every candidate's mean
    inner FPR95; ``score_s``: the time the choice took, its inner trainings included)."""
    start = time.perf_counter()

    def fit_network(X, y):
        # a fold's network has an output per class it trains on
        fold = Bunch(**{**data, "n_classes": len(np.unique(y))})
        clf = make_estimator(config, START_METHOD, fold)
        return clf, _fit(config, data, clf, X, y, None, ctrl_c)[0]

    try:
        chosen, inner = choose_detector(fit_network, data.X_train, data.y_train,
                                        config.detectors, random_state=data.estimator_seed)
    except Exception as error:
        return [dict(ce_rows[0], method=CHOSEN, detector=None, ood_set=None, group=None,
                     **{metric: None for metric in METRICS}, status=FAILED,
                     error=f"choosing the detector: {type(error).__name__}: {error}")]
    choice = "; ".join(f"{name} {100 * fpr:.2f}" for name, fpr in inner.items())
    elapsed = time.perf_counter() - start
    return [dict(row, method=CHOSEN, score_s=elapsed, choice=choice)
            for row in ce_rows if row["method"] == scored_name(START_METHOD, chosen)]


def _progress(iterable=None, **kwargs):
    from tqdm.auto import tqdm
    return tqdm(iterable, **kwargs)
