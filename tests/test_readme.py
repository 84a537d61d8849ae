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


MAIN_COMMAND = 'python -m pip install "torch==2.13.0" -e ".[benchmark]" && skood benchmark'
TEST_COMMAND = 'python -m pip install "torch==2.13.0" -e ".[dev]" && python -m pytest'
CPU_TORCH = "--index-url https://download.pytorch.org/whl/cpu"


def test_readme_opens_with_what_skood_is_the_snippet_and_the_two_commands():
    """A reader sees in the first 40 lines what skood does, the snippet and the two commands
    (the CPU-only step before them); the test command is the line .ci/run extracts."""
    lines = README.read_text().splitlines()
    head = "\n".join(lines[:40])
    assert lines[2].startswith("skood trains a PyTorch classifier")
    assert head.count("```python") == 1 and f"```python\n{readme_snippet()}```" in head
    assert head.count("```bash") == 2
    assert MAIN_COMMAND in lines[:40] and TEST_COMMAND in lines[:40]
    assert head.index(CPU_TORCH) < head.index(MAIN_COMMAND)
    ci = (README.parent / ".ci" / "run").read_text()
    awk = re.search(r"awk '(.*?)' README.md", ci).group(1)
    assert awk == "/<!-- test-command/{found=1; next} found && /^```bash/{getline; print; exit}"
    marker = next(i for i, line in enumerate(lines) if line.startswith("<!-- test-command"))
    fence = next(i for i in range(marker + 1, len(lines)) if lines[i].startswith("```bash"))
    assert lines[fence + 1] == TEST_COMMAND


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


#: README's results table: row -> (scored method, baseline) of the main job's paired.csv
README_ROWS = {
    "GReg against energy-OE, both scored by energy": ("greg", "energy_oe"),
    "GReg against CE, both scored by energy": ("greg", "ce_energy"),
    "GReg against CE, both scored by KNN": ("greg_knn", "ce_same_detector"),
    "GReg against CE, both scored by ViM": ("greg_vim", "ce_same_detector"),
    "CE scored by ViM against CE scored by energy": ("ce_vim", "ce_energy"),
    "CE scored by KNN against CE scored by energy": ("ce_knn", "ce_energy"),
    "CE with the chosen detector against CE scored by energy": ("ce_chosen", "ce_energy"),
    "GReg scored by energy against CE with the chosen detector": ("greg", "ce_chosen"),
    "GReg fused against CE with the chosen detector": ("greg_fused", "ce_chosen"),
    "GReg fused against GReg scored by energy": ("greg_fused", "greg"),
}
#: the same comparisons as docs/results_detectors.md words them, beside README's
PAGE_ROWS = {**README_ROWS,
             "GReg scored by KNN against CE with the chosen detector": ("greg_knn", "ce_chosen"),
             "GReg against CE, both fused": ("greg_fused", "ce_same_detector"),
             "CE: ViM against energy": ("ce_vim", "ce_energy"),
             "CE: KNN against energy": ("ce_knn", "ce_energy"),
             "GReg: KNN against energy": ("greg_knn", "greg"),
             "GReg: ViM against energy": ("greg_vim", "greg"),
             "CE: fused against energy": ("ce_fused", "ce_energy"),
             "GReg: fused against energy": ("greg_fused", "greg")}
MAIN_RUN = README.parent / "docs" / "results" / "digits-detectors"


def _table_rows(path):
    """comparison words -> the rest of its markdown table row (near and far cells)."""
    rows = {}
    for line in path.read_text().splitlines():
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        if line.startswith("| ") and len(cells) >= 3:
            rows[cells[-3]] = cells[-2:]
    return rows


def test_readme_figures_are_the_documented_runs():
    """The README's results table is the main job's documented run (docs/results/
    digits-detectors, made by its command): each cell is that run's paired.csv; so are the
    tables of docs/results.md and docs/results_detectors.md."""
    import pandas as pd

    paired = pd.read_csv(MAIN_RUN / "paired.csv")
    paired = paired[paired["metric"] == "fpr95"].set_index(["group", "method", "baseline"])
    report = (MAIN_RUN / "results.md").read_text()
    assert "Command: `skood benchmark --quiet --out docs/results/digits-detectors`" in report
    docs = README.parent / "docs"
    for path, words in ((README, README_ROWS), (docs / "results.md", ()),
                        (docs / "results_detectors.md", ())):
        rows = _table_rows(path)
        # every row the page has of these comparisons, and all of README's on README
        for phrase in set(words) | (set(rows) & set(PAGE_ROWS)):
            method, baseline = PAGE_ROWS[phrase]
            cells = []
            for group in ("near", "far"):
                row = paired.loc[(group, method, baseline)]
                cells.append(f"{row['mean_diff_points']:+.2f} [{row['ci_low_points']:+.2f}, "
                             f"{row['ci_high_points']:+.2f}], {row['n_better']} of "
                             f"{row['n_splits']}")
            assert rows.get(phrase) == cells, (path.name, phrase)
    assert len(set(_table_rows(docs / "results.md")) & set(PAGE_ROWS)) == 7
    assert len(set(_table_rows(docs / "results_detectors.md")) & set(PAGE_ROWS)) == 14


def test_the_main_jobs_energy_rows_are_the_earlier_documented_run_bit_for_bit():
    """Scoring more detectors changed no network: the energy rows of the main job's run equal
    those of the earlier documented run (docs/results/digits), which the digits pages and
    scripts analyse."""
    import pandas as pd

    columns = ["split", "seed", "method", "ood_set", "fpr95", "auroc", "aupr_in", "aupr_out",
               "accuracy"]
    energy = ["ce_energy", "energy_oe", "greg", "greg_plus"]
    new = pd.read_csv(MAIN_RUN / "results.csv")
    old = pd.read_csv(README.parent / "docs" / "results" / "digits" / "results.csv")
    new, old = (frame.loc[frame["method"].isin(energy), columns].reset_index(drop=True)
                for frame in (new, old))
    assert len(new) == 20 * 4 * 5
    pd.testing.assert_frame_equal(new, old, check_exact=True)


def test_the_fashion_mnist_fine_tuning_sentences_are_the_joined_documented_runs():
    """docs/results_finetune.md's Fashion-MNIST comparisons come from the two documented
    parts joined (their CE rows are the same run's, time aside)."""
    import pandas as pd
    from skood.benchmark import paired_differences, summary_sentences

    base = README.parent / "docs" / "results" / "fashion-mnist-finetune"
    first = pd.read_csv(base / "energy_oe-greg" / "results.csv")
    second = pd.read_csv(base / "greg_plus" / "results.csv")
    ce = ["ce_msp", "ce_energy"]
    pd.testing.assert_frame_equal(
        first[first["method"].isin(ce)].drop(columns="train_s").reset_index(drop=True),
        second[second["method"].isin(ce)].drop(columns="train_s").reset_index(drop=True))
    results = pd.concat([first, second[second["method"] == "greg_plus"]], ignore_index=True)
    sentences = summary_sentences(paired_differences(results))
    assert len(sentences) == 10
    text = (README.parent / "docs" / "results_finetune.md").read_text()
    for sentence in sentences:
        assert f"- {sentence}\n" in text, sentence


def test_readme_says_what_the_far_column_is_without_fashion_mnist():
    """The README's line on a machine without Debian's Fashion-MNIST: the documented run's rows
    without that set give a saturated far comparison with energy-OE and the quoted difference
    to CE-energy."""
    import pandas as pd
    from skood.benchmark import paired_differences

    results = pd.read_csv(MAIN_RUN / "results.csv")
    far = paired_differences(results[results["ood_set"] != "fashion-mnist"])
    far = far[(far["method"] == "greg") & (far["metric"] == "fpr95") & (far["group"] == "far")]
    far = far.set_index("baseline")
    assert far.loc["energy_oe", "method_mean_points"] == 0
    assert far.loc["energy_oe", "baseline_mean_points"] == 0
    text = " ".join(README.read_text().split())
    assert "dataset-fashion-mnist" in text and '"saturated"' in text
    assert f"-{abs(far.loc['ce_energy', 'mean_diff_points']):.2f} points instead of -12.64" in text
