"""Speaker-classification losses on embeddings: softmax CE, AM-softmax and AAM-softmax.

AM (CosFace, Wang et al. 2018) subtracts ``m`` from the target cosine; AAM (ArcFace, Deng et
al. 2019) adds ``m`` to the target angle. Both scale the cosines by ``s``. The margin can be
warmed up from ``initial`` to its final value as WeSpeaker does, because a full margin from the
first step slows or stalls convergence on small data.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .base import Loss, Prediction


@dataclass
class MarginWarmup:
    """Margin schedule over (fractional) epochs.

    Before ``start_epoch`` the margin is ``initial``; it rises to the loss's final margin by
    ``end_epoch`` (``kind="exp"``: fast then slow, ``1 - 1e-3**progress``; ``"linear"``), then
    stays.
    """

    start_epoch: float = 0.0
    end_epoch: float = 10.0
    initial: float = 0.0
    kind: str = "exp"

    def __post_init__(self):
        if self.kind not in ("exp", "linear"):
            raise ValueError(f"margin warm-up kind must be 'exp' or 'linear', got {self.kind!r}")
        if self.end_epoch < self.start_epoch:
            raise ValueError("margin warm-up end_epoch must not precede start_epoch")

    def margin(self, epoch: float, final: float) -> float:
        """The margin at fractional ``epoch``."""
        if epoch <= self.start_epoch:
            return self.initial
        if epoch >= self.end_epoch:
            return final
        progress = (epoch - self.start_epoch) / (self.end_epoch - self.start_epoch)
        ratio = 1.0 - 1e-3**progress if self.kind == "exp" else progress
        return self.initial + (final - self.initial) * ratio


class SoftmaxCrossEntropy(Loss):
    """Linear classifier on the embedding + cross-entropy (the x-vector recipe's loss)."""

    prediction_type = Prediction.EMBEDDING

    def __init__(self, embedding_dim: int, num_classes: int):
        super().__init__()
        self.classifier = nn.Linear(embedding_dim, num_classes)

    def logits(self, embeddings: torch.Tensor) -> torch.Tensor:
        """Class scores without any margin (for accuracy)."""
        return self.classifier(embeddings)

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(self.logits(embeddings), labels)

    def set_epoch(self, epoch: float) -> None:
        """No schedule to follow."""


class CosineMarginSoftmax(Loss):
    """Cosine classifier with scale ``s`` and an optionally warmed-up margin ``m``."""

    prediction_type = Prediction.EMBEDDING

    def __init__(
        self,
        embedding_dim: int,
        num_classes: int,
        scale: float = 32.0,
        margin: float = 0.2,
        margin_warmup: MarginWarmup | Mapping | None = None,
    ):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(num_classes, embedding_dim))
        nn.init.xavier_uniform_(self.weight)
        self.scale = scale
        self.final_margin = margin
        if isinstance(margin_warmup, Mapping):
            margin_warmup = MarginWarmup(**margin_warmup)
        self.warmup = margin_warmup
        self.margin = margin if margin_warmup is None else margin_warmup.margin(0.0, margin)

    def set_epoch(self, epoch: float) -> None:
        """Follow the warm-up schedule (called by the task every step with a fractional epoch)."""
        if self.warmup is not None:
            self.margin = self.warmup.margin(epoch, self.final_margin)

    def cosine(self, embeddings: torch.Tensor) -> torch.Tensor:
        """Cosine between each embedding and each class centre, in float32 even under autocast: in
        bf16 a cosine near 1 keeps 2-3 digits, too coarse for an angular margin of 0.2 rad."""
        with torch.autocast(device_type=embeddings.device.type, enabled=False):
            return F.linear(F.normalize(embeddings.float()), F.normalize(self.weight.float()))

    def logits(self, embeddings: torch.Tensor) -> torch.Tensor:
        """Scaled cosines without margin (for accuracy)."""
        return self.scale * self.cosine(embeddings)

    def _target_logit(self, cos_target: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        cos = self.cosine(embeddings)
        target = cos.gather(1, labels[:, None])
        cos = cos.scatter(1, labels[:, None], self._target_logit(target))
        return F.cross_entropy(self.scale * cos, labels)


class AdditiveMarginSoftmax(CosineMarginSoftmax):
    """AM-softmax / CosFace: target logit ``s (cos(theta) - m)``."""

    def _target_logit(self, cos_target: torch.Tensor) -> torch.Tensor:
        return cos_target - self.margin


class AdditiveAngularMarginSoftmax(CosineMarginSoftmax):
    """AAM-softmax / ArcFace: target logit ``s cos(theta + m)``.

    Where ``theta + m`` would pass pi the cosine is no longer monotonic; there the usual
    CosFace-style fallback ``cos(theta) - m sin(m)`` keeps the target logit decreasing.
    """

    def _target_logit(self, cos_target: torch.Tensor) -> torch.Tensor:
        m = self.margin
        sin_target = torch.sqrt((1.0 - cos_target**2).clamp(min=1e-7))
        phi = cos_target * math.cos(m) - sin_target * math.sin(m)
        threshold = math.cos(math.pi - m)
        return torch.where(cos_target > threshold, phi, cos_target - math.sin(math.pi - m) * m)
