"""HeldOutClassSplit's invariants and errors, and the scorers' reading of unseen classes."""
import itertools

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, StratifiedKFold, cross_validate

from skood import make_ood_scorer
from skood.metrics import id_accuracy
from skood.model_selection import HeldOutClassSplit


def labels_with_outliers():
    """Seven classes of different sizes (a class of 3 rows among them), then 9 rows of -1."""
    sizes = [10, 12, 3, 20, 8, 15, 11]
    y = np.concatenate([np.full(size, label) for label, size in enumerate(sizes)])
    y = np.r_[y, np.full(9, -1)]
    return np.random.RandomState(0).permutation(y)


def test_each_split_holds_whole_classes_out_and_keeps_outliers_in_training():
    y = labels_with_outliers()
    X = np.zeros((len(y), 2))
    cv = HeldOutClassSplit(n_splits=4, n_heldout=2, test_size=0.25, random_state=0)
    splits = list(cv.split(X, y))
    assert len(splits) == cv.get_n_splits() == 4
    classes = set(range(7))
    for (train, test), held_out in zip(splits, cv.held_out_classes(y)):
        assert len(np.intersect1d(train, test)) == 0
        assert np.array_equal(np.sort(np.r_[train, test]), np.arange(len(y)))
        held_out = set(held_out.tolist())
        assert len(held_out) == 2
        # no row of a held-out class in training, every one of them in the test part
        assert not held_out & set(y[train].tolist())
        assert np.array_equal(np.sort(test[np.isin(y[test], list(held_out))]),
                              np.flatnonzero(np.isin(y, list(held_out))))
        # -1 rows: all in training, never tested
        assert np.array_equal(np.sort(train[y[train] == -1]), np.flatnonzero(y == -1))
        assert not np.any(y[test] == -1)
        # the known classes are all trained on, and a stratified quarter of each is tested
        known = classes - held_out
        assert set(y[train].tolist()) == known | {-1}
        for label in known:
            n_class = np.sum(y == label)
            assert abs(np.sum(y[test] == label) - 0.25 * n_class) <= 1, label


def test_every_class_is_held_out_and_the_sets_differ():
    y = labels_with_outliers()
    X = np.zeros((len(y), 1))
    # 4 * 2 >= 7 classes: the last block of the first permutation is topped up
    cv = HeldOutClassSplit(n_splits=4, n_heldout=2, random_state=3)
    held_out = [frozenset(np.unique(y[test][~np.isin(y[test], y[train])]).tolist())
                for train, test in cv.split(X, y)]
    assert set().union(*held_out) == set(range(7))
    assert len(set(held_out)) == 4
    # as many splits as there are pairs of 4 classes: all 6 distinct pairs
    y4 = np.repeat(np.arange(4), 10)
    cv = HeldOutClassSplit(n_splits=6, n_heldout=2, random_state=0)
    sets = {frozenset(block.tolist()) for block in cv.held_out_classes(y4)}
    assert sets == {frozenset(pair) for pair in itertools.combinations(range(4), 2)}


def test_splits_are_reproducible_under_random_state():
    y = labels_with_outliers()
    X = np.zeros((len(y), 1))

    def splits(seed):
        return [(tr.tolist(), te.tolist())
                for tr, te in HeldOutClassSplit(3, 1, random_state=seed).split(X, y)]

    assert splits(0) == splits(0)
    assert splits(0) != splits(1)
    cv = HeldOutClassSplit(3, 1, random_state=np.random.RandomState(0))
    assert [t.tolist() for _, t in cv.split(X, y)] != [t.tolist() for _, t in cv.split(X, y)]


def test_string_labels_and_outliers_in_an_object_array():
    y = np.array(["cat", "dog", "owl", "ant"] * 5 + [-1, -1], dtype=object)
    cv = HeldOutClassSplit(n_splits=2, n_heldout=1, random_state=0)
    for (train, test), held_out in zip(cv.split(np.zeros((22, 1)), y), cv.held_out_classes(y)):
        assert held_out[0] not in set(y[train].tolist())
        assert set(np.flatnonzero(y == held_out[0])) <= set(test.tolist())
        assert {20, 21} <= set(train.tolist())


@pytest.mark.parametrize("params, y, message", [
    ({"n_heldout": 0}, np.repeat(np.arange(4), 5), "n_heldout must be an int >= 1"),
    ({"n_splits": 0}, np.repeat(np.arange(4), 5), "n_splits must be an int >= 1"),
    ({"n_heldout": 3}, np.repeat(np.arange(4), 5), "leaves 1 known class"),
    ({"n_heldout": 1}, np.r_[np.repeat([0, 1], 5), -1], "at least 3 classes"),
    ({"n_splits": 7, "n_heldout": 2}, np.repeat(np.arange(4), 5), "6 distinct sets"),
    ({"test_size": 1.5}, np.repeat(np.arange(4), 5), "test_size must be"),
    ({"n_heldout": 1, "n_splits": 2}, np.r_[np.repeat([0, 1, 2], 5), 3],
     "could not draw a stratified test share"),
])
def test_bad_arguments_get_clear_errors(params, y, message):
    cv = HeldOutClassSplit(**{"random_state": 0, **params})
    with pytest.raises(ValueError, match=message):
        list(cv.split(np.zeros((len(y), 1)), y))


def test_get_n_splits_and_y_is_required():
    assert HeldOutClassSplit(n_splits=3).get_n_splits() == 3
    with pytest.raises(ValueError, match="n_splits must be"):
        HeldOutClassSplit(n_splits=1.5).get_n_splits()
    with pytest.raises(ValueError, match="needs y"):
        list(HeldOutClassSplit().split(np.zeros((5, 1)), None))
    assert repr(HeldOutClassSplit(3, 1)).startswith("HeldOutClassSplit(")


# -- scorers: rows of classes the fitted model does not know are OOD ---------------------------

class FixedScores:
    """A fitted stand-in: given classes_, scores and predictions, indexed by X's one column."""

    def __init__(self, classes, scores, predictions):
        self.classes_ = np.asarray(classes)
        self.scores, self.predictions = np.asarray(scores), np.asarray(predictions)

    def score_samples(self, X):
        return self.scores[np.asarray(X).ravel()]

    def predict(self, X):
        return self.predictions[np.asarray(X).ravel()]


def test_scorers_count_unseen_classes_as_ood_by_hand():
    # fitted on classes 0 and 1; class 2 is unseen and -1 is an outlier row
    y = np.array([0, 1, 1, 2, 2, -1])
    scores = [0.9, 0.8, 0.3, 0.5, 0.1, 0.2]
    est = FixedScores([0, 1], scores, predictions=[0, 1, 0, 0, 0, 0])
    X = np.arange(6).reshape(-1, 1)
    # ID scores 0.9, 0.8, 0.3; OOD scores 0.5, 0.1, 0.2. Pairs (ID > OOD): 3 + 3 + 2 of 9.
    assert make_ood_scorer("auroc")(est, X, y) == pytest.approx(8 / 9)
    # 95% of 3 ID rows = all 3: threshold 0.3, which accepts 1 of the 3 OOD rows (0.5)
    assert make_ood_scorer("fpr95")(est, X, y) == pytest.approx(-1 / 3)
    # accuracy on the rows of classes 0 and 1 only: 0 -> 0 right, 1 -> 1 right, 1 -> 0 wrong
    assert make_ood_scorer("id_accuracy")(est, X, y) == pytest.approx(2 / 3)
    assert id_accuracy(est, X, y) == pytest.approx(2 / 3)


def test_scorers_with_string_classes_and_no_known_rows():
    y = np.array(["cat", "dog", "owl", -1], dtype=object)
    est = FixedScores(["cat", "dog"], [3.0, 2.0, 1.0, 0.0], ["cat", "cat", "cat", "cat"])
    X = np.arange(4).reshape(-1, 1)
    assert make_ood_scorer("auroc")(est, X, y) == 1.0          # owl and -1 below cat and dog
    assert make_ood_scorer("id_accuracy")(est, X, y) == 0.5
    with pytest.raises(ValueError, match="one of the estimator's classes_"):
        id_accuracy(est, X[2:], y[2:])
    with pytest.raises(ValueError, match="HeldOutClassSplit"):
        make_ood_scorer("auroc")(est, X[:2], y[:2])


class ProbaScores(LogisticRegression):
    """A fast classifier with score_samples (the largest class probability)."""

    def score_samples(self, X):
        return self.predict_proba(X).max(axis=1)


def blobs(n_classes=5, n_per_class=30, seed=0):
    rng = np.random.RandomState(seed)
    centers = rng.normal(scale=4.0, size=(n_classes, 3))
    y = np.repeat(np.arange(n_classes), n_per_class)
    return (centers[y] + rng.normal(size=(len(y), 3))).astype(np.float32), y


def test_cross_validate_and_grid_search_with_two_jobs():
    X, y = blobs()
    cv = HeldOutClassSplit(n_splits=3, n_heldout=1, random_state=0)
    scoring = {"auroc": make_ood_scorer("auroc"), "acc": make_ood_scorer("id_accuracy")}
    result = cross_validate(ProbaScores(), X, y, cv=cv, scoring=scoring, n_jobs=2,
                            error_score="raise")
    assert len(result["test_auroc"]) == 3
    # by hand: the first split's model and held-out class, scored as the scorer must
    train, test = next(cv.split(X, y))
    model = ProbaScores().fit(X[train], y[train])
    is_id = np.isin(y[test], np.unique(y[train])).astype(int)
    from sklearn.metrics import roc_auc_score
    assert result["test_auroc"][0] == pytest.approx(
        roc_auc_score(is_id, model.score_samples(X[test])))
    assert result["test_acc"][0] == pytest.approx(
        np.mean(model.predict(X[test][is_id == 1]) == y[test][is_id == 1]))
    search = GridSearchCV(ProbaScores(), {"C": [0.01, 1.0]}, cv=cv, scoring=scoring,
                          refit="auroc", n_jobs=2, error_score="raise").fit(X, y)
    assert search.cv_results_["split2_test_auroc"].shape == (2,)
    assert search.best_params_["C"] in (0.01, 1.0)


def test_an_ordinary_splitter_can_leave_a_rare_class_unseen():
    """What the scorer docs warn of: a 1-row class is missing from the training part of the
    StratifiedKFold fold that tests it, and there its row counts as OOD, not as an error."""
    X, y = blobs(n_classes=4, n_per_class=9)
    X, y = X[:28], y[:28]                         # class 3 keeps 1 row
    seen_everywhere = []
    with pytest.warns(UserWarning, match="least populated class"):
        folds = list(StratifiedKFold(3).split(X, y))
    for train, test in folds:
        model = ProbaScores().fit(X[train], y[train])
        seen_everywhere.append(set(model.classes_) == {0, 1, 2, 3})
        rows = id_accuracy(model, X[test], y[test])
        known = np.isin(y[test], model.classes_)
        assert rows == pytest.approx(np.mean(model.predict(X[test][known]) == y[test][known]))
    assert not all(seen_everywhere)
