"""Kaldi-compatible log mel filterbank with per-utterance mean normalisation."""

from __future__ import annotations

import torch
import torchaudio.compliance.kaldi as kaldi

from .base import FrontEnd
from .kaldi_batch import kaldi_fbank_batch, kaldi_frame_count, runs_batched


class KaldiFbank(FrontEnd):
    """``torchaudio.compliance.kaldi.fbank`` over a padded batch, then cepstral mean normalisation.

    Input: waveforms ``(batch, samples)`` in [-1, 1] and their valid ``lengths`` in samples.
    Output: ``(batch, frames, n_mels)`` and valid frame counts. Dither is applied in training only
    (as Kaldi and WeSpeaker do); the mean is taken over each utterance's valid frames only, so
    padding never leaks into the statistics. ``batched``: the whole batch in one pass
    (:func:`~sonolab.features.kaldi_batch.kaldi_fbank_batch`, equal within 1e-4) or torchaudio clip
    by clip; None: batched off the CPU only (:func:`~sonolab.features.kaldi_batch.runs_batched`).
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
        batched: bool | None = None,
    ):
        super().__init__()
        self.batched = batched
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
        return kaldi_frame_count(num_samples, window, shift)

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
        dither = self.dither if self.training else 0.0
        if runs_batched(self.batched, waveforms):
            # Kaldi's 16-bit scale, as below
            feats, _ = kaldi_fbank_batch(
                waveforms * (1 << 15),
                lengths,
                sample_rate=self.sample_rate,
                n_mels=self.n_mels,
                frame_length_ms=self.frame_length_ms,
                frame_shift_ms=self.frame_shift_ms,
                window_type=self.window_type,
                dither=dither,
            )
            if self.mean_norm:
                valid = (
                    torch.arange(feats.shape[1], device=feats.device)
                    < frame_counts.to(feats.device)[:, None]
                )[..., None]
                mean = feats.sum(dim=1, keepdim=True) / frame_counts.to(feats)[:, None, None]
                feats = (feats - mean) * valid
            return feats, frame_counts
        out = waveforms.new_zeros(waveforms.shape[0], int(frame_counts.max()), self.n_mels)
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
