"""torch Datasets as X in fit: labels, outlier items, held-out rows without augmentation,
DataLoader workers, and the same model as the array fit when nothing is transformed."""
import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from skood import EnergySampler, GradRegOODClassifier
from skood._outliers import AuxiliaryData, OutlierStream
from skood.data import ArrayDataset
from skood.models import MLP
from skood.synthesis import PatchShuffle
from skood.transforms import RandomHorizontalFlip

# Tiny fits: a few end at chance level or hold out fewer than 19 calibration rows, and
# pin_memory warns on a machine without an accelerator.
pytestmark = [pytest.mark.filterwarnings("ignore::skood.ChanceLevelWarning"),
              pytest.mark.filterwarnings("ignore::skood.conformal.SmallCalibrationWarning"),
              pytest.mark.filterwarnings("ignore:'pin_memory' argument is set as true"),
              pytest.mark.filterwarnings("ignore:max_epochs=0")]

PARAMS = dict(max_epochs=2, batch_size=32, verbose=0, random_state=0, lr=0.05, m_in=-8.0,
              m_out=-2.0, lambda_grad=0.1)


def clf(**params):
    return GradRegOODClassifier(MLP, **{**PARAMS, **params})


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    X = (X / 16).astype(np.float32).reshape(-1, 1, 8, 8)
    rng = np.random.RandomState(0)
    X_aux = rng.uniform(0, 1, size=(300, 1, 8, 8)).astype(np.float32)
    return X, y, X_aux


class PlainPairs(torch.utils.data.Dataset):
    """(sample, label) items and no label attribute; counts the items read."""

    def __init__(self, X, y):
        self.X, self.y, self.reads = X, y, 0

    def __len__(self):
        return len(self.X)

    def __getitem__(self, i):
        self.reads += 1
        return self.X[i], self.y[i]


class Counting(ArrayDataset):
    """An ArrayDataset (labels in ``targets``) that counts the items read."""

    reads = 0

    def __getitem__(self, i):
        self.reads += 1
        return super().__getitem__(i)


@pytest.mark.parametrize("train_split", [None, "default"])
def test_a_dataset_without_transform_gives_the_array_fit(digits, train_split):
    X, y, X_aux = digits
    X, y = X[:400], y[:400].copy()
    y[::10] = -1                                 # outlier rows, in the array and the Dataset
    params = {} if train_split == "default" else {"train_split": None}
    by_array = clf(**params).fit(X, y, X_aux=X_aux)
    by_dataset = clf(**params).fit(ArrayDataset(X, y), X_aux=X_aux)
    X_test = digits[0][1500:]
    assert np.array_equal(by_dataset.score_samples(X_test), by_array.score_samples(X_test))
    assert by_dataset.offset_ == by_array.offset_
    assert np.array_equal(by_dataset.calibration_scores_, by_array.calibration_scores_)
    assert np.array_equal(by_dataset.score_samples(ArrayDataset(X_test)),
                          by_array.score_samples(X_test))


@pytest.mark.parametrize("kind", ["skorch", "tensors", "subset"])
def test_other_datasets_of_pairs_give_the_array_fit(digits, kind):
    from skorch.dataset import Dataset as SkorchDataset
    X, y, X_aux = digits
    if kind == "skorch":
        data = SkorchDataset(X[:300], y[:300])
    elif kind == "tensors":
        data = torch.utils.data.TensorDataset(torch.from_numpy(X[:300]), torch.from_numpy(y[:300]))
    else:
        data = torch.utils.data.Subset(ArrayDataset(X, y), range(300))
    by_dataset = clf(train_split=None).fit(data, X_aux=X_aux)
    by_array = clf(train_split=None).fit(X[:300], y[:300], X_aux=X_aux)
    assert np.array_equal(by_dataset.score_samples(X[:50]), by_array.score_samples(X[:50]))
    assert by_dataset.offset_ == by_array.offset_


def test_y_labels_the_items_of_a_dataset_of_bare_samples(digits):
    X, y, X_aux = digits
    data = Counting(X[:300])                                # items are images only
    by_dataset = clf(train_split=None).fit(data, y[:300], X_aux=X_aux)
    by_array = clf(train_split=None).fit(X[:300], y[:300], X_aux=X_aux)
    assert np.array_equal(by_dataset.score_samples(X[:50]), by_array.score_samples(X[:50]))
    with pytest.raises(ValueError, match="y has 299 labels but X has 300 rows"):
        clf(train_split=None).fit(data, y[:299], X_aux=X_aux)


def test_pools_read_only_what_the_steps_draw(digits):
    X, y, X_aux = digits
    aux = Counting(np.tile(X_aux, (4, 1, 1, 1)))            # 1200 outliers
    clf(train_split=None, max_epochs=1, batch_size=64,
        sampler=EnergySampler(n_clusters=4, pool_factor=3)).fit(
        ArrayDataset(X[:150], y[:150]), X_aux=aux)
    # 3 steps (64, 64, 7 rows) of pools of 3 x 64, 3 x 64, 3 x 7, and one item for the check
    assert aux.reads == 3 * 64 + 3 * 64 + 3 * 7 + 1


def test_random_flips_train_a_digits_classifier(digits):
    X, y, X_aux = digits
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.3, random_state=0,
                                                        stratify=y)
    model = clf(max_epochs=6, batch_size=64, train_split=None)
    model.fit(ArrayDataset(X_train, y_train, transform=RandomHorizontalFlip()), X_aux=X_aux)
    assert model.score(X_test, y_test) >= 0.85
    assert model.score(ArrayDataset(X_test, y_test)) == model.score(X_test, y_test)


def test_labels_come_from_the_attribute_without_reading_the_items(digits):
    X, y, X_aux = digits
    data = Counting(X[:200], y[:200])
    clf(max_epochs=0, train_split=None).fit(data, X_aux=X_aux)
    # a few items for the checks, then the calibration rows (20); no pass for the labels
    assert data.reads < 40


def test_a_plain_dataset_is_read_once_for_its_labels(digits):
    X, y, X_aux = digits
    data = PlainPairs(X[:200], y[:200])
    model = clf(max_epochs=0, train_split=None).fit(data, X_aux=X_aux)
    assert 200 <= data.reads < 240
    assert model.classes_.tolist() == list(range(10))
    # string labels, and the classes parameter naming a class no item has
    names = np.array([f"d{label}" for label in y[:200]], dtype=object)
    classes = [f"d{k}" for k in range(11)]
    model = clf(max_epochs=0, train_split=None, classes=classes).fit(
        PlainPairs(X[:200], names), X_aux=X_aux)
    assert model.classes_.tolist() == classes
    assert set(model.predict(X[:50])) <= set(classes)
    # the pass reads with the DataLoader workers of iterator_train__num_workers
    model = clf(max_epochs=0, train_split=None, iterator_train__num_workers=2).fit(
        PlainPairs(X[:200], names), X_aux=X_aux)
    assert model.classes_.tolist() == sorted(set(names))


def test_a_target_transform_that_the_attribute_misses_is_read_from_the_items(digits):
    X, y, X_aux = digits

    class Shifted(ArrayDataset):
        def __getitem__(self, i):
            sample, label = super().__getitem__(i)
            return sample, label + 100             # targets still holds the raw labels

    model = clf(max_epochs=1, train_split=None).fit(Shifted(X[:200], y[:200]), X_aux=X_aux)
    assert model.classes_.tolist() == list(range(100, 110))


def test_outlier_items_are_used_as_outliers(digits):
    X, y, _ = digits
    with pytest.raises(ValueError, match="No auxiliary outliers"):
        clf(train_split=None).fit(ArrayDataset(X[:200], y[:200]))
    y = y[:400].copy()
    y[:80] = -1
    model = clf(train_split=None).fit(ArrayDataset(X[:400], y))
    assert -1 not in model.classes_
    assert np.array_equal(model.score_samples(X[:200]),
                          clf(train_split=None).fit(X[:400], y).score_samples(X[:200]))


def test_auxiliary_dataset_items_may_carry_anything(digits):
    X, y, X_aux = digits

    class Tagged(torch.utils.data.Dataset):
        def __len__(self):
            return len(X_aux)

        def __getitem__(self, i):
            return X_aux[i], "some tag"

    by_dataset = clf(train_split=None).fit(ArrayDataset(X[:200], y[:200]), X_aux=Tagged())
    by_array = clf(train_split=None).fit(X[:200], y[:200], X_aux=X_aux)
    assert np.array_equal(by_dataset.score_samples(X[:50]), by_array.score_samples(X[:50]))


@pytest.mark.parametrize("train_split", [None, "default"])
def test_held_out_rows_are_read_from_X_eval(digits, train_split):
    X, y, X_aux = digits
    params = {} if train_split == "default" else {"train_split": None}
    blank = ArrayDataset(X[:300], y[:300], transform=lambda image: 0 * image)
    # without X_eval, the held-out rows are read through the transform: all blank
    model = clf(**params).fit(blank, X_aux=X_aux)
    assert np.ptp(model.calibration_scores_) == 0
    model = clf(**params).fit(blank, X_aux=X_aux, X_eval=ArrayDataset(X[:300]))
    assert np.ptp(model.calibration_scores_) > 0


def test_dataset_input_errors(digits):
    X, y, X_aux = digits
    data = ArrayDataset(X[:200], y[:200])
    loader = torch.utils.data.DataLoader(data, batch_size=8)
    with pytest.raises(TypeError, match=r"X is a DataLoader; pass its Dataset.*batch_size"):
        clf().fit(loader, X_aux=X_aux)
    with pytest.raises(ValueError, match="not \\(sample, label\\) pairs.*y="):
        clf().fit(ArrayDataset(X[:200]), X_aux=X_aux)
    with pytest.raises(ValueError, match="synthesizer needs the training rows as one array"):
        clf(synthesizer=PatchShuffle()).fit(data)
    with pytest.raises(ValueError, match="X_eval is for a Dataset X"):
        clf().fit(X[:200], y[:200], X_aux=X_aux, X_eval=data)
    with pytest.raises(ValueError, match="X_eval has 100 items but X has 200"):
        clf().fit(data, X_aux=X_aux, X_eval=ArrayDataset(X[:100]))
    with pytest.raises(ValueError, match=r"X_aux items have samples of shape \(64,\)"):
        clf().fit(data, X_aux=ArrayDataset(X_aux.reshape(300, 64)))
    model = clf(max_epochs=1, train_split=None).fit(data, X_aux=X_aux)
    with pytest.raises(ValueError, match=r"samples of shape \(1, 8, 7\), but .* expects "
                                         r"samples of shape \(1, 8, 8\)"):
        model.score_samples(ArrayDataset(X[:10, :, :, :7]))
    with pytest.raises(TypeError, match="X is a DataLoader"):
        model.predict(loader)
    # a refused refit leaves the model as it was
    before = model.score_samples(X[:20])
    with pytest.raises(ValueError, match="expects samples of shape"):
        model.partial_fit(ArrayDataset(X[:50, :, :, :7], y[:50]), X_aux=X_aux)
    assert np.array_equal(model.score_samples(X[:20]), before)


def test_partial_fit_takes_datasets_and_classes(digits):
    X, y, X_aux = digits
    keep = y[:300] < 5
    model = clf(train_split=None)
    model.partial_fit(ArrayDataset(X[:300][keep], y[:300][keep]), classes=range(10),
                      X_aux=X_aux)
    model.partial_fit(ArrayDataset(X[300:600], y[300:600]), X_aux=X_aux)
    assert model.classes_.tolist() == list(range(10))
    assert model.predict_proba(ArrayDataset(X[:5])).shape == (5, 10)


def test_pools_read_by_workers_come_in_stream_order(device):
    data = ArrayDataset(np.arange(50, dtype=np.float32).reshape(25, 2))
    by_workers = AuxiliaryData(data).read_with({"num_workers": 2, "pin_memory": True})
    in_process = AuxiliaryData(data)
    streams = OutlierStream(25, seed=3), OutlierStream(25, seed=3)
    for n in (8, 8, 3, 8, 8, 8, 1):              # across chunks and permutations
        got = by_workers.take_next(streams[0], n, device)
        assert got.device.type == torch.device(device).type
        assert torch.equal(got.cpu(), in_process.take_next(streams[1], n, "cpu"))
    by_workers.close()


def test_outliers_read_by_workers_give_the_fit_read_in_process(digits, device):
    """GReg's random draws from a Dataset X_aux (X an array): with
    iterator_train__num_workers the worker processes read the outliers (the training
    process reads only the first item, to check its shape), in the same order, so the
    fit is the one that reads them in the training process."""
    X, y, X_aux = digits

    def fit(**loader):
        outliers = Counting(X_aux)
        model = clf(train_split=None, max_epochs=2, batch_size=50, device=device,
                    **{f"iterator_train__{name}": value for name, value in loader.items()})
        return model.fit(X[:300], y[:300], X_aux=outliers), outliers.reads

    in_process, reads = fit()
    by_workers, worker_reads = fit(num_workers=2, pin_memory=True)
    # in-process: every outlier drawn (one per training row and epoch); with workers only
    # the first item, for X_aux's shape check
    assert reads > 500 and worker_reads <= 1
    assert by_workers.history[:, "train_loss"] == in_process.history[:, "train_loss"]
    assert np.array_equal(by_workers.score_samples(X[300:400]),
                          in_process.score_samples(X[300:400]))


def test_workers_and_pinned_memory_read_x_and_the_pools(digits, device):
    X, y, X_aux = digits

    def fit(**loader):
        model = clf(train_split=None, max_epochs=1, batch_size=64, device=device,
                    sampler=EnergySampler(n_clusters=4, pool_factor=3),
                    **{f"iterator_train__{name}": value for name, value in loader.items()})
        return model.fit(ArrayDataset(X[:256], y[:256]), X_aux=ArrayDataset(X_aux))

    by_workers = fit(num_workers=2, pin_memory=True)
    assert np.array_equal(by_workers.score_samples(X[:50]), fit().score_samples(X[:50]))
    assert by_workers.predict(ArrayDataset(X[:10])).shape == (10,)


def test_the_accelerated_class_takes_datasets(digits, accelerator_on_device, device):
    """One process of Accelerate on the test device (on a GPU, the module is there
    before the pre-training check forwards a sample)."""
    from skood.distributed import AcceleratedGradRegOODClassifier
    X, y, X_aux = digits
    model = AcceleratedGradRegOODClassifier(
        MLP, accelerator=accelerator_on_device, penalty="fd", train_split=None, **PARAMS)
    model.fit(ArrayDataset(X[:200], y[:200], transform=RandomHorizontalFlip()),
              X_aux=ArrayDataset(X_aux))
    assert {p.device.type for p in model.module_.parameters()} == {torch.device(device).type}
    assert model.predict(ArrayDataset(X[:10])).shape == (10,)


# ------------------------------------------------- benchmarks/augmentation.py


def augmentation_script():
    from helpers import load_benchmark_script
    return load_benchmark_script("augmentation")


def test_augmentation_script_pairs_the_conditions_by_split(tmp_path):
    import pandas as pd

    script = augmentation_script()
    script.main(["--dataset", "digits", "--splits", "2", "--n-train", "120", "--n-test", "60",
                 "--n-aux", "60", "--n-ood", "20", "--epochs", "1", "--model", "mlp",
                 "--methods", "greg", "--conditions", "none", "crop+flip", "crop+flip-no-eval",
                 "--out", str(tmp_path)])
    results = pd.read_csv(tmp_path / "augmentation.csv")
    assert set(results.augmentation) == {"none", "crop+flip", "crop+flip-no-eval"}
    assert set(results.split) == {0, 1} and set(results.group) == {"near", "far"}
    # the paired differences in the report, recomputed from the CSV
    fits = results.groupby(["split", "augmentation"]).agg(
        accuracy=("accuracy", "first")).unstack()["accuracy"]
    differences = 100 * (fits["crop+flip"] - fits["none"])
    near = results[results.group == "near"].set_index(["split", "augmentation"])["fpr95"]
    near_differences = 100 * (near.xs("crop+flip", level=1) - near.xs("none", level=1))
    args = script.parse_args(["--dataset", "digits", "--splits", "2"])
    _, paired = script.report(results, args, "command")
    assert paired[("greg", "crop+flip", "accuracy")][0] == pytest.approx(differences.mean())
    assert paired[("greg", "crop+flip", "near_fpr95")][0] == pytest.approx(
        near_differences.mean())
    assert 0 <= results.acceptance.min() and results.acceptance.max() <= 1
    text = (tmp_path / "augmentation.md").read_text()
    assert "| greg | crop+flip-no-eval |" in text and "| greg | crop+flip |" in text
