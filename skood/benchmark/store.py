"""The benchmark's results folder, written while the run goes on.

Each (class split, seed, training method) is appended to ``results.csv`` as
soon as it ends, finished or failed, and its scores are saved in ``scores/``,
so that a run stopped by Ctrl-C, a crash or a lost machine keeps every result
it finished. ``config.json`` beside them holds the settings the results
depend on (:data:`RESULT_SETTINGS`): a run with ``resume=True`` continues the
folder's run only when its settings are the same, skips what finished there
and tries again what failed or did not end. The runner adds each run's rows and
scores to a :class:`_Record`, which writes them to the folder, or keeps them in memory
when there is none.
"""
import glob
import json
import os

import numpy as np
import pandas as pd

from .methods import METRICS, TRAIN_METHOD

__all__ = ["COLUMNS", "RESULT_SETTINGS", "ResultsFolder", "resume_conflict", "TRAIN_METHOD"]

RESULTS = "results.csv"
SETTINGS = "config.json"
SCORES = "scores"
OK, FAILED = "ok", "failed"

#: ``results.csv``'s columns, in order; a failed run's rows (one per scored method) leave
#: ``ood_set``, ``group``, the metrics and ``accuracy`` empty and give the error. ``detector``
#: is the scored method's detector, ``score_s`` the seconds its fit and scoring took (the
#: network's training, ``train_s``, aside), ``choice`` (``ce_chosen`` rows only) each
#: candidate detector's mean FPR95 in % on the inner folds of held-out classes.
COLUMNS = ("split", "seed", "method", "detector", "ood_set", "group", "protocol",
           "known_classes", "heldout_classes", "penalty_fraction", "pool_factor", "aux",
           *METRICS, "accuracy", "train_s", "score_s", "choice", "start", "epochs", "lr",
           "status", "error")
#: the settings the results depend on: a resumed run must have the same. The folders,
#: progress bars and torch's thread count are left out: they do not change a result.
RESULT_SETTINGS = ("dataset", "protocol", "splits", "split_seed", "known_splits", "model",
                   "epochs", "device", "seeds", "methods", "detectors", "penalty",
                   "penalty_fraction", "pool_factor", "finetune", "finetune_epochs", "finetune_lr",
                   "aux", "n_train", "n_test", "n_aux", "n_ood", "batch_size", "lr", "m_in",
                   "m_out")


def settings(config):
    """The config's :data:`RESULT_SETTINGS` as JSON reads them back (tuples as lists)."""
    values = {name: getattr(config, name) for name in RESULT_SETTINGS}
    values["device"] = str(values["device"])
    return json.loads(json.dumps(values, default=lambda value: value.item()))


def resume_conflict(config):
    """Why ``config`` cannot continue the run in its ``out`` folder, or None when it can
    (also when the folder holds no results yet: the run then starts afresh)."""
    results = os.path.join(config.out, RESULTS)
    if not os.path.exists(results):
        return None
    path = os.path.join(config.out, SETTINGS)
    try:
        with open(path) as f:
            stored = json.load(f)
    except FileNotFoundError:
        return (f"resume: {results} has no {SETTINGS} beside it, so the settings it was made "
                f"with are unknown; give another out folder, or start {config.out} afresh by "
                "leaving this option out.")
    except (OSError, ValueError) as error:
        return (f"resume: {path} cannot be read ({error}); give another out folder, or start "
                f"{config.out} afresh by leaving this option out.")
    if "detectors" not in stored:
        return (f"resume: the results in {config.out} were made by a version of skood that "
                "scored every network with the energy alone (CE with MSP too) and wrote no "
                "detector column, so they cannot be continued; give another out folder, or "
                f"start {config.out} afresh by leaving this option out.")
    mine = settings(config)
    differ = [f"{name} {stored.get(name, '(not recorded)')!r} there, {mine[name]!r} now"
              for name in RESULT_SETTINGS if stored.get(name, "(not recorded)") != mine[name]]
    if differ:
        return (f"resume: the results in {config.out} were made with other settings "
                f"({'; '.join(differ)}); rerun with the settings in {path}, give another out "
                f"folder, or start {config.out} afresh by leaving this option out.")
    return None


def _train_rank(config):
    return {scored: config.train_methods.index(name) for scored, name in TRAIN_METHOD.items()
            if name in config.train_methods}


class ResultsFolder:
    """``results.csv``, ``config.json`` and ``scores/`` of one run, in ``config.out``.

    Opening it starts the folder afresh (an empty ``results.csv`` and the
    settings), or, with ``config.resume`` and results there, keeps the runs
    that finished: ``done`` holds their ``(split, seed, method)``. Failed runs
    are dropped, to be tried again; under fine-tuning a (split, seed) is kept
    only when all its methods finished, since they start from its CE network.

    Parameters
    ----------
    config : BenchmarkConfig
        With ``out`` set; ``resume_conflict(config)`` must be None.
    """

    def __init__(self, config):
        self.config = config
        self.path = os.path.join(config.out, RESULTS)
        self.scores_dir = os.path.join(config.out, SCORES)
        os.makedirs(self.scores_dir, exist_ok=True)
        self.done = set()
        if config.resume and os.path.exists(self.path):
            self._keep_finished()
        else:
            for stale in glob.glob(os.path.join(self.scores_dir, "split*_seed*_*.npz")):
                os.remove(stale)
            self._write(pd.DataFrame(columns=COLUMNS))
            with open(os.path.join(config.out, SETTINGS), "w") as f:
                json.dump(settings(config), f, indent=1)

    def _write(self, frame):
        """Replace ``results.csv`` at once (a stop while writing leaves the old file)."""
        partial = self.path + ".partial"
        frame.to_csv(partial, index=False)
        os.replace(partial, self.path)

    def _keep_finished(self):
        frame = self.read()
        frame["train_method"] = frame["method"].map(TRAIN_METHOD)
        status = frame.groupby(["split", "seed", "train_method"])["status"]
        finished = {run for run, values in status if set(values) == {OK}}
        if self.config.finetune:
            complete = {(split, seed) for split, seed, _ in finished
                        if all((split, seed, m) in finished for m in self.config.train_methods)}
            finished = {run for run in finished if run[:2] in complete}
        keep = [run in finished for run in
                zip(frame["split"], frame["seed"], frame["train_method"])]
        self._write(frame.loc[keep, list(COLUMNS)])
        self.done = finished

    def append(self, rows, scores=None):
        """Save one run's scores (``{scored method: {"id": array, ood_set: array, ...}}``),
        then append its rows (dicts with :data:`COLUMNS`): the rows say it finished."""
        first = rows[0]
        for name, sets in (scores or {}).items():
            np.savez(os.path.join(self.scores_dir,
                                  f"split{first['split']}_seed{first['seed']}_{name}.npz"),
                     **sets)
        text = pd.DataFrame(rows).reindex(columns=COLUMNS).to_csv(header=False, index=False)
        with open(self.path, "a") as f:
            f.write(text)     # one call: a Ctrl-C cannot leave half of the rows

    def read(self):
        """``results.csv`` as a frame, in run order (split, seed, method)."""
        frame = pd.read_csv(self.path,
                            dtype={name: str for name in ("method", "detector", "ood_set",
                                                          "group", "choice",
                                                          "known_classes", "heldout_classes",
                                                          "status", "error")})
        rank = _train_rank(self.config)
        seeds = {seed: i for i, seed in enumerate(self.config.seeds)}
        order = pd.DataFrame({"split": frame["split"], "seed": frame["seed"].map(seeds),
                              "method": frame["method"].map(rank)})
        return frame.loc[order.sort_values(list(order), kind="stable").index].reset_index(
            drop=True)

    def scores(self, results):
        """``scores[(split, seed)][scored method]`` of the finished runs of ``results``,
        from ``scores/`` (runs whose file is missing are left out)."""
        out = {}
        finished = results[results["status"] == OK].drop_duplicates(["split", "seed", "method"])
        for split, seed, name in zip(finished["split"], finished["seed"], finished["method"]):
            path = os.path.join(self.scores_dir, f"split{split}_seed{seed}_{name}.npz")
            if os.path.exists(path):
                with np.load(path) as sets:
                    out.setdefault((int(split), int(seed)), {})[name] = {
                        key: sets[key] for key in sets.files}
        return out


class _Record:
    """The rows and scores of the runs that ended: appended to the results folder when
    there is one (and read back from it at the end), else kept in memory."""

    def __init__(self, folder):
        self.folder, self.rows, self._scores = folder, [], {}
        self.done = folder.done if folder is not None else set()

    def add(self, rows, scores):
        if self.folder is not None:
            self.folder.append(rows, scores)
            return
        self.rows += rows
        if scores:
            self._scores.setdefault((rows[0]["split"], rows[0]["seed"]), {}).update(scores)

    def finish(self):
        """The results and scores, as :func:`~skood.benchmark.runner.run` returns them."""
        if self.folder is None:
            return pd.DataFrame(self.rows).reindex(columns=COLUMNS), self._scores
        results = self.folder.read()
        return results, self.folder.scores(results)
