"""Permutation-invariant binary cross-entropy for speaker activities (EEND / EEND-EDA's training
loss).

The best speaker permutation is found per recording with the Hungarian algorithm
(``scipy.optimize.linear_sum_assignment``) on the matrix of per-pair BCE costs. The total BCE under
a permutation is the sum of the costs of the pairs it matches, so this finds the same minimum as
trying all ``S!`` permutations, in ``O(S^3)``: 7+ speakers stay cheap.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from scipy.optimize import linear_sum_assignment

from .base import Loss, Prediction


def pairwise_bce(
    logits: torch.Tensor, targets: torch.Tensor, frame_mask: torch.Tensor
) -> torch.Tensor:
    """``cost[b, i, j]``: summed BCE of predicted speaker ``i`` against reference speaker ``j`` over
    valid frames."""
    lg = logits.unsqueeze(-1).expand(*logits.shape, targets.shape[-1])  # (B, T, S_pred, S_ref)
    tg = targets.unsqueeze(-2).expand_as(lg)
    bce = F.binary_cross_entropy_with_logits(lg, tg, reduction="none")
    return (bce * frame_mask[:, :, None, None]).sum(dim=1)


def best_permutations(cost: torch.Tensor, speaker_counts: list[int]) -> list[np.ndarray]:
    """For each recording, ``perm`` such that predicted speaker ``k`` is matched to reference
    ``perm[k]``.

    Only the first ``speaker_counts[b]`` predicted and reference speakers take part (the others are
    padding).
    """
    out = []
    for b, n in enumerate(speaker_counts):
        if n == 0:
            out.append(np.zeros(0, dtype=np.int64))
            continue
        rows, cols = linear_sum_assignment(cost[b, :n, :n].detach().float().cpu().numpy())
        perm = np.empty(n, dtype=np.int64)
        perm[rows] = cols
        out.append(perm)
    return out


class PermutationInvariantBCE(Loss):
    """BCE between activity logits and reference activities under the best speaker permutation.

    Args:
        existence_weight: weight of the attractor-existence BCE (EEND-EDA), used when the model's
            existence logits are passed: the first ``n`` attractors of a recording with ``n``
            speakers should exist, attractor ``n + 1`` should not.

    Shapes: ``logits`` and ``targets`` ``(batch, frames, speakers)``; ``frame_mask`` ``(batch,
    frames)`` marks valid frames; ``speaker_mask`` ``(batch, speakers)`` marks each recording's real
    speakers, which must come first (padding speakers after them are left out of the loss, on the
    prediction side too, as EEND-EDA computes one attractor per real speaker). Each recording's BCE
    is averaged over its valid frames and real speakers, then recordings are averaged.
    """

    prediction_type = Prediction.FRAME_ACTIVITIES

    def __init__(self, existence_weight: float = 1.0):
        super().__init__()
        self.existence_weight = existence_weight

    def forward(
        self,
        logits: torch.Tensor,
        targets: torch.Tensor,
        frame_mask: torch.Tensor | None = None,
        speaker_mask: torch.Tensor | None = None,
        existence_logits: torch.Tensor | None = None,
    ) -> torch.Tensor:
        if targets.shape != logits.shape:
            raise ValueError(
                f"logits {tuple(logits.shape)} and targets {tuple(targets.shape)} differ"
            )
        batch, frames, speakers = logits.shape
        if frame_mask is None:
            frame_mask = logits.new_ones(batch, frames, dtype=torch.bool)
        if speaker_mask is None:
            speaker_mask = logits.new_ones(batch, speakers, dtype=torch.bool)
        counts = speaker_mask.sum(dim=1)
        if not torch.equal(
            speaker_mask, torch.arange(speakers, device=logits.device)[None] < counts[:, None]
        ):
            raise ValueError(
                "speaker_mask must mark each recording's real speakers first, then padding"
            )
        frame_mask = frame_mask.to(logits.dtype)
        cost = pairwise_bce(logits.float(), targets.float(), frame_mask.float())
        perms = best_permutations(cost, counts.tolist())
        losses = []
        for b, perm in enumerate(perms):
            n = len(perm)
            if n == 0:
                continue
            matched = cost[
                b, torch.arange(n, device=cost.device), torch.as_tensor(perm, device=cost.device)
            ]
            losses.append(matched.sum() / (frame_mask[b].sum().clamp(min=1) * n))
        loss = torch.stack(losses).mean() if losses else logits.sum() * 0.0
        if existence_logits is not None and self.existence_weight:
            loss = loss + self.existence_weight * existence_loss(existence_logits, counts)
        return loss


def existence_loss(existence_logits: torch.Tensor, speaker_counts: torch.Tensor) -> torch.Tensor:
    """EEND-EDA's attractor-existence BCE: attractors ``0..n-1`` exist, attractor ``n`` does not.

    ``existence_logits`` ``(batch, attractors)`` with at least ``max(n) + 1`` attractors; the ones
    after ``n + 1`` are not part of a recording's loss.
    """
    batch, attractors = existence_logits.shape
    if int(speaker_counts.max()) + 1 > attractors:
        raise ValueError(
            f"{attractors} attractors cannot hold {int(speaker_counts.max())} speakers plus the "
            "end marker"
        )
    index = torch.arange(attractors, device=existence_logits.device)[None]
    labels = (index < speaker_counts[:, None]).to(existence_logits.dtype)
    used = (index <= speaker_counts[:, None]).to(existence_logits.dtype)
    bce = F.binary_cross_entropy_with_logits(
        existence_logits.float(), labels.float(), reduction="none"
    )
    return ((bce * used).sum(dim=1) / used.sum(dim=1)).mean()
