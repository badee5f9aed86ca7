"""The AST front-end (Gong et al. 2021): Kaldi fbank, fixed number of frames, dataset
normalisation."""

from __future__ import annotations

import math

import torch
import torchaudio.compliance.kaldi as kaldi

from .base import FrontEnd
from .kaldi_batch import kaldi_fbank_batch, kaldi_frame_count, runs_batched


class AstFbank(FrontEnd):
    """128-bin Kaldi fbank (hanning window, 25 ms / 10 ms, HTK mel, no energy, no dither) of the
    mean-removed waveform, zero-padded or cut to ``target_frames``, then ``(x - mean) / (2 * std)``.

    ``mean`` / ``std`` are the dataset statistics (buffers, saved in checkpoints). Left null, the
    tagging task measures them on the training clips before the first epoch
    (:meth:`set_statistics`), so a model is never trained on unnormalised and tested on normalised
    input.

    Input: waveforms ``(batch, samples)`` and their valid ``lengths``. Output: ``(batch,
    target_frames, n_mels)`` and the number of frames holding audio (at most ``target_frames``).
    ``batched``: the whole batch in one pass (equal within 1e-4) or torchaudio clip by clip; None:
    batched off the CPU only (:func:`~sonolab.features.kaldi_batch.runs_batched`).
    """

    def __init__(
        self,
        n_mels: int = 128,
        sample_rate: int = 16000,
        target_frames: int = 1024,
        frame_shift_ms: float = 10.0,
        frame_length_ms: float = 25.0,
        mean: float | None = None,
        std: float | None = None,
        batched: bool | None = None,
    ):
        super().__init__()
        self.batched = batched
        self.n_mels = n_mels
        self.sample_rate = sample_rate
        self.target_frames = target_frames
        self.frame_shift_ms = frame_shift_ms
        self.frame_length_ms = frame_length_ms
        self.register_buffer("mean", torch.tensor(math.nan if mean is None else float(mean)))
        self.register_buffer("std", torch.tensor(math.nan if std is None else float(std)))

    @property
    def output_dim(self) -> int:
        """Mel bins per frame."""
        return self.n_mels

    @property
    def statistics_settings(self) -> dict:
        """What the statistics depend on (stored statistics are keyed by it)."""
        return {
            "frontend": "ast_fbank",
            "n_mels": self.n_mels,
            "sample_rate": self.sample_rate,
            "frame_shift_ms": self.frame_shift_ms,
            "frame_length_ms": self.frame_length_ms,
        }

    @property
    def has_statistics(self) -> bool:
        """Whether the normalisation statistics are set."""
        return bool(torch.isfinite(self.mean)) and bool(torch.isfinite(self.std))

    def set_statistics(self, mean: float, std: float) -> None:
        """Fix the normalisation (measured on training data)."""
        self.mean.fill_(float(mean))
        self.std.fill_(float(std))

    def normalised_value(self, raw: float) -> float:
        """``(raw - mean) / (2 * std)``: where a raw fbank value lands after normalising (a mask
        of AST's raw fbank, 0, holds ``-mean / (2 * std)``)."""
        return (raw - float(self.mean)) / (2 * float(self.std))

    def num_frames(self, num_samples: torch.Tensor) -> torch.Tensor:
        """Frames holding audio for ``num_samples`` (Kaldi's snip_edges), capped at
        ``target_frames``."""
        window = int(self.sample_rate * self.frame_length_ms / 1000)
        shift = int(self.sample_rate * self.frame_shift_ms / 1000)
        return kaldi_frame_count(num_samples, window, shift).clamp(max=self.target_frames)

    @torch.no_grad()
    def raw(
        self, waveforms: torch.Tensor, lengths: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Padded fbank before normalisation (what the statistics are measured on)."""
        if lengths is None:
            lengths = torch.full((waveforms.shape[0],), waveforms.shape[1], device=waveforms.device)
        out = waveforms.new_zeros(
            waveforms.shape[0], self.target_frames, self.n_mels, dtype=torch.float32
        )
        with torch.autocast(device_type=waveforms.device.type, enabled=False):
            if runs_batched(self.batched, waveforms):
                return self._raw_batched(waveforms.float(), lengths, out)
            for i, (wave, n) in enumerate(zip(waveforms.float(), lengths.tolist())):
                wave = wave[: int(n)]
                feats = kaldi.fbank(
                    (wave - wave.mean()).unsqueeze(0),
                    htk_compat=True,
                    sample_frequency=self.sample_rate,
                    use_energy=False,
                    window_type="hanning",
                    num_mel_bins=self.n_mels,
                    dither=0.0,
                    frame_shift=self.frame_shift_ms,
                    frame_length=self.frame_length_ms,
                )
                out[i, : min(feats.shape[0], self.target_frames)] = feats[: self.target_frames]
        return out, self.num_frames(lengths)

    def _raw_batched(self, waveforms: torch.Tensor, lengths: torch.Tensor, out: torch.Tensor):
        """:meth:`raw` in one pass: each clip less its own mean over its valid samples."""
        valid = torch.arange(waveforms.shape[1], device=waveforms.device) < lengths[:, None]
        means = (waveforms * valid).sum(dim=1, keepdim=True) / lengths.clamp(min=1)[:, None]
        feats, counts = kaldi_fbank_batch(
            (waveforms - means) * valid,
            lengths,
            sample_rate=self.sample_rate,
            n_mels=self.n_mels,
            frame_length_ms=self.frame_length_ms,
            frame_shift_ms=self.frame_shift_ms,
            window_type="hanning",
        )
        kept = min(feats.shape[1], self.target_frames)
        out[:, :kept] = feats[:, :kept]
        return out, self.num_frames(lengths)

    @torch.no_grad()
    def forward(
        self, waveforms: torch.Tensor, lengths: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if not self.has_statistics:
            raise RuntimeError(
                "AstFbank has no normalisation statistics: set features.mean / features.std, "
                "or let the tagging task measure them on the training clips"
            )
        feats, frames = self.raw(waveforms, lengths)
        return (feats - self.mean) / (2 * self.std), frames
