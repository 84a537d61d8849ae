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
                            text=True, timeout=600, env={**os.environ, "PYTHONHASHSEED": "0"})
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def test_quickstart_trains_saves_reloads_and_scores(tmp_path):
    out = run_example("quickstart.py", "--out", str(tmp_path))
    assert (tmp_path / "digits_greg.joblib").exists()
    accuracy = float(re.search(r"test accuracy: ([0-9.]+)", out).group(1))
    assert accuracy > 0.9
    accepted = re.search(r"accepts ([0-9.]+)% of test digits and ([0-9.]+)% of textures", out)
    assert float(accepted.group(1)) > 80 and float(accepted.group(2)) < 20
    assert "fpr95" in out and "mean" in out


def test_grid_search_reports_every_candidate():
    out = run_example("grid_search.py")
    lines = re.findall(r"lambda_grad=([0-9.]+)\s+FPR95=([0-9.]+) AUROC=([0-9.]+)", out)
    assert [float(v) for v, _, _ in lines] == [0.0, 0.5, 1.0]
    assert all(0 <= float(f) <= 1 and 0 <= float(a) <= 1 for _, f, a in lines)
    assert "best: {'lambda_grad':" in out
