"""Audio tagging metrics: mAP, mean AUC and d' (multi-label, AudioSet), accuracy and top-k (single
label).

The per-class average precision and ROC AUC come from torchmetrics, equal within 1e-7 to
scikit-learn's (the implementations AST, HTS-AT and PANNs report with; tested). What is ours is
which classes count: a class with no positive among the scored clips has no defined AP or AUC and
is left out of the means, and the number left out is reported beside them, so a subset evaluation
never silently averages over fewer classes.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from scipy.stats import norm
from sklearn.metrics import (
    f1_score,
    precision_recall_curve,
    precision_score,
    recall_score,
)
from torchmetrics.functional.classification import (
    binary_auroc,
    binary_average_precision,
    multilabel_auroc,
    multilabel_average_precision,
)

DEFAULT_THRESHOLD = 0.5  # on the class probabilities, where no tuned threshold exists


def d_prime(auc: float) -> float:
    """Sensitivity index from an AUC: ``sqrt(2) * Phi^-1(AUC)`` (AudioSet papers' d')."""
    return math.sqrt(2.0) * float(norm.ppf(auc))


def _dense_ranks(scores: np.ndarray) -> torch.Tensor:
    """Each column's dense ranks over the clips, divided by the number of clips: the same order and
    ties as ``scores``, so AP and AUC are unchanged, inside [0, 1]. torchmetrics takes scores
    outside [0, 1] for logits and applies a sigmoid, which in floating point gives every logit
    above ~37 the same score; ranks never tie what was not tied."""
    values = torch.from_numpy(np.ascontiguousarray(scores))
    ordered, order = torch.sort(values, dim=0)
    step = torch.ones_like(ordered, dtype=torch.int64)
    step[1:] = ordered[1:] != ordered[:-1]
    ranks = step.cumsum(0).to(torch.float64) / len(values)
    return torch.empty_like(ranks).scatter_(0, order, ranks)


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
    if scored.any():
        # torchmetrics rather than scikit-learn's per-class loop: the same values (within 1e-7:
        # its results are float32) about 9x faster, 2.5 s against 24 s for AudioSet's evaluation
        # set (20,000 x 527), which a GPU recipe scores every epoch
        columns = np.flatnonzero(scored)
        truth = torch.from_numpy(targets[:, columns]).long()
        ranked = _dense_ranks(scores[:, columns])
        if len(columns) == 1:  # torchmetrics' multi-label forms want two labels or more
            ap[columns] = float(binary_average_precision(ranked[:, 0], truth[:, 0]))
            auc[columns] = float(binary_auroc(ranked[:, 0], truth[:, 0]))
        else:
            ap[columns] = multilabel_average_precision(ranked, truth, len(columns), average=None)
            auc[columns] = multilabel_auroc(ranked, truth, len(columns), average=None)
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
