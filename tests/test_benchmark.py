"""A smoke run of `skood benchmark`: tables and figures are produced and well-formed."""
import os
import struct

import joblib
import numpy as np
import pandas as pd
import pytest

pytest.importorskip("skimage")
pytest.importorskip("matplotlib")

from skood.benchmark import DEFAULT_DETECTORS, METHODS, scored_methods  # noqa: E402
from skood.benchmark.figures import drawn_methods  # noqa: E402
from skood.benchmark.methods import CHOSEN, DETECTOR_OF, TRAIN_METHOD  # noqa: E402
from skood import GradRegOODClassifier  # noqa: E402
from skood.cli import main  # noqa: E402
from helpers import SMOKE_RUN_WARNINGS  # noqa: E402

pytestmark = SMOKE_RUN_WARNINGS

#: a detector class, not a name: refused as a benchmark detector
KNN_CLASS = __import__("skood.detectors", fromlist=["KNN"]).KNN

#: the rows of a run with every method and the default detectors
SCORED_METHODS = scored_methods(METHODS, DEFAULT_DETECTORS)


def png_size(path):
    with open(path, "rb") as f:
        header = f.read(24)
    assert header[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    return struct.unpack(">II", header[16:24])


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench")
    models = out / "models"
    code = main(["benchmark", "--dataset", "digits", "--n-train", "300", "--n-aux", "300",
                 "--n-ood", "100", "--epochs", "1", "--splits", "2", "--quiet",
                 "--out", str(out), "--save-models", str(models)])
    assert code == 0
    return out, models


def test_csv_has_every_method_ood_set_and_split(smoke_run):
    out, _ = smoke_run
    frame = pd.read_csv(out / "results.csv")
    assert {"split", "seed", "method", "detector", "ood_set", "group", "protocol",
            "known_classes", "heldout_classes", "fpr95", "auroc", "aupr_in", "aupr_out",
            "accuracy", "train_s", "score_s", "choice"} <= set(frame.columns)
    assert set(frame["method"]) == set(SCORED_METHODS)
    assert set(frame["detector"]) == set(DEFAULT_DETECTORS)
    for method, detector in zip(frame["method"], frame["detector"]):
        assert DETECTOR_OF.get(method, detector) == detector, method
    assert set(frame["split"]) == {0, 1} and set(frame["seed"]) == {0}
    assert {"digits-heldout", "textures", "gaussian-noise", "uniform-noise"} <= set(
        frame["ood_set"])
    assert set(frame.loc[frame["ood_set"] == "digits-heldout", "group"]) == {"near"}
    assert set(frame.loc[frame["ood_set"] != "digits-heldout", "group"]) == {"far"}
    assert set(frame["protocol"]) == {"heldout"}
    n_sets = frame["ood_set"].nunique()
    assert len(frame) == 2 * len(SCORED_METHODS) * n_sets
    for column in ("fpr95", "auroc", "aupr_in", "aupr_out", "accuracy"):
        assert frame[column].between(0, 1).all(), column
    assert (frame["train_s"] > 0).all() and (frame["score_s"] > 0).all()
    # the chosen rows are those of CE with the chosen detector, and say what was chosen from
    chosen = frame[frame["method"] == CHOSEN]
    assert chosen["choice"].str.count(";").eq(len(DEFAULT_DETECTORS) - 1).all()
    for (split, detector), rows in chosen.groupby(["split", "detector"]):
        same = frame[(frame["method"] == f"ce_{detector}") & (frame["split"] == split)]
        pd.testing.assert_frame_equal(
            rows[["ood_set", "fpr95", "auroc", "accuracy"]].reset_index(drop=True),
            same[["ood_set", "fpr95", "auroc", "accuracy"]].reset_index(drop=True))


def test_markdown_table_lists_the_methods_with_spread(smoke_run):
    out, _ = smoke_run
    text = (out / "results.md").read_text()
    assert ("| method | FPR95 | AUROC | AUPR-In | AUPR-Out | ID accuracy | train s | score s |"
            in text)
    for group in ("Near", "Far"):
        table = text.split(f"**{group} OOD**")[1].split("\n\n")[1]
        rows = [line for line in table.splitlines() if line.startswith("| ") and "±" in line]
        assert [row.split("|")[1].strip() for row in rows] == list(SCORED_METHODS), group
    assert "2 class split(s) x 1 seed(s)" in text
    assert "mean ± standard deviation between class splits" in text
    assert "OOD set **digits-heldout** (near)" in text


def test_report_has_summary_legend_paired_table_and_embedded_figures(smoke_run):
    out, _ = smoke_run
    text = (out / "results.md").read_text()
    summary = text.split("## Summary")[1].split("##")[0]
    assert "GReg" in summary and "energy-OE" in summary and "near-OOD FPR95" in summary
    for method in SCORED_METHODS:
        assert f"- `{method}`: " in text, method
    assert "`energy_oe`: energy outlier exposure" in text and "lambda_grad=0" in text
    assert "Paired differences (method minus baseline" in text
    assert "Against energy_oe, near group:" in text and "Against ce_energy, far group:" in text
    histograms = drawn_methods([m for m in SCORED_METHODS if m != CHOSEN])[0]
    assert histograms == ["ce_energy", "energy_oe", "greg", "greg_plus"]
    for name in [f"hist_{m}.png" for m in histograms] + ["roc.png", "paired_splits.png"]:
        assert f"]({name})" in text, name
    for heading in ("Where training helps", "Where feature detectors help",
                    "Where fusion helps", "Choosing the detector on held-out classes"):
        assert f"**{heading}" in summary, heading
    assert "GReg (ViM)" in summary and "against CE (ViM)" in summary
    paired = pd.read_csv(out / "paired.csv")
    assert list(paired.columns) == [
        "group", "method", "baseline", "metric", "n_splits", "n_seeds", "mean_diff_points",
        "ci_low_points", "ci_high_points", "sd_between_splits_points", "n_better",
        "method_mean_points", "baseline_mean_points"]
    assert set(paired["group"]) == {"near", "far"}
    assert set(paired["baseline"]) == {"energy_oe", "ce_energy", "greg", CHOSEN,
                                       "ce_same_detector"}
    for baseline in ("energy_oe", "ce_energy", "greg", CHOSEN):
        methods = set(paired.loc[paired["baseline"] == baseline, "method"])
        assert methods == set(SCORED_METHODS) - {baseline}, baseline
    # against CE with the same detector: the outlier methods with another detector than energy
    same = set(paired.loc[paired["baseline"] == "ce_same_detector", "method"])
    assert same == {m for m in SCORED_METHODS if TRAIN_METHOD[m] != "ce"
                    and DETECTOR_OF[m] != "energy"}
    assert (paired["n_splits"] == 2).all() and (paired["n_seeds"] == 1).all()
    per_split = pd.read_csv(out / "paired_splits.csv")
    assert len(per_split) == 2 * len(paired)    # one row per split of each paired row


def test_figures_are_pngs(smoke_run):
    out, _ = smoke_run
    histograms = drawn_methods([m for m in SCORED_METHODS if m != CHOSEN])[0]
    for name in [f"hist_{m}.png" for m in histograms] + ["roc.png", "paired_splits.png"]:
        width, height = png_size(out / name)
        assert width > 200 and height > 100, name


def test_saved_models_score_new_data(smoke_run):
    _, models = smoke_run
    saved = sorted(models.glob("*.joblib"))
    assert len(saved) == 2 * len(METHODS)
    clf = joblib.load(saved[0])
    scores = clf.score_samples(np.zeros((3, 1, 8, 8), dtype=np.float32))
    assert scores.shape == (3,) and np.isfinite(scores).all()


def test_command_prints_per_set_and_average_tables(smoke_run, capsys):
    main(["benchmark", "--dataset", "digits", "--n-train", "200", "--n-aux", "200",
          "--n-ood", "50", "--epochs", "1", "--splits", "1", "--methods", "ce", "--quiet", "--out",
          str(smoke_run[0] / "again")])
    out = capsys.readouterr().out
    assert "| method | FPR95 | AUROC | AUPR-In | AUPR-Out | ID accuracy | train s |" in out
    assert "**Near OOD** (mean over digits-heldout)" in out and "**Far OOD**" in out
    assert "OOD set **textures** (far)" in out and "| ce_vim |" in out


def test_resnet18_option_builds_a_network_for_the_images():
    import torch
    from skood.benchmark.methods import module_params
    params = module_params("resnet18", (28, 28), 10)
    module = params["module"](**{k.split("__", 1)[1]: v for k, v in params.items()
                                 if k.startswith("module__")}, width=8)
    assert module(torch.zeros(2, 1, 28, 28)).shape == (2, 10)


def _never(*args, **kwargs):
    raise AssertionError("data was loaded or a model trained before the arguments were checked")


@pytest.fixture
def no_training(monkeypatch):
    import skood.benchmark as benchmark
    import skood.datasets
    from skood.benchmark import data, runner
    for module in (data, runner):
        for name in ("load_far", "load_run", "outlier_pool"):
            monkeypatch.setattr(module, name, _never)
    monkeypatch.setattr(skood.datasets, "load_fashion_mnist", _never)
    monkeypatch.setattr(runner.GradRegOODClassifier, "fit", _never)
    return benchmark


def test_detector_names_are_read_in_any_case_and_kept_lower_case():
    from skood.benchmark import BenchmarkConfig
    assert BenchmarkConfig(detectors=("ViM", "KNN")).detectors == ("vim", "knn")
    assert BenchmarkConfig(detectors="fused").detectors == ("fused",)


@pytest.mark.parametrize("kwargs, error, message", [
    (dict(dataset="cifar5"), ValueError, "dataset must be one of"),
    (dict(protocol="open"), ValueError, r"protocol must be one of \['heldout', 'full'\]"),
    (dict(protocol="heldout-classes"), ValueError, "protocol must be one of"),
    (dict(methods=("greg", "oe")), ValueError, "methods must be a non-empty subset"),
    (dict(methods=()), ValueError, "methods must be a non-empty subset"),
    (dict(detectors=("knn_1",)), ValueError,
     r"detectors must be distinct names of skood.detectors.DETECTORS \(energy, msp, .*fused\)"),
    (dict(detectors=()), ValueError, "detectors must be distinct names .* at least one"),
    (dict(detectors=("knn", "KNN")), ValueError, r"got \['knn', 'KNN'\]"),
    (dict(detectors=(KNN_CLASS,)), ValueError, "detectors must be distinct names"),
    (dict(seeds=()), ValueError, "seeds must be distinct"),
    (dict(seeds=(0, 0)), ValueError, "seeds must be distinct"),
    (dict(seeds=(-1,)), ValueError, "seeds must be distinct integers >= 0"),
    (dict(splits=0), ValueError, "splits must be a positive integer"),
    (dict(splits=211), ValueError, r"splits must be at most 210 \(the choices of 4"),
    (dict(splits="all"), ValueError, "splits must be a positive integer .* or 'neal'"),
    (dict(protocol="full", splits=3), ValueError, "splits only apply to the heldout"),
    (dict(split_seed=-1), ValueError, "split_seed must be an integer >= 0"),
    (dict(n_trian=100), TypeError, r"unknown settings \['n_trian'\]"),
    (dict(penalty_fraction=0.0), ValueError, r"penalty_fraction must be a number in \(0, 1\]"),
    (dict(penalty_fraction=1.5), ValueError, "penalty_fraction must be"),
    (dict(pool_factor=0), ValueError, "pool_factor must be a positive integer, got 0"),
    (dict(pool_factor=2.5), ValueError, "pool_factor must be a positive integer"),
    (dict(pool_factor=True), ValueError, "pool_factor must be a positive integer"),
    (dict(finetune_epochs=3), ValueError, r"finetune_epochs only apply .*finetune=True"),
    (dict(finetune_lr=0.01), ValueError, r"finetune_lr only apply .*finetune=True"),
    (dict(finetune="yes"), TypeError, "finetune must be True or False"),
    (dict(finetune=True, finetune_epochs=0), ValueError, "finetune_epochs must be a positive"),
    (dict(finetune=True, finetune_epochs=2.5), ValueError, "finetune_epochs must be a positive"),
    (dict(finetune=True, finetune_lr=-0.01), ValueError, "finetune_lr must be a positive"),
    (dict(finetune=True, finetune_lr=float("nan")), ValueError, "finetune_lr must be a positive"),
    (dict(finetune=True, finetune_lr="0.01"), ValueError, "finetune_lr must be a positive"),
])
def test_bad_arguments_are_refused_before_any_training(kwargs, error, message, no_training):
    with pytest.raises(error, match=message):
        no_training.run_benchmark(**kwargs)


def test_command_refuses_an_unknown_protocol_before_any_training(no_training, capsys, tmp_path):
    with pytest.raises(SystemExit) as exit_info:
        main(["benchmark", "--protocol", "open", "--quiet", "--out", str(tmp_path)])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "--protocol" in err and "'open'" in err and "heldout" in err and "full" in err
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize("argv, words", [
    (["--finetune-epochs", "3"], ["--finetune-epochs", "need --finetune"]),
    (["--finetune-lr", "0.01"], ["--finetune-lr", "need --finetune"]),
    (["--finetune", "--finetune-epochs", "0"], ["--finetune-epochs", "above 0", "'0'"]),
    (["--finetune", "--finetune-epochs", "two"], ["--finetune-epochs", "an integer above 0"]),
    (["--finetune", "--finetune-lr", "-1"], ["--finetune-lr", "above 0", "'-1'"]),
    (["--finetune", "--finetune-lr", "inf"], ["--finetune-lr", "above 0"]),
])
def test_command_refuses_bad_finetune_options_before_any_training(argv, words, no_training,
                                                                  capsys, tmp_path):
    with pytest.raises(SystemExit) as exit_info:
        main(["benchmark", *argv, "--quiet", "--out", str(tmp_path)])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "usage: skood benchmark" in err
    for word in words:
        assert word in err, (word, err)
    assert not any(tmp_path.iterdir())


class _FirstBatch:
    """Wraps the net's ``on_batch_begin``: records the logits of the network, as it is
    before the first optimizer step of each fit, on that fit's first training batch."""

    def __init__(self, on_batch_begin):
        self.on_batch_begin = on_batch_begin
        self.seen = {}

    def __call__(self, net, batch=None, training=False, **kwargs):
        import torch
        self.on_batch_begin(net, net, batch=batch, training=training, **kwargs)   # (self, net)
        if training and id(net) not in self.seen:
            X = torch.as_tensor(batch[0]).clone()
            net.module_.eval()
            with torch.no_grad():
                self.seen[id(net)] = (X, net.module_(X).clone())
            net.module_.train()


def test_fine_tuned_methods_start_from_the_same_seeds_ce_network(monkeypatch):
    import torch
    import skood.benchmark as benchmark
    cls = GradRegOODClassifier
    first, fitted = _FirstBatch(cls.on_batch_begin), []
    fit = cls.fit

    def spy_fit(self, *args, **kwargs):
        fitted.append(self)
        return fit(self, *args, **kwargs)

    monkeypatch.setattr(cls, "on_batch_begin", first)
    monkeypatch.setattr(cls, "fit", spy_fit)
    results, _, _ = benchmark.run_benchmark(
        "digits", splits=1, seeds=(0, 1), methods=("energy_oe", "greg"), epochs=2,
        finetune=True, finetune_epochs=1, finetune_lr=0.003, progress=False, n_train=150,
        n_aux=64, n_ood=20, detectors=("msp", "energy"))
    # the two detectors' choice trains one CE network per inner fold after each run's CE
    inner = [net for net in fitted if len(net.classes_) < 6]
    assert len(inner) == 2 * 3 and all(net.lambda_energy == 0 for net in inner)
    fitted = [net for net in fitted if len(net.classes_) == 6]
    # ce is trained first for each run (though not asked for), then the two fine-tunings
    assert [net.lambda_energy == 0 for net in fitted] == [True, False, False] * 2
    runs = [fitted[:3], fitted[3:]]
    for seed, (ce, *tuned) in enumerate(runs):
        assert len({net.random_state for net in (ce, *tuned)}) == 1
        ce.module_.eval()
        for net in tuned:
            assert (net.max_epochs, net.lr) == (1, 0.003)
            X, logits = first.seen[id(net)]
            with torch.no_grad():
                expected = ce.module_(X)
            # before its first step, the fine-tuned network computes the CE network's logits
            assert torch.equal(logits, expected), (seed, net.lambda_grad)
            assert net.module_ is not ce.module_
        # and the two fine-tunings moved apart from CE (and did not train CE's own network)
        X, _ = first.seen[id(tuned[0])]
        with torch.no_grad():
            assert not torch.equal(tuned[0].module_(X), ce.module_(X))
        # ce's own first batch came from a random start, not from another run's network
        X, logits = first.seen[id(ce)]
        other = runs[1 - seed][0]
        other.module_.eval()
        with torch.no_grad():
            assert not torch.equal(logits, other.module_(X))
    starts = results.drop_duplicates("method").set_index("method")
    assert starts.loc["ce_msp", "start"] == "scratch" and starts.loc["greg", "start"] == "ce"
    assert starts.loc["greg_msp", "start"] == "ce"
    assert starts.loc["energy_oe", "epochs"] == 1 and starts.loc["energy_oe", "lr"] == 0.003
    assert starts.loc["ce_energy", "epochs"] == 2


def test_finetune_command_end_to_end(tmp_path, capsys):
    code = main(["benchmark", "--dataset", "digits", "--finetune", "--finetune-epochs", "2",
                 "--finetune-lr", "0.02", "--n-train", "200", "--n-aux", "100", "--n-ood", "40",
                 "--epochs", "1", "--splits", "2", "--quiet", "--out", str(tmp_path)])
    assert code == 0
    frame = pd.read_csv(tmp_path / "results.csv")
    assert set(frame["method"]) == set(SCORED_METHODS)
    per_method = frame.groupby("method")
    assert per_method["start"].unique().map(list).to_dict() == {
        m: ["scratch" if TRAIN_METHOD[m] == "ce" else "ce"] for m in SCORED_METHODS}
    tuned = frame[frame["start"] == "ce"]
    assert set(tuned["epochs"]) == {2} and set(tuned["lr"]) == {0.02}
    assert set(frame.loc[frame["start"] == "scratch", "lr"]) == {0.05}
    assert (frame["train_s"] > 0).all()
    text = (tmp_path / "results.md").read_text()
    assert text.startswith("# skood benchmark: digits (heldout, fine-tuned from CE)")
    assert ("each of `energy_oe`, `greg`, `greg_plus` starts from the same run's `ce` network "
            "and trains 2 epoch(s) at learning rate 0.02") in text
    # the accuracy gap to CE, over the two splits, matches the CSV
    table = text.split("ID accuracy against CE")[1].split("\n\n")[1]
    row = [line for line in table.splitlines() if line.startswith("| greg |")][0]
    accuracy = frame.drop_duplicates(["split", "method"]).set_index(["method", "split"])[
        "accuracy"]
    gap = np.mean([100 * (accuracy["greg", k] - accuracy["ce_energy", k]) for k in (0, 1)])
    assert row.split("|")[4].strip().startswith(f"{gap:+.2f} [")
    summary = text.split("## Summary")[1].split("##")[0]
    assert "GReg+'s ID accuracy is" in summary and "near-OOD FPR95" in summary


def test_accuracy_gaps_match_a_hand_computation():
    from skood.benchmark import accuracy_gaps
    rows = [dict(split=k, seed=0, method=m, ood_set=o, accuracy=a)
            for k, m, a in ((0, "ce_msp", 0.90), (0, "ce_energy", 0.90), (0, "greg", 0.88),
                            (1, "ce_msp", 0.92), (1, "ce_energy", 0.92), (1, "greg", 0.92),
                            (2, "ce_msp", 0.94), (2, "ce_energy", 0.94), (2, "greg", 0.91))
            for o in ("a", "b")]
    gaps = accuracy_gaps(pd.DataFrame(rows))
    assert list(gaps["method"]) == ["greg"]
    row = gaps.iloc[0]
    diffs = np.array([-2.0, 0.0, -3.0])
    half = 4.302652729911275 * diffs.std(ddof=1) / np.sqrt(3)     # t_{0.975, 2}
    assert row["n_splits"] == 3 and row["n_seeds"] == 1 and row["n_better"] == 0
    np.testing.assert_allclose([row["mean_diff_points"], row["ci_low_points"],
                                row["ci_high_points"], row["sd_between_splits_points"]],
                               [diffs.mean(), diffs.mean() - half, diffs.mean() + half,
                                diffs.std(ddof=1)])
    assert accuracy_gaps(pd.DataFrame(rows).query("method == 'greg'")).empty


def test_load_benchmark_data_refuses_an_unknown_protocol():
    from skood.benchmark import load_benchmark_data
    with pytest.raises(ValueError, match="protocol must be one of"):
        load_benchmark_data("digits", protocol="osr")


# ---------------------------------------------------------------- held-out classes


def _source_labels(images, labels, scale):
    """Map each source image (as uint8 bytes) to its original label."""
    table = {}
    for image, label in zip(images, labels):
        key = np.rint(np.asarray(image, dtype=np.float64) * scale).astype(np.uint8).tobytes()
        table[key] = int(label)
    return table


def _labels_of(X, table, scale):
    """Original labels of the images X (float in [0, 1]); -1 for an image not in the source."""
    keys = np.rint(np.asarray(X, dtype=np.float64).reshape(len(X), -1) * scale).astype(np.uint8)
    return np.array([table.get(key.tobytes(), -1) for key in keys])


def _digits_table():
    from sklearn.datasets import load_digits
    X, y = load_digits(return_X_y=True)
    return _source_labels(X / 16.0, y, 16)


def _assert_no_leak(data, table, scale):
    known = np.asarray(data.known_classes)
    heldout = np.asarray(data.heldout_classes)
    assert len(known) == 6 and len(heldout) == 4 and not set(known) & set(heldout)
    assert data.n_classes == 6
    for X, y in ((data.X_train, data.y_train), (data.X_test, data.y_test)):
        original = _labels_of(X, table, scale)
        assert (original >= 0).all(), "an ID image that is not from the source"
        assert set(original) <= set(known), f"held-out classes {set(original) - set(known)}"
        assert set(np.unique(y)) <= set(range(6))
        np.testing.assert_array_equal(known[y], original)   # relabelling is consistent
    near = _labels_of(data.ood[next(n for n, g in data.groups.items() if g == "near")],
                      table, scale)
    assert (near >= 0).all() and set(near) <= set(heldout) and set(near) == set(heldout)
    assert (_labels_of(data.X_aux, table, scale) == -1).all(), "a source image among outliers"


@pytest.mark.parametrize("split", range(5))
def test_heldout_classes_never_reach_the_digits_training_arrays(split):
    from skood.benchmark import HELDOUT_SPLITS, load_benchmark_data
    data = load_benchmark_data("digits", split=split, n_aux=200, n_ood=1000)
    assert data.known_classes == HELDOUT_SPLITS[split]
    _assert_no_leak(data, _digits_table(), 16)
    # every test image of the 4 held-out classes is in the near set (digits: 30% test split)
    assert 200 < len(data.ood["digits-heldout"]) < 240


def test_heldout_classes_never_reach_the_fashion_mnist_training_arrays():
    from skood.benchmark import load_benchmark_data
    from skood.datasets import load_fashion_mnist
    try:
        fashion = load_fashion_mnist()
    except FileNotFoundError:
        pytest.skip("Fashion-MNIST not installed")
    table = _source_labels(np.r_[fashion.X_train, fashion.X_test].reshape(70000, -1) / 255.0,
                           np.r_[fashion.y_train, fashion.y_test], 255)
    data = load_benchmark_data("fashion-mnist", split=3, n_train=600, n_test=300, n_aux=50,
                               n_ood=300)
    assert data.X_train.shape == (600, 1, 28, 28) and len(data.ood["fashion-mnist-heldout"]) == 300
    _assert_no_leak(data, table, 255)


def test_splits_of_the_smoke_run_are_the_first_drawn_ones(smoke_run):
    from skood.benchmark import draw_class_splits, load_benchmark_data
    frame = pd.read_csv(smoke_run[0] / "results.csv", dtype={"known_classes": str,
                                                            "heldout_classes": str})
    per_split = frame.groupby("split")["known_classes"].unique()
    assert [list(v) for v in per_split] == [[" ".join(map(str, known))]
                                            for known in draw_class_splits(10, 4, 2)]
    # the far sets and the outlier pool do not depend on the split
    a, b = (load_benchmark_data("digits", split=known, n_aux=20, n_ood=20)
            for known in draw_class_splits(10, 4, 2))
    assert a.heldout_classes != b.heldout_classes
    np.testing.assert_array_equal(a.ood["textures"], b.ood["textures"])


def test_outliers_do_not_depend_on_whether_fashion_mnist_is_installed(monkeypatch):
    import skood.benchmark as benchmark
    import skood.datasets

    def missing(data_home=None):
        raise FileNotFoundError("not here")

    def tiny(data_home=None):
        rng = np.random.RandomState(0)
        return Bunch(X_test=rng.randint(0, 256, size=(40, 28, 28)).astype(np.uint8))

    from sklearn.utils import Bunch
    loaded = {}
    for name, loader in (("missing", missing), ("tiny", tiny)):
        monkeypatch.setattr(skood.datasets, "load_fashion_mnist", loader)
        loaded[name] = benchmark.load_benchmark_data("digits", n_aux=50, n_ood=30)
    assert "fashion-mnist" in loaded["tiny"].ood and "fashion-mnist" in loaded["missing"].skipped
    np.testing.assert_array_equal(loaded["missing"].X_aux, loaded["tiny"].X_aux)
    for name in ("textures", "gaussian-noise", "uniform-noise", "digits-heldout"):
        np.testing.assert_array_equal(loaded["missing"].ood[name], loaded["tiny"].ood[name])


def test_full_protocol_keeps_all_classes_and_only_far_sets():
    from skood.benchmark import load_benchmark_data
    data = load_benchmark_data("digits", protocol="full", n_aux=20, n_ood=20)
    assert data.n_classes == 10 and data.heldout_classes == ()
    assert set(data.groups.values()) == {"far"} and "digits-heldout" not in data.ood
    assert len(data.X_train) + len(data.X_test) == 1797


# ---------------------------------------------------------------- paired comparison


def _made_up_results():
    """3 class splits, one seed; near = two sets, far = one; energy_oe, greg and ce_msp."""
    fpr = {  # (method, split) -> (near set a, near set b, far set)
        ("energy_oe", 0): (0.50, 0.30, 0.00), ("greg", 0): (0.40, 0.20, 0.00),
        ("energy_oe", 1): (0.60, 0.40, 0.10), ("greg", 1): (0.30, 0.30, 0.10),
        ("energy_oe", 2): (0.40, 0.40, 0.00), ("greg", 2): (0.30, 0.20, 0.02),
        ("ce_msp", 0): (0.70, 0.70, 0.50), ("ce_msp", 1): (0.60, 0.60, 0.40),
        ("ce_msp", 2): (0.80, 0.60, 0.60),
    }
    rows = []
    for (method, split), values in fpr.items():
        for ood_set, group, value in zip(("a", "b", "far"), ("near", "near", "far"), values):
            rows.append(dict(split=split, seed=0, method=method, ood_set=ood_set, group=group,
                             fpr95=value, auroc=1.0 - value / 2, aupr_in=0.5, aupr_out=0.5,
                             accuracy=0.9, train_s=1.0))
    return pd.DataFrame(rows)


def test_paired_differences_match_a_hand_computation():
    from skood.benchmark import paired_differences, split_differences, summary_sentences
    results = _made_up_results()
    paired = paired_differences(results).set_index(["group", "method", "baseline", "metric"])
    # near, greg - energy_oe, per split: mean over sets a, b, in points
    # split 0: (0.40+0.20)/2 - (0.50+0.30)/2 = -0.10; split 1: 0.30 - 0.50 = -0.20;
    # split 2: 0.25 - 0.40 = -0.15  ->  -10, -20, -15 points; sd 5; better on all 3
    half = 4.302652729911275 * 5 / np.sqrt(3)               # t_{0.975, 2} * sd / sqrt(n)
    row = paired.loc[("near", "greg", "energy_oe", "fpr95")]
    assert row["n_splits"] == 3 and row["n_seeds"] == 1 and row["n_better"] == 3
    np.testing.assert_allclose([row["mean_diff_points"], row["ci_low_points"],
                                row["ci_high_points"], row["sd_between_splits_points"]],
                               [-15.0, -15.0 - half, -15.0 + half, 5.0])
    per_split = split_differences(results).query(
        "group == 'near' and method == 'greg' and baseline == 'energy_oe' and metric == 'fpr95'")
    np.testing.assert_allclose(per_split["diff_points"], [-10.0, -20.0, -15.0])
    # AUROC = 1 - FPR95 / 2 here, so its differences are -1/2 of those; better on all 3
    auroc = paired.loc[("near", "greg", "energy_oe", "auroc")]
    np.testing.assert_allclose(auroc["mean_diff_points"], 7.5)
    assert auroc["n_better"] == 3
    # far, greg: 0, 0, +2 points: mean 2/3, sd 2/sqrt(3), half-width 4.3027 * 2/3 = 2.8684:
    # the interval [-2.20, 3.54] holds 0; better on none
    far = paired.loc[("far", "greg", "energy_oe", "fpr95")]
    np.testing.assert_allclose(far["mean_diff_points"], 2 / 3)
    assert far["ci_low_points"] < 0 < far["ci_high_points"] and far["n_better"] == 0
    sentences = summary_sentences(paired.reset_index())
    assert ("GReg lowers near-OOD FPR95 against energy-OE by 15.00 points (95% interval "
            f"[{15 - half:.2f}, {15 + half:.2f}] over 3 class splits; better on 3 of 3)."
            ) in sentences
    assert ("GReg against energy-OE, far-OOD FPR95: no consistent difference (mean 0.67 points, "
            "95% interval [-2.20, 3.54] over 3 class splits; better on 0 of 3).") in sentences


def test_paired_differences_with_one_split_give_no_interval_and_no_claim():
    from skood.benchmark import markdown_tables, paired_differences, summary_sentences
    results = _made_up_results()
    results = results[results["split"] == 1]
    paired = paired_differences(results)
    row = paired[(paired["group"] == "near") & (paired["method"] == "greg")
                 & (paired["metric"] == "fpr95")].iloc[0]
    np.testing.assert_allclose(row["mean_diff_points"], -20.0)
    assert np.isnan(row["ci_low_points"]) and np.isnan(row["ci_high_points"])
    assert summary_sentences(paired)[0] == ("GReg against energy-OE, near-OOD FPR95: one class "
                                            "split, so no interval and no claim (difference "
                                            "-20.00 points).")
    text = markdown_tables(results)
    assert "±" not in text and "one split: no interval" in text
    assert "| greg | 30.00 | 85.00 |" in text   # the value alone, near: (0.30 + 0.30) / 2


# ---------------------------------------------------------------- skipped sets


def test_a_missing_fashion_mnist_is_named_with_the_way_to_get_it(tmp_path, monkeypatch, capsys):
    import skood.datasets
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.setattr(skood.datasets, "DEBIAN_FASHION_MNIST", str(empty))
    monkeypatch.delenv("SKOOD_DATA", raising=False)
    out = tmp_path / "out"
    main(["benchmark", "--data-home", str(empty), "--n-train", "150", "--n-aux", "100",
          "--n-ood", "30", "--epochs", "1", "--splits", "1", "--methods", "energy_oe", "greg",
          "--quiet", "--out", str(out)])
    line = "OOD set fashion-mnist skipped: Fashion-MNIST not installed: apt-get install " \
           "dataset-fashion-mnist"
    assert line in capsys.readouterr().out
    text = (out / "results.md").read_text()
    assert line in text and "--data-home" in text
    assert "fashion-mnist" not in set(pd.read_csv(out / "results.csv")["ood_set"])
    # one split: values alone, and no claim in the summary
    assert "±" not in text
    assert "one class split, so no interval and no claim" in text.split("## Tables")[0]


def test_digits_train_on_one_torch_thread_and_restore_the_setting(monkeypatch):
    import torch
    import skood.benchmark as benchmark
    assert benchmark.DEFAULTS["digits"]["n_threads"] == 1
    cls = GradRegOODClassifier
    fit, during = cls.fit, []

    def spy_fit(self, *args, **kwargs):
        during.append(torch.get_num_threads())
        return fit(self, *args, **kwargs)

    monkeypatch.setattr(cls, "fit", spy_fit)
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        benchmark.run_benchmark("digits", splits=1, methods=("ce",), epochs=1, progress=False,
                                n_train=100, n_aux=50, n_ood=20)
        # ce, then the three CE networks of the inner folds that choose its detector
        assert during == [1] * 4 and torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def test_penalty_fraction_reaches_the_greg_estimators(monkeypatch, tmp_path):

    class Stop(BaseException):
        """Not an Exception: the benchmark records a fit that raises one and goes on."""

    seen = []

    def record_and_stop(self, X, y, X_aux=None):
        seen.append((self.lambda_grad, self.penalty_fraction))
        raise Stop

    monkeypatch.setattr(GradRegOODClassifier, "fit", record_and_stop)
    with pytest.raises(Stop):
        main(["benchmark", "--methods", "greg", "--penalty-fraction", "0.25", "--seeds", "0",
              "--n-train", "100", "--n-aux", "100", "--n-ood", "20", "--quiet",
              "--out", str(tmp_path)])
    assert seen == [(1.0, 0.25)]


class StopAfterFirstFit(BaseException):
    """Not an Exception: the benchmark records a fit that raises one and goes on."""


def test_pool_factor_reaches_the_greg_plus_sampler_only(monkeypatch, tmp_path):

    seen = {}

    def record(self, X, y, X_aux=None):
        seen[self.lambda_grad, type(self.sampler).__name__] = (
            getattr(self.sampler, "pool_factor", None))
        raise StopAfterFirstFit

    monkeypatch.setattr(GradRegOODClassifier, "fit", record)
    for method in ("greg", "greg_plus"):
        with pytest.raises(StopAfterFirstFit):
            main(["benchmark", "--methods", method, "--pool-factor", "3", "--seeds", "0",
                  "--n-train", "100", "--n-aux", "100", "--n-ood", "20", "--quiet",
                  "--out", str(tmp_path)])
    assert seen == {(1.0, "NoneType"): None, (1.0, "EnergySampler"): 3}


def test_pool_factor_is_recorded_in_the_results():
    import skood.benchmark as benchmark

    results, _, _ = benchmark.run_benchmark("digits", splits=1, methods=("greg_plus",), epochs=1,
                                            progress=False, n_train=100, n_aux=100, n_ood=20,
                                            pool_factor=2)
    assert set(results["pool_factor"]) == {2}


@pytest.mark.parametrize("value", ["0", "-1", "2.5", "three"])
def test_command_refuses_a_pool_factor_that_is_not_a_positive_integer(value, no_training,
                                                                      capsys, tmp_path):
    with pytest.raises(SystemExit) as exit_info:
        main(["benchmark", "--pool-factor", value, "--quiet", "--out", str(tmp_path)])
    assert exit_info.value.code == 2
    assert "--pool-factor must be" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize("value", ["0", "1.5", "-0.2", "nan", "half"])
def test_command_refuses_a_penalty_fraction_outside_zero_one(value, no_training, capsys,
                                                             tmp_path):
    with pytest.raises(SystemExit) as exit_info:
        main(["benchmark", "--penalty-fraction", value, "--quiet", "--out", str(tmp_path)])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "--penalty-fraction must be a number in (0, 1]" in err and repr(value) in err
    assert not any(tmp_path.iterdir())


def test_figures_name_their_run_label_axes_and_mark_saturated_sets(tmp_path):
    """The ROC and histogram figures show one run: their titles say which (split and seed) and
    how many there were; every panel has labelled axes; a set every method separates
    completely is marked saturated; each histogram is a fraction of its own set on a log
    scale, so a far-OOD spike does not flatten the ID histogram."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from skood.benchmark.figures import histogram_figure, roc_figure, run_label, write_figures

    rng = np.random.default_rng(0)

    def sets(shift):
        return {"id": rng.normal(0, 1, 300), "near": rng.normal(shift, 1, 200),
                "noise": np.full(1000, -50.0)}          # far below ID: a spike, separated
    # split 3 runs first: the figures show it, and say so
    scores = {(3, 0): {"greg": sets(-1.0), "energy_oe": sets(-0.5)},
              (7, 0): {"greg": sets(-1.0), "energy_oe": sets(-0.5)}}
    where = run_label(scores)
    assert where.startswith("class split 3, seed 0") and "2 class splits" in where
    assert run_label({(0, 1): scores[(3, 0)]}) == "class split 0, seed 1 (the only run)"

    fig = histogram_figure(scores[(3, 0)]["greg"], "greg", where)
    # Figure.get_suptitle is matplotlib >= 3.8; the extras admit 3.7
    assert where in fig._suptitle.get_text() and "greg" in fig._suptitle.get_text()
    near, noise = fig.axes
    for ax in (near, noise):
        assert ax.get_xlabel() and ax.get_ylabel() and ax.get_yscale() == "log"
    assert "separated" in noise.get_title() and "separated" not in near.get_title()
    assert "FPR95" in near.get_title()
    id_bars = noise.containers[0]                      # the ID histogram of the spike panel
    assert sum(bar.get_height() for bar in id_bars) == pytest.approx(1.0)
    plt.close(fig)

    fig = roc_figure(scores[(3, 0)], where)
    near, noise = fig.axes
    assert "saturated" in noise.get_title() and "saturated" not in near.get_title()
    for ax in (near, noise):
        assert ax.get_xlabel().startswith("FPR") and ax.get_ylabel().startswith("TPR")
    assert where in fig._suptitle.get_text()
    plt.close(fig)

    paths = write_figures(scores, str(tmp_path))
    assert sorted(os.path.basename(p) for p in paths) == [
        "hist_energy_oe.png", "hist_greg.png", "roc.png"]
    assert all(png_size(p)[0] > 200 for p in paths)
    assert not plt.get_fignums()                        # every figure is closed
