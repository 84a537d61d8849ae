"""The OOD metrics against independent, brute-force computations (ties included)."""
import numpy as np
import pandas as pd
import pytest

from skood.metrics import (aupr_in, aupr_out, auroc, fpr_at_tpr, is_outlier_label,
                           make_ood_scorer, ood_report, ood_report_frame, threshold_at_tpr)


def brute_fpr_at_tpr(y, s, tpr):
    # Walk thresholds from the highest score down; stop at the first that accepts >= tpr of ID.
    for t in sorted(set(s), reverse=True):
        accepted = s >= t
        if accepted[y == 1].mean() >= tpr:
            return accepted[y == 0].mean()
    raise AssertionError("unreachable")


def brute_auroc(y, s):
    # Mann-Whitney: P(score_id > score_ood) + 0.5 P(tie), over all pairs.
    pos, neg = s[y == 1], s[y == 0]
    wins = sum((p > n) + 0.5 * (p == n) for p in pos for n in neg)
    return wins / (len(pos) * len(neg))


def brute_average_precision(y, s):
    # Step-wise area: sum over distinct thresholds of (recall gain) x precision.
    total, prev_recall = 0.0, 0.0
    for t in sorted(set(s), reverse=True):
        accepted = s >= t
        recall = (accepted & (y == 1)).sum() / (y == 1).sum()
        precision = (accepted & (y == 1)).sum() / accepted.sum()
        total += (recall - prev_recall) * precision
        prev_recall = recall
    return total


@pytest.fixture(params=range(6))
def scored(request):
    rng = np.random.RandomState(request.param)
    n = rng.randint(20, 80)
    y = (rng.rand(n) < 0.6).astype(int)
    y[:2] = [0, 1]
    # rounding creates many ties, also across the two classes
    s = np.round(rng.normal(size=n) + 0.8 * y, 1 if request.param % 2 else 0)
    return y, s


def test_fpr_at_tpr_matches_brute_force(scored):
    y, s = scored
    for tpr in (0.5, 0.8, 0.95, 1.0):
        assert fpr_at_tpr(y, s, tpr=tpr) == pytest.approx(brute_fpr_at_tpr(y, s, tpr))


def test_fpr_at_tpr_is_scikit_learns_roc_curve_point_bit_for_bit():
    # fpr_at_tpr reads the point off the ROC curve directly; the value must be exactly
    # roc_curve's at the first threshold whose TPR reaches tpr, ties included.
    from sklearn.metrics import roc_curve
    rng = np.random.default_rng(0)
    for case in range(600):
        n = int(rng.integers(2, 60))
        y = rng.integers(0, 2, n)
        y[:2] = [0, 1]
        s = (rng.integers(0, 4, n).astype(float) if case % 2 else rng.normal(size=n))
        for tpr in (0.1, 0.5, 0.8, 0.95, 0.99, 1.0):
            fpr, tpr_curve, _ = roc_curve(y, s, drop_intermediate=False)
            expected = float(fpr[int(np.searchsorted(tpr_curve, tpr - 1e-12, side="left"))])
            assert fpr_at_tpr(y, s, tpr=tpr) == expected, (case, tpr)


def test_auroc_and_aupr_match_brute_force(scored):
    y, s = scored
    assert auroc(y, s) == pytest.approx(brute_auroc(y, s))
    assert aupr_in(y, s) == pytest.approx(brute_average_precision(y, s))
    assert aupr_out(y, s) == pytest.approx(brute_average_precision(1 - y, -s))


def test_fpr95_on_a_hand_made_case():
    # 20 ID scores 1..20: 95% acceptance needs threshold 2 (19 of 20 accepted).
    y = np.r_[np.ones(20, dtype=int), np.zeros(4, dtype=int)]
    s = np.r_[np.arange(1, 21), [0.5, 2.0, 3.0, 25.0]]
    assert fpr_at_tpr(y, s) == 0.75


def test_threshold_at_tpr_accepts_at_least_tpr():
    rng = np.random.RandomState(0)
    for n in (1, 7, 20, 101):
        scores = np.round(rng.normal(size=n), 1)
        for tpr in (0.5, 0.9, 0.95):
            t = threshold_at_tpr(scores, tpr)
            assert np.mean(scores >= t) >= tpr
            # it is the largest such threshold: any higher score accepts too few
            higher = scores[scores > t]
            if higher.size:
                assert np.mean(scores >= higher.min()) < tpr


def test_ood_report_and_frame():
    y = np.r_[np.ones(5, dtype=int), np.zeros(5, dtype=int)]
    s = np.arange(10.0)[::-1]
    report = ood_report(y, s)
    assert report == {"fpr95": 0.0, "auroc": 1.0, "aupr_in": 1.0, "aupr_out": 1.0}
    frame = ood_report_frame(s[:5], {"easy": s[5:], "hard": s[:5] + 10})
    assert isinstance(frame, pd.DataFrame)
    assert list(frame.index) == ["easy", "hard", "mean"]
    assert frame.loc["hard", "fpr95"] == 1.0
    assert frame.loc["mean", "auroc"] == pytest.approx((1.0 + 0.0) / 2)


@pytest.mark.parametrize("y, s, message", [
    ([1, 1, 1], [0.1, 0.2, 0.3], "both in-distribution"),
    ([1, 2, 0], [0.1, 0.2, 0.3], "must be 1 for in-distribution"),
    ([1, 0], [0.1, np.nan], "NaN or inf"),
    ([1, 0, 1], [0.1, 0.2], "different lengths"),
])
def test_bad_metric_input(y, s, message):
    with pytest.raises(ValueError, match=message):
        auroc(y, s)


def test_outlier_label_mask_for_mixed_labels():
    y = np.array(["cat", -1, "dog", -1.0], dtype=object)
    np.testing.assert_array_equal(is_outlier_label(y), [False, True, False, True])
    np.testing.assert_array_equal(is_outlier_label(np.array([0, -1, 2])), [False, True, False])


class ConstantScores:
    """A stand-in estimator whose scores are given."""

    def __init__(self, scores, labels=None):
        self.scores, self.labels = np.asarray(scores), labels

    def score_samples(self, X):
        return self.scores[np.asarray(X).ravel()]

    def predict(self, X):
        return self.labels[np.asarray(X).ravel()]


def test_scorers_read_minus_one_as_ood_and_have_the_right_sign():
    X = np.arange(6).reshape(-1, 1)
    y = np.array([3, 4, 3, -1, -1, -1])
    scores = [5.0, 4.0, 1.5, 2.0, 1.0, 0.0]
    est = ConstantScores(scores, labels=np.array([3, 3, 3, 0, 0, 0]))
    is_id = (y != -1).astype(int)
    assert make_ood_scorer("auroc")(est, X, y) == pytest.approx(auroc(is_id, scores))
    # lower is better for FPR95: the scorer returns it negated
    assert make_ood_scorer("fpr95")(est, X, y) == pytest.approx(-fpr_at_tpr(is_id, scores))
    assert make_ood_scorer("aupr_out")(est, X, y) == pytest.approx(aupr_out(is_id, scores))
    assert make_ood_scorer("id_accuracy")(est, X, y) == pytest.approx(2 / 3)


def test_scorer_errors():
    with pytest.raises(ValueError, match="Unknown OOD metric"):
        make_ood_scorer("fpr96")
    est = ConstantScores([1.0, 2.0])
    with pytest.raises(ValueError, match="both in-distribution rows and OOD rows"):
        make_ood_scorer("auroc")(est, np.arange(2).reshape(-1, 1), np.array([0, 1]))
