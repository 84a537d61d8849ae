"""The example scripts run end to end (they are part of the documentation)."""
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"

pytest.importorskip("skimage")


def run_example(name, *args):
    result = subprocess.run([sys.executable, str(EXAMPLES / name), *args], capture_output=True,
                            text=True, timeout=600,
                            # one torch thread: small networks, and two spinning threads per
                            # process were several times slower on a busy 2-core machine
                            env={**os.environ, "PYTHONHASHSEED": "0", "OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def test_quickstart_trains_saves_reloads_and_scores(tmp_path):
    out = run_example("quickstart.py", "--out", str(tmp_path))
    assert (tmp_path / "digits_greg.joblib").exists()
    accuracy = float(re.search(r"test accuracy: ([0-9.]+)", out).group(1))
    assert accuracy > 0.9
    accepted = re.search(r"accepts ([0-9.]+)% of test digits, ([0-9.]+)% of unseen digits "
                         r"and ([0-9.]+)% of textures", out)
    digits, unseen, textures = (float(accepted.group(i)) for i in (1, 2, 3))
    assert digits > 80 and textures < 20 and unseen < digits
    assert "fpr95" in out and "mean" in out


def test_grid_search_chooses_without_ood_data_and_checks_on_unseen_digits(tmp_path):
    out = run_example("grid_search.py", "--out", str(tmp_path))
    rows = re.findall(r"lambda_grad=([0-9.]+)\s+synthesizer=(\w+)\(\)\s+"
                      r"AUROC=([0-9.]+) ± ([0-9.]+) FPR95=([0-9.]+) ± ([0-9.]+)", out)
    assert [(float(r[0]), r[1]) for r in rows] == [
        (lg, name) for lg in (0.0, 1.0) for name in ("PatchShuffle", "ClassMix", "BlurNoise")]
    aurocs = [float(row[2]) for row in rows]
    assert max(aurocs) - min(aurocs) > 0.02          # the grid tells the candidates apart
    best = re.search(r"best: \{'lambda_grad': ([0-9.]+), 'synthesizer': (\w+)\(\)\}", out)
    best_row = rows[aurocs.index(max(aurocs))]
    assert (float(best.group(1)), best.group(2)) == (float(best_row[0]), best_row[1])
    for name in ("chosen", "photograph crops"):
        assert re.search(rf"{name}: test accuracy [0-9.]+; digits 0, 1, 6, 7: FPR95 [0-9.]+, "
                         r"AUROC [0-9.]+; noise and textures: FPR95", out)
    with open(tmp_path / "grid_search.png", "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"


def test_tabular_pipeline_with_dataframe_and_scaler():
    out = run_example("tabular_pipeline.py")
    assert float(re.search(r"test accuracy: ([0-9.]+)", out).group(1)) > 0.85
    accepted = re.search(r"accepted: ([0-9.]+)% of test rows, ([0-9.]+)% of shifted rows", out)
    assert float(accepted.group(1)) > 80 and float(accepted.group(2)) < 20
    assert "'class_0'" in out


def test_save_load_score_in_a_fresh_process():
    out = run_example("save_load_score.py")
    assert "same as before saving: True" in out


def test_plot_scores_compares_both_methods_and_writes_a_png(tmp_path):
    out = run_example("plot_scores.py", "--out", str(tmp_path))
    rows = re.findall(r"(energy-OE|GReg) \(lambda_grad=[01]\): FPR95 ([0-9.]+), AUROC ([0-9.]+) "
                      r"on unseen digits", out)
    assert [name for name, _, _ in rows] == ["energy-OE", "GReg"]
    assert all(0.5 < float(auc) < 1.0 for _, _, auc in rows)    # near OOD: not saturated
    with open(tmp_path / "scores.png", "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"


def test_plot_guarantees_checks_the_rules_and_writes_a_png(tmp_path):
    out = run_example("plot_guarantees.py", "--out", str(tmp_path))
    accepted = float(re.search(r"accepted: ([0-9.]+)% of test digits", out).group(1))
    assert accepted > 90
    fdrs = [float(v) for v in re.findall(r"empirical FDR ([0-9.]+)", out)]
    assert len(fdrs) == 4 and all(fdr <= q + 0.05 for fdr, q in zip(fdrs, (0.05, 0.1, 0.2, 0.3)))
    with open(tmp_path / "guarantees.png", "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"


def test_fashion_cnn_runs_or_skips_with_a_message():
    out = run_example("fashion_cnn.py", "--n-train", "1000", "--epochs", "2")
    if out.startswith("skipping:"):
        assert "apt-get install dataset-fashion-mnist" in out
        pytest.skip("Fashion-MNIST is not installed")
    # a smoke run (1,000 images, 2 epochs): clearly above chance (0.1), not converged
    assert float(re.search(r"test accuracy: ([0-9.]+)", out).group(1)) > 0.2
    assert "digits" in out and "auroc" in out


def test_fashion_cnn_message_without_the_data(tmp_path):
    result = subprocess.run(
        [sys.executable, "-c",
         "import skood.datasets as d, runpy, sys; d.DEBIAN_FASHION_MNIST = '/nonexistent'; "
         f"sys.argv = ['fashion_cnn.py', '--data-home', {str(tmp_path)!r}]; "
         f"runpy.run_path({str(EXAMPLES / 'fashion_cnn.py')!r}, run_name='__main__')"],
        capture_output=True, text=True, env={**os.environ, "SKOOD_DATA": ""})
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.startswith("skipping:") and "dataset-fashion-mnist" in result.stdout
