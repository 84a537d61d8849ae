"""skood.conformal: the guarantees hold by Monte Carlo, and the rules match hand-worked values.

Monte Carlo checks use synthetic scores (ID ~ N(0, 1), OOD ~ N(-2, 1)), fixed
seeds and a margin of 3 standard errors of the mean over repetitions. Expected
values are written out by hand or computed here by independent brute force,
never by the functions under test.
"""
import contextlib
import inspect
import warnings

import numpy as np
import pytest

import skood.conformal as conformal
from skood.conformal import (SmallCalibrationWarning, benjamini_hochberg,
                             class_conditional_pvalues, class_conditional_thresholds,
                             conformal_pvalues, conformal_threshold, min_calibration_size)

REPS = 2000


def mean_and_se(values):
    values = np.asarray(values, dtype=float)
    return values.mean(), values.std(ddof=1) / np.sqrt(values.size)


@contextlib.contextmanager
def no_warnings():
    """A context in which any warning is an error."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        yield


# ------------------------------------------------------------ hand-worked thresholds


# (n, tpr, k = floor((n + 1) * (1 - tpr)) worked out by hand)
HAND_RANKS = [
    (19, 0.95, 1), (20, 0.95, 1), (38, 0.95, 1), (39, 0.95, 2), (50, 0.95, 2), (199, 0.95, 10),
    (9, 0.9, 1),      # 10 * (1 - 0.9) = 0.9999999999999998 in floating point
    (4, 0.8, 1),      # 5 * (1 - 0.8) = 0.9999999999999998 in floating point
    (50, 0.9, 5), (99, 0.99, 1), (1, 0.5, 1), (2, 0.5, 1), (3, 0.5, 2),
]


@pytest.mark.parametrize("n, tpr, k", HAND_RANKS)
def test_threshold_is_the_kth_smallest_score(n, tpr, k):
    scores = np.random.default_rng(n).permutation(np.arange(100.0, 100.0 + n))
    with no_warnings():
        assert conformal_threshold(scores, tpr) == 100.0 + k - 1


def test_threshold_hand_examples_from_the_brief():
    scores = np.arange(1.0, 20.0)[::-1]                       # n = 19, unsorted
    assert conformal_threshold(scores, 0.95) == 1.0           # the smallest
    assert conformal_threshold(np.arange(1.0, 40.0), 0.95) == 2.0   # n = 39: 2nd smallest


@pytest.mark.parametrize("tpr, smallest_n", [(0.95, 19), (0.99, 99), (0.9, 9), (0.8, 4),
                                             (0.5, 1), (0.3, 1), (0.96, 24)])
def test_too_few_scores_give_minus_inf_and_a_warning_naming_the_smallest_n(tpr, smallest_n):
    assert min_calibration_size(tpr) == smallest_n
    if smallest_n > 1:
        with pytest.warns(SmallCalibrationWarning, match=f"at least {smallest_n} calibration"):
            assert conformal_threshold(np.arange(smallest_n - 1.0), tpr) == -np.inf
    with no_warnings():
        assert conformal_threshold(np.arange(float(smallest_n)), tpr) == 0.0


def test_threshold_keeps_the_value_of_float32_scores():
    scores = np.float32([0.1, 0.2, 0.3] * 13)                 # n = 39, k = 2
    threshold = conformal_threshold(scores, 0.95)
    assert threshold == float(np.float32(0.1))
    assert np.all((scores >= threshold) == (scores >= np.float32(0.1)))


# ------------------------------------------------------------ Monte Carlo validity


@pytest.mark.parametrize("n, tpr, k", [case for case in HAND_RANKS if case[0] >= 4])
def test_acceptance_of_new_id_samples_is_at_least_tpr_and_exactly_1_minus_k_over_n_plus_1(
        n, tpr, k):
    rng = np.random.default_rng(1000 * n + round(100 * tpr))
    calibration = rng.normal(size=(REPS, n))
    new = rng.normal(size=(REPS, 50))
    thresholds = np.array([conformal_threshold(row, tpr) for row in calibration])
    mean, se = mean_and_se((new >= thresholds[:, None]).mean(axis=1))
    assert mean >= tpr - 3 * se, (mean, se)
    # Continuous scores: exactly 1 - k / (n + 1), which is tpr itself when (n + 1)(1 - tpr)
    # is an integer (n = 19, 39, 199 at 0.95), so the rule is not conservative there.
    assert abs(mean - (1 - k / (n + 1))) <= 3 * se, (mean, 1 - k / (n + 1), se)


def test_ood_samples_are_rejected_by_the_threshold():
    rng = np.random.default_rng(1)
    calibration, ood = rng.normal(size=(REPS, 199)), rng.normal(-2.0, 1.0, size=(REPS, 50))
    thresholds = np.array([conformal_threshold(row, 0.95) for row in calibration])
    # P(N(-2, 1) >= the 5% quantile of N(0, 1)) = P(Z >= 0.355) = 0.36
    assert abs((ood >= thresholds[:, None]).mean() - 0.36) < 0.02


# ------------------------------------------------------------ p-values


def brute_force_pvalues(calibration, scores):
    n = len(calibration)
    return np.array([(1 + sum(1 for c in calibration if c <= s)) / (n + 1) for s in scores])


@pytest.mark.parametrize("seed", range(20))
def test_pvalues_equal_a_brute_force_count_including_ties(seed):
    rng = np.random.default_rng(seed)
    n, m = rng.integers(1, 15), rng.integers(0, 15)
    calibration = rng.integers(-3, 4, size=n).astype(float)   # many ties
    scores = np.r_[rng.integers(-4, 5, size=m), calibration[:3]].astype(float)
    np.testing.assert_array_equal(conformal_pvalues(calibration, scores),
                                  brute_force_pvalues(calibration, scores))


def test_pvalues_hand_example_with_ties():
    # 2.0 equals two calibration scores: both count, p = (1 + 3) / 5
    np.testing.assert_array_equal(conformal_pvalues([2.0, 1.0, 2.0, 3.0], [0.0, 2.0, 3.0, 5.0]),
                                  [1 / 5, 4 / 5, 5 / 5, 5 / 5])


def test_pvalues_of_new_id_samples_are_uniform_on_the_grid_for_continuous_scores():
    rng = np.random.default_rng(2)
    n = 19
    calibration, new = rng.normal(size=(REPS, n)), rng.normal(size=(REPS, 50))
    pvalues = np.array([conformal_pvalues(c, s) for c, s in zip(calibration, new)])
    for j in (1, 2, 5, 10, 19):
        mean, se = mean_and_se((pvalues <= j / (n + 1)).mean(axis=1))
        assert abs(mean - j / (n + 1)) <= 3 * se, (j, mean, se)
    for a in (0.07, 0.33):                                     # between grid points
        mean, se = mean_and_se((pvalues <= a).mean(axis=1))
        assert mean <= a + 3 * se
        assert abs(mean - np.floor(a * (n + 1)) / (n + 1)) <= 3 * se


def test_pvalues_of_new_id_samples_are_super_uniform_with_ties():
    # Rounded scores: heavy ties. Counting equal calibration scores keeps P(p <= a) <= a;
    # counting only strictly smaller ones gives P(p <= 1/20) of about 0.13 here.
    rng = np.random.default_rng(3)
    n = 19
    calibration, new = (np.round(rng.normal(size=(REPS, n))),
                        np.round(rng.normal(size=(REPS, 50))))
    pvalues = np.array([conformal_pvalues(c, s) for c, s in zip(calibration, new)])
    for a in (0.05, 0.1, 0.25, 0.5, 0.8):
        mean, se = mean_and_se((pvalues <= a).mean(axis=1))
        assert mean <= a + 3 * se, (a, mean, se)


@pytest.mark.parametrize("n, tpr, k", [(19, 0.95, 1), (50, 0.95, 2), (9, 0.9, 1), (30, 0.7, 9)])
def test_threshold_rejects_exactly_the_pvalues_at_most_k_over_n_plus_1(n, tpr, k):
    rng = np.random.default_rng(n)
    calibration = rng.integers(0, 6, size=n).astype(float)     # ties
    scores = np.r_[rng.integers(-1, 7, size=200).astype(float), calibration]
    rejected = scores < conformal_threshold(calibration, tpr)
    np.testing.assert_array_equal(rejected,
                                  brute_force_pvalues(calibration, scores) <= k / (n + 1))


# ------------------------------------------------------------ Benjamini-Hochberg


def brute_force_bh(pvalues, q):
    """Self-consistency form: the largest k with #{p_i <= q k / m} >= k; select p_i <= q k / m."""
    m = len(pvalues)
    for k in range(m, 0, -1):
        cut = q * k / m
        if sum(1 for p in pvalues if p <= cut) >= k:
            return np.array([p <= cut for p in pvalues], dtype=bool)
    return np.zeros(m, dtype=bool)


@pytest.mark.parametrize("seed", range(40))
def test_bh_agrees_with_brute_force(seed):
    rng = np.random.default_rng(seed)
    m = int(rng.integers(1, 13))
    q = float(rng.choice([0.05, 0.1, 0.2, 0.25, 0.5]))
    if seed % 2:       # conformal-grid p-values: ties and values on the BH boundary
        pvalues = rng.integers(1, 21, size=m) / 20
    else:
        pvalues = rng.uniform(0, 0.3, size=m) ** 2
    np.testing.assert_array_equal(benjamini_hochberg(pvalues, q), brute_force_bh(pvalues, q))


def test_bh_hand_examples():
    # Thresholds 1/16, 2/16, 3/16, 4/16: p_(2) = 2/16 sits on its threshold.
    np.testing.assert_array_equal(benjamini_hochberg([0.125, 0.0625, 0.9, 0.5], fdr=0.25),
                                  [True, True, False, False])
    # Step-up: 0.06 > 0.1 * 2/4, but 0.07 <= 0.1 * 3/4 selects it too.
    np.testing.assert_array_equal(benjamini_hochberg([0.02, 0.5, 0.06, 0.07], fdr=0.1),
                                  [True, False, True, True])
    np.testing.assert_array_equal(benjamini_hochberg([0.3, 0.9], fdr=0.1), [False, False])
    assert benjamini_hochberg([], fdr=0.1).shape == (0,)


@pytest.mark.parametrize("n_ood, q", [(0, 0.1), (10, 0.1), (10, 0.2), (25, 0.1)])
def test_bh_on_conformal_pvalues_controls_the_fdr(n_ood, q):
    rng = np.random.default_rng(10 * n_ood + round(100 * q))
    n, m = 199, 50
    calibration = rng.normal(size=(REPS, n))
    batch = np.c_[rng.normal(size=(REPS, m - n_ood)), rng.normal(-2.0, 1.0, size=(REPS, n_ood))]
    is_id = np.arange(m) < m - n_ood
    flagged = np.array([benjamini_hochberg(conformal_pvalues(c, b), q)
                        for c, b in zip(calibration, batch)])
    false_discovery_proportion = (flagged & is_id).sum(axis=1) / np.maximum(flagged.sum(axis=1), 1)
    mean, se = mean_and_se(false_discovery_proportion)
    assert mean <= q + 3 * se, (mean, se)
    if n_ood:   # not vacuous: OOD samples do get flagged
        assert flagged[:, ~is_id].mean() > 0.1


# ------------------------------------------------------------ class-conditional (Mondrian)


def imbalanced(rng, reps, n_major, n_minor):
    """ID scores of a 90%/10% two-class problem; the minority class scores lower."""
    return np.c_[rng.normal(0.0, 1.0, size=(reps, n_major)),
                 rng.normal(-1.5, 1.0, size=(reps, n_minor))]


def test_per_class_thresholds_accept_tpr_of_each_class_where_one_threshold_does_not():
    rng = np.random.default_rng(4)
    reps, tpr = 1000, 0.95
    classes = np.r_[np.zeros(900, dtype=int), np.ones(100, dtype=int)]
    calibration = imbalanced(rng, reps, 900, 100)
    new = imbalanced(rng, reps, 90, 10)
    new_classes = np.r_[np.zeros(90, dtype=int), np.ones(10, dtype=int)]
    per_class = np.array([class_conditional_thresholds(c, classes, 2, tpr)
                          for c in calibration])                # (reps, 2)
    single = np.array([conformal_threshold(c, tpr) for c in calibration])
    accepted_per_class = new >= per_class[:, new_classes]
    accepted_single = new >= single[:, None]
    for c in (0, 1):
        mean, se = mean_and_se(accepted_per_class[:, new_classes == c].mean(axis=1))
        assert mean >= tpr - 3 * se, (c, mean, se)
    # One threshold: fine on average over the classes, but the minority class is accepted
    # only about 70% of the time (P(N(-1.5, 1) >= -2.02)).
    mean, se = mean_and_se(accepted_single.mean(axis=1))
    assert mean >= tpr - 3 * se
    minority_single = accepted_single[:, new_classes == 1].mean()
    assert minority_single < 0.8
    assert accepted_per_class[:, new_classes == 1].mean() - minority_single > 0.15


def test_per_class_pvalues_are_uniform_within_each_class_where_pooled_ones_are_not():
    rng = np.random.default_rng(5)
    reps = 1000
    classes = np.r_[np.zeros(900, dtype=int), np.ones(100, dtype=int)]
    calibration = imbalanced(rng, reps, 900, 100)
    new = imbalanced(rng, reps, 90, 10)
    new_classes = np.r_[np.zeros(90, dtype=int), np.ones(10, dtype=int)]
    per_class = np.array([class_conditional_pvalues(c, classes, s, new_classes, 2)
                          for c, s in zip(calibration, new)])
    pooled = np.array([conformal_pvalues(c, s) for c, s in zip(calibration, new)])
    for c, n_c in ((0, 900), (1, 100)):
        for j in (1, 5, n_c // 10):
            a = j / (n_c + 1)
            mean, se = mean_and_se((per_class[:, new_classes == c] <= a).mean(axis=1))
            assert abs(mean - a) <= 3 * se, (c, j, mean, se)
    assert (pooled[:, new_classes == 1] <= 0.05).mean() > 0.2


@pytest.mark.parametrize("seed", range(10))
def test_per_class_pvalues_equal_a_brute_force_count(seed):
    rng = np.random.default_rng(seed)
    n_classes = 3
    calibration = rng.integers(0, 5, size=25).astype(float)
    calibration_classes = rng.integers(0, 2, size=25)          # class 2 has no rows
    scores = rng.integers(-1, 6, size=30).astype(float)
    classes = rng.integers(0, 2, size=30)
    expected = [brute_force_pvalues(calibration[calibration_classes == c], [s])[0]
                for s, c in zip(scores, classes)]
    with no_warnings():
        got = class_conditional_pvalues(calibration, calibration_classes, scores, classes,
                                        n_classes)
    np.testing.assert_array_equal(got, expected)


def test_per_class_pvalues_of_a_class_without_calibration_rows_are_one_with_a_warning():
    with pytest.warns(SmallCalibrationWarning, match=r"Class \[2\] has no calibration rows"):
        pvalues = class_conditional_pvalues([1.0, 2.0], [0, 1], [0.0, -5.0], [0, 2], 3)
    np.testing.assert_array_equal(pvalues, [1 / 2, 1.0])


# class 0: scores 10..39 (30 rows, k = floor(31 * 0.05) = 1); class 1: 1..5 (5 rows);
# class 2: none. All 35 rows together: k = floor(36 * 0.05) = 1, the smallest, 1.0.
SMALL_SCORES = np.r_[np.arange(10.0, 40.0), np.arange(1.0, 6.0)]
SMALL_CLASSES = np.r_[np.zeros(30, dtype=int), np.ones(5, dtype=int)]


def test_too_small_classes_raise_by_default_naming_them_and_the_rows_needed():
    with pytest.raises(ValueError, match=r"class 1 \(5 rows\), 2 \(0 rows\).*at least 19"):
        class_conditional_thresholds(SMALL_SCORES, SMALL_CLASSES, 3, 0.95)


def test_too_small_classes_get_the_marginal_threshold_with_small_class_marginal():
    with pytest.warns(SmallCalibrationWarning, match=r"class 1 \(5 rows\), 2 \(0 rows\)"):
        thresholds = class_conditional_thresholds(SMALL_SCORES, SMALL_CLASSES, 3, 0.95,
                                                  small_class="marginal")
    np.testing.assert_array_equal(thresholds, [10.0, 1.0, 1.0])


def test_too_small_classes_accept_everything_with_small_class_accept():
    with pytest.warns(SmallCalibrationWarning, match="never flagged"):
        thresholds = class_conditional_thresholds(SMALL_SCORES, SMALL_CLASSES, 3, 0.95,
                                                  small_class="accept")
    np.testing.assert_array_equal(thresholds, [10.0, -np.inf, -np.inf])


def test_min_rows_raises_the_bar_and_cannot_go_below_what_tpr_needs():
    with pytest.raises(ValueError, match=r"class 0 \(30 rows\)"):
        class_conditional_thresholds(SMALL_SCORES[:30], SMALL_CLASSES[:30], 1, 0.95,
                                     min_rows=31)
    with no_warnings():
        assert class_conditional_thresholds(SMALL_SCORES[:30], SMALL_CLASSES[:30], 1, 0.95,
                                            min_rows=30)[0] == 10.0
    with pytest.raises(ValueError, match=r"min_rows must be an integer >= 19"):
        class_conditional_thresholds(SMALL_SCORES, SMALL_CLASSES, 2, 0.95, min_rows=5)


def test_per_class_thresholds_equal_the_kth_smallest_of_each_class():
    rng = np.random.default_rng(6)
    # class 0: 39 rows (k = 2), class 1: 19 rows (k = 1), class 2: 60 rows (k = 3), shuffled
    sizes, ranks = (39, 19, 60), (2, 1, 3)
    scores = np.concatenate([rng.permutation(np.arange(100.0 * c, 100.0 * c + size))
                             for c, size in enumerate(sizes)])
    classes = np.repeat(np.arange(3), sizes)
    order = rng.permutation(scores.size)
    with no_warnings():
        thresholds = class_conditional_thresholds(scores[order], classes[order], 3, 0.95)
    np.testing.assert_array_equal(thresholds, [100.0 * c + k - 1 for c, k in enumerate(ranks)])


# ------------------------------------------------------------ bad inputs


GOOD = np.arange(40.0)
BAD_INPUTS = [
    (conformal_threshold, (GOOD, 0.0), "tpr must be a number strictly between 0 and 1"),
    (conformal_threshold, (GOOD, 1.0), "tpr must be a number strictly between 0 and 1"),
    (conformal_threshold, (GOOD, 1.5), "tpr must be a number strictly between 0 and 1"),
    (conformal_threshold, (GOOD, -0.1), "tpr must be a number strictly between 0 and 1"),
    (conformal_threshold, (GOOD, True), "tpr must be a number strictly between 0 and 1"),
    (conformal_threshold, (GOOD, "0.95"), "tpr must be a number strictly between 0 and 1"),
    (conformal_threshold, (np.r_[GOOD, np.nan], 0.95), "calibration_scores contains NaN"),
    (conformal_threshold, (np.r_[GOOD, np.inf], 0.95), "calibration_scores contains NaN or inf"),
    (conformal_threshold, (GOOD.reshape(20, 2), 0.95), r"must be 1-D .* shape \(20, 2\)"),
    (conformal_threshold, (GOOD.reshape(40, 1), 0.95), r"must be 1-D .* ravel\(\)"),
    (conformal_threshold, ([], 0.95), "calibration_scores is empty"),
    (conformal_threshold, (["a", "b"], 0.95), "must hold real numbers"),
    (conformal_pvalues, ([], [1.0]), "calibration_scores is empty"),
    (conformal_pvalues, (GOOD, [1.0, np.nan]), "scores contains NaN"),
    (conformal_pvalues, (GOOD, [[1.0, 2.0]]), "scores must be 1-D"),
    (conformal_pvalues, (GOOD.reshape(2, 20), [1.0]), "calibration_scores must be 1-D"),
    (benjamini_hochberg, ([0.1, 0.2], 0.0), "fdr must be a number strictly between 0 and 1"),
    (benjamini_hochberg, ([0.1, 0.2], 1.0), "fdr must be a number strictly between 0 and 1"),
    (benjamini_hochberg, ([0.1, 0.2], 2), "fdr must be a number strictly between 0 and 1"),
    (benjamini_hochberg, ([0.1, 1.5], 0.1), r"pvalues must lie in \[0, 1\]"),
    (benjamini_hochberg, ([0.1, np.nan], 0.1), "pvalues contains NaN"),
    (benjamini_hochberg, ([[0.1, 0.2]], 0.1), "pvalues must be 1-D"),
    (min_calibration_size, (1.0,), "tpr must be a number strictly between 0 and 1"),
    (class_conditional_thresholds, (GOOD, np.zeros(39, dtype=int), 1), "has 39 entries but"),
    (class_conditional_thresholds, (GOOD, np.full(40, 2), 2), r"indices \[2\] outside 0..1"),
    (class_conditional_thresholds, (GOOD, np.full(40, -1), 2), r"indices \[-1\] outside"),
    (class_conditional_thresholds, (GOOD, np.zeros(40), 1), "integer class indices"),
    (class_conditional_thresholds, (GOOD, np.zeros(40, dtype=int), 0), "n_classes must be"),
    (class_conditional_thresholds, (GOOD, np.zeros(40, dtype=int), 1, 1.0), "tpr must be"),
    (class_conditional_thresholds, (GOOD, np.zeros((40, 1), dtype=int), 1), "must be 1-D"),
    (class_conditional_pvalues, (GOOD, np.zeros(40, dtype=int), [1.0], [1], 1),
     r"classes contains class indices \[1\] outside 0..0"),
    (class_conditional_pvalues, (GOOD, np.zeros(40, dtype=int), [1.0, 2.0], [0], 1),
     "classes has 1 entries but scores has 2"),
    (class_conditional_pvalues, (GOOD, np.zeros(40, dtype=int), [np.inf], [0], 1),
     "scores contains NaN or inf"),
]


@pytest.mark.parametrize("function, args, message", BAD_INPUTS,
                         ids=[f"{f.__name__}-{i}" for i, (f, _, _) in enumerate(BAD_INPUTS)])
def test_bad_inputs_are_refused_with_a_clear_message(function, args, message):
    with pytest.raises(ValueError, match=message):
        function(*args)


def test_unknown_small_class_choice_is_refused():
    with pytest.raises(ValueError, match=r"small_class must be one of \['raise', 'marginal'"):
        class_conditional_thresholds(GOOD, np.zeros(40, dtype=int), 1, small_class="fallback")


def test_every_public_name_has_a_runnable_example():
    # tests/test_docs.py checks this for the modules it lists; skood.conformal is new.
    for name in conformal.__all__:
        doc = inspect.getdoc(getattr(conformal, name)) or ""
        assert "Examples\n--------" in doc and ">>>" in doc, name
