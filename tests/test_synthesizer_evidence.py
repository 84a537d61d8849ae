"""benchmarks/synthesizer_evidence.py: synthesizer runs against the photographs run."""
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from helpers import load_benchmark_script
from scipy.stats import t


def evidence_script():
    return load_benchmark_script("synthesizer_evidence")


def write_run(folder, splits, values, aux=None):
    """A results.csv: ``splits`` maps split index -> known classes; ``values``
    maps method -> known classes -> one (near FPR95, (far FPR95 x 2), accuracy) per seed."""
    rows = []
    for split, known in splits.items():
        for method, by_split in values.items():
            for seed, (near, far, accuracy) in enumerate(by_split[known]):
                for ood_set, group, fpr in (("n", "near", near), ("f1", "far", far[0]),
                                            ("f2", "far", far[1])):
                    row = dict(split=split, seed=seed, method=method, ood_set=ood_set,
                               group=group, known_classes=known, heldout_classes="x",
                               fpr95=fpr, auroc=0.5, accuracy=accuracy, epochs=3)
                    if aux is not None:
                        row["aux"] = aux
                    rows.append(row)
    Path(folder).mkdir(parents=True)
    pd.DataFrame(rows).to_csv(Path(folder) / "results.csv", index=False)
    return str(folder)


# the split with known classes "0 1" has two seeds, the others one
PHOTOS = {
    "ce_energy": {"0 1": [(0.50, (0.10, 0.20), 0.9), (0.60, (0.20, 0.30), 0.9)],
                  "0 2": [(0.40, (0.10, 0.10), 0.9)],
                  "1 2": [(0.70, (0.30, 0.10), 0.9)]},
    "greg": {"0 1": [(0.40, (0.00, 0.10), 0.9), (0.50, (0.10, 0.20), 0.9)],
             "0 2": [(0.30, (0.05, 0.05), 0.9)],
             "1 2": [(0.80, (0.10, 0.10), 0.9)]},
    "energy_oe": {"0 1": [(0.60, (0.10, 0.10), 0.9), (0.60, (0.10, 0.10), 0.9)],
                  "0 2": [(0.50, (0.10, 0.10), 0.9)],
                  "1 2": [(0.60, (0.10, 0.10), 0.9)]},
}
CLASS_MIX = {
    "greg": {"0 1": [(0.20, (0.20, 0.20), 0.90), (0.30, (0.20, 0.40), 0.80)],
             "0 2": [(0.35, (0.10, 0.10), 0.95)],
             "1 2": [(0.60, (0.00, 0.20), 0.90)]},
    "energy_oe": {"0 1": [(0.60, (0.20, 0.20), 0.9), (0.60, (0.20, 0.20), 0.9)],
                  "0 2": [(0.40, (0.20, 0.20), 0.9)],
                  "1 2": [(0.70, (0.20, 0.20), 0.9)]},
}
# the synthesizer run numbers the same class splits differently
PHOTO_SPLITS = {0: "0 1", 1: "0 2", 2: "1 2"}
MIX_SPLITS = {0: "1 2", 1: "0 1", 2: "0 2"}


def by_hand(diffs):
    """Mean and 95% t-interval, written out here (not the code under test)."""
    diffs = np.asarray(diffs, dtype=float)
    half = t.ppf(0.975, len(diffs) - 1) * diffs.std(ddof=1) / np.sqrt(len(diffs))
    return diffs.mean(), diffs.mean() - half, diffs.mean() + half


def row_of(table, source, method, group, baseline):
    rows = table[(table["source"] == source) & (table["method"] == method)
                 & (table["group"] == group) & (table["baseline"] == baseline)]
    assert len(rows) == 1
    return rows.iloc[0]


def test_paired_differences_match_the_hand_computation(tmp_path):
    script = evidence_script()
    photos = write_run(tmp_path / "photos", PHOTO_SPLITS, PHOTOS)          # no aux column
    mix = write_run(tmp_path / "mix", MIX_SPLITS, CLASS_MIX, aux="class-mix")
    out = tmp_path / "out"
    script.main(["--photos", photos, "--runs", mix, "--out", str(out), "--no-figure"])
    table = pd.read_csv(out / "synthesizers.csv")
    # per split (in "0 1", "0 2", "1 2" order), points; "0 1" is the mean over its two seeds,
    # far is the mean over f1 and f2.  GReg near: class-mix 25, 35, 60; photos 45, 30, 80;
    # CE 55, 40, 70.  GReg far: class-mix 25, 10, 10; photos 10, 5, 10; CE 20, 10, 20.
    expected = {("class-mix", "greg", "near", "photos"): ([-20, 5, -20], 2, 40.0),
                ("class-mix", "greg", "near", "ce_energy"): ([-30, -5, -10], 3, 40.0),
                ("class-mix", "greg", "far", "photos"): ([15, 5, 0], 0, 15.0),
                ("class-mix", "greg", "far", "ce_energy"): ([5, 0, -10], 1, 15.0),
                ("class-mix", "energy_oe", "near", "photos"): ([0, -10, 10], 1, 170 / 3),
                ("photos", "greg", "near", "ce_energy"): ([-10, -10, 10], 2, 155 / 3)}
    for key, (diffs, n_better, mean_fpr95) in expected.items():
        row = row_of(table, *key)
        mean, low, high = by_hand(diffs)
        assert row["mean_diff"] == pytest.approx(mean), key
        assert row["low"] == pytest.approx(low), key
        assert row["high"] == pytest.approx(high), key
        assert (row["n_better"], row["n_splits"]) == (n_better, 3), key
        assert row["mean_fpr95"] == pytest.approx(mean_fpr95), key
    # accuracy: the mean over splits of the mean over each split's seeds (0.85, 0.95, 0.90)
    assert row_of(table, "class-mix", "greg", "near", "photos")["mean_accuracy"] == (
        pytest.approx(90.0))
    # the photographs are compared with CE-energy only; 2 sources x 2 methods x 2 groups
    assert not ((table["source"] == "photos") & (table["baseline"] == "photos")).any()
    assert len(table) == 2 * 2 * 2 + 2 * 2
    text = (out / "synthesizers.md").read_text()
    assert "3 class splits, matched between runs by their known classes" in text
    assert ("| class-mix | GReg | 40.00 | 90.00 | -11.67 [" in text
            and "| 2/3 | -15.00 [" in text)
    assert ("GReg on class-mix against GReg on photographs, far-OOD FPR95: no consistent "
            "difference (mean 6.67 points") in text
    # energy-OE far: class-mix 20 on every split, photographs 10: the interval excludes 0
    assert ("energy-OE on class-mix raises far-OOD FPR95 against energy-OE on photographs by "
            "10.00 points") in text


def test_only_the_splits_of_every_run_are_used_and_the_report_says_so(tmp_path):
    script = evidence_script()
    photos = write_run(tmp_path / "photos", PHOTO_SPLITS, PHOTOS)
    mix = write_run(tmp_path / "mix", {4: "1 2", 7: "0 1"}, CLASS_MIX, aux="class-mix")
    out = tmp_path / "out"
    script.main(["--photos", photos, "--runs", mix, "--out", str(out), "--no-figure"])
    table = pd.read_csv(out / "synthesizers.csv")
    assert set(table["n_splits"]) == {2}
    # GReg near against the photographs on "0 1" and "1 2" only: -20 and -20
    assert row_of(table, "class-mix", "greg", "near", "photos")["mean_diff"] == (
        pytest.approx(-20.0))
    text = (out / "synthesizers.md").read_text()
    assert "1 of the photographs run's 3 splits are not in every run" in text
    assert "(known classes: 0 2)" in text


def test_refuses_runs_that_cannot_be_compared(tmp_path):
    script = evidence_script()
    photos = write_run(tmp_path / "photos", PHOTO_SPLITS, PHOTOS)
    other = {m: {"3 4": v["0 1"], "3 5": v["0 2"]} for m, v in CLASS_MIX.items()}
    disjoint = write_run(tmp_path / "disjoint", {0: "3 4", 1: "3 5"}, other, aux="rotation")
    with pytest.raises(ValueError, match=r"share 0 class split\(s\).*photos: 3, rotation: 2"):
        script.evidence(script.load_sources(photos, [disjoint]))
    # two runs each sharing two splits with the photographs, but only one with each other
    a = write_run(tmp_path / "a", {0: "0 1", 1: "0 2"}, CLASS_MIX, aux="class-mix")
    b = write_run(tmp_path / "b", {0: "0 1", 1: "1 2"}, CLASS_MIX, aux="blur-noise")
    with pytest.raises(ValueError, match=r"share 1 class split"):
        script.evidence(script.load_sources(photos, [a, b]))
    # a duplicate source, and the photographs passed again as a synthesizer run
    mix = write_run(tmp_path / "mix", MIX_SPLITS, CLASS_MIX, aux="class-mix")
    with pytest.raises(ValueError, match="'class-mix' appears twice"):
        script.load_sources(photos, [mix, a])
    with pytest.raises(ValueError, match="'photos' appears twice"):
        script.load_sources(photos, [photos])
    # a run with two aux values
    two = tmp_path / "two"
    frame = pd.read_csv(Path(mix) / "results.csv")
    frame.loc[frame["method"] == "greg", "aux"] = "rotation"
    two.mkdir()
    frame.to_csv(two / "results.csv", index=False)
    with pytest.raises(ValueError, match="2 aux values"):
        script.load_sources(photos, [str(two)])
    # a synthesizer run as the photographs run, a run lacking GReg, other training settings
    with pytest.raises(ValueError, match="photos must be a run with aux='photos'"):
        script.load_sources(mix, [photos])
    no_greg = write_run(tmp_path / "no_greg", MIX_SPLITS, {"energy_oe": CLASS_MIX["energy_oe"]},
                        aux="rotation")
    with pytest.raises(ValueError, match="lacks the method"):
        script.load_sources(photos, [no_greg])
    longer = tmp_path / "longer"
    longer.mkdir()
    pd.read_csv(Path(mix) / "results.csv").assign(epochs=5).to_csv(longer / "results.csv")
    with pytest.raises(ValueError, match="epochs"):
        script.load_sources(photos, [str(longer)])


def test_the_command_line_names_what_was_wrong(tmp_path, capsys):
    script = evidence_script()
    photos = write_run(tmp_path / "photos", PHOTO_SPLITS, PHOTOS)
    with pytest.raises(SystemExit):
        script.main(["--photos", photos, "--runs", str(tmp_path / "missing"),
                     "--out", str(tmp_path / "out")])
    assert "has no results.csv" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("dataset", ["digits", "fashion-mnist"])
def test_the_results_page_quotes_the_documented_outlier_source_runs(dataset):
    """docs/results_outlier_sources.md's table of each dataset is its synthesizers.csv:
    every difference it quotes (mean, interval, K/N) is that file's, row by row."""
    root = Path(__file__).resolve().parents[1]
    table = pd.read_csv(root / "docs" / "results" / "outlier_sources" / dataset /
                        "synthesizers.csv")
    text = (root / "docs" / "results_outlier_sources.md").read_text()
    words = {"energy_oe": "energy-OE", "greg": "GReg"}
    sources = list(dict.fromkeys(table["source"]))
    assert len(sources) == 6     # the photographs and five synthesizers
    for source in sources:
        for method in ("energy_oe", "greg"):
            rows = table[(table["source"] == source) & (table["method"] == method)]
            cells = {(r.group, r.baseline): f"{r.mean_diff:+.2f} [{r.low:+.2f}, {r.high:+.2f}], "
                                           f"{r.n_better}/{r.n_splits}"
                     for r in rows.itertuples()}
            near = rows[rows["group"] == "near"]["mean_fpr95"].iloc[0]
            far = rows[rows["group"] == "far"]["mean_fpr95"].iloc[0]
            name = "photographs" if source == "photos" else source
            line = (f"| {name} | {words[method]} | {near:.2f} | "
                    f"{cells.get(('near', 'photos'), '—')} | {cells[('near', 'ce_energy')]} | "
                    f"{far:.2f} | {cells.get(('far', 'photos'), '—')} |")
            assert line in text, line
