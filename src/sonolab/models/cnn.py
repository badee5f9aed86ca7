"""A log-mel CNN in the shape of PANNs' CNN6 / CNN10 (Kong et al. 2020): the convolutional baseline
of audio tagging, and a model small enough to train from scratch on a CPU."""

from __future__ import annotations

import torch
from torch import nn

from .base import AudioModel


class ConvBlock(nn.Module):
    """Two 3 x 3 convolutions with BatchNorm and ReLU (one with ``double=False``), then 2 x 2
    average pooling."""

    def __init__(self, in_channels: int, out_channels: int, double: bool = True):
        super().__init__()
        layers: list[nn.Module] = [
            nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(),
        ]
        if double:
            layers += [
                nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False),
                nn.BatchNorm2d(out_channels),
                nn.ReLU(),
            ]
        self.layers = nn.Sequential(*layers)
        self.pool = nn.AvgPool2d(2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.layers(x))


class LogMelCnn(AudioModel):
    """Convolution blocks over the ``(frames, mel bins)`` image, mean over frequency, then the mean
    plus the maximum over time (PANNs' clip pooling), a fully connected layer and the classifier.

    Args:
        channels: output channels of the blocks (CNN10: 64-128-256-512; CNN6 the same with single
        convolutions).
        double_conv: two convolutions per block (CNN10) or one (CNN6).
        dropout: after each block (0.2 in PANNs) and before the last two layers (0.5).
        num_classes: the head is sized by the task (:meth:`reset_classifier`).
    """

    output_type = "logits"

    def __init__(
        self,
        channels: tuple[int, ...] = (64, 128, 256, 512),
        double_conv: bool = True,
        block_dropout: float = 0.2,
        dropout: float = 0.5,
        num_classes: int = 0,
    ):
        super().__init__()
        widths = [1, *channels]
        self.blocks = nn.ModuleList(
            ConvBlock(a, b, double_conv) for a, b in zip(widths[:-1], widths[1:])
        )
        self.block_dropout = nn.Dropout(block_dropout)
        self.embedding = nn.Sequential(
            nn.Dropout(dropout),
            nn.Linear(channels[-1], channels[-1]),
            nn.ReLU(),
            nn.Dropout(dropout),
        )
        self.width = channels[-1]
        self.head = nn.Linear(self.width, num_classes) if num_classes else None

    def reset_classifier(self, num_classes: int) -> None:
        """A fresh classifier for ``num_classes`` outputs."""
        self.head = nn.Linear(self.width, num_classes)

    def forward(
        self, features: torch.Tensor, frames: torch.Tensor | None = None
    ) -> dict[str, torch.Tensor]:
        """``features`` ``(batch, frames, n_mels)`` -> ``{"logits": (batch, classes)}``."""
        if self.head is None:
            raise RuntimeError("LogMelCnn has no classifier: call reset_classifier(num_classes)")
        x = features.unsqueeze(1)  # (batch, 1, frames, mels)
        for block in self.blocks:
            x = self.block_dropout(block(x))
        x = x.mean(dim=3)  # over frequency: (batch, channels, frames')
        pooled = x.mean(dim=2) + x.amax(dim=2)
        return {"logits": self.head(self.embedding(pooled))}
