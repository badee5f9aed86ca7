"""Metrics at scale: sonolab's EER and minDCF of millions of trials (one sort, every threshold
between tied scores) against the same numbers through scikit-learn's ROC curve."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import roc_curve

from sonolab.metrics import verification_metrics
from suite.common import Row, Settings, interleaved, rate


def _sklearn_metrics(scores: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """EER (%) and minDCF at p_target 0.01 / 0.05 from scikit-learn's ROC points."""
    p_fa, p_hit, _ = roc_curve(labels, scores, drop_intermediate=False)
    p_miss = 1.0 - p_hit
    diff = p_miss - p_fa
    k = int(np.flatnonzero(diff <= 0)[0])
    t = diff[k - 1] / (diff[k - 1] - diff[k])
    out = {"eer": 100.0 * float(p_fa[k - 1] + t * (p_fa[k] - p_fa[k - 1]))}
    for p_target in (0.01, 0.05):
        dcf = p_target * p_miss + (1.0 - p_target) * p_fa
        out[f"min_dcf_{p_target}"] = float(dcf.min() / min(p_target, 1.0 - p_target))
    return out


def metrics(settings: Settings) -> list[Row]:
    """EER + minDCF (0.01, 0.05) of 5 M trials with quantised (tied) scores."""
    trials = 500_000 if settings.quick else 5_000_000
    rng = np.random.default_rng(0)
    labels = rng.random(trials) < 0.5
    scores = np.round(rng.normal(size=trials) + 2.0 * labels, 3)
    base, fast = interleaved(
        lambda: rate(lambda: _sklearn_metrics(scores, labels), trials / 1e6, "cpu"),
        lambda: rate(lambda: verification_metrics(scores, labels), trials / 1e6, "cpu"),
        settings.repeats,
    )
    ours, theirs = verification_metrics(scores, labels), _sklearn_metrics(scores, labels)
    worst = max(abs(ours[k] - theirs[k]) for k in theirs)
    return [
        Row(
            "metrics",
            f"EER + minDCF (0.01, 0.05) of {trials:,} trials, scores rounded to 0.001",
            "scikit-learn roc_curve",
            "sonolab verification_metrics",
            "M trials/s",
            base,
            fast,
            check=f"EER {ours['eer']:.4f} %; max abs. difference to scikit-learn {worst:.1e}",
        )
    ]


CASES = {"metrics": metrics}
