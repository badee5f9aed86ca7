"""The model contract: what every architecture returns and what tasks may read from it."""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import nn

from ..utils.errors import IncompatibleConfigError


class AudioModel(nn.Module):
    """Base of every sonolab model.

    ``forward(features, frames, **kwargs)`` takes front-end features ``(batch, frames, dim)`` and
    the valid frame counts ``(batch,)`` and returns a dict of named outputs, never a loss. The
    output a task reads is named by :attr:`output_type` (``embedding``: ``(batch, embedding_dim)``;
    ``logits``: ``(batch, classes)``, maybe ``frame_logits``; ``activities``: ``(batch, frames,
    speakers)`` with ``existence`` and ``frames``).

    What tasks read besides the outputs:
        embedding_dim: size of the ``embedding`` output (embedding models).
        subsampling: input frames per output frame of frame-level outputs (EEND-EDA, a CNN's
            decision-level head; HTS-AT's time tokens: a fraction); 1 otherwise.
        count_speakers(existence, threshold): speakers per recording from the ``existence``
            logits (activity models that estimate their count).
        reset_classifier(num_classes): size the classification head for the data (classifiers).
        pretrained_frontend: front-end weights read from a pretrained file with the model's own
            (HTS-AT's mel BatchNorm), for the task to hand to the features; empty otherwise.
        frame_outputs: whether ``forward`` also returns ``frame_logits`` ``(batch, frames',
            classes)``, frame-level scores spread evenly over the input (sound event detection).
        pretrained_statistics: ``{mean, std}`` of the front-end the pretrained file was trained
            with (an official AST checkpoint: AudioSet's fbank statistics); None otherwise.
        prepare_export(): make inference deterministic and traceable before ``sonolab export``
            (EEND-EDA: no frame shuffle before its attractor LSTM); nothing by default.
    """

    output_type: ClassVar[str] = ""
    embedding_dim: int | None = None
    subsampling: float = 1
    pretrained_frontend: dict[str, torch.Tensor] | None = None
    pretrained_statistics: dict[str, float] | None = None
    frame_outputs: bool = False

    def prepare_export(self) -> None:
        """Switch off what an exported graph cannot or should not hold (random inference steps)."""

    def reset_classifier(self, num_classes: int) -> None:
        """Replace the classification head with one of ``num_classes`` outputs."""
        raise IncompatibleConfigError(
            f"{type(self).__name__} has no classification head to size for {num_classes} classes"
        )


def count_parameters(module: nn.Module) -> int:
    """Number of trainable parameters (what the config comments quote)."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)
