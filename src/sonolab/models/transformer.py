"""A Transformer encoder whose attention runs through ``F.scaled_dot_product_attention``.

``nn.TransformerEncoder`` in inference takes a fused fast path that builds the whole
``(heads, frames, frames)`` attention matrix: a one-hour recording at 10 frames/s needs about 20 GB
per layer for it. ``scaled_dot_product_attention`` picks a fused kernel (flash / memory-efficient)
that never holds that matrix when no mask is needed, so a long recording fits in one pass. The
parameters keep ``nn.TransformerEncoder``'s names (``layers.N.self_attn.in_proj_weight``,
``linear1``, ``norm1``, ...), so checkpoints written with it load unchanged, and the pre-norm
computation is the same (ReLU feed-forward, dropout after each sublayer).
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F


class SelfAttention(nn.Module):
    """Multi-head self-attention with ``nn.MultiheadAttention``'s parameters and initialisation.

    ``fused``: through ``F.scaled_dot_product_attention`` (the default); False writes the
    attention out (``softmax(q k^T / sqrt(d)) v``, the whole matrix held), the same outputs, kept to
    measure the fused kernels against (``model.fused_attention``, docs/benchmarks.md).
    """

    def __init__(self, d_model: int, num_heads: int, dropout: float = 0.0, fused: bool = True):
        super().__init__()
        if d_model % num_heads:
            raise ValueError(f"d_model ({d_model}) must be a multiple of num_heads ({num_heads})")
        self.num_heads = num_heads
        self.dropout = dropout
        self.fused = fused
        self.in_proj_weight = nn.Parameter(torch.empty(3 * d_model, d_model))
        self.in_proj_bias = nn.Parameter(torch.zeros(3 * d_model))
        self.out_proj = nn.Linear(d_model, d_model)
        nn.init.xavier_uniform_(self.in_proj_weight)
        nn.init.zeros_(self.out_proj.bias)

    def forward(self, x: torch.Tensor, padding: torch.Tensor | None = None) -> torch.Tensor:
        """``x`` ``(B, T, D)``; ``padding`` ``(B, T)`` True at padded frames (None: no padding)."""
        batch, frames, dim = x.shape
        q, k, v = (
            F.linear(x, self.in_proj_weight, self.in_proj_bias)
            .view(batch, frames, 3, self.num_heads, dim // self.num_heads)
            .permute(2, 0, 3, 1, 4)
        )
        # A mask only where some frame is padding: without one the fused kernels apply. An export
        # cannot branch on the data, so it always holds the (then all-true) mask.
        unpadded = padding is None or (
            not torch.compiler.is_exporting() and not bool(padding.any())
        )
        mask = None if unpadded else ~padding[:, None, None, :]
        dropout = self.dropout if self.training else 0.0
        if self.fused:
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout)
        else:
            weights = (q @ k.transpose(-2, -1)) / math.sqrt(q.shape[-1])
            if mask is not None:
                weights = weights.masked_fill(~mask, float("-inf"))
            out = F.dropout(weights.softmax(dim=-1), dropout) @ v
        return self.out_proj(out.transpose(1, 2).reshape(batch, frames, dim))


class EncoderLayer(nn.Module):
    """Self-attention and a ReLU feed-forward block, each with dropout and a residual connection.

    ``norm_first``: pre-norm, ``x + block(norm(x))`` (as ``nn.TransformerEncoderLayer`` with
    ``norm_first=True``). Otherwise the EEND reference's order (hitachi-speech/EEND
    ``eend/chainer_backend/transformer.py:153-163``): the stream itself is normalised and the
    block's output added to it, ``y = norm(x); y + block(y)``; a stack of these is post-norm between
    its first and last norm.
    """

    def __init__(
        self,
        d_model: int,
        num_heads: int,
        ff_dim: int,
        dropout: float,
        norm_first: bool = True,
        fused_attention: bool = True,
    ):
        super().__init__()
        self.self_attn = SelfAttention(d_model, num_heads, dropout, fused_attention)
        self.linear1 = nn.Linear(d_model, ff_dim)
        self.dropout = nn.Dropout(dropout)
        self.linear2 = nn.Linear(ff_dim, d_model)
        self.norm1 = nn.LayerNorm(d_model)
        self.norm2 = nn.LayerNorm(d_model)
        self.dropout1 = nn.Dropout(dropout)
        self.dropout2 = nn.Dropout(dropout)
        self.norm_first = norm_first

    def _feed_forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout2(self.linear2(self.dropout(F.relu(self.linear1(x)))))

    def forward(self, x: torch.Tensor, padding: torch.Tensor | None = None) -> torch.Tensor:
        """``x`` ``(B, T, D)`` -> ``(B, T, D)``."""
        if self.norm_first:
            x = x + self.dropout1(self.self_attn(self.norm1(x), padding))
            return x + self._feed_forward(self.norm2(x))
        x = self.norm1(x)
        x = x + self.dropout1(self.self_attn(x, padding))
        x = self.norm2(x)
        return x + self._feed_forward(x)


class TransformerEncoder(nn.Module):
    """``num_layers`` :class:`EncoderLayer` and a final layer norm."""

    def __init__(
        self,
        d_model: int,
        num_heads: int,
        ff_dim: int,
        dropout: float,
        num_layers: int,
        norm_first: bool = True,
        fused_attention: bool = True,
    ):
        super().__init__()
        self.layers = nn.ModuleList(
            EncoderLayer(d_model, num_heads, ff_dim, dropout, norm_first, fused_attention)
            for _ in range(num_layers)
        )
        self.norm = nn.LayerNorm(d_model)

    def forward(self, x: torch.Tensor, padding: torch.Tensor | None = None) -> torch.Tensor:
        """``x`` ``(B, T, D)``; ``padding`` ``(B, T)`` True at padded frames."""
        for layer in self.layers:
            x = layer(x, padding)
        return self.norm(x)
