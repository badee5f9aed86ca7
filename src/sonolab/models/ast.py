"""Audio Spectrogram Transformer (Gong et al. 2021) on timm's DeiT-style ViT with a distillation
token."""

from __future__ import annotations

import math

import torch
from timm.layers import Attention, trunc_normal_
from timm.models.deit import VisionTransformerDistilled
from torch import nn

from .base import AudioModel


def patch_grid(n_mels: int, frames: int, patch: int, stride: int) -> tuple[int, int]:
    """Patches along frequency and time for an overlapping ``patch`` x ``patch`` embedding at
    ``stride``."""
    return (n_mels - patch) // stride + 1, (frames - patch) // stride + 1


class AudioSpectrogramTransformer(AudioModel):
    """AST: the log-mel spectrogram (frequency as height, time as width, one channel) cut into 16 x
    16 patches at stride 10 in both axes (overlapping), a ViT encoder with class and distillation
    tokens, and a LayerNorm + Linear head on the average of the two tokens' outputs.

    timm builds the ViT (blocks, tokens, stochastic depth, weight init); the patch embedding is
    replaced by the overlapping one and the position embeddings sized to its grid, as AST does.
    The classifier is sized by the task from the data (:meth:`reset_classifier`).

    Args:
        n_mels / frames: the input grid (the front-end's mel bins and fixed frame count).
        embed_dim / depth / num_heads: ViT size (tiny 192/12/3, small 384/12/6, base 768/12/12).
        patch_size / stride: 16 and 10 in AST.
        drop_rate / drop_path_rate: dropout after the embeddings and in the head; stochastic depth.
        pretrained: a weights file to start from (ImageNet ViT / DeiT in timm's key names, or an
            official AST checkpoint), adapted by :mod:`sonolab.models.pretrained`; read from disk
            only.
        pretrained_grid: that file's patch grid (rows, columns) when it is not square (image
            weights) or AST's 12 x 101.
        fused_attention: attention through ``F.scaled_dot_product_attention`` (timm's default);
            False: timm's written-out attention, the same outputs (to measure the fused kernels).
    """

    output_type = "logits"

    def __init__(
        self,
        n_mels: int = 128,
        frames: int = 1024,
        embed_dim: int = 768,
        depth: int = 12,
        num_heads: int = 12,
        patch_size: int = 16,
        stride: int = 10,
        drop_rate: float = 0.0,
        drop_path_rate: float = 0.0,
        num_classes: int = 0,
        pretrained: str | None = None,
        pretrained_grid: tuple[int, int] | None = None,
        fused_attention: bool = True,
    ):
        super().__init__()
        self.grid = patch_grid(n_mels, frames, patch_size, stride)
        if min(self.grid) < 1:
            raise ValueError(
                f"a {n_mels} x {frames} spectrogram holds no {patch_size} x {patch_size} patch"
            )
        self.n_mels, self.frames = n_mels, frames
        self.vit = VisionTransformerDistilled(
            img_size=(n_mels, frames),
            patch_size=patch_size,
            in_chans=1,
            num_classes=0,
            embed_dim=embed_dim,
            depth=depth,
            num_heads=num_heads,
            drop_rate=drop_rate,
            drop_path_rate=drop_path_rate,
        )
        for module in self.vit.modules():
            if isinstance(module, Attention):  # timm decides per module, at construction
                module.fused_attn = fused_attention
        embed = self.vit.patch_embed
        embed.proj = nn.Conv2d(1, embed_dim, kernel_size=patch_size, stride=stride)
        embed.grid_size = self.grid
        embed.num_patches = math.prod(self.grid)
        self.vit.pos_embed = nn.Parameter(
            torch.zeros(1, embed.num_patches + self.vit.num_prefix_tokens, embed_dim)
        )
        trunc_normal_(self.vit.pos_embed, std=0.02)
        self.embed_dim = embed_dim
        self.head_drop = nn.Dropout(drop_rate)
        self.head = (
            nn.Sequential(nn.LayerNorm(embed_dim), nn.Linear(embed_dim, num_classes))
            if num_classes
            else None
        )
        self._pretrained_head: dict[str, torch.Tensor] = {}
        if pretrained:
            from .pretrained import load_into_ast

            # a head in the file is kept aside until the task sizes ours: reused when the classes
            # match
            grid = tuple(pretrained_grid) if pretrained_grid else None
            loaded = load_into_ast(self, pretrained, grid)
            self._pretrained_head = loaded["head"]
            self.pretrained_statistics = loaded["statistics"] or None

    def reset_classifier(self, num_classes: int) -> None:
        """A head for ``num_classes`` outputs (the encoder is kept): the pretrained file's head when
        it has as many classes, else a fresh one."""
        self.head = nn.Sequential(
            nn.LayerNorm(self.embed_dim), nn.Linear(self.embed_dim, num_classes)
        )
        saved = self._pretrained_head
        if saved and saved.get("1.weight", torch.empty(0)).shape == self.head[1].weight.shape:
            self.head.load_state_dict(saved)

    def forward(
        self, features: torch.Tensor, frames: torch.Tensor | None = None
    ) -> dict[str, torch.Tensor]:
        """``features`` ``(batch, frames, n_mels)`` -> ``{"logits": (batch, classes)}``."""
        if self.head is None:
            raise RuntimeError(
                "AudioSpectrogramTransformer has no classifier: call reset_classifier(num_classes)"
            )
        image = features.transpose(1, 2).unsqueeze(1)  # (batch, 1, n_mels, frames)
        tokens = self.vit.forward_features(image)
        pooled = (tokens[:, 0] + tokens[:, 1]) / 2
        return {"logits": self.head(self.head_drop(pooled))}
