"""Random class splits: drawn reproducibly, distinct, leak-free, and varied by the seed."""
import itertools

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("skimage")

from skood import GradRegOODClassifier  # noqa: E402
from skood.benchmark import (HELDOUT_SPLITS, BenchmarkConfig, draw_class_splits,  # noqa: E402
                             load_benchmark_data, run_benchmark)
from skood.cli import main  # noqa: E402
from helpers import SMOKE_RUN_WARNINGS  # noqa: E402

pytestmark = SMOKE_RUN_WARNINGS


def test_draws_are_reproducible_distinct_and_nested():
    first, again = draw_class_splits(10, 4, 20), draw_class_splits(10, 4, 20)
    assert first == again
    assert len(set(first)) == 20
    for known in first:
        assert len(known) == 6 and list(known) == sorted(set(known)) and set(known) <= set(
            range(10))
    # a smaller draw is the start of a larger one; another seed draws other splits
    assert draw_class_splits(10, 4, 5) == first[:5]
    assert draw_class_splits(10, 4, 20, random_state=1) != first
    # all 210 choices can be drawn, each once; one more is refused
    every = draw_class_splits(10, 4, 210)
    assert len(set(every)) == 210 == len(list(itertools.combinations(range(10), 4)))
    with pytest.raises(ValueError, match="at most 210"):
        draw_class_splits(10, 4, 211)


def test_the_same_command_runs_the_same_splits():
    config = BenchmarkConfig(splits=20)
    assert config.known_splits == BenchmarkConfig(splits=20).known_splits
    assert config.known_splits == draw_class_splits(10, 4, 20, random_state=0)
    assert BenchmarkConfig(splits=3, split_seed=5).known_splits == draw_class_splits(10, 4, 3, 5)
    assert BenchmarkConfig(splits="neal").known_splits == HELDOUT_SPLITS
    assert BenchmarkConfig(protocol="full").known_splits == (tuple(range(10)),)


def _digits_table():
    from sklearn.datasets import load_digits
    X, y = load_digits(return_X_y=True)
    keys = np.rint(X).astype(np.uint8)
    return {key.tobytes(): int(label) for key, label in zip(keys, y)}


def _labels_of(X, table):
    keys = np.rint(np.asarray(X, dtype=np.float64).reshape(len(X), -1) * 16).astype(np.uint8)
    return np.array([table.get(key.tobytes(), -1) for key in keys])


def test_no_heldout_class_reaches_fit_in_any_split(monkeypatch):
    """Every array fit sees, for every split and seed of a run, holds only that
    split's known classes (mapped back to the original digits labels)."""
    fit, seen = GradRegOODClassifier.fit, []

    def spy_fit(self, X, y=None, **kwargs):
        seen.append(dict(X=np.asarray(X), y=np.asarray(y), X_aux=np.asarray(kwargs["X_aux"])))
        return fit(self, X, y, **kwargs)

    monkeypatch.setattr(GradRegOODClassifier, "fit", spy_fit)
    results, _, _ = run_benchmark("digits", splits=3, seeds=(0, 1), methods=("energy_oe",),
                                  epochs=1, progress=False, n_train=200, n_aux=100, n_ood=50)
    table = _digits_table()
    splits = draw_class_splits(10, 4, 3)
    assert len(seen) == 6
    for (split, seed), call in zip(itertools.product(range(3), (0, 1)), seen):
        known = np.asarray(splits[split])
        original = _labels_of(call["X"], table)
        assert (original >= 0).all(), "a training image that is not a digit"
        assert set(original) <= set(known), (split, seed, set(original) - set(known))
        np.testing.assert_array_equal(known[call["y"]], original)
        assert (_labels_of(call["X_aux"], table) == -1).all()
    written = results.drop_duplicates("split").set_index("split")["known_classes"]
    assert [written[k] for k in range(3)] == [" ".join(map(str, s)) for s in splits]


def test_a_splits_data_differ_across_seeds_and_repeat_for_a_seed():
    known = draw_class_splits(10, 4, 1)[0]
    kwargs = dict(split=known, n_train=300, n_aux=200, n_ood=100)
    a, b = (load_benchmark_data("digits", random_state=seed, **kwargs) for seed in (0, 1))
    again = load_benchmark_data("digits", random_state=0, **kwargs)
    # another seed: another train/test split, another outlier draw, another estimator seed
    table = _digits_table()
    test_a, test_b = (set(map(bytes, np.rint(d.X_test.reshape(len(d.X_test), -1) * 16)
                              .astype(np.uint8))) for d in (a, b))
    assert test_a != test_b
    assert not np.array_equal(a.X_train, b.X_train)
    assert not np.array_equal(a.X_aux, b.X_aux)
    assert not np.array_equal(a.ood["digits-heldout"], b.ood["digits-heldout"])
    assert a.estimator_seed != b.estimator_seed
    assert set(_labels_of(a.X_train, table)) == set(_labels_of(b.X_train, table)) == set(known)
    # the far sets stay; the same seed gives the same data
    np.testing.assert_array_equal(a.ood["textures"], b.ood["textures"])
    for name in ("X_train", "y_train", "X_test", "X_aux"):
        np.testing.assert_array_equal(a[name], again[name])
    assert a.estimator_seed == again.estimator_seed


def test_a_run_trains_on_the_data_load_benchmark_data_gives(monkeypatch):
    fit, seen = GradRegOODClassifier.fit, []

    def spy_fit(self, X, y=None, **kwargs):
        seen.append((np.asarray(X), np.asarray(kwargs["X_aux"]), self.random_state))
        return fit(self, X, y, **kwargs)

    monkeypatch.setattr(GradRegOODClassifier, "fit", spy_fit)
    run_benchmark("digits", splits=2, seeds=(3,), methods=("ce",), epochs=1, progress=False,
                  n_train=100, n_aux=50, n_ood=20, detectors=("energy",))
    assert len(seen) == 2
    for known, (X, X_aux, random_state) in zip(draw_class_splits(10, 4, 2), seen):
        data = load_benchmark_data("digits", split=known, random_state=3, n_train=100,
                                   n_aux=50, n_ood=20)
        np.testing.assert_array_equal(X, data.X_train)
        np.testing.assert_array_equal(X_aux, data.X_aux)
        assert random_state == data.estimator_seed



@pytest.mark.parametrize("argv, words", [
    (["--splits", "0"], ["--splits must be a positive integer or 'neal'", "'0'"]),
    (["--splits", "-2"], ["--splits must be a positive integer or 'neal'"]),
    (["--splits", "some"], ["--splits must be a positive integer or 'neal'", "'some'"]),
    (["--splits", "211"], ["--splits must be at most 210", "4 held-out classes among 10"]),
    (["--protocol", "full", "--splits", "3"], ["--splits only apply to the heldout protocol"]),
    (["--split-seed", "-1"], ["--split-seed must be an integer >= 0"]),
    (["--seeds", "-1"], ["--seeds must be distinct integers >= 0", "-1"]),
    (["--seeds", "0", "0"], ["--seeds must be distinct"]),
    (["--seeds", "x"], ["--seeds", "invalid int value", "'x'"]),
])
def test_bad_splits_and_seeds_are_refused_before_any_training(argv, words, no_training, capsys,
                                                              tmp_path):
    with pytest.raises(SystemExit) as exit_info:
        main(["benchmark", *argv, "--quiet", "--out", str(tmp_path)])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "usage: skood benchmark" in err and "Traceback" not in err
    for word in words:
        assert word in err, (word, err)


def test_neal_selects_the_five_fixed_splits(tmp_path):
    code = main(["benchmark", "--splits", "neal", "--methods", "ce", "--epochs", "1",
                 "--n-train", "100", "--n-aux", "50", "--n-ood", "20", "--quiet",
                 "--out", str(tmp_path)])
    assert code == 0
    frame = pd.read_csv(tmp_path / "results.csv", dtype={"known_classes": str})
    written = frame.drop_duplicates("split").sort_values("split")["known_classes"]
    assert list(written) == [" ".join(map(str, known)) for known in HELDOUT_SPLITS]


@pytest.mark.parametrize("n_classes, n_heldout", [(10, 0), (10, 10), (10, -1), (1, 0), (10, 2.0)])
def test_a_held_out_count_outside_its_range_is_refused(n_classes, n_heldout):
    from skood.benchmark import draw_class_splits
    with pytest.raises(ValueError, match="n_heldout must be|n_classes must be"):
        draw_class_splits(n_classes, n_heldout, 1)
