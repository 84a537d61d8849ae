"""The example scripts run end to end (they are part of the documentation)."""
import os
import re
import runpy
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"

pytest.importorskip("skimage")
pytest.importorskip("matplotlib")

# Runs the example as `python examples/NAME.py ARGS` does, then counts the matplotlib figures
# it left open: those are what sphinx-gallery's scraper puts on the example's page.
RUNNER = """
import runpy, sys
import matplotlib.pyplot as plt
sys.argv = sys.argv[1:]
try:
    runpy.run_path(sys.argv[0], run_name="__main__")
except SystemExit as exc:
    if exc.code not in (None, 0):
        raise
print(f"\\n[figures: {len(plt.get_fignums())}]")
"""


def gallery_runs(name):
    """Whether the docs build executes the example (sphinx-gallery's filename_pattern, matched
    against the path as sphinx-gallery does)."""
    conf = runpy.run_path(str(ROOT / "docs" / "conf.py"))["sphinx_gallery_conf"]
    return re.search(conf["filename_pattern"], str(EXAMPLES / name)) is not None


def run_example(name, *args):
    """Run examples/NAME.py with ARGS in an empty current folder, with an empty folder of
    its own as TMPDIR; return what it printed. The example must leave both folders empty
    (nothing in the user's folder, no ``tmpXXXX`` folder behind), and draw a figure if the
    gallery runs it."""
    with tempfile.TemporaryDirectory() as fresh:
        cwd, temp = Path(fresh) / "cwd", Path(fresh) / "tmp"
        cwd.mkdir()
        temp.mkdir()
        result = subprocess.run(
            [sys.executable, "-c", RUNNER, str(EXAMPLES / name), *args], cwd=cwd,
            capture_output=True, text=True, timeout=600,
            env={**os.environ, "PYTHONHASHSEED": "0", "MPLBACKEND": "Agg", "TMPDIR": str(temp),
                 # this checkout's skood, also where another one is installed
                 "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT),
                                                             os.environ.get("PYTHONPATH")])),
                 # one torch thread: small networks, and two spinning threads per
                 # process were several times slower on a busy 2-core machine
                 "OMP_NUM_THREADS": "1"})
        assert result.returncode == 0, result.stderr[-3000:]
        left = sorted(p.name for p in cwd.iterdir())
        assert not left, f"{name} wrote {left} into the current folder"
        # torch keeps its compiler cache (torchinductor_<user>) under TMPDIR: torch's, and
        # meant to stay
        left = sorted(p.name for p in temp.iterdir() if not p.name.startswith("torchinductor_"))
        assert not left, f"{name} left {left} in the temporary folder"
    out, figures = result.stdout.rsplit("\n[figures: ", 1)
    figures = int(figures.split("]")[0])
    if gallery_runs(name):
        assert figures > 0, (f"{name} draws no figure: its gallery page would show none and "
                             "a placeholder thumbnail")
    return out


def test_every_example_is_run_here():
    source = Path(__file__).read_text()
    run = set(re.findall(r'run_example\("([\w.]+)"', source))
    assert {p.name for p in EXAMPLES.glob("*.py")} <= run


def test_the_docs_build_runs_the_examples_but_fashion_cnn():
    assert gallery_runs("quickstart.py") and gallery_runs("plot_scores.py")
    assert not gallery_runs("fashion_cnn.py")


def test_run_example_fails_when_an_executed_example_draws_no_figure(tmp_path, monkeypatch):
    script = tmp_path / "no_figure.py"
    script.write_text('print("no figure")\n')
    monkeypatch.setattr(sys.modules[__name__], "EXAMPLES", tmp_path)
    with pytest.raises(AssertionError, match="no_figure.py draws no figure"):
        run_example("no_figure.py")


def test_run_example_fails_when_an_example_writes_into_the_current_folder(tmp_path,
                                                                          monkeypatch):
    script = tmp_path / "writes.py"
    script.write_text('import matplotlib.pyplot as plt\nplt.figure().savefig("out.png")\n')
    monkeypatch.setattr(sys.modules[__name__], "EXAMPLES", tmp_path)
    with pytest.raises(AssertionError, match=r"writes.py wrote \['out.png'\] into the current"):
        run_example("writes.py")


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


def test_run_example_fails_when_an_example_leaves_a_temporary_folder(tmp_path, monkeypatch):
    script = tmp_path / "leaves.py"
    script.write_text("import matplotlib.pyplot as plt, tempfile\nplt.figure()\n"
                      "tempfile.mkdtemp()\n")
    monkeypatch.setattr(sys.modules[__name__], "EXAMPLES", tmp_path)
    with pytest.raises(AssertionError, match=r"leaves.py left \['tmp\w+'\] in the temporary"):
        run_example("leaves.py")


def test_plot_guarantees_checks_the_rules_and_writes_a_png(tmp_path):
    out = run_example("plot_guarantees.py", "--out", str(tmp_path))
    accepted = float(re.search(r"accepted: ([0-9.]+)% of test digits", out).group(1))
    assert accepted > 90
    fdrs = [float(v) for v in re.findall(r"empirical FDR ([0-9.]+)", out)]
    assert len(fdrs) == 4 and all(fdr <= q + 0.05 for fdr, q in zip(fdrs, (0.05, 0.1, 0.2, 0.3)))
    path = Path(re.search(r"figure: (.*)", out).group(1))
    assert path == tmp_path / "guarantees.png"
    with open(path, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"


def test_fashion_cnn_runs_or_skips_with_a_message(tmp_path):
    out = run_example("fashion_cnn.py", "--n-train", "500", "--epochs", "2", "--out",
                      str(tmp_path))
    if out.startswith("skipping:"):
        assert "apt-get install dataset-fashion-mnist" in out
        pytest.skip("Fashion-MNIST is not installed")
    # a smoke run (500 images, 2 epochs: 0.31 here): clearly above chance (0.1), not converged
    assert float(re.search(r"test accuracy: ([0-9.]+)", out).group(1)) > 0.2
    assert "digits" in out and "auroc" in out
    path = Path(re.search(r"figure: (.*)", out).group(1))   # the scores, in --out
    assert path == tmp_path / "fashion_cnn_scores.png"
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_fashion_cnn_message_without_the_data(tmp_path):
    result = subprocess.run(
        [sys.executable, "-c",
         "import skood.datasets as d, runpy, sys; d.DEBIAN_FASHION_MNIST = '/nonexistent'; "
         f"sys.argv = ['fashion_cnn.py', '--data-home', {str(tmp_path)!r}]; "
         f"runpy.run_path({str(EXAMPLES / 'fashion_cnn.py')!r}, run_name='__main__')"],
        capture_output=True, text=True, env={**os.environ, "SKOOD_DATA": ""})
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.startswith("skipping:") and "dataset-fashion-mnist" in result.stdout
