"""Normalisation statistics of a front-end: measured over training clips, stored beside the data."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import nn

from ..utils.io import write_text_atomic


def measure_statistics(
    features: nn.Module, clips, device: torch.device | str = "cpu", batch_size: int = 16
) -> dict[str, float]:
    """Mean and standard deviation of the front-end's unnormalised output (``features.raw``) over
    the valid frames of ``clips`` (a clip dataset), accumulated in float64."""
    total, squares, count = 0.0, 0.0, 0
    for start in range(0, len(clips), batch_size):
        items = [clips[i] for i in range(start, min(start + batch_size, len(clips)))]
        wave = torch.stack([it["wave"] for it in items]).to(device)
        feats, frames = features.raw(
            wave, torch.tensor([it["length"] for it in items], device=device)
        )
        for f, n in zip(feats, frames.tolist()):
            valid = f[:n].double()
            total, squares, count = (
                total + float(valid.sum()),
                squares + float((valid**2).sum()),
                count + valid.numel(),
            )
    if not count:
        raise ValueError(
            "no audio frames to measure the front-end statistics on (are the training clips empty?)"
        )
    mean = total / count
    return {
        "mean": mean,
        "std": max(squares / count - mean**2, 0.0) ** 0.5,
        "clips": len(clips),
        "frames": count,
    }


def save_statistics(path: Path, statistics: dict[str, float]) -> None:
    """Store measured statistics (JSON, written atomically)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(path, json.dumps(statistics, indent=2))


def load_statistics(path: Path) -> dict[str, float] | None:
    """Stored statistics, or None when absent or unreadable (then they are measured again)."""
    try:
        stored = json.loads(path.read_text())
        return stored if {"mean", "std"} <= set(stored) and stored["std"] > 0 else None
    except (OSError, ValueError, TypeError):
        return None
