"""The loss contract: each loss declares the prediction type it consumes; a task accepts losses by
that type (:attr:`sonolab.tasks.base.Task.loss_inputs`), never by family."""

from __future__ import annotations

from typing import ClassVar

from torch import nn


class Prediction:
    """The prediction types losses consume (what a task hands them)."""

    # embeddings + class indices; the loss owns its classifier (margin softmax)
    EMBEDDING = "embedding"
    # one label per example: logits + class indices or distributions
    CLASS_LOGITS = "class_logits"
    # several labels per example: logits + multi-hot targets
    MULTILABEL_LOGITS = "multilabel_logits"
    # per-frame, per-speaker logits + activity targets
    FRAME_ACTIVITIES = "frame_activities"


class Loss(nn.Module):
    """Base of every sonolab loss: ``prediction_type`` is one of :class:`Prediction`'s values."""

    prediction_type: ClassVar[str] = ""
