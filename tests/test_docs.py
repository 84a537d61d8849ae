"""The documentation: every public name has an example, and the site builds without warnings."""
import importlib
import inspect
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# The public modules (the others are _-prefixed).
MODULES = ["skood", "skood.energy_sampler", "skood.kmeans", "skood.losses", "skood.metrics",
           "skood.models", "skood.datasets", "skood.exceptions", "skood.benchmark",
           "skood.distributed", "skood.conformal"]


def public_objects():
    for name in MODULES:
        module = importlib.import_module(name)
        for attr in getattr(module, "__all__", []):
            obj = getattr(module, attr)
            if inspect.isclass(obj) or inspect.isfunction(obj):
                yield f"{name}.{attr}", obj


@pytest.mark.parametrize("name, obj", list(public_objects()), ids=lambda v: v if isinstance(v, str) else "")
def test_public_names_have_a_docstring_with_a_runnable_example(name, obj):
    doc = inspect.getdoc(obj) or ""
    assert doc, f"{name} has no docstring"
    assert "Examples\n--------" in doc and ">>>" in doc, f"{name} has no Examples section"


def test_documentation_builds_without_warnings(tmp_path):
    pytest.importorskip("sphinx")
    pytest.importorskip("numpydoc")
    pytest.importorskip("myst_parser")
    result = subprocess.run([sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b",
                             "html", str(ROOT / "docs"), str(tmp_path / "html")],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-4000:]
    api = (tmp_path / "html" / "api.html").read_text()
    for name in ("GradRegOODClassifier", "score_samples", "fpr_at_tpr", "EnergySampler"):
        assert name in api
