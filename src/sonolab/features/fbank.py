"""Kaldi-compatible log mel filterbank with per-utterance mean normalisation."""

from __future__ import annotations

import torch
import torchaudio.compliance.kaldi as kaldi

from .base import FrontEnd


class KaldiFbank(FrontEnd):
    """``torchaudio.compliance.kaldi.fbank`` over a padded batch, then cepstral mean normalisation.

    Input: waveforms ``(batch, samples)`` in [-1, 1] and their valid ``lengths`` in samples.
    Output: ``(batch, frames, n_mels)`` and valid frame counts. Dither is applied in training only
    (as Kaldi and WeSpeaker do); the mean is taken over each utterance's valid frames only, so
    padding never leaks into the statistics.
    """

    def __init__(
        self,
        n_mels: int = 80,
        sample_rate: int = 16000,
        frame_length_ms: float = 25.0,
        frame_shift_ms: float = 10.0,
        dither: float = 1.0,
        window_type: str = "hamming",
        mean_norm: bool = True,
    ):
        super().__init__()
        self.n_mels = n_mels
        self.sample_rate = sample_rate
        self.frame_length_ms = frame_length_ms
        self.frame_shift_ms = frame_shift_ms
        self.dither = dither
        self.window_type = window_type
        self.mean_norm = mean_norm

    @property
    def output_dim(self) -> int:
        """Feature dimension per frame."""
        return self.n_mels

    def num_frames(self, num_samples: torch.Tensor) -> torch.Tensor:
        """Frames Kaldi produces for ``num_samples`` (snip_edges=True)."""
        window = int(self.sample_rate * self.frame_length_ms / 1000)
        shift = int(self.sample_rate * self.frame_shift_ms / 1000)
        return torch.clamp((num_samples - window) // shift + 1, min=0)

    @torch.no_grad()
    def forward(
        self, waveforms: torch.Tensor, lengths: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if lengths is None:
            lengths = torch.full((waveforms.shape[0],), waveforms.shape[1], device=waveforms.device)
        frame_counts = self.num_frames(lengths)
        if int(frame_counts.min()) < 1:
            raise ValueError(f"an utterance is shorter than one {self.frame_length_ms} ms frame")
        # Under AMP the filterbank still runs in float32: log-energies lose too much in bf16/fp16.
        with torch.autocast(device_type=waveforms.device.type, enabled=False):
            return self._fbank(waveforms.float(), lengths, frame_counts)

    def _fbank(self, waveforms: torch.Tensor, lengths: torch.Tensor, frame_counts: torch.Tensor):
        out = waveforms.new_zeros(waveforms.shape[0], int(frame_counts.max()), self.n_mels)
        dither = self.dither if self.training else 0.0
        for i, (wave, n) in enumerate(zip(waveforms, lengths.tolist())):
            # Kaldi works on 16-bit integer scale; scaling keeps dither and energy floor Kaldi's.
            feats = kaldi.fbank(
                wave[: int(n)].unsqueeze(0) * (1 << 15),
                num_mel_bins=self.n_mels,
                sample_frequency=self.sample_rate,
                frame_length=self.frame_length_ms,
                frame_shift=self.frame_shift_ms,
                dither=dither,
                window_type=self.window_type,
                energy_floor=0.0,
            )
            if self.mean_norm:
                feats = feats - feats.mean(dim=0, keepdim=True)
            out[i, : feats.shape[0]] = feats
        return out, frame_counts
