"""Permutation-invariant binary cross-entropy for speaker activities (EEND's training loss)."""

from __future__ import annotations

import itertools

import torch
import torch.nn.functional as F
from torch import nn


class PermutationInvariantBCE(nn.Module):
    """BCE between predicted activity logits and references under the best speaker permutation.

    Shapes: logits and targets ``(batch, frames, speakers)``. All ``speakers!`` permutations
    are tried (EEND uses at most a handful of speakers per chunk, so this stays cheap and exact).
    """

    task_family = "diarization"
    input_type = "activities"

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        speakers = logits.shape[-1]
        if targets.shape != logits.shape:
            raise ValueError(f"logits {tuple(logits.shape)} and targets {tuple(targets.shape)} differ")
        losses = []
        for perm in itertools.permutations(range(speakers)):
            permuted = targets[..., list(perm)]
            losses.append(F.binary_cross_entropy_with_logits(logits, permuted, reduction="none").mean(dim=(1, 2)))
        return torch.stack(losses, dim=1).min(dim=1).values.mean()
