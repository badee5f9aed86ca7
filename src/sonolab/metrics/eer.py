"""Equal error rate and minimum detection cost for verification trials.

Both come from one pass over the scores sorted once (O(N log N) time, O(N) memory), with tied
scores grouped so that a threshold never splits trials that have the same score. sklearn's
``roc_curve`` would give the same operating points but no minDCF, and torchmetrics' EER keeps
per-threshold tensors on the module; a plain numpy function is what scoring millions of trials in
seconds needs, and what ``evaluate.py`` and the Lightning task share.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class DetectionCost:
    """NIST SRE detection-cost parameters; the normalised minDCF divides by the best trivial
    system."""

    p_target: float = 0.01
    c_miss: float = 1.0
    c_fa: float = 1.0

    def key(self) -> str:
        """Metric name: ``min_dcf_0.01``, with ``_cmiss.._cfa..`` appended when the costs are not
        1."""
        key = f"min_dcf_{self.p_target:g}"
        if (self.c_miss, self.c_fa) != (1.0, 1.0):
            key += f"_cmiss{self.c_miss:g}_cfa{self.c_fa:g}"
        return key

    def label(self) -> str:
        """Human-readable operating point for tables: ``minDCF (p=0.01, Cmiss=1, Cfa=1)``."""
        return f"minDCF (p={self.p_target:g}, Cmiss={self.c_miss:g}, Cfa={self.c_fa:g})"


def _check(scores: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    scores = np.asarray(scores, dtype=np.float64).ravel()
    labels = np.asarray(labels).ravel()
    if scores.shape != labels.shape:
        raise ValueError(
            f"scores and labels differ in length: {scores.shape[0]} vs {labels.shape[0]}"
        )
    if not np.all(np.isfinite(scores)):
        raise ValueError("scores contain NaN or infinite values")
    labels = labels.astype(bool)
    if labels.all() or not labels.any():
        raise ValueError(
            "EER / minDCF need at least one target and one non-target trial "
            f"(got {int(labels.sum())} targets of {labels.size})"
        )
    return scores, labels


def error_rates(
    scores: np.ndarray, labels: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Miss and false-alarm rates at every distinct threshold.

    A trial is accepted when ``score >= threshold``. Returns ``(p_miss, p_fa, thresholds)`` with
    one more point than distinct scores: the first accepts nothing (threshold +inf), then each
    distinct score from high to low, the last accepting everything.
    """
    scores, labels = _check(scores, labels)
    order = np.argsort(-scores, kind="mergesort")
    sorted_scores = scores[order]
    sorted_labels = labels[order]
    # Last index of each run of equal scores: thresholds sit between groups, never inside one.
    group_end = np.flatnonzero(np.diff(sorted_scores))
    group_end = np.append(group_end, sorted_scores.size - 1)
    tp = np.cumsum(sorted_labels)[group_end]
    fp = (group_end + 1) - tp
    n_target = labels.sum()
    n_nontarget = labels.size - n_target
    p_miss = np.concatenate([[1.0], 1.0 - tp / n_target])
    p_fa = np.concatenate([[0.0], fp / n_nontarget])
    thresholds = np.concatenate([[np.inf], sorted_scores[group_end]])
    return p_miss, p_fa, thresholds


def eer_from_rates(p_miss: np.ndarray, p_fa: np.ndarray) -> float:
    """EER where the piecewise-linear miss and false-alarm curves cross (a ROC segment meets the
    diagonal)."""
    diff = p_miss - p_fa  # non-increasing from 1 to -1
    k = int(np.searchsorted(-diff, 0.0, side="left"))  # first point with p_miss <= p_fa
    if k == 0:
        return float(p_fa[0])
    d0, d1 = diff[k - 1], diff[k]
    t = d0 / (d0 - d1)  # d0 > 0 >= d1
    return float(p_fa[k - 1] + t * (p_fa[k] - p_fa[k - 1]))


def min_dcf_from_rates(
    p_miss: np.ndarray, p_fa: np.ndarray, cost: DetectionCost = DetectionCost()
) -> float:
    """Normalised minimum detection cost over all thresholds."""
    dcf = cost.c_miss * cost.p_target * p_miss + cost.c_fa * (1.0 - cost.p_target) * p_fa
    default = min(cost.c_miss * cost.p_target, cost.c_fa * (1.0 - cost.p_target))
    return float(dcf.min() / default)


def compute_eer(scores: np.ndarray, labels: np.ndarray) -> float:
    """Equal error rate (a fraction in [0, 1]) of trials with ``labels`` 1 = target, 0 =
    non-target."""
    return eer_from_rates(*error_rates(scores, labels)[:2])


def compute_min_dcf(
    scores: np.ndarray, labels: np.ndarray, cost: DetectionCost = DetectionCost()
) -> float:
    """Normalised minDCF of the trials at ``cost`` (default p_target=0.01, c_miss=c_fa=1)."""
    return min_dcf_from_rates(*error_rates(scores, labels)[:2], cost)


def verification_metrics(
    scores: np.ndarray,
    labels: np.ndarray,
    costs: tuple[DetectionCost, ...] = (DetectionCost(0.01), DetectionCost(0.05)),
) -> dict[str, float]:
    """EER (%) and every requested minDCF from one sort: ``{"eer": .., "min_dcf_0.01": ..,
    ...}``."""
    p_miss, p_fa, _ = error_rates(scores, labels)
    out = {"eer": 100.0 * eer_from_rates(p_miss, p_fa)}
    for cost in costs:
        out[cost.key()] = min_dcf_from_rates(p_miss, p_fa, cost)
    return out
