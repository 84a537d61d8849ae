"""benchmarks/gpu_checks.sh rehearsed on the CPU (--device cpu --tiny), so that a GPU's
few minutes are not spent on a script that stops early, overruns or writes too much."""
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "gpu_checks.sh"
PARTS = ["setup", "step_cost", "fd_precision", "tests", "outlier_stream", "cifar_smoke"]

pytestmark = pytest.mark.skipif(
    not all(shutil.which(tool) for tool in ("bash", "timeout", "awk")),
    reason="the script needs bash, timeout and awk")


def rehearse(tmp_path, total_s, python=sys.executable, **env):
    """Run the script with tiny sizes on the CPU; return its exit status, wall time, the
    files it wrote and its summary rows as {part: (status, note)}."""
    out = tmp_path / "out"
    environment = {**os.environ, "OUT": str(out), "PYTHON": str(python),
                   "GPU_CHECKS_TOTAL_S": str(total_s), "OMP_NUM_THREADS": "1", **env}
    start = time.perf_counter()
    result = subprocess.run(["bash", str(SCRIPT), "--device", "cpu", "--tiny"],
                            env=environment, capture_output=True, text=True,
                            timeout=total_s + 60)
    wall = time.perf_counter() - start
    summary = (out / "summary.md").read_text()
    rows = {}
    for line in summary.splitlines():
        cells = [cell.strip() for cell in re.split(r"(?<!\\)\|", line)[1:-1]]
        if len(cells) == 4 and cells[0] in PARTS:
            rows[cells[0]] = (cells[1], cells[3])
    files = sorted(path.name for path in out.rglob("*") if path.is_file())
    return result, wall, files, rows


def test_a_failing_part_does_not_stop_the_next(tmp_path):
    # The heaviest parts skipped; fd_precision given 0.01 s, so that it times out.
    result, wall, files, rows = rehearse(
        tmp_path, total_s=120, GPU_CHECKS_SKIP="step_cost cifar_smoke",
        GPU_CHECKS_LIMIT_fd_precision="0.01")
    assert wall < 120
    assert list(rows) == PARTS
    assert rows["setup"][0] == "ok"
    assert "torch" in rows["setup"][1]
    assert rows["step_cost"][0] == rows["cifar_smoke"][0] == "skipped (GPU_CHECKS_SKIP)"
    assert rows["fd_precision"][0] == "timeout (0.01 s)"
    assert rows["tests"][0] == "ok" and re.search(r"\b1 passed\b", rows["tests"][1])
    # the outlier stream's figures, in the summary
    assert rows["outlier_stream"][0] == "ok"
    assert re.search(r"Wait per step for 32 outliers: [\d.]+ ms in the training process, "
                     r"[\d.]+ ms with 1 worker;", rows["outlier_stream"][1])
    assert result.returncode == 1             # a part failed: the exit status says so
    assert set(files) <= {"summary.md", "log.txt", "step_cost.md", "fd_precision.md",
                          "cifar_smoke.md"}
    assert "=== tests" in (tmp_path / "out" / "log.txt").read_text()


def test_without_torch_it_says_so_and_runs_nothing_else(tmp_path):
    # A python without site-packages stands for a machine whose python has no torch.
    python = tmp_path / "python-without-torch"
    python.write_text(f'#!/bin/sh\nexec "{sys.executable}" -S "$@"\n')
    python.chmod(0o755)
    result, wall, files, rows = rehearse(tmp_path, total_s=60, python=python)
    assert wall < 60
    assert result.returncode == 1
    status, note = rows["setup"]
    assert status.startswith("failed") and "no torch for" in note
    assert all(rows[part][0] == "skipped (setup failed)" for part in PARTS[1:])
    assert files == ["log.txt", "summary.md"]


@pytest.mark.slow
def test_the_whole_rehearsal_finishes_in_its_time_with_at_most_six_files(tmp_path):
    result, wall, files, rows = rehearse(tmp_path, total_s=240)
    assert wall < 240, result.stdout
    assert result.returncode == 0, result.stdout
    assert rows == {part: ("ok", rows[part][1]) for part in PARTS}
    assert len(files) <= 6
    assert files == ["cifar_smoke.md", "fd_precision.md", "log.txt", "step_cost.md",
                     "summary.md"]
    out = tmp_path / "out"
    assert "| GReg fd (skood) |" in (out / "step_cost.md").read_text()
    assert "| fd | bf16 |" in (out / "fd_precision.md").read_text()
