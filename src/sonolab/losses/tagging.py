"""Objectives on class logits: softmax cross-entropy (one label per example: ESC-50 clips, or any
single-label classification task) and binary cross-entropy (several labels per clip, AudioSet)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .base import Loss, Prediction


class LabelCrossEntropy(Loss):
    """Softmax cross-entropy over classes; targets are class indices or (mixed) class distributions.

    label_smoothing: mass spread uniformly over the classes (0 = none; AST uses 0 on ESC-50).
    """

    prediction_type = Prediction.CLASS_LOGITS

    def __init__(self, label_smoothing: float = 0.0):
        super().__init__()
        self.label_smoothing = label_smoothing

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(logits.float(), targets, label_smoothing=self.label_smoothing)


class MultiLabelBCE(Loss):
    """Binary cross-entropy per class on logits; targets ``(batch, classes)`` in [0, 1] (AST /
    HTS-AT on AudioSet)."""

    prediction_type = Prediction.MULTILABEL_LOGITS

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return F.binary_cross_entropy_with_logits(logits.float(), targets.float())
