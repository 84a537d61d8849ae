"""Nothing a benchmark run finished is lost: each (split, seed, method) reaches
results.csv as it ends, a failing fit is recorded and the run goes on, Ctrl-C
ends the run with a report of what finished, and --resume runs only what is
missing."""
import signal

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("skimage")

from skood import GradRegOODClassifier  # noqa: E402
from skood.benchmark import BenchmarkConfig, BenchmarkConfigError, scored_methods  # noqa: E402
from skood.cli import main  # noqa: E402
from skood.exceptions import NonFiniteLossError  # noqa: E402
from helpers import SMOKE_RUN_WARNINGS  # noqa: E402

pytestmark = SMOKE_RUN_WARNINGS

#: fits in run order: split 0's ce, energy_oe, greg, then split 1's (the inner CE fits that
#: choose ce_chosen's detector after each ce are counted apart, in ``fits.inner``)
ORDER = [(split, method) for split in (0, 1) for method in ("ce", "energy_oe", "greg")]
#: the run's detectors: two, so that each run also chooses one for ce_chosen
DETECTORS = ("energy", "knn")


def command(out, *extra):
    return ["benchmark", "--methods", "ce", "energy_oe", "greg", "--detectors", *DETECTORS,
            "--epochs", "1", "--splits", "2", "--n-train", "120", "--n-aux", "60", "--n-ood",
            "20", "--quiet", "--out", str(out), *extra]


def scored(*pairs):
    """{(split, scored method)} of these (split, training method) pairs."""
    return {(split, name) for split, method in pairs
            for name in scored_methods((method,), DETECTORS)}


@pytest.fixture
def fits(monkeypatch):
    """Records each fit as (split, method) in run order (the inner folds' CE fits apart, in
    ``fits.inner``) and runs it, unless ``fits.fail``
    maps its index (0, 1, ...) to an exception to raise instead."""
    real_fit = GradRegOODClassifier.fit

    class Fits(list):
        fail = {}

        def __init__(self):
            super().__init__()
            self.inner = []

        def clear(self):
            super().clear()
            self.inner.clear()

    seen = Fits()

    def spy(self, *args, **kwargs):
        method = ("ce" if self.lambda_energy == 0 else
                  "energy_oe" if self.lambda_grad == 0 else "greg")
        y = kwargs["y"] if "y" in kwargs else args[1]
        if len(np.unique(y)) < 6:        # an inner fold's network (2 of 6 classes held out)
            seen.inner.append(method)
            return real_fit(self, *args, **kwargs)
        seen.append(method)
        if len(seen) - 1 in seen.fail:
            raise seen.fail[len(seen) - 1]
        return real_fit(self, *args, **kwargs)

    monkeypatch.setattr(GradRegOODClassifier, "fit", spy)
    return seen


@pytest.fixture(autouse=True)
def figures(monkeypatch):
    """The figures' drawing is left out (most of a tiny run's time); ``figures`` gets the
    scores each report would draw, the first run's."""
    from skood.benchmark import report
    drawn = []

    def write_figures(scores, out):
        drawn.append(scores[next(iter(scores))])
        return []

    monkeypatch.setattr(report, "write_figures", write_figures)
    monkeypatch.setattr(report, "write_split_figure", lambda *args, **kwargs: None)
    return drawn


def read(out, name="results.csv"):
    return pd.read_csv(out / name, dtype={"known_classes": str, "heldout_classes": str})


def test_a_method_that_fails_on_the_second_split_keeps_every_other_result(fits, tmp_path,
                                                                          capsys):
    fits.fail = {ORDER.index((1, "greg")): NonFiniteLossError("made to fail on split 1")}
    out = tmp_path / "out"
    assert main(command(out)) == 1       # the report is written; the exit code says a run failed
    assert fits == [method for _, method in ORDER]      # the run went on after the failure
    results = read(out)
    ok, failed = results[results["status"] == "ok"], results[results["status"] == "failed"]
    assert set(map(tuple, ok[["split", "method"]].drop_duplicates().to_numpy())) == scored(
        (0, "ce"), (0, "energy_oe"), (0, "greg"), (1, "ce"), (1, "energy_oe"))
    assert fits.inner == ["ce"] * 6                     # 3 inner folds after each ce
    assert ok[["fpr95", "auroc", "accuracy"]].notna().all().all()
    assert [(row["split"], row["seed"], row["method"]) for row in failed.to_dict("records")
            ] == [(1, 0, "greg"), (1, 0, "greg_knn")]
    assert list(failed["detector"]) == list(DETECTORS)
    row = failed.iloc[0]
    assert row["error"] == "NonFiniteLossError: made to fail on split 1"
    assert np.isnan(row["fpr95"]) and np.isnan(row["accuracy"])
    assert row["known_classes"] == ok.loc[ok["split"] == 1, "known_classes"].iloc[0]
    text = (out / "results.md").read_text()
    assert ("- split 1, seed 0: `greg`, `greg_knn` failed: NonFiniteLossError: made to fail "
            "on split 1") in text
    assert "left out of every table, statistic and figure" in text
    printed = capsys.readouterr()
    assert "failed, left out of the statistics: split 1, seed 0: `greg`, `greg_knn`" in \
        printed.out
    # no colour codes (nor skorch's epoch table, which has them) in what the command writes
    assert "\x1b" not in printed.out + printed.err + text + (out / "results.csv").read_text()
    # paired statistics: greg against energy-OE on split 0 only, the baselines on both
    paired = read(out, "paired.csv").set_index(["group", "method", "baseline", "metric"])
    assert paired.loc[("near", "greg", "energy_oe", "fpr95"), "n_splits"] == 1
    assert paired.loc[("near", "energy_oe", "ce_energy", "fpr95"), "n_splits"] == 2
    near = ok[(ok["group"] == "near") & (ok["split"] == 0)].set_index("method")["fpr95"]
    assert paired.loc[("near", "greg", "energy_oe", "fpr95"), "mean_diff_points"] == \
        pytest.approx(100 * (near["greg"] - near["energy_oe"]))
    per_split = read(out, "paired_splits.csv")
    assert set(per_split.loc[per_split["method"] == "greg", "split"]) == {0}
    # the tables' greg row is split 0's value alone (no spread from one split), and says so
    row = f"| greg (1 of 2 splits) | {100 * near['greg']:.2f} |"
    assert row in text.split("**Far OOD**")[0]


def test_ctrl_c_in_a_fit_ends_the_run_with_a_report_of_what_finished(fits, figures, tmp_path,
                                                                    capsys):
    fits.fail = {ORDER.index((1, "energy_oe")): KeyboardInterrupt()}
    out = tmp_path / "out"
    assert main(command(out)) == 130
    assert len(fits) == ORDER.index((1, "energy_oe")) + 1     # nothing trained after Ctrl-C
    results = read(out)
    assert set(results["status"]) == {"ok"}
    assert set(map(tuple, results[["split", "method"]].drop_duplicates().to_numpy())) == scored(
        (0, "ce"), (0, "energy_oe"), (0, "greg"), (1, "ce"))
    text = (out / "results.md").read_text()
    assert "| greg |" in text and "First run (split 0, seed 0)" in text
    # the figures get every scored method's scores (ce_chosen's are ce_knn's or ce_energy's)
    assert (out / "paired.csv").exists() and set(figures[-1]) == {
        name for _, name in scored((0, "ce"), (0, "energy_oe"), (0, "greg"))} - {"ce_chosen"}
    assert "rerun the same command with --resume" in capsys.readouterr().out


def test_ctrl_c_that_skorch_swallows_still_ends_the_run(monkeypatch, tmp_path):
    """skorch ends a fit early on KeyboardInterrupt and returns normally: the cut-short
    fit must not be recorded as finished, nor may the run go on."""
    real = GradRegOODClassifier.on_batch_begin
    batches = []

    def on_batch_begin(self, *args, **kwargs):
        batches.append(self.lambda_energy)
        if self.lambda_energy > 0 and len([b for b in batches if b > 0]) == 1:
            signal.raise_signal(signal.SIGINT)      # Ctrl-C in energy_oe's first step
        return real(self, *args, **kwargs)

    monkeypatch.setattr(GradRegOODClassifier, "on_batch_begin", on_batch_begin)
    out = tmp_path / "out"
    # Python's own handler, as under a terminal: a shell that starts pytest in the background
    # (`pytest &`, nohup) hands it SIGINT ignored, and an ignored Ctrl-C interrupts nothing
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        assert main(command(out)) == 130
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler   # restored
    finally:
        signal.signal(signal.SIGINT, previous)
    results = read(out)
    assert set(results["method"]) == {"ce_energy", "ce_knn", "ce_chosen"}
    assert set(results["split"]) == {0}


def test_resume_runs_only_what_is_missing_and_gives_the_uninterrupted_results(fits, figures,
                                                                              tmp_path, capsys):
    whole, parts = tmp_path / "whole", tmp_path / "parts"
    assert main(command(whole)) == 0
    assert fits == [method for _, method in ORDER]
    fits.clear()
    # the first attempt: Ctrl-C in split 1's energy_oe, greg fails on split 0
    fits.fail = {ORDER.index((1, "energy_oe")): KeyboardInterrupt(),
                 ORDER.index((0, "greg")): RuntimeError("out of memory")}
    assert main(command(parts)) == 130
    assert set(read(parts)["status"]) == {"ok", "failed"}
    fits.clear()
    fits.fail = {}
    assert main(command(parts, "--resume")) == 0
    # split 0's greg (failed) and split 1's energy_oe and greg (never ended), nothing else:
    # ce finished on both splits, so its detector choice is kept, not made again
    assert fits == ["greg", "energy_oe", "greg"] and fits.inner == []
    assert "resume: 3 (split, seed, method) runs finished" in capsys.readouterr().out
    expected, resumed = read(whole), read(parts)
    assert list(resumed.columns) == list(expected.columns)
    assert set(resumed["status"]) == {"ok"}
    timings = ["train_s", "score_s"]
    pd.testing.assert_frame_equal(resumed.drop(columns=timings),
                                  expected.drop(columns=timings), check_exact=True)
    assert set(resumed["method"]) == {name for _, name in scored((0, "ce"), (0, "energy_oe"),
                                                                   (0, "greg"))}
    # the whole-run outputs come from every row, the kept ones included
    for name in ("paired.csv", "paired_splits.csv"):
        pd.testing.assert_frame_equal(read(parts, name), read(whole, name), check_exact=True)
    tables = (parts / "results.md").read_text().split("## Tables")[1]
    assert tables.count("| greg |") == (whole / "results.md").read_text().split(
        "## Tables")[1].count("| greg |") > 0
    # the figures of the resumed run show split 0's scores, saved when it ran
    assert "First run (split 0, seed 0)" in (parts / "results.md").read_text()
    first_whole, first_resumed = figures[0], figures[-1]
    assert list(first_resumed) == list(first_whole)
    for method, sets in first_whole.items():
        assert list(first_resumed[method]) == list(sets)
        for name, values in sets.items():
            np.testing.assert_array_equal(first_resumed[method][name], values)
    # a second resume has nothing left to train and reports the same results
    fits.clear()
    assert main(command(parts, "--resume")) == 0
    assert fits == [] and fits.inner == []
    pd.testing.assert_frame_equal(read(parts).drop(columns=timings),
                                  expected.drop(columns=timings), check_exact=True)


def test_resume_with_other_settings_is_refused_and_leaves_the_results(fits, tmp_path, capsys):
    out = tmp_path / "out"
    fits.fail = {1: KeyboardInterrupt()}
    assert main(command(out)) == 130
    before = (out / "results.csv").read_text()
    fits.clear()
    for changed in (["--epochs", "2"], ["--n-aux", "50"], ["--seeds", "1"],
                    ["--detectors", "energy"]):
        with pytest.raises(SystemExit) as stop:
            main(command(out, "--resume", *changed))
        assert stop.value.code == 2
        err = capsys.readouterr().err
        assert "--resume: the results in" in err and "made with other settings" in err
        assert str(out / "config.json") in err
    assert fits == [] and (out / "results.csv").read_text() == before
    with pytest.raises(BenchmarkConfigError) as error:
        BenchmarkConfig(methods=("ce", "energy_oe", "greg"), detectors=DETECTORS, epochs=3,
                        splits=2, n_train=120, n_aux=60, n_ood=20, out=str(out), resume=True)
    assert error.value.parameter == "resume" and "epochs 1 there, 3 now" in str(error.value)


def test_a_run_where_every_fit_fails_says_so_without_a_report(fits, tmp_path, capsys):
    fits.fail = {i: ValueError("no good") for i in range(len(ORDER))}
    out = tmp_path / "out"
    assert main(command(out)) == 1
    assert len(fits) == len(ORDER)
    results = read(out)
    assert set(results["status"]) == {"failed"} and set(results["error"]) == {
        "ValueError: no good"}
    assert not (out / "results.md").exists()
    assert "no run finished, so there is no report" in capsys.readouterr().out


def test_under_fine_tuning_a_run_resumes_whole_from_its_ce_network(fits, tmp_path):
    out = tmp_path / "out"
    argv = ["benchmark", "--finetune", "--finetune-epochs", "1", "--methods", "greg",
            "--detectors", *DETECTORS, "--epochs", "1", "--splits", "1", "--n-train", "120",
            "--n-aux", "60", "--n-ood", "20", "--quiet", "--out", str(out)]
    # ce fails: greg, which would start from its network, is recorded as failed, untrained
    fits.fail = {0: RuntimeError("no memory")}
    assert main(argv) == 1
    assert fits == ["ce"]
    results = read(out).drop_duplicates("method").set_index("method")
    assert set(results["status"]) == {"failed"}
    assert results.loc["greg", "error"] == ("RuntimeError: not trained: its starting point ce "
                                            "failed (RuntimeError: no memory)")
    # Ctrl-C in greg: ce finished, but greg needs ce's network, which was not saved ...
    fits.clear()
    fits.fail = {1: KeyboardInterrupt()}
    assert main([*argv, "--resume"]) == 130
    assert fits == ["ce", "greg"] and set(read(out)["method"]) == {"ce_energy", "ce_knn",
                                                                    "ce_chosen"}
    # ... so the resumed run trains both again, and each is in the results once
    fits.clear()
    fits.fail = {}
    assert main([*argv, "--resume"]) == 0
    assert fits == ["ce", "greg"]
    results = read(out)
    assert set(results["status"]) == {"ok"}
    n_sets = results["ood_set"].nunique()
    assert results.groupby("method").size().to_dict() == {
        name: n_sets for name in ("ce_energy", "ce_knn", "ce_chosen", "greg", "greg_knn")}


def test_resume_of_results_made_before_the_detector_column_is_refused(fits, tmp_path, capsys):
    """A folder written before results.csv had a detector column (and config.json the
    detectors) cannot be continued: its networks were scored another way. The refusal says
    so and how to go on, before anything is trained, and leaves the folder as it was."""
    import json
    from skood.benchmark.store import settings

    out = tmp_path / "old"
    config = BenchmarkConfig(methods=("ce", "energy_oe", "greg"), detectors=DETECTORS,
                             epochs=1, splits=2, n_train=120, n_aux=60, n_ood=20, out=str(out))
    old_settings = {k: v for k, v in settings(config).items() if k != "detectors"}
    (out / "config.json").write_text(json.dumps(old_settings))
    old_rows = ("split,seed,method,ood_set,group,fpr95,auroc,aupr_in,aupr_out,accuracy,train_s,"
                "status,error\n0,0,ce_msp,textures,far,0.5,0.9,0.9,0.9,0.9,1.0,ok,\n")
    (out / "results.csv").write_text(old_rows)
    with pytest.raises(SystemExit) as stop:
        main(command(out, "--resume"))
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert "--resume: the results in" in err and "no detector column" in err
    assert "start" in err and "afresh" in err
    assert fits == [] and fits.inner == []
    assert (out / "results.csv").read_text() == old_rows
    assert json.loads((out / "config.json").read_text()) == old_settings
