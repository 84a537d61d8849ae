"""A smoke run of `skood benchmark`: tables and figures are produced and well-formed."""
import struct

import joblib
import numpy as np
import pandas as pd
import pytest

pytest.importorskip("skimage")
pytest.importorskip("matplotlib")

from skood.benchmark import METHODS, SCORED_METHODS  # noqa: E402
from skood.cli import main  # noqa: E402


def png_size(path):
    with open(path, "rb") as f:
        header = f.read(24)
    assert header[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    return struct.unpack(">II", header[16:24])


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench")
    models = out / "models"
    code = main(["benchmark", "--dataset", "digits", "--n-train", "300", "--n-aux", "300",
                 "--n-ood", "100", "--epochs", "1", "--seeds", "0", "1", "--quiet",
                 "--out", str(out), "--save-models", str(models)])
    assert code == 0
    return out, models


def test_csv_has_every_method_ood_set_and_seed(smoke_run):
    out, _ = smoke_run
    frame = pd.read_csv(out / "results.csv")
    assert {"seed", "method", "ood_set", "fpr95", "auroc", "aupr_in", "aupr_out", "accuracy",
            "train_s"} <= set(frame.columns)
    assert set(frame["method"]) == set(SCORED_METHODS)
    assert set(frame["seed"]) == {0, 1}
    assert {"textures", "gaussian-noise", "uniform-noise"} <= set(frame["ood_set"])
    n_sets = frame["ood_set"].nunique()
    assert len(frame) == 2 * len(SCORED_METHODS) * n_sets
    for column in ("fpr95", "auroc", "aupr_in", "aupr_out", "accuracy"):
        assert frame[column].between(0, 1).all(), column
    assert (frame["train_s"] > 0).all()


def test_markdown_table_lists_the_methods_with_spread(smoke_run):
    out, _ = smoke_run
    text = (out / "results.md").read_text()
    assert "| method | FPR95 | AUROC | AUPR-In | AUPR-Out | ID accuracy | train s |" in text
    summary = text.split("OOD set **")[0]
    rows = [line for line in summary.splitlines() if line.startswith("| ") and "±" in line]
    assert [row.split("|")[1].strip() for row in rows] == list(SCORED_METHODS)
    assert "over 2 seed(s)" in text


def test_figures_are_pngs(smoke_run):
    out, _ = smoke_run
    for name in [f"hist_{m}.png" for m in SCORED_METHODS] + ["roc.png"]:
        width, height = png_size(out / name)
        assert width > 200 and height > 100, name


def test_saved_models_score_new_data(smoke_run):
    _, models = smoke_run
    saved = sorted(models.glob("*.joblib"))
    assert len(saved) == 2 * len(METHODS)
    clf = joblib.load(saved[0])
    scores = clf.score_samples(np.zeros((3, 1, 8, 8), dtype=np.float32))
    assert scores.shape == (3,) and np.isfinite(scores).all()


def test_command_prints_per_set_and_average_tables(smoke_run, capsys):
    main(["benchmark", "--dataset", "digits", "--n-train", "200", "--n-aux", "200",
          "--n-ood", "50", "--epochs", "1", "--methods", "ce", "--quiet", "--out",
          str(smoke_run[0] / "again")])
    out = capsys.readouterr().out
    assert "| method | FPR95 | AUROC | AUPR-In | AUPR-Out | ID accuracy | train s |" in out
    assert "OOD set **textures**" in out and "| ce_msp |" in out


def test_resnet18_option_builds_a_network_for_the_images():
    import torch
    from skood.benchmark import _module_params
    params = _module_params("resnet18", (28, 28), 10)
    module = params["module"](**{k.split("__", 1)[1]: v for k, v in params.items()
                                 if k.startswith("module__")}, width=8)
    assert module(torch.zeros(2, 1, 28, 28)).shape == (2, 10)


@pytest.mark.parametrize("kwargs, error, message", [
    (dict(dataset="cifar10"), ValueError, "dataset must be one of"),
    (dict(methods=("greg", "oe")), ValueError, "methods must be a non-empty subset"),
    (dict(methods=()), ValueError, "methods must be a non-empty subset"),
    (dict(n_trian=100), TypeError, r"unknown settings \['n_trian'\]"),
])
def test_bad_arguments_are_refused_before_any_training(kwargs, error, message, monkeypatch):
    import skood.benchmark as benchmark

    def no_training(*args, **kw):
        raise AssertionError("data was loaded before the arguments were checked")

    monkeypatch.setattr(benchmark, "load_benchmark_data", no_training)
    with pytest.raises(error, match=message):
        benchmark.run_benchmark(**kwargs)
