"""`skood benchmark --aux`: which auxiliary outliers the outlier methods train with."""
import numpy as np
import pandas as pd
import pytest

pytest.importorskip("skimage")

from skood import GradRegOODClassifier, synthesis  # noqa: E402
from skood.benchmark import (BenchmarkConfig, BenchmarkConfigError,  # noqa: E402
                             load_benchmark_data, run_benchmark)
from skood.benchmark.config import DEFAULT_SEEDS  # noqa: E402
from skood.benchmark.outlier_sources import AUX_SOURCES, make_synthesizer  # noqa: E402
from helpers import SMOKE_RUN_WARNINGS  # noqa: E402

pytestmark = SMOKE_RUN_WARNINGS

#: one detector: no inner folds choosing one (their CE fits would count as fits here)
TINY = dict(splits=1, epochs=1, n_train=60, n_aux=30, n_ood=10, progress=False,
            detectors=("energy",))
OUTLIER_METHODS = ("energy_oe", "greg", "greg_plus")


@pytest.fixture
def fits(monkeypatch):
    """Every fit's estimator (its synthesizer) and X_aux, then the real fit."""
    seen = []
    real_fit = GradRegOODClassifier.fit

    def spy(self, X, y=None, X_aux=None, **kwargs):
        seen.append(dict(lambda_energy=self.lambda_energy, sampler=self.sampler,
                         synthesizer=self.synthesizer, X_aux=X_aux))
        return real_fit(self, X, y, X_aux=X_aux, **kwargs)

    monkeypatch.setattr(GradRegOODClassifier, "fit", spy)
    return seen


def test_the_sources_are_photos_and_every_synthesizer_of_skood_synthesis():
    expected = {"patch-shuffle": "PatchShuffle", "class-mix": "ClassMix", "rotation": "Rotation",
                "blur-noise": "BlurNoise", "feature-shuffle": "FeatureShuffle"}
    assert AUX_SOURCES[0] == "photos"
    assert len(AUX_SOURCES) == 1 + len(synthesis.__all__)
    for name in AUX_SOURCES[1:]:
        made = make_synthesizer(name)
        assert type(made).__name__ in synthesis.__all__
        if name in expected:
            assert type(made).__name__ == expected[name]
    assert make_synthesizer("photos") is None
    assert type(make_synthesizer("photos+rotation")).__name__ == "Rotation"


def test_a_synthesizer_alone_reaches_every_outlier_method_without_x_aux(fits):
    results, _, _ = run_benchmark(aux="patch-shuffle", **TINY)
    # ce first (no outliers), then the three outlier methods, in METHODS order
    assert len(fits) == 4
    ce, *outlier = fits
    assert ce["synthesizer"] is None and ce["lambda_energy"] == 0.0
    for fit in outlier:
        assert isinstance(fit["synthesizer"], synthesis.PatchShuffle)
        assert fit["X_aux"] is None
    # a new instance per fit: nothing carried from one fit to the next
    assert len({id(fit["synthesizer"]) for fit in outlier}) == 3
    assert (results["aux"] == "patch-shuffle").all()
    assert set(results["method"]) == {"ce_energy", *OUTLIER_METHODS}
    assert np.isfinite(results["fpr95"]).all()


def test_photos_and_a_synthesizer_give_both(fits):
    results, _, _ = run_benchmark(aux="photos+rotation", methods=("energy_oe", "greg"), **TINY)
    data = load_benchmark_data(split=BenchmarkConfig(splits=1).known_splits[0],
                               random_state=DEFAULT_SEEDS[0], n_train=60, n_aux=30, n_ood=10)
    assert len(fits) == 2
    for fit in fits:
        assert isinstance(fit["synthesizer"], synthesis.Rotation)
        np.testing.assert_array_equal(fit["X_aux"], data.X_aux)
    assert (results["aux"] == "photos+rotation").all()


def test_photos_is_the_default_and_passes_the_photographs_only(fits):
    results, _, _ = run_benchmark(**TINY)
    data = load_benchmark_data(split=BenchmarkConfig(splits=1).known_splits[0],
                               random_state=DEFAULT_SEEDS[0], n_train=60, n_aux=30, n_ood=10)
    assert len(fits) == 4
    for fit in fits:
        assert fit["synthesizer"] is None
        np.testing.assert_array_equal(fit["X_aux"], data.X_aux)
    assert (results["aux"] == "photos").all()
    # the same run with aux="photos" spelled out gives the same numbers
    fits.clear()
    again, _, _ = run_benchmark(aux="photos", **TINY)
    columns = ["method", "ood_set", "fpr95", "auroc", "aupr_in", "aupr_out", "accuracy"]
    assert again[columns].equals(results[columns])


@pytest.mark.parametrize("aux, words", [
    ("imagenet", "unknown: ['imagenet']"), ("Photos", "unknown: ['Photos']"),
    ("photos+", "unknown: ['']"), ("", "unknown: ['']"),
    ("photos+photos", "each source once"), ("rotation+class-mix", "at most one synthesizer"),
    (3, "aux must be a string")])
def test_a_bad_source_is_refused_before_any_work(aux, words, monkeypatch):
    from skood.benchmark import runner

    def never(*args, **kwargs):
        raise AssertionError("work started before aux was checked")

    for name in ("load_far", "load_run", "outlier_pool"):
        monkeypatch.setattr(runner, name, never)
    monkeypatch.setattr(GradRegOODClassifier, "fit", never)
    with pytest.raises(BenchmarkConfigError, match="^aux ") as info:
        run_benchmark(splits=1, aux=aux)
    assert info.value.parameter == "aux"
    assert words in str(info.value)


def test_the_command_line_passes_aux_through_to_the_results(fits, tmp_path):
    from skood.cli import main

    main(["benchmark", "--aux", "rotation", "--methods", "energy_oe", "--splits", "1",
          "--epochs", "1", "--n-train", "60", "--n-aux", "30", "--n-ood", "10", "--quiet",
          "--out", str(tmp_path)])
    assert [type(fit["synthesizer"]).__name__ for fit in fits] == ["Rotation"]
    assert fits[0]["X_aux"] is None
    written = pd.read_csv(tmp_path / "results.csv")
    assert set(written["aux"]) == {"rotation"}
    assert "outliers: rotation" in (tmp_path / "results.md").read_text()
