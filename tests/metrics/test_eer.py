"""EER / minDCF against independent references: sklearn's ROC and a brute-force threshold sweep."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_curve

from sonolab.metrics import DetectionCost, compute_eer, compute_min_dcf, verification_metrics


def brute_force_rates(scores, labels):
    """(p_fa, p_miss) at every threshold by direct counting: O(N^2), independent of the sort."""
    scores = np.asarray(scores, float)
    labels = np.asarray(labels).astype(bool)
    thresholds = [np.inf] + sorted(set(scores.tolist()), reverse=True)
    pfa, pmiss = [], []
    for t in thresholds:
        accept = scores >= t
        pmiss.append(np.sum(~accept & labels) / labels.sum())
        pfa.append(np.sum(accept & ~labels) / (~labels).sum())
    return np.array(pfa), np.array(pmiss)


def brute_force_eer(scores, labels):
    """Crossing of the straight segments between consecutive operating points, found by a loop."""
    pfa, pmiss = brute_force_rates(scores, labels)
    for k in range(1, len(pfa)):
        d0, d1 = pmiss[k - 1] - pfa[k - 1], pmiss[k] - pfa[k]
        if d0 > 0 >= d1:
            t = d0 / (d0 - d1)
            return pfa[k - 1] + t * (pfa[k] - pfa[k - 1])
    return pfa[0]


def brute_force_min_dcf(scores, labels, p, cmiss=1.0, cfa=1.0):
    pfa, pmiss = brute_force_rates(scores, labels)
    return min(cmiss * p * pm + cfa * (1 - p) * pf for pm, pf in zip(pmiss, pfa)) / min(
        cmiss * p, cfa * (1 - p)
    )


def sklearn_eer(scores, labels):
    """EER from sklearn's full ROC (every threshold kept), by the same segment crossing."""
    fpr, tpr, _ = roc_curve(labels, scores, drop_intermediate=False)
    fnr = 1 - tpr
    for k in range(1, len(fpr)):
        d0, d1 = fnr[k - 1] - fpr[k - 1], fnr[k] - fpr[k]
        if d0 > 0 >= d1:
            return fpr[k - 1] + d0 / (d0 - d1) * (fpr[k] - fpr[k - 1])
    return fpr[0]


@pytest.mark.parametrize("seed", range(5))
def test_eer_matches_sklearn_roc_and_brute_force(seed):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, 300)
    scores = rng.normal(size=300) + 1.5 * labels
    eer = compute_eer(scores, labels)
    assert eer == pytest.approx(sklearn_eer(scores, labels), abs=1e-12)
    assert eer == pytest.approx(brute_force_eer(scores, labels), abs=1e-12)
    fpr, tpr, _ = roc_curve(labels, scores)
    # EER lies between the error rates of the nearest operating points.
    gap = np.abs((1 - tpr) - fpr)
    assert abs(eer - fpr[np.argmin(gap)]) <= gap.min() + 1e-12


@pytest.mark.parametrize("seed", range(5))
def test_eer_and_min_dcf_with_heavy_ties(seed):
    rng = np.random.default_rng(100 + seed)
    labels = rng.integers(0, 2, 200)
    scores = np.round(rng.normal(size=200) + labels, 0)  # a handful of distinct values
    assert compute_eer(scores, labels) == pytest.approx(brute_force_eer(scores, labels), abs=1e-12)
    for p in (0.01, 0.05, 0.5):
        assert compute_min_dcf(scores, labels, DetectionCost(p)) == pytest.approx(
            brute_force_min_dcf(scores, labels, p), abs=1e-12
        )
    cost = DetectionCost(0.05, c_miss=10, c_fa=1)
    assert compute_min_dcf(scores, labels, cost) == pytest.approx(
        brute_force_min_dcf(scores, labels, 0.05, 10, 1)
    )


def test_tied_target_and_nontarget_are_never_split():
    # One target and one non-target share a score: no threshold separates them.
    scores = np.array([0.9, 0.5, 0.5, 0.1])
    labels = np.array([1, 1, 0, 0])
    # Operating points: (fa, miss) = (0,1), (0,.5), (.5,0), (1,0); crossing at 0.25.
    assert compute_eer(scores, labels) == pytest.approx(0.25)


def test_all_equal_scores_give_chance():
    labels = np.array([1, 0, 1, 0, 0])
    assert compute_eer(np.zeros(5), labels) == pytest.approx(0.5)
    assert compute_min_dcf(np.zeros(5), labels, DetectionCost(0.01)) == pytest.approx(1.0)


def test_perfect_and_inverted_systems():
    labels = np.array([1, 1, 0, 0, 0])
    assert compute_eer(np.array([3, 2, 1, 0, -1.0]), labels) == 0.0
    assert compute_min_dcf(np.array([3, 2, 1, 0, -1.0]), labels) == 0.0
    assert compute_eer(-np.array([3, 2, 1, 0, -1.0]), labels) == pytest.approx(1.0)


def test_single_target_and_single_nontarget():
    scores = np.array([0.2, 0.9, 0.1, 0.4])
    assert compute_eer(scores, np.array([1, 0, 0, 0])) == pytest.approx(
        brute_force_eer(scores, [1, 0, 0, 0])
    )
    assert compute_eer(scores, np.array([0, 1, 1, 1])) == pytest.approx(
        brute_force_eer(scores, [0, 1, 1, 1])
    )
    assert compute_eer(np.array([0.3, 0.7]), np.array([0, 1])) == 0.0


def test_min_dcf_is_normalised_by_the_trivial_system():
    rng = np.random.default_rng(7)
    labels = rng.integers(0, 2, 500)
    scores = rng.normal(size=500)  # uninformative
    assert 0.9 <= compute_min_dcf(scores, labels, DetectionCost(0.01)) <= 1.0


def test_missing_class_and_bad_input_raise():
    with pytest.raises(ValueError, match="at least one target and one non-target"):
        compute_eer(np.array([0.1, 0.2]), np.array([1, 1]))
    with pytest.raises(ValueError, match="at least one target and one non-target"):
        compute_eer(np.array([0.1, 0.2]), np.array([0, 0]))
    with pytest.raises(ValueError, match="differ in length"):
        compute_eer(np.array([0.1, 0.2]), np.array([0]))
    with pytest.raises(ValueError, match="NaN"):
        compute_eer(np.array([np.nan, 0.2]), np.array([0, 1]))


def test_verification_metrics_reports_percent_and_both_operating_points():
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 2, 1000)
    scores = rng.normal(size=1000) + 2 * labels
    out = verification_metrics(scores, labels)
    assert set(out) == {"eer", "min_dcf_0.01", "min_dcf_0.05"}
    assert out["eer"] == pytest.approx(100 * compute_eer(scores, labels))
