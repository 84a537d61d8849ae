"""The README's Python snippet runs as written and learns (the first thing a user runs)."""
import re
from pathlib import Path

import pytest
from sklearn.base import clone

README = Path(__file__).resolve().parent.parent / "README.md"

pytest.importorskip("skimage")


def readme_snippet():
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    assert blocks, "README.md has no python block"
    return blocks[0]


def test_readme_snippet_runs_and_reaches_95_percent_of_cross_entropy_accuracy(
        tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)     # the snippet saves detector.joblib
    namespace = {}
    exec(compile(readme_snippet(), "README.md", "exec"), namespace)
    clf, X_train, y_train = namespace["clf"], namespace["X_train"], namespace["y_train"]
    X_new, y_new = namespace["X_new"], namespace["y_new"]
    assert (tmp_path / "detector.joblib").exists()
    accuracy = clf.score(X_new, y_new)
    # the same network and optimizer trained with cross-entropy alone
    cross_entropy = clone(clf).set_params(lambda_energy=0.0, lambda_grad=0.0, verbose=0)
    reference = cross_entropy.fit(X_train, y_train).score(X_new, y_new)
    assert accuracy >= 0.95 * reference, (accuracy, reference)
    assert namespace["is_id"].mean() > 0.9
