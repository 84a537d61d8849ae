"""Every module of skood imports on its own, the modules import one another without a
cycle, and every public name of the API reference imports."""
import ast
import importlib
import importlib.util
import json
import os
import pkgutil
import re
import subprocess
import sys
from pathlib import Path

import skood

ROOT = Path(skood.__file__).resolve().parents[1]
API_RST = ROOT / "docs" / "api.rst"


def skood_modules():
    """The names of skood and of every module and package under it."""
    return ["skood"] + sorted(info.name for info in
                              pkgutil.walk_packages(skood.__path__, prefix="skood."))


# Run in one fresh interpreter: before each module it forgets every skood module, so that
# the module is the first of skood to be imported, as in an interpreter of its own; the
# third-party imports (torch above all, about 2 s each) are paid once rather than per module.
_IMPORT_EACH_FIRST = """
import importlib, json, sys, traceback
failed = {}
for module in sys.argv[1:]:
    for name in [name for name in sys.modules if name == "skood" or name.startswith("skood.")]:
        del sys.modules[name]
    try:
        importlib.import_module(module)
    except BaseException:
        failed[module] = traceback.format_exc().strip().splitlines()[-1]
print(json.dumps(failed))
"""


def _import_each_first(modules):
    """Import each of ``modules`` as the first skood module of a fresh interpreter; the
    modules that failed, with the last line of their traceback."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]), OMP_NUM_THREADS="1")
    result = subprocess.run([sys.executable, "-c", _IMPORT_EACH_FIRST, *modules],
                            capture_output=True, text=True, env=env, timeout=600)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_the_package_walk_finds_the_modules():
    modules = skood_modules()
    # a walk that found nothing would make the import test below pass on nothing
    assert len(modules) >= 30
    assert {"skood._classifier", "skood.metrics", "skood.benchmark.runner"} <= set(modules)


def test_every_module_imports_first_in_a_fresh_interpreter():
    # A cycle among modules shows only when a module of the cycle is imported first.
    # skood.__main__ runs the command line when imported: it is run with --version instead.
    modules = [module for module in skood_modules() if module != "skood.__main__"]
    failed = _import_each_first(modules)
    assert not failed, f"modules that do not import on their own: {failed}"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]))
    result = subprocess.run([sys.executable, "-m", "skood", "--version"], capture_output=True,
                            text=True, env=env, timeout=600)
    assert result.returncode == 0, result.stderr


def test_the_import_check_fails_on_a_planted_cycle(tmp_path):
    # Two modules that import each other's names at import time: importing either first
    # fails. The check must see it (else a passing check above proves nothing).
    package = tmp_path / "cyclepkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "first.py").write_text("from .second import B\nA = 1\n")
    (package / "second.py").write_text("from .first import A\nB = 2\n")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(tmp_path), str(ROOT)]))
    script = _IMPORT_EACH_FIRST.replace('"skood"', '"cyclepkg"').replace('"skood."',
                                                                         '"cyclepkg."')
    result = subprocess.run([sys.executable, "-c", script, "cyclepkg.first", "cyclepkg.second"],
                            capture_output=True, text=True, env=env, timeout=600)
    failed = json.loads(result.stdout.strip().splitlines()[-1])
    assert set(failed) == {"cyclepkg.first", "cyclepkg.second"}
    assert all("ImportError" in line for line in failed.values())


def _module_imports(name, path, modules):
    """The skood modules that the module ``name`` (file ``path``) imports when it is
    imported: its top-level imports, those in class bodies and in top-level if/try
    blocks, not those inside functions. ``modules``: the names of all modules."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    imported = set()

    def visit(nodes):
        for node in nodes:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                continue
            if isinstance(node, ast.Import):
                imported.update(alias.name for alias in node.names
                                if alias.name.split(".")[0] == "skood")
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")
                    base = base[:len(base) - node.level + 1]
                    target = ".".join(base + ([node.module] if node.module else []))
                else:
                    target = node.module or ""
                if target.split(".")[0] != "skood":
                    continue
                for alias in node.names:
                    # "from . import metrics" needs the module skood.metrics, and only it;
                    # "from . import __version__" needs the package's __init__ run
                    submodule = f"{target}.{alias.name}"
                    imported.add(submodule if submodule in modules else target)
            visit(list(ast.iter_child_nodes(node)))

    visit(ast.parse(path.read_text(encoding="utf-8")).body)
    return imported


def import_graph():
    """{module: the skood modules it imports}, for every module of skood."""
    files = {}
    for name in skood_modules():
        spec = importlib.util.find_spec(name)
        files[name] = Path(spec.origin)
    return {name: {target for target in _module_imports(name, path, files)
                   if target in files and target != name}
            for name, path in files.items()}


def find_cycle(graph):
    """One import cycle of ``graph`` as a list of modules (first == last), or None."""
    state = {}

    def visit(node, stack):
        state[node] = "open"
        stack.append(node)
        for target in sorted(graph.get(node, ())):
            if state.get(target) == "open":
                return stack[stack.index(target):] + [target]
            if target not in state:
                cycle = visit(target, stack)
                if cycle:
                    return cycle
        stack.pop()
        state[node] = "done"
        return None

    for node in sorted(graph):
        if node not in state:
            cycle = visit(node, [])
            if cycle:
                return cycle
    return None


def test_the_cycle_finder_finds_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None


def test_skood_modules_import_one_another_without_a_cycle():
    graph = import_graph()
    # the graph is read from the sources: a reader that saw no imports would find no cycle
    assert "skood._training" in graph["skood._classifier"]
    assert "skood._labels" in graph["skood.metrics"]
    cycle = find_cycle(graph)
    assert cycle is None, f"import cycle: {' -> '.join(cycle)}"


def test_the_helper_modules_never_import_the_estimator_module():
    # The private helpers take the estimator as an argument (or are its mixins), so that
    # the estimator module sits on top of them.
    graph = import_graph()
    helpers = [name for name in graph if name.rpartition(".")[2].startswith("_")
               and not name.rpartition(".")[2].startswith("__")
               and name not in ("skood._classifier", "skood._detector")]
    assert "skood._training" in helpers and "skood._labels" in helpers
    assert sorted(name for name in helpers if "skood._classifier" in graph[name]) == []


def api_names(text):
    """The fully qualified names that an API reference page (reStructuredText) lists: the
    entries of its autosummary blocks, read against the current module, and the targets
    of its auto* directives."""
    names, current, in_summary = [], None, False
    for line in text.splitlines():
        directive = re.match(r"\.\. ([\w-]+)::\s*(\S*)", line.strip())
        if directive and not line.startswith(" "):
            kind, target = directive.groups()
            in_summary = kind == "autosummary"
            if kind == "currentmodule":
                current = target
            elif kind.startswith("auto") and target:
                names.append(target)
            continue
        if in_summary:
            entry = line.strip()
            if not line.startswith(" ") and entry:
                in_summary = False
            elif entry and not entry.startswith(":"):
                names.append(f"{current}.{entry}")
    return names


def resolve(name):
    """The object a dotted name stands for: the longest importable module prefix, then
    attributes. Raises ImportError or AttributeError."""
    parts = name.split(".")
    for stop in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:stop]))
        except ModuleNotFoundError:
            continue
        for attribute in parts[stop:]:
            obj = getattr(obj, attribute)
        return obj
    raise ImportError(f"no module in {name!r}")


def unimportable(names):
    """The names among ``names`` that do not import, with the reason."""
    missing = {}
    for name in names:
        try:
            resolve(name)
        except (ImportError, AttributeError) as error:
            missing[name] = f"{type(error).__name__}: {error}"
    return missing


def test_the_api_reader_reads_autosummary_blocks_and_directives():
    text = """
.. currentmodule:: skood.metrics

.. autosummary::
   :toctree: generated/
   :nosignatures:

   auroc
   no_such_metric

Prose after the block.

.. autoclass:: skood.GradRegOODClassifier
"""
    names = api_names(text)
    assert names == ["skood.metrics.auroc", "skood.metrics.no_such_metric",
                     "skood.GradRegOODClassifier"]
    # a name that went missing is reported
    assert list(unimportable(names)) == ["skood.metrics.no_such_metric"]


def test_every_name_of_the_api_reference_imports():
    names = api_names(API_RST.read_text(encoding="utf-8"))
    # the page lists about a hundred names; a parser that read few would check nothing
    assert len(names) >= 80
    assert {"skood.GradRegOODClassifier", "skood.metrics.OUTLIER_LABEL",
            "skood.kmeans.kmeans", "skood.benchmark.run_benchmark"} <= set(names)
    assert unimportable(names) == {}


def test_every_public_module_exports_the_names_of_its_all():
    public = [name for name in skood_modules()
              if not any(part.startswith("_") for part in name.split("."))]
    checked = 0
    for name in public:
        module = importlib.import_module(name)
        for exported in getattr(module, "__all__", ()):
            assert hasattr(module, exported), f"{name}.__all__ names {exported!r}"
            checked += 1
    assert checked >= 80


def test_the_architecture_page_names_every_module():
    text = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    named = set(re.findall(r"`([\w.]+?)(?:\.py)?`", text))
    modules = [name for name in skood_modules() if name != "skood"]
    assert len(modules) >= 30
    # A module is named by its last part (`_params`, `_params.py`, `splits`), the way the
    # page's tables name them.
    missing = [name for name in modules if name.rpartition(".")[2] not in named]
    assert not missing, f"docs/architecture.md does not name: {missing}"
    index = (ROOT / "docs" / "index.md").read_text(encoding="utf-8")
    assert re.search(r"^architecture$", index, re.MULTILINE), "not in the docs' toctree"
