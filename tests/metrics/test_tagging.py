"""Tagging metrics against scikit-learn and hand-computed values, including classes with no
positives."""

from __future__ import annotations

import math
from statistics import NormalDist

import numpy as np
import pytest
from sklearn.metrics import (
    accuracy_score,
    average_precision_score,
    confusion_matrix,
    roc_auc_score,
    top_k_accuracy_score,
)

from sonolab.metrics.tagging import d_prime, multilabel_metrics, single_label_metrics


def test_map_by_hand_and_classes_without_positives_are_left_out_and_counted():
    scores = np.array([[0.9, 0.1, 0.3], [0.8, 0.4, 0.2], [0.3, 0.6, 0.1], [0.2, 0.7, 0.4]])
    targets = np.array([[1, 0, 0], [0, 1, 0], [1, 0, 0], [0, 1, 0]])
    out = multilabel_metrics(scores, targets)
    # class 0: positives ranked 1st and 3rd -> AP = (1/1 + 2/3) / 2; class 1: ranked 1st and 3rd too
    assert out["per_class_ap"][0] == pytest.approx((1 + 2 / 3) / 2)
    assert out["per_class_ap"][1] == pytest.approx((1 + 2 / 3) / 2)
    assert (
        math.isnan(out["per_class_ap"][2])
        and out["classes_skipped"] == 1
        and out["classes_scored"] == 2
    )
    assert out["mAP"] == pytest.approx(5 / 6)
    assert out["mean_auc"] == pytest.approx(
        np.mean([roc_auc_score(targets[:, k], scores[:, k]) for k in (0, 1)])
    )


def test_multilabel_metrics_equal_scikit_learn_on_random_data():
    rng = np.random.default_rng(0)
    targets = rng.random((200, 12)) < 0.2
    scores = targets * 0.8 + rng.normal(size=targets.shape)
    out = multilabel_metrics(scores, targets)
    assert out["mAP"] == pytest.approx(average_precision_score(targets, scores, average="macro"))
    assert out["mean_auc"] == pytest.approx(roc_auc_score(targets, scores, average="macro"))
    assert out["d_prime"] == pytest.approx(math.sqrt(2) * NormalDist().inv_cdf(out["mean_auc"]))


def test_d_prime_reference_values():
    assert d_prime(0.5) == pytest.approx(0.0, abs=1e-12)
    assert d_prime(0.9213503964748575) == pytest.approx(2.0, abs=1e-9)  # Phi(sqrt(2)) = 0.92135


def test_single_label_accuracy_top_k_and_confusion_equal_scikit_learn():
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 10, 300)
    scores = rng.normal(size=(300, 10))
    scores[np.arange(300), labels] += 1.0
    out = single_label_metrics(scores, labels)
    assert out["accuracy"] == pytest.approx(100 * accuracy_score(labels, scores.argmax(1)))
    assert out["top5"] == pytest.approx(
        100 * top_k_accuracy_score(labels, scores, k=5, labels=range(10))
    )
    assert out["confusion"] == confusion_matrix(labels, scores.argmax(1), labels=range(10)).tolist()
    with pytest.raises(ValueError, match="must be"):
        single_label_metrics(scores, labels[:-1])


def _f1(truth: np.ndarray, decided: np.ndarray) -> float:
    tp = float((truth & decided).sum())
    return 2 * tp / max(float(truth.sum() + decided.sum()), 1e-12)


def test_tuned_thresholds_maximise_each_class_f1_over_every_cut():
    from sonolab.metrics.tagging import tune_thresholds

    rng = np.random.default_rng(0)
    targets = rng.random((60, 4)) < 0.3
    targets[:, 3] = False  # a class without a positive keeps the default
    probabilities = np.clip(targets * 0.3 + rng.random((60, 4)) * 0.7, 0, 1)
    thresholds = tune_thresholds(probabilities, targets)
    assert thresholds[3] == 0.5
    for k in range(3):
        # brute force: every distinct score as the cut, decisions p >= cut
        best = max(_f1(targets[:, k], probabilities[:, k] >= c) for c in probabilities[:, k])
        assert _f1(targets[:, k], probabilities[:, k] >= thresholds[k]) == pytest.approx(best)
    # by hand: positives at 0.9 / 0.4, a negative at 0.6 -> the cut 0.4 (F1 0.8) beats 0.9 (0.667)
    hand = tune_thresholds(np.array([[0.9], [0.6], [0.4], [0.1]]), np.array([[1], [0], [1], [0]]))
    assert hand[0] == pytest.approx(0.4)


def test_decision_f1_equals_scikit_learn_and_skips_classes_with_nothing_to_score():
    from sklearn.metrics import f1_score

    from sonolab.metrics.tagging import decision_metrics

    targets = np.array([[1, 0, 0], [1, 1, 0], [0, 1, 0], [0, 0, 0]], dtype=bool)
    probabilities = np.array([[0.9, 0.2, 0.1], [0.3, 0.8, 0.2], [0.6, 0.7, 0.1], [0.1, 0.1, 0.3]])
    thresholds = np.array([0.5, 0.5, 0.5])
    out = decision_metrics(probabilities, targets, thresholds)
    decided = probabilities >= thresholds
    assert out["f1_micro"] == pytest.approx(100 * f1_score(targets, decided, average="micro"))
    # class 2 has no positive and no decision: left out of the macro mean
    assert out["f1_macro"] == pytest.approx(
        100 * f1_score(targets[:, :2], decided[:, :2], average="macro")
    )
    assert out["f1_macro"] == pytest.approx(100 * (_f1(targets[:, 0], decided[:, 0]) + 1.0) / 2)
