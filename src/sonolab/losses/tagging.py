"""Tagging objectives on clip logits: softmax cross-entropy (one label per clip, ESC-50) and
binary cross-entropy (several labels per clip, AudioSet)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class LabelCrossEntropy(nn.Module):
    """Softmax cross-entropy over classes; targets are class indices or (mixed) class distributions.

    label_smoothing: mass spread uniformly over the classes (0 = none; AST uses 0 on ESC-50).
    """

    task_family = "tagging"
    multi_label = False

    def __init__(self, label_smoothing: float = 0.0):
        super().__init__()
        self.label_smoothing = label_smoothing

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(logits.float(), targets, label_smoothing=self.label_smoothing)


class MultiLabelBCE(nn.Module):
    """Binary cross-entropy per class on logits; targets ``(batch, classes)`` in [0, 1] (AST /
    HTS-AT on AudioSet)."""

    task_family = "tagging"
    multi_label = True

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return F.binary_cross_entropy_with_logits(logits.float(), targets.float())
