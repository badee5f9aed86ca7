"""The front-end contract: waveforms in, features and their frame counts out, on the device."""

from __future__ import annotations

import torch
from torch import nn

from ..utils.errors import IncompatibleConfigError


class FrontEnd(nn.Module):
    """Base of every front-end: ``forward(waveforms (batch, samples), lengths (batch,))`` returns
    features ``(batch, frames, output_dim)`` and the valid frame counts ``(batch,)``.

    What tasks read besides the features:
        output_dim: feature size per frame.
        frame_length_ms: the analysis window (shorter audio gives no frame).
        frame_shift_ms: the time between consecutive frames.
        num_frames(num_samples): frames a waveform of that many samples gives.
        has_statistics: False while the normalisation a front-end needs is not set; then the task
            measures it over training clips (:mod:`sonolab.features.statistics`) and calls
            ``set_statistics(mean, std)``.
        normalised_value(raw): what a raw feature value becomes after the normalisation (AST
            masks its raw fbank: a mask's value in the normalised features).
        adopt_pretrained(state): take a pretrained file's front-end weights.
    """

    frame_length_ms: float = 25.0
    frame_shift_ms: float = 10.0

    @property
    def output_dim(self) -> int:
        """Feature size per frame."""
        raise NotImplementedError(f"{type(self).__name__} must define output_dim")

    def num_frames(self, num_samples: torch.Tensor) -> torch.Tensor:
        """Frames a waveform of ``num_samples`` samples gives."""
        raise NotImplementedError(f"{type(self).__name__} must define num_frames")

    @property
    def statistics_settings(self) -> dict | None:
        """What dataset statistics the front-end normalises with depend on (stored statistics are
        keyed by it); None for a front-end that uses none."""
        return None

    @property
    def has_statistics(self) -> bool:
        """Whether the front-end's normalisation is set (front-ends without one: always)."""
        return True

    def normalised_value(self, raw: float) -> float:
        """What a raw feature value becomes after the front-end's normalisation (no
        normalisation: itself)."""
        return raw

    def adopt_pretrained(self, state: dict[str, torch.Tensor]) -> None:
        """Take a pretrained file's front-end weights (e.g. HTS-AT's mel BatchNorm)."""
        raise IncompatibleConfigError(
            f"model.pretrained carries front-end weights ({', '.join(state)}) that "
            f"{type(self).__name__} has no place for: use the model's own front-end "
            "(features=htsat_mel for HTS-AT)"
        )
