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
