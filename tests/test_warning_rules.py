"""The suite's warning rules (filterwarnings in pyproject.toml): every warning skood raises is
an error in a test that neither expects it (pytest.warns) nor says why it ignores it."""
import ast
import builtins
import contextlib
import importlib
import warnings
from pathlib import Path

import pytest

import skood

SKOOD = Path(skood.__file__).resolve().parent


def warning_calls():
    """(where, category, message) of each ``warnings.warn`` and ``warn_at_caller`` call in
    skood's code; the message with each ``{...}`` of an f-string written as 0."""
    for path in sorted(SKOOD.rglob("*.py")):
        module = ".".join(("skood", *path.relative_to(SKOOD).with_suffix("").parts))
        for node in ast.walk(ast.parse(path.read_text())):
            func = getattr(node, "func", None)
            name = getattr(func, "attr", getattr(func, "id", None))
            if (name not in ("warn", "warn_at_caller")
                    or module == "skood.exceptions" and name == "warn"):  # warn_at_caller's own
                continue
            args = {**dict(enumerate(node.args)), **{k.arg: k.value for k in node.keywords}}
            category = args.get(1, args.get("category"))
            category = ("UserWarning" if category is None else ast.unparse(category))
            namespace = vars(importlib.import_module(module.removesuffix(".__init__")))
            category = namespace.get(category) or getattr(builtins, category)
            message = args.get(0, args.get("message"))
            if isinstance(message, ast.JoinedStr):
                message = "".join(part.value if isinstance(part, ast.Constant) else "0"
                                  for part in message.values)
            else:
                message = message.value if isinstance(message, ast.Constant) else None
            yield f"{module}:{node.lineno}", category, message


@contextlib.contextmanager
def suite_rules(pytestconfig):
    """Only the suite's rules apply within; the warnings they let through are recorded."""
    with warnings.catch_warnings(record=True) as shown:
        warnings.resetwarnings()
        for rule in pytestconfig.getini("filterwarnings"):
            action, message, category, module = (rule.split(":") + [""] * 4)[:4]
            path, _, name = category.rpartition(".")
            category = getattr(importlib.import_module(path) if path else builtins,
                               name or "Warning")
            warnings.filterwarnings(action, message, category, module)
        yield shown


CALLS = list(warning_calls())


def test_the_scan_finds_every_kind_of_warning_skood_raises():
    names = {category.__name__ for _, category, _ in CALLS}
    assert {"ChanceLevelWarning", "SmallCalibrationWarning", "UserWarning",
            "DataConversionWarning", "RuntimeWarning"} <= names
    assert len(CALLS) >= 9


@pytest.mark.parametrize("where, category, message", CALLS, ids=[where for where, *_ in CALLS])
def test_each_warning_of_skood_is_an_error_in_the_tests(pytestconfig, where, category, message):
    assert message is not None, (f"{where}: the message is not a string literal, so no rule "
                                 "can match it; give the warning a skood warning class")
    with suite_rules(pytestconfig):
        # attributed to a test's line, as warn_at_caller does: only a rule on the category or
        # on the message can make it an error
        with pytest.raises(category):
            warnings.warn_explicit(message, category, "test_caller.py", 1, module="test_caller")


def test_other_warnings_stay_warnings_and_skoods_code_warns_as_errors(pytestconfig):
    with suite_rules(pytestconfig) as shown:
        warnings.warn_explicit("another library", UserWarning, "test_caller.py", 1,
                               module="test_caller")
        assert [str(w.message) for w in shown] == ["another library"]
        with pytest.raises(FutureWarning):   # attributed to skood: a call of skood's code
            warnings.warn_explicit("deprecated", FutureWarning, "skood/x.py", 1, module="skood.x")
