"""Evaluation rows computed on every process, put back in dataset order."""

from __future__ import annotations

import lightning as L
import torch


def gather_by_index(
    module: L.LightningModule, index: torch.Tensor, values: torch.Tensor, count: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Rows computed on every process put back in dataset order: ``(count, ...)`` values and which
    rows were seen. ``index`` holds each local row's position in the dataset; under DDP every
    rank's rows are gathered (ragged shares padded with index -1), and the duplicates that
    DistributedSampler pads with land on the same row, so nothing is counted twice."""
    if module.trainer.world_size > 1:
        size = torch.tensor(index.numel(), device=module.device)
        longest = int(module.all_gather(size).max())
        pad = longest - index.numel()
        index = torch.cat([index, index.new_full((pad,), -1)])
        values = torch.cat([values, values.new_zeros(pad, *values.shape[1:])])
        index = module.all_gather(index).reshape(-1)
        values = module.all_gather(values).reshape(-1, *values.shape[1:])
    out = values.new_zeros(count, *values.shape[1:])
    seen = torch.zeros(count, dtype=torch.bool, device=values.device)
    valid = index >= 0
    out[index[valid]] = values[valid]
    seen[index[valid]] = True
    return out.cpu(), seen.cpu()
