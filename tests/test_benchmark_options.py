"""Every `skood benchmark` option is checked before any data is loaded or model
trained: a bad value is a usage error (exit code 2) that names the option."""
import argparse
import sys

import pytest
import torch

pytest.importorskip("skimage")

from skood import GradRegOODClassifier  # noqa: E402
from skood.benchmark import BenchmarkConfig, BenchmarkConfigError, run_benchmark  # noqa: E402
from skood.benchmark.store import ResultsFolder  # noqa: E402
from skood.cli import build_parser, main  # noqa: E402
from helpers import SMOKE_RUN_WARNINGS  # noqa: E402

pytestmark = SMOKE_RUN_WARNINGS

#: options without a value that could be wrong, and why
EXEMPT = {
    "--help": "argparse's own",
    "--quiet": "a flag: present or not",
    "--finetune": "a flag: present or not (its companions are checked below)",
}

#: option -> bad cases: (the arguments, words the error must hold); "{file}" is an
#: existing regular file, "{nowhere}" a folder that does not exist
BAD = {
    "--dataset": [(["--dataset", "svhn"], ["invalid choice", "'svhn'"])],
    "--protocol": [(["--protocol", "open"], ["invalid choice", "'open'"])],
    "--splits": [(["--splits", "0"], ["--splits must be a positive integer or 'neal'"]),
                 (["--splits", "500"], ["--splits must be at most 210"])],
    "--split-seed": [(["--split-seed", "-3"], ["--split-seed must be an integer >= 0"])],
    "--model": [(["--model", "vgg"], ["invalid choice", "'vgg'"])],
    "--epochs": [(["--epochs", "0"], ["--epochs must be a positive integer, got 0"]),
                 (["--epochs", "-1"], ["--epochs must be a positive integer, got -1"])],
    "--device": [(["--device", "bogus"], ["--device 'bogus' cannot be used here"])]
    + ([] if torch.cuda.is_available() else
       [(["--device", "cuda"], ["--device 'cuda' cannot be used here", "CUDA"])]),
    "--seeds": [(["--seeds", "-1"], ["--seeds must be distinct integers >= 0"]),
                (["--seeds", "1", "1"], ["--seeds must be distinct"])],
    "--methods": [(["--methods", "oe"], ["invalid choice", "'oe'"]),
                  (["--methods", "ce", "ce"], ["--methods must be a non-empty subset",
                                               "each once"])],
    "--detectors": [(["--detectors", "knn_1"],
                     ["invalid choice", "'knn_1'", "'energy'", "'vim'", "'knn'", "'fused'"]),
                    (["--detectors", "knn", "KNN"],
                     ["--detectors must be distinct names of skood.detectors.DETECTORS",
                      "energy, msp, maxlogit", "got ['knn', 'knn']"])],
    "--out": [(["--out", "{file}"], ["--out must be a folder that can be created"]),
              (["--out", "{file}/sub"], ["--out must be a folder that can be created"])],
    "--save-models": [(["--save-models", "{file}"],
                       ["--save-models must be a folder that can be created"])],
    "--penalty": [(["--penalty", "approx"], ["invalid choice", "'approx'"])],
    "--penalty-fraction": [(["--penalty-fraction", "0"], ["--penalty-fraction must be"])],
    "--pool-factor": [(["--pool-factor", "0"], ["--pool-factor must be above 0"])],
    "--aux": [(["--aux", "imagenet"], ["--aux must be one of", "'imagenet'"]),
              (["--aux", "photos+photos"], ["--aux must name each source once"])],
    "--n-train": [(["--n-train", "0"], ["--n-train must be a positive integer, got 0"])],
    "--n-test": [(["--n-test", "-5"], ["--n-test must be a positive integer, got -5"])],
    "--n-aux": [(["--n-aux", "0"], ["--n-aux must be a positive integer, got 0"])],
    "--n-ood": [(["--n-ood", "0"], ["--n-ood must be a positive integer, got 0"])],
    "--batch-size": [(["--batch-size", "0"], ["--batch-size must be a positive integer"])],
    "--lr": [(["--lr", "0"], ["--lr must be a positive finite number, got 0.0"]),
             (["--lr", "nan"], ["--lr must be a positive finite number, got nan"])],
    "--m-in": [(["--m-in", "nan"], ["--m-in must be a finite number, got nan"]),
               (["--m-in", "-2"], ["--m-in must be below m_out", "m_in=-2.0, m_out=-4.0"])],
    "--m-out": [(["--m-out", "inf"], ["--m-out must be a finite number, got inf"])],
    "--threads": [(["--threads", "0"], ["--threads must be a positive integer, got 0"])],
    "--finetune-epochs": [(["--finetune", "--finetune-epochs", "0"],
                           ["--finetune-epochs must be above 0"]),
                          (["--finetune-epochs", "2"], ["need --finetune"])],
    "--finetune-lr": [(["--finetune", "--finetune-lr", "nan"], ["--finetune-lr must be"])],
    "--data-home": [(["--data-home", "{nowhere}"], ["--data-home", "does not exist"])],
    "--resume": [(["--resume", "--out", "{other_run}", "--epochs", "2"],
                  ["--resume: the results in", "made with other settings", "epochs 3 there, 2 now",
                   "config.json"]),
                 (["--resume", "--out", "{old_run}"],
                  ["--resume:", "has no config.json beside it"])],
}


def _benchmark_parser():
    parser = build_parser()
    # argparse has no public listing of a parser's options: read its actions
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return commands.choices["benchmark"]


def test_every_option_has_a_bad_value_case_or_a_reason():
    options = {max(action.option_strings, key=len) for action in _benchmark_parser()._actions
               if action.option_strings}
    missing = sorted(options - set(BAD) - set(EXEMPT))
    assert not missing, f"options without a bad-value case in BAD (or a reason in EXEMPT): " \
                        f"{missing}"
    assert not set(BAD) - options, "cases for options the parser does not have"



@pytest.mark.parametrize("option, argv, words", [
    (option, argv, words) for option, cases in BAD.items() for argv, words in cases])
def test_a_bad_option_is_a_usage_error_before_any_work(option, argv, words, no_training,
                                                       tmp_path, capsys):
    afile = tmp_path / "a-file"
    afile.write_text("not a folder")
    if "{other_run}" in argv:    # results of a run with --epochs 3
        folder = str(tmp_path / "other_run")
        ResultsFolder(BenchmarkConfig(epochs=3, out=folder))
    if "{old_run}" in argv:      # results.csv without the settings beside it
        (tmp_path / "old_run").mkdir()
        (tmp_path / "old_run" / "results.csv").write_text("split,seed,method\n")
    argv = [a.replace("{file}", str(afile)).replace("{nowhere}", str(tmp_path / "nowhere"))
            .replace("{other_run}", str(tmp_path / "other_run"))
            .replace("{old_run}", str(tmp_path / "old_run")) for a in argv]
    out = ["--out", str(tmp_path / "out")] if option not in ("--out", "--resume") else []
    with pytest.raises(SystemExit) as exit_info:
        main(["benchmark", *argv, *out, "--quiet"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "usage: skood benchmark" in err and "Traceback" not in err
    for word in words:
        assert word in err, (word, err)
    assert not (tmp_path / "out").exists() or option in ("--save-models",)


def test_run_benchmark_refuses_the_same_values_with_the_settings_name(no_training, tmp_path):
    for kwargs, name in ((dict(epochs=0), "epochs"), (dict(lr=float("nan")), "lr"),
                         (dict(n_threads=0), "n_threads"), (dict(device="bogus"), "device"),
                         (dict(data_home=str(tmp_path / "nowhere")), "data_home"),
                         (dict(m_in=-1.0, m_out=-2.0), "m_in"), (dict(n_train=-1), "n_train"),
                         (dict(save_models=str(tmp_path / "f" / "g")), None)):
        if name is None:      # a folder that can be made is made, then training starts
            with pytest.raises(AssertionError, match="before the options were checked"):
                run_benchmark(splits=1, **kwargs)
            assert (tmp_path / "f" / "g").is_dir()
            continue
        with pytest.raises(BenchmarkConfigError, match=f"^{name} ") as info:
            run_benchmark(splits=1, **kwargs)
        assert info.value.parameter == name


def test_data_home_that_does_not_exist_is_named_for_digits_too(no_training, tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["benchmark", "--data-home", str(tmp_path / "nope"), "--quiet",
              "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert f"--data-home '{tmp_path / 'nope'}' does not exist" in err
    assert "pass --data-home" not in err


class _Stop(BaseException):
    """Not an Exception: the benchmark records a fit that raises one and goes on."""


@pytest.mark.parametrize("terminal", [False, True])
def test_progress_bars_only_on_a_terminal(terminal, monkeypatch, capsys):
    seen = []

    def record(self, X, y, X_aux=None):
        # the callback that keeps the fit's split for the detectors is always there
        seen.append([type(cb).__name__ for cb in (self.callbacks or [])
                     if type(cb).__name__ != "HeldOutRows"])
        raise _Stop

    monkeypatch.setattr(GradRegOODClassifier, "fit", record)
    monkeypatch.setattr(sys.stderr, "isatty", lambda: terminal, raising=False)
    with pytest.raises(_Stop):
        run_benchmark(splits=1, methods=("ce",), progress=True, n_train=60, n_aux=20,
                      n_ood=10)
    err = capsys.readouterr().err
    if terminal:
        assert seen == [["ProgressBar"]] and "benchmark:" in err
    else:
        # output to a file or a pipe: no bars, so no partial lines in logs
        assert seen == [[]] and "benchmark" not in err and "\r" not in err


def test_a_data_home_under_the_home_folder_is_expanded(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / "folder").mkdir()
    assert BenchmarkConfig(data_home="~/folder").data_home == str(tmp_path / "folder")
    seen = []

    def stop(config, log=None):
        seen.append(config)
        raise _Stop

    from skood import cli
    monkeypatch.setattr(cli, "run", stop)
    with pytest.raises(_Stop):
        main(["benchmark", "--data-home=~/folder", "--quiet", "--out", str(tmp_path / "out")])
    assert seen[0].data_home == str(tmp_path / "folder")
    with pytest.raises(BenchmarkConfigError, match="'~/nowhere' .*nowhere'.* does not exist"):
        BenchmarkConfig(data_home="~/nowhere")


@pytest.mark.parametrize("dataset, words", [
    ("fashion-mnist", "pass it as --data-home or set SKOOD_DATA"),
    ("cifar10", "(no --data-home) and SKOOD_DATA is not set")])
def test_missing_data_names_the_option_and_takes_back_the_folders_it_made(
        dataset, words, tmp_path, monkeypatch, capsys):
    import skood.datasets
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.setattr(skood.datasets, "DEBIAN_FASHION_MNIST", str(empty))
    monkeypatch.delenv("SKOOD_DATA", raising=False)
    kept = tmp_path / "kept"       # a folder that was there before the command is left
    kept.mkdir()
    home = ["--data-home", str(empty)] if dataset == "fashion-mnist" else []
    for out, models in ((tmp_path / "new" / "out", tmp_path / "models"), (kept, None)):
        with pytest.raises(SystemExit) as stop:
            main(["benchmark", "--dataset", dataset, *home, "--quiet", "--out", str(out),
                  *(["--save-models", str(models)] if models else [])])
        assert stop.value.code == 1
        err = capsys.readouterr().err
        assert words in err and "data_home" not in err
    assert not (tmp_path / "new").exists() and not (tmp_path / "models").exists()
    assert kept.is_dir()
