"""Shared glue for speechbrain's speaker-embedding lobes."""

from __future__ import annotations

import torch
from torch import nn

from .base import AudioModel


class SpeechbrainEmbedding(AudioModel):
    """Wraps a speechbrain lobe ``(batch, frames, feats) -> (batch, 1, dim)`` as ``-> (batch,
    dim)``.

    speechbrain's lobes take *relative* lengths in [0, 1]; the wrapper converts frame counts so
    that statistics pooling ignores padding.
    """

    output_type = "embedding"

    def __init__(self, encoder: nn.Module, embedding_dim: int):
        super().__init__()
        self.encoder = encoder
        self.embedding_dim = embedding_dim

    def forward(
        self, features: torch.Tensor, frame_lengths: torch.Tensor | None = None
    ) -> dict[str, torch.Tensor]:
        relative = None
        if frame_lengths is not None:
            relative = frame_lengths.to(features.dtype) / features.shape[1]
        return {"embedding": self.encoder(features, relative).squeeze(1)}
