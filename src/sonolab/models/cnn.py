"""The PANNs log-mel CNNs (Kong et al. 2020): CNN6 / CNN10 / CNN14, the convolutional baselines of
audio tagging, with their clip pooling or decision-level (frame) pooling for sound event detection.

Reference: qiuqiangkong/audioset_tagging_cnn, ``pytorch/models.py`` (``ConvBlock``,
``ConvBlock5x5``, ``AttBlock``, ``Cnn6`` / ``Cnn10`` / ``Cnn14`` and ``Cnn14_DecisionLevel{Max,Avg,
Att}``). The mel front-end and its BatchNorm (PANNs' ``bn0``) are sonolab's ``htsat_mel`` features.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch
from torch import nn
from torch.nn import functional as F

from .base import AudioModel

POOLINGS = ("features", "max", "mean", "attention")
# the attention logits are clamped before their softmax over time, as PANNs' AttBlock does
ATTENTION_CLAMP = 10.0
# clip probabilities pooled from frame probabilities are returned as logits: kept off 0 and 1
PROBABILITY_EPS = 1e-7


def _pair(pool: int | Sequence[int]) -> tuple[int, int]:
    """A pooling size as (time, frequency)."""
    if isinstance(pool, int):
        return pool, pool
    pair = tuple(int(p) for p in pool)
    if len(pair) != 2:
        raise ValueError(f"a pool size is one number or [time, frequency], found {list(pool)}")
    return pair


def init_panns(module: nn.Module) -> None:
    """PANNs' initialisation: Xavier-uniform convolution and linear weights with zero biases,
    BatchNorm at weight 1 and bias 0 (``init_layer`` / ``init_bn`` in PANNs' models.py)."""
    for layer in module.modules():
        if isinstance(layer, (nn.Conv1d, nn.Conv2d, nn.Linear)):
            nn.init.xavier_uniform_(layer.weight)
            if layer.bias is not None:
                nn.init.zeros_(layer.bias)
        elif isinstance(layer, (nn.BatchNorm1d, nn.BatchNorm2d)):
            nn.init.ones_(layer.weight)
            nn.init.zeros_(layer.bias)


class ConvBlock(nn.Module):
    """One or two ``kernel x kernel`` convolutions, each with BatchNorm and ReLU, then average
    pooling by ``pool`` = (time, frequency) ((1, 1): none). PANNs' ``ConvBlock`` (two 3 x 3) and
    ``ConvBlock5x5`` (one 5 x 5); the parameter names are PANNs' (``conv1``, ``bn1``, ...)."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        convs: int,
        kernel_size: int,
        pool: tuple[int, int],
    ):
        super().__init__()
        if convs not in (1, 2):
            raise ValueError(f"a block has one or two convolutions, not {convs}")
        if kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be odd (same padding), found {kernel_size}")
        pad = kernel_size // 2
        self.conv1 = nn.Conv2d(in_channels, out_channels, kernel_size, padding=pad, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = self.bn2 = None
        if convs == 2:
            self.conv2 = nn.Conv2d(out_channels, out_channels, kernel_size, padding=pad, bias=False)
            self.bn2 = nn.BatchNorm2d(out_channels)
        self.pool = tuple(pool)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(batch, in, frames, mels)`` -> ``(batch, out, frames / pool[0], mels / pool[1])``."""
        x = F.relu(self.bn1(self.conv1(x)))
        if self.conv2 is not None:
            x = F.relu(self.bn2(self.conv2(x)))
        return F.avg_pool2d(x, self.pool) if self.pool != (1, 1) else x


class LogMelCnn(AudioModel):
    """PANNs' CNNs over the ``(frames, mel bins)`` image: convolution blocks with dropout after
    each, the mean over frequency, then one of two heads (``pooling``):

    * ``features`` (PANNs' Cnn6 / Cnn10 / Cnn14): the maximum plus the mean over time, dropout,
      a fully connected ReLU layer (``fc1``) and the clip classifier; no frame outputs.
    * ``max`` / ``mean`` / ``attention`` (PANNs' ``Cnn14_DecisionLevel{Max,Avg,Att}``): the time
      axis smoothed by a 3-frame maximum plus a 3-frame mean, dropout, ``fc1`` on every frame,
      dropout, and a classifier on every frame (``frame_logits``); the clip score is the maximum
      of the frame probabilities, their mean, or their average weighted by a softmax over time of a
      learnt attention layer (``AttBlock`` with sigmoid outputs). Clip scores from probabilities are
      returned as their logits, so the tagging losses and metrics read every head alike.

    Args:
        channels: output channels per block (CNN14: 64-128-256-512-1024-2048).
        double_conv: two convolutions per block (CNN10 / CNN14) or one (CNN6).
        kernel_size: convolution size (PANNs: 3 with two convolutions, 5 with one).
        pool_sizes: average pooling after each block, a size for both axes or ``[time,
            frequency]`` (null: 2 everywhere; CNN14 does not pool after its last block: ``[2, 2, 2,
            2, 2, 1]``; ``[1, 2]`` keeps the time resolution for event detection).
        block_dropout: after each block (PANNs 0.2).
        dropout: before ``fc1`` and, with ``head_dropout``, before the classifier (PANNs 0.5).
        head_dropout: dropout on ``fc1``'s output before the classifier. PANNs' clip heads classify
            the un-dropped output (false); its decision-level heads drop it (true).
        pooling: ``features`` | ``max`` | ``mean`` | ``attention`` (above).
        init: ``panns`` (Xavier-uniform weights, zero biases) or ``pytorch`` (torch's defaults).
        pretrained: an official PANNs checkpoint of the same shape (``Cnn14_mAP=0.431.pth`` and its
            kin), read from disk only (:mod:`sonolab.models.pretrained`); the file's ``bn0`` goes
            to the front-end, its classifier is kept when the classes match.
        num_classes: the head is sized by the task (:meth:`reset_classifier`).
    """

    output_type = "logits"

    def __init__(
        self,
        channels: tuple[int, ...] = (64, 128, 256, 512),
        double_conv: bool = True,
        kernel_size: int = 3,
        pool_sizes: Sequence[int | Sequence[int]] | None = None,
        block_dropout: float = 0.2,
        dropout: float = 0.5,
        head_dropout: bool = False,
        pooling: Literal["features", "max", "mean", "attention"] = "features",
        init: Literal["panns", "pytorch"] = "panns",
        pretrained: str | None = None,
        num_classes: int = 0,
    ):
        super().__init__()
        channels = tuple(channels)
        pools = (
            [_pair(p) for p in pool_sizes] if pool_sizes is not None else [(2, 2)] * len(channels)
        )
        if len(pools) != len(channels):
            raise ValueError(
                f"pool_sizes has {len(pools)} entries for {len(channels)} blocks: one per block"
            )
        if pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {POOLINGS}, found {pooling!r}")
        if init not in ("panns", "pytorch"):
            raise ValueError(f"init must be 'panns' or 'pytorch', found {init!r}")
        widths = (1, *channels)
        self.blocks = nn.ModuleList(
            ConvBlock(a, b, 2 if double_conv else 1, kernel_size, p)
            for a, b, p in zip(widths[:-1], widths[1:], pools)
        )
        self.block_dropout = nn.Dropout(block_dropout)
        self.dropout = nn.Dropout(dropout)
        self.head_dropout = nn.Dropout(dropout) if head_dropout else nn.Identity()
        self.width = channels[-1]
        self.fc1 = nn.Linear(self.width, self.width)
        self.pooling = pooling
        self.init = init
        self.subsampling = 1
        for time_pool, _ in pools:
            self.subsampling *= time_pool  # input frames per output frame of the frame heads
        self.frame_outputs = pooling != "features"
        self.head: nn.Linear | None = None
        self.attention: nn.Linear | None = None
        if init == "panns":
            init_panns(self)
        self._pretrained_head: dict[str, torch.Tensor] = {}
        self.pretrained_frontend: dict[str, torch.Tensor] = {}
        if pretrained:
            from .pretrained import load_into_cnn

            loaded = load_into_cnn(self, pretrained)
            self._pretrained_head, self.pretrained_frontend = loaded["head"], loaded["frontend"]
        if num_classes:
            self.reset_classifier(num_classes)

    def reset_classifier(self, num_classes: int) -> None:
        """A classifier (and, with attention pooling, an attention layer) for ``num_classes``:
        the pretrained file's when it has as many classes, else fresh ones."""
        self.head = nn.Linear(self.width, num_classes)
        self.attention = nn.Linear(self.width, num_classes) if self.pooling == "attention" else None
        for layer in (self.head, self.attention):
            if layer is not None and self.init == "panns":
                init_panns(layer)
        saved = self._pretrained_head
        if saved and saved["head.weight"].shape == self.head.weight.shape:
            self.load_state_dict(saved, strict=False)

    def forward(
        self, features: torch.Tensor, frames: torch.Tensor | None = None
    ) -> dict[str, torch.Tensor]:
        """``features`` ``(batch, frames, n_mels)`` -> ``{"logits": (batch, classes)}``, plus
        ``"frame_logits": (batch, frames / subsampling, classes)`` with a decision-level head."""
        if self.head is None:
            raise RuntimeError("LogMelCnn has no classifier: call reset_classifier(num_classes)")
        x = features.unsqueeze(1)  # (batch, 1, frames, mels)
        for block in self.blocks:
            x = self.block_dropout(block(x))
        x = x.mean(dim=3)  # over frequency: (batch, channels, frames')
        if not self.frame_outputs:
            pooled = x.amax(dim=2) + x.mean(dim=2)
            hidden = F.relu(self.fc1(self.dropout(pooled)))
            return {"logits": self.head(self.head_dropout(hidden))}
        x = F.max_pool1d(x, 3, stride=1, padding=1) + F.avg_pool1d(x, 3, stride=1, padding=1)
        hidden = F.relu(self.fc1(self.dropout(x).transpose(1, 2)))  # (batch, frames', width)
        hidden = self.head_dropout(hidden)
        frame_logits = self.head(hidden)
        return {"logits": self._clip_logits(frame_logits, hidden), "frame_logits": frame_logits}

    def _clip_logits(self, frame_logits: torch.Tensor, hidden: torch.Tensor) -> torch.Tensor:
        if self.pooling == "max":
            return frame_logits.amax(dim=1)  # sigmoid is monotonic: the max probability's logit
        if self.pooling == "mean":
            probability = frame_logits.sigmoid().mean(dim=1)
        else:
            weights = self.attention(hidden).clamp(-ATTENTION_CLAMP, ATTENTION_CLAMP)
            probability = (weights.softmax(dim=1) * frame_logits.sigmoid()).sum(dim=1)
        return torch.logit(probability, eps=PROBABILITY_EPS)
