"""What a release carries: the licence in the wheel, one version number, a changelog, the lint."""
import importlib.metadata
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

import skood

ROOT = Path(__file__).resolve().parent.parent


def pyproject():
    tomllib = pytest.importorskip("tomllib")     # Python 3.11+
    with open(ROOT / "pyproject.toml", "rb") as f:
        return tomllib.load(f)


def test_licence_is_the_declared_bsd_3_clause():
    project = pyproject()["project"]
    assert project["license"] == "BSD-3-Clause"
    assert project["license-files"] == ["LICENSE"]
    text = (ROOT / "LICENSE").read_text()
    assert text.startswith("BSD 3-Clause License")
    assert re.search(r"Copyright \(c\) \d{4}, the skood developers", text)
    # the three clauses, and the disclaimer
    assert "Redistributions of source code must retain" in text
    assert "Redistributions in binary form must reproduce" in text
    assert "Neither the name of the copyright holder" in text
    assert 'PROVIDED BY THE COPYRIGHT HOLDERS AND CONTRIBUTORS "AS IS"' in text


def test_wheel_carries_the_licence(tmp_path):
    """A wheel built from the sources has LICENSE in its dist-info and names it in METADATA."""
    pytest.importorskip("setuptools")
    src = tmp_path / "src"        # a copy: the build writes build/ and *.egg-info next to it
    src.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(ROOT / name, src / name)
    shutil.copytree(ROOT / "skood", src / "skood",
                    ignore=shutil.ignore_patterns("__pycache__"))
    result = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps",
                             "--no-build-isolation", "-q", "-w", str(tmp_path / "dist"), str(src)],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    wheel, = (tmp_path / "dist").glob("skood-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        licence = [n for n in names if re.fullmatch(r"skood-[^/]+\.dist-info/licenses/LICENSE", n)]
        assert licence, f"no LICENSE in the wheel's dist-info: {names}"
        assert archive.read(licence[0]).decode() == (ROOT / "LICENSE").read_text()
        metadata_name, = (n for n in names if n.endswith(".dist-info/METADATA"))
        metadata = archive.read(metadata_name).decode()
    assert "License-Expression: BSD-3-Clause" in metadata
    assert "License-File: LICENSE" in metadata


def test_version_is_the_installed_distributions():
    assert skood.__version__ == importlib.metadata.version("skood")
    if sys.version_info >= (3, 11):
        assert skood.__version__ == pyproject()["project"]["version"]


def test_cli_prints_the_version():
    result = subprocess.run([sys.executable, "-m", "skood", "--version"], capture_output=True,
                            text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"skood {importlib.metadata.version('skood')}"


def test_changelog_has_a_section_for_this_version():
    """Keep a Changelog: one section per version, headed by its release date or
    "Unreleased", with its changes grouped under Added/Changed/Fixed/..."""
    text = (ROOT / "CHANGELOG.md").read_text()
    assert text.startswith("# Changelog")
    assert "https://keepachangelog.com/" in text
    headings = re.findall(r"^## .*", text, re.M)
    assert headings
    version = r"\[\d+\.\d+\.\d+\] - (\d{4}-\d\d-\d\d|Unreleased)"
    for heading in headings:
        assert re.fullmatch(rf"## (\[Unreleased\]|{version})", heading), heading
    assert f"## [{skood.__version__}] - " in text
    groups = set(re.findall(r"^### (\w+)", text, re.M))
    assert groups and groups <= {"Added", "Changed", "Deprecated", "Removed", "Fixed", "Security"}
    for entry in re.findall(r"^- (.*)", text, re.M):
        assert not re.search(r"\b(issue|session|worker)s?\b", entry, re.I), entry


def test_ruff_is_configured_run_by_ci_and_passes():
    config = pyproject()
    assert config["tool"]["ruff"]["line-length"] == 100
    dev = config["project"]["optional-dependencies"]["dev"]
    assert any(re.match(r"ruff\b", dep) for dep in dev)
    ci = (ROOT / ".ci" / "run").read_text()
    # after README's test command, which installs ruff with the dev extra
    assert ci.index('eval "$test_command"') < ci.index("python -m ruff check .")
    if importlib.util.find_spec("ruff") is None:
        pytest.skip("ruff is not installed (pip install -e '.[dev]')")
    result = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", "."],
                            cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-1000:]


def test_install_hints_name_the_checkouts_extras():
    """skood is installed from a checkout (it is not on PyPI): a hint says
    ``pip install -e ".[extra]"``, never ``pip install 'skood[extra]'``, and names an extra
    that pyproject.toml declares."""
    extras = set(pyproject()["project"]["optional-dependencies"])
    files = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")),
             *sorted((ROOT / "skood").rglob("*.py")), *sorted((ROOT / "examples").glob("*.py")),
             *sorted((ROOT / "benchmarks").glob("*.py"))]
    for path in files:
        text = path.read_text()
        assert not re.search(r"skood\[\w+\]", text), f"{path.name} names skood[...]"
        for name in re.findall(r'-e \S*?"?\.\[(\w+)\]', text):
            assert name in extras, f"{path.name}: no extra [{name}] in pyproject.toml"
