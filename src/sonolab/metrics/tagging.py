"""Audio tagging metrics: mAP, mean AUC and d' (multi-label, AudioSet), accuracy and top-k (single
label).

The per-class average precision and ROC AUC come from scikit-learn (the implementations AST,
HTS-AT and PANNs report with); what is ours is which classes count: a class with no positive
among the scored clips has no defined AP or AUC and is left out of the means, and the number left
out is reported beside them, so a subset evaluation never silently averages over fewer classes.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.stats import norm
from sklearn.metrics import (
    average_precision_score,
    f1_score,
    precision_recall_curve,
    precision_score,
    recall_score,
    roc_auc_score,
)

DEFAULT_THRESHOLD = 0.5  # on the class probabilities, where no tuned threshold exists


def d_prime(auc: float) -> float:
    """Sensitivity index from an AUC: ``sqrt(2) * Phi^-1(AUC)`` (AudioSet papers' d')."""
    return math.sqrt(2.0) * float(norm.ppf(auc))


def multilabel_metrics(scores: np.ndarray, targets: np.ndarray) -> dict:
    """``mAP``, ``mean_auc`` and ``d_prime`` over the classes with at least one positive and one
    negative, with ``per_class_ap`` (NaN for the classes left out), ``classes_skipped`` and
    ``clips``.

    ``scores``: ``(clips, classes)`` any monotone scores (logits or probabilities); ``targets`` 0/1.
    """
    scores = np.asarray(scores, dtype=np.float64)
    targets = np.asarray(targets).astype(bool)
    if scores.shape != targets.shape or scores.ndim != 2:
        raise ValueError(
            f"scores {scores.shape} and targets {targets.shape} must both be (clips, classes)"
        )
    positives = targets.sum(axis=0)
    scored = (positives > 0) & (positives < targets.shape[0])
    ap = np.full(targets.shape[1], np.nan)
    auc = np.full(targets.shape[1], np.nan)
    # class by class on purpose: scikit-learn's multi-label forms (average=None) took 5x as long at
    # AudioSet's 20,000 x 527, and torchmetrics was no faster (benchmarks/suite/metrics.py)
    for k in np.flatnonzero(scored):
        ap[k] = average_precision_score(targets[:, k], scores[:, k])
        auc[k] = roc_auc_score(targets[:, k], scores[:, k])
    mean_auc = float(np.nanmean(auc)) if scored.any() else float("nan")
    return {
        "mAP": float(np.nanmean(ap)) if scored.any() else float("nan"),
        "mean_auc": mean_auc,
        "d_prime": d_prime(mean_auc) if scored.any() else float("nan"),
        "per_class_ap": ap.tolist(),
        "classes_scored": int(scored.sum()),
        "classes_skipped": int((~scored).sum()),
        "clips": int(targets.shape[0]),
    }


def single_label_metrics(scores: np.ndarray, labels: np.ndarray, top_k: int = 5) -> dict:
    """``accuracy`` (top-1) and ``top{k}`` accuracy (%) of ``(clips, classes)`` scores against class
    indices, and the confusion matrix (rows: true class, columns: predicted)."""
    scores = np.asarray(scores, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.int64)
    if scores.ndim != 2 or labels.shape != (scores.shape[0],):
        raise ValueError(
            f"scores {scores.shape} must be (clips, classes) and labels {labels.shape} (clips,)"
        )
    k = min(top_k, scores.shape[1])
    # stable sort on the negated scores: ties go to the lower class index, as argmax does
    ranked = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    confusion = np.zeros((scores.shape[1], scores.shape[1]), dtype=np.int64)
    np.add.at(confusion, (labels, ranked[:, 0]), 1)
    return {
        "accuracy": 100.0 * float(np.mean(ranked[:, 0] == labels)),
        f"top{k}": 100.0 * float(np.mean((ranked == labels[:, None]).any(axis=1))),
        "clips": int(labels.size),
        "confusion": confusion.tolist(),
    }


def tune_thresholds(
    probabilities: np.ndarray, targets: np.ndarray, default: float = DEFAULT_THRESHOLD
) -> np.ndarray:
    """Per class, the probability threshold that maximises its F1 on these clips (the operating
    points of scikit-learn's ``precision_recall_curve``; ties: the highest threshold); a class
    without a positive keeps ``default``."""
    probabilities = np.asarray(probabilities, dtype=np.float64)
    targets = np.asarray(targets).astype(bool)
    thresholds = np.full(targets.shape[1], float(default))
    for k in np.flatnonzero(targets.any(axis=0)):
        precision, recall, cuts = precision_recall_curve(targets[:, k], probabilities[:, k])
        f1 = 2 * precision[:-1] * recall[:-1] / np.maximum(precision[:-1] + recall[:-1], 1e-12)
        best = np.flatnonzero(f1 == f1.max())[-1]
        thresholds[k] = float(cuts[best])
    return thresholds


def decision_metrics(
    probabilities: np.ndarray, targets: np.ndarray, thresholds: np.ndarray | float
) -> dict:
    """Multi-label decisions (``probabilities >= thresholds``, one threshold per class or one for
    all) scored by scikit-learn, in %: ``f1_micro``, ``precision_micro``, ``recall_micro``, and
    ``f1_macro`` over the classes with a positive or a decision (F1 is undefined for the others,
    which would count as 0 and lower the mean with no error made)."""
    targets = np.asarray(targets).astype(bool)
    decisions = np.asarray(probabilities) >= np.asarray(thresholds)
    active = (targets | decisions).any(axis=0)

    def percent(metric, truth, predicted, average) -> float:
        return 100.0 * float(metric(truth, predicted, average=average, zero_division=0))

    return {
        "f1_micro": percent(f1_score, targets, decisions, "micro"),
        "f1_macro": percent(f1_score, targets[:, active], decisions[:, active], "macro")
        if active.any()
        else 0.0,
        "precision_micro": percent(precision_score, targets, decisions, "micro"),
        "recall_micro": percent(recall_score, targets, decisions, "micro"),
    }
