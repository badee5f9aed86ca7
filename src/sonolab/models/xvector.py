"""x-vector TDNN speaker encoders (Snyder et al., 2018): speechbrain's lobe, and WeSpeaker's XVEC
with its two segment layers."""

from __future__ import annotations

import torch
from speechbrain.lobes.models.Xvector import Xvector as SbXvector
from torch import nn

from ._speechbrain import SpeechbrainEmbedding
from .base import AudioModel


class XVector(SpeechbrainEmbedding):
    """speechbrain's x-vector: five TDNN layers, statistics pooling and one embedding layer (512-dim
    in the paper), the embedding taken from that first segment layer."""

    def __init__(
        self,
        input_size: int = 80,
        channels: int = 512,
        stats_channels: int = 1500,
        embedding_dim: int = 512,
        kernel_sizes: tuple[int, ...] = (5, 3, 3, 1, 1),
        dilations: tuple[int, ...] = (1, 2, 3, 1, 1),
    ):
        encoder = SbXvector(
            tdnn_blocks=5,
            tdnn_channels=[channels] * 4 + [stats_channels],
            tdnn_kernel_sizes=list(kernel_sizes),
            tdnn_dilations=list(dilations),
            lin_neurons=embedding_dim,
            in_channels=input_size,
        )
        super().__init__(encoder, embedding_dim)


def temporal_statistics(
    x: torch.Tensor, frames: torch.Tensor | None = None, eps: float = 1e-7
) -> torch.Tensor:
    """Mean and standard deviation over time of ``x`` ``(batch, channels, time)`` -> ``(batch, 2 *
    channels)``, counting only the first ``frames`` steps of each row when given (padding ignored).
    The variance is the unbiased one, as WeSpeaker's TSTP pooling computes it."""
    if frames is None:
        return torch.cat([x.mean(dim=-1), torch.sqrt(x.var(dim=-1) + eps)], dim=-1)
    mask = (torch.arange(x.shape[-1], device=x.device)[None, :] < frames[:, None]).to(x.dtype)[
        :, None, :
    ]
    count = mask.sum(dim=-1)
    mean = (x * mask).sum(dim=-1) / count
    var = (((x - mean[..., None]) * mask) ** 2).sum(dim=-1) / (count - 1).clamp(min=1)
    return torch.cat([mean, torch.sqrt(var + eps)], dim=-1)


class TwoSegmentXVector(AudioModel):
    """The x-vector of WeSpeaker's XVEC recipe: five TDNN layers (conv -> ReLU -> BatchNorm without
    affine parameters, as Kaldi's), mean + std pooling (TSTP), and two segment layers
    ``seg_1 -> ReLU -> BatchNorm -> seg_2`` with the embedding taken after ``seg_2`` (4.61 M
    parameters at 80 fbank bins and 512 dimensions).

    Written out here because speechbrain's Xvector lobe differs where it matters for reproducing
    WeSpeaker: affine BatchNorm and LeakyReLU in its blocks, Gaussian noise added to the pooled mean
    during training, and the embedding taken from the first segment layer.
    """

    output_type = "embedding"

    def __init__(
        self,
        input_size: int = 80,
        channels: int = 512,
        stats_channels: int = 1500,
        embedding_dim: int = 512,
        kernel_sizes: tuple[int, ...] = (5, 3, 3, 1, 1),
        dilations: tuple[int, ...] = (1, 2, 3, 1, 1),
    ):
        super().__init__()
        widths = [input_size, *[channels] * (len(kernel_sizes) - 1), stats_channels]
        self.frame_layers = nn.ModuleList(
            nn.Sequential(
                nn.Conv1d(a, b, k, dilation=d), nn.ReLU(), nn.BatchNorm1d(b, affine=False)
            )
            for a, b, k, d in zip(widths[:-1], widths[1:], kernel_sizes, dilations)
        )
        self.context = sum(
            (k - 1) * d for k, d in zip(kernel_sizes, dilations)
        )  # frames lost without padding
        self.seg_1 = nn.Linear(2 * stats_channels, embedding_dim)
        self.seg_bn_1 = nn.BatchNorm1d(embedding_dim, affine=False)
        self.seg_2 = nn.Linear(embedding_dim, embedding_dim)
        self.embedding_dim = embedding_dim

    def forward(
        self, features: torch.Tensor, frames: torch.Tensor | None = None
    ) -> dict[str, torch.Tensor]:
        """``features`` ``(batch, frames, feats)`` -> ``{"embedding": (batch, embedding_dim)}``."""
        x = features.transpose(1, 2)
        for layer in self.frame_layers:
            x = layer(x)
        valid = None if frames is None else (frames - self.context).clamp(min=2)
        stats = temporal_statistics(x, valid)
        return {"embedding": self.seg_2(self.seg_bn_1(torch.relu(self.seg_1(stats))))}
