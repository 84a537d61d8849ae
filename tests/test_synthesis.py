"""Synthesizers (skood.synthesis) and the estimator's synthesizer parameter: what each makes,
that a fit calls it once on its training rows only, and a search that tunes it without OOD data."""
import pickle

import numpy as np
import pytest
from sklearn.base import BaseEstimator, clone
from sklearn.datasets import load_digits
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import GridSearchCV, train_test_split
from skorch.dataset import ValidSplit

import skood.synthesis
from skood import GradRegOODClassifier, GradRegOODDetector, make_ood_scorer
from skood.model_selection import HeldOutClassSplit
from skood.models import MLP
from skood.synthesis import BlurNoise, ClassMix, FeatureShuffle, PatchShuffle, Rotation

# The estimator tests train for one or two epochs: a fit at chance level is expected there.
pytestmark = pytest.mark.filterwarnings("ignore::skood.exceptions.ChanceLevelWarning")

IMAGE_SYNTHESIZERS = [PatchShuffle, ClassMix, Rotation, BlurNoise, FeatureShuffle]
TABULAR_SYNTHESIZERS = [FeatureShuffle, ClassMix]


def test_the_module_lists_its_synthesizers_and_nothing_else():
    assert sorted(skood.synthesis.__all__) == sorted(c.__name__ for c in IMAGE_SYNTHESIZERS)
    for name in skood.synthesis.__all__:
        assert callable(getattr(skood.synthesis, name)().make_outliers)


def images(shape, dtype=np.float32, seed=0):
    rng = np.random.RandomState(seed)
    if np.dtype(dtype).kind == "u":
        return rng.randint(20, 200, size=shape).astype(dtype)
    return rng.uniform(-0.5, 2.0, size=shape).astype(dtype)


@pytest.mark.parametrize("shape", [(12, 8, 8), (12, 1, 8, 8), (12, 3, 9, 13), (12, 3, 32, 32)])
@pytest.mark.parametrize("synthesizer", IMAGE_SYNTHESIZERS, ids=lambda c: c.__name__)
def test_image_synthesizers_keep_shape_dtype_range_and_are_deterministic(synthesizer, shape):
    y = np.arange(shape[0]) % 3
    for dtype in (np.float32, np.uint8):
        X = images(shape, dtype)
        made = synthesizer().make_outliers(X, y, random_state=0)
        assert made.shape == X.shape and made.dtype == X.dtype
        assert made.min() >= X.min() and made.max() <= X.max()
        assert np.array_equal(made, synthesizer().make_outliers(X, y, random_state=0))
        assert not np.array_equal(made, synthesizer().make_outliers(X, y, random_state=1))
        assert not any(np.array_equal(row, x) for row in made[:3] for x in X)   # new rows
    more = synthesizer(n_outliers=30).make_outliers(images(shape), y, random_state=0)
    assert more.shape == (30,) + shape[1:]


@pytest.mark.parametrize("synthesizer", TABULAR_SYNTHESIZERS, ids=lambda c: c.__name__)
def test_tabular_synthesizers(synthesizer):
    X = images((40, 5), np.float64)
    y = np.arange(40) % 2
    made = synthesizer(n_outliers=25).make_outliers(X, y, random_state=0)
    assert made.shape == (25, 5) and made.dtype == np.float64
    assert np.all(made >= X.min(axis=0)) and np.all(made <= X.max(axis=0))
    assert np.array_equal(made, synthesizer(n_outliers=25).make_outliers(X, y, random_state=0))


def test_patch_shuffle_moves_every_tile_of_an_image():
    X = np.arange(2 * 9 * 8, dtype=np.float32).reshape(2, 1, 9, 8)   # distinct values
    made = PatchShuffle(grid=2).make_outliers(X, random_state=0)
    for image in made[:, 0]:
        source = X[np.argmin([abs(x[0] - image).sum() if set(x.ravel()) == set(image.ravel())
                              else np.inf for x in X])][0]
        assert sorted(image.ravel()) == sorted(source.ravel())        # the same pixels
        np.testing.assert_array_equal(image[8], source[8])           # the leftover row stays
        tiles = [(slice(0, 4), slice(0, 4)), (slice(0, 4), slice(4, 8)),
                 (slice(4, 8), slice(0, 4)), (slice(4, 8), slice(4, 8))]
        for tile in tiles:                                           # every tile moved
            assert not np.array_equal(image[tile], source[tile])


def test_class_mix_blends_two_rows_of_different_classes():
    # one-hot rows: a blend shows which classes it mixes and with which weights
    y = np.repeat(np.arange(4), 5)
    X = np.eye(4)[y]
    made = ClassMix(weight_range=(0.3, 0.7)).make_outliers(X, y, random_state=0)
    for row in made:
        mixed = np.flatnonzero(row > 0)
        assert len(mixed) == 2                            # two different classes
        assert 0.3 - 1e-12 <= row.max() <= 0.7 + 1e-12 and row.sum() == pytest.approx(1.0)


def test_rotation_turns_square_images_exactly():
    X = images((6, 2, 8, 8))
    made = Rotation(angles=(90,)).make_outliers(X, random_state=0)
    turned = np.rot90(X, k=1, axes=(-2, -1))
    assert all(any(np.array_equal(row, t) for t in turned) for row in made)


def test_feature_shuffle_draws_each_feature_from_its_column():
    X = np.arange(30).reshape(10, 3) * np.array([1, 100, 10000])
    made = FeatureShuffle().make_outliers(X, random_state=0)
    for j in range(3):
        assert set(made[:, j]) <= set(X[:, j])
    # the rows of X are not kept together
    assert not all(any(np.array_equal(row, x) for x in X) for row in made)


@pytest.mark.parametrize("synthesizer, X, y, message", [
    (PatchShuffle(grid=1), images((4, 8, 8)), None, "grid"),
    (PatchShuffle(grid=9), images((4, 8, 8)), None, "at least 9x9"),
    (PatchShuffle(), images((4, 64)), None, "reads X as images"),
    (PatchShuffle(n_outliers=0), images((4, 8, 8)), None, "n_outliers"),
    (ClassMix(weight_range=(0.8, 0.2)), images((4, 3)), [0, 1, 0, 1], "weight_range"),
    (ClassMix(), images((4, 3)), None, "pass y"),
    (ClassMix(), images((4, 3)), [1, 1, 1, 1], "at least two classes"),
    (ClassMix(), images((4, 3)), [0, 1], "one label per row"),
    (Rotation(angles=(90, 360)), images((4, 8, 8)), None, "multiple of 360"),
    (Rotation(angles=()), images((4, 8, 8)), None, "non-empty"),
    (BlurNoise(blur=0.0), images((4, 8, 8)), None, "blur"),
    (BlurNoise(noise=-1.0), images((4, 8, 8)), None, "noise"),
    (FeatureShuffle(), np.full((3, 2), np.nan), None, "NaN"),
    (FeatureShuffle(), np.zeros((0, 2)), None, "at least one|minimum of 1"),
])
def test_bad_parameters_and_data_get_clear_errors(synthesizer, X, y, message):
    with pytest.raises(ValueError, match=message):
        synthesizer.make_outliers(X, y, random_state=0)


@pytest.mark.parametrize("synthesizer", IMAGE_SYNTHESIZERS, ids=lambda c: c.__name__)
def test_synthesizers_clone_with_their_parameters(synthesizer):
    original = synthesizer(n_outliers=7)
    copy = clone(original)
    assert copy is not original and copy.get_params() == original.get_params()


# -- the estimator's synthesizer parameter -----------------------------------------------------

CALLS = []


class Spy(BaseEstimator):
    """Records the rows it is given; makes outliers by shifting them far away."""

    def __init__(self, shift=5.0):
        self.shift = shift

    def make_outliers(self, X, y, random_state):
        CALLS.append((X.copy(), np.asarray(y).copy(), random_state))
        return X + self.shift


def id_data(n=150, n_classes=3, seed=0):
    """Rows whose first feature is the row's index / 1024 (exact in float32)."""
    rng = np.random.RandomState(seed)
    y = np.arange(n) % n_classes
    X = (rng.normal(size=(n, 4)) + 2.0 * y[:, None]).astype(np.float32)
    X[:, 0] = np.arange(n) / 1024
    return X, y


def row_ids(X):
    return np.sort(np.rint(X[:, 0] * 1024).astype(int))


def make_clf(**params):
    return GradRegOODClassifier(MLP, max_epochs=1, batch_size=32, verbose=0, random_state=0,
                                **params)


def skorch_training_rows(ids, y):
    """The rows that skorch's default split, stratified ValidSplit(5), leaves for training."""
    classes = np.unique(y)
    encoded = np.searchsorted(classes, y)
    split = ValidSplit(5, stratified=True)
    train, _ = split(make_clf().get_dataset(ids.reshape(-1, 1), encoded), encoded)
    return np.sort(ids[train.indices])


# folds of ~100 rows: fewer calibration rows than tpr=0.95 needs; not what is checked here
@pytest.mark.filterwarnings("ignore::skood.conformal.SmallCalibrationWarning")
def test_spy_sees_only_the_training_rows_of_each_cv_fit_and_of_the_refit():
    X, y = id_data(n=150, n_classes=4)
    y = np.r_[y[:140], np.full(10, -1)]      # 10 outlier rows: in training, not synthesized
    cv = HeldOutClassSplit(n_splits=3, n_heldout=1, random_state=0)
    CALLS.clear()
    search = GridSearchCV(make_clf(synthesizer=Spy()), {"lambda_grad": [0.0]}, cv=cv,
                          scoring=make_ood_scorer("auroc"), error_score="raise").fit(X, y)
    assert len(CALLS) == 3 + 1                                   # once per fit, refit last
    folds = [(train, test) for train, test in cv.split(X, y)] + [(np.arange(150), [])]
    for (seen, labels, seed), (train, test) in zip(CALLS, folds):
        known = train[y[train] != -1]
        expected = skorch_training_rows(known, y[known])
        np.testing.assert_array_equal(row_ids(seen), expected)
        assert not set(row_ids(seen)) & set(np.asarray(test).tolist())
        np.testing.assert_array_equal(labels, y[np.rint(seen[:, 0] * 1024).astype(int)])
        assert isinstance(seed, int)
    assert search.best_estimator_.synthesizer.get_params() == {"shift": 5.0}


def test_spy_sees_no_calibration_row_with_train_split_none():
    X, y = id_data(n=120)
    CALLS.clear()
    make_clf(synthesizer=Spy(), train_split=None, calibration_fraction=0.2).fit(X, y)
    (seen, labels, _), = CALLS
    np.testing.assert_array_equal(labels, y[np.rint(seen[:, 0] * 1024).astype(int)])
    # the estimator's calibration split, redone by hand: its first draw seeds torch
    random_state = np.random.RandomState(0)
    random_state.randint(np.iinfo(np.int32).max)
    train, calibration = train_test_split(np.arange(120), test_size=0.2, stratify=y,
                                          random_state=random_state)
    np.testing.assert_array_equal(row_ids(seen), np.sort(train))
    assert not set(row_ids(seen)) & set(calibration.tolist())


# 120 rows: 12 calibration rows, fewer than tpr=0.95 needs; not what is checked here
@pytest.mark.filterwarnings("ignore::skood.conformal.SmallCalibrationWarning")
def test_synthesized_rows_are_the_fits_outliers_and_fits_are_deterministic():
    X, y = id_data(n=120)
    a = make_clf(synthesizer=ClassMix(), train_split=None)
    with pytest.raises(ValueError, match="No auxiliary outliers"):
        make_clf(train_split=None).fit(X, y)          # without a synthesizer: none
    scores = a.fit(X, y).score_samples(X)
    np.testing.assert_array_equal(scores, clone(a).fit(X, y).score_samples(X))
    other = make_clf(synthesizer=FeatureShuffle(), train_split=None).fit(X, y)
    assert not np.array_equal(scores, other.score_samples(X))


def test_a_synthesizer_without_make_outliers_or_with_bad_rows_is_refused():
    X, y = id_data(n=60)
    with pytest.raises(ValueError, match="synthesizer.*make_outliers"):
        make_clf(synthesizer=object()).fit(X, y)

    class WrongShape(Spy):
        def make_outliers(self, X, y, random_state):
            return X[:, :2]

    with pytest.raises(ValueError, match=r"shape \(\d+, 2\).*row shaped like X's rows, "
                                         r"\(n, 4\)"):
        make_clf(synthesizer=WrongShape()).fit(X, y)


# 90 rows: fewer calibration rows than tpr=0.95 needs; not what is checked here
@pytest.mark.filterwarnings("ignore::skood.conformal.SmallCalibrationWarning")
def test_clone_pickle_and_nested_parameters_of_a_synthesizer():
    X, y = id_data(n=90)
    clf = GradRegOODDetector(MLP, max_epochs=1, verbose=0, random_state=0,
                             synthesizer=PatchShuffle(grid=3))
    assert clf.get_params(deep=True)["synthesizer__grid"] == 3
    clf.set_params(synthesizer__grid=2)
    assert clf.synthesizer.grid == 2 and "synthesizer__grid" not in vars(clf)
    clf.set_params(synthesizer=Rotation(), synthesizer__angles=(180,))
    assert isinstance(clf.synthesizer, Rotation) and clf.synthesizer.angles == (180,)
    copy = clone(clf)
    assert copy.synthesizer is not clf.synthesizer
    assert copy.synthesizer.get_params() == clf.synthesizer.get_params()
    with pytest.raises(ValueError, match="synthesizer__ parameters"):
        make_clf().set_params(synthesizer__grid=2)
    clf = clone(clf.set_params(synthesizer=FeatureShuffle())).fit(X, y)   # the detector
    restored = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(restored.score_samples(X), clf.score_samples(X))
    assert isinstance(restored.synthesizer, FeatureShuffle)


def test_grid_search_tunes_lambda_grad_and_the_synthesizer_without_ood_data():
    X, y = load_digits(return_X_y=True)
    keep = np.isin(y, [2, 3, 4, 5, 8, 9])
    X = (X[keep][::3] / 16.0).astype(np.float32).reshape(-1, 1, 8, 8)
    y = y[keep][::3]                               # ~180 rows, no OOD row, no X_aux
    clf = GradRegOODClassifier(MLP, m_in=-12.0, m_out=-4.0, max_epochs=2, batch_size=32,
                               random_state=0, verbose=0)
    cv = HeldOutClassSplit(n_splits=3, n_heldout=2, random_state=0)
    scoring = {"auroc": make_ood_scorer("auroc"), "fpr95": make_ood_scorer("fpr95"),
               "acc": make_ood_scorer("id_accuracy")}
    grid = {"lambda_grad": [0.0, 1.0], "synthesizer": [PatchShuffle(), BlurNoise()]}
    search = GridSearchCV(clf, grid, cv=cv, scoring=scoring, refit="auroc",
                          error_score="raise").fit(X, y)
    assert len(search.cv_results_["params"]) == 4
    assert search.best_params_["synthesizer"].__class__ in (PatchShuffle, BlurNoise)
    # the first candidate's score on the first split, by hand: the held-out classes are OOD
    train, test = next(cv.split(X, y))
    model = clone(clf).set_params(**search.cv_results_["params"][0]).fit(X[train], y[train])
    unseen = ~np.isin(y[test], np.unique(y[train]))
    assert unseen.sum() == np.isin(y, cv.held_out_classes(y)[0]).sum()
    expected = roc_auc_score(~unseen, model.score_samples(X[test]))
    assert search.cv_results_["split0_test_auroc"][0] == pytest.approx(expected, abs=1e-6)
    accuracy = np.mean(model.predict(X[test][~unseen]) == y[test][~unseen])
    assert search.cv_results_["split0_test_acc"][0] == pytest.approx(accuracy)
