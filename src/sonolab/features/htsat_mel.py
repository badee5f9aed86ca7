"""The HTS-AT front-end (Chen et al. 2022): 32 kHz log-mel (PANNs settings) with BatchNorm over mel
bins."""

from __future__ import annotations

import torch
import torchaudio.transforms as T
from torch import nn

from ..utils.errors import ConfigValueError
from .base import FrontEnd


class HtsatLogMel(FrontEnd):
    """Power mel spectrogram (Hann window ``n_fft`` long, hop ``hop_length``, centred frames with
    reflect padding, Slaney mel scale and area normalisation as librosa / torchlibrosa), ``10
    log10(max(x, 1e-10))``, then a BatchNorm over the mel bins (HTS-AT's ``bn0``: learnt, running
    statistics in eval).

    The output is cut to ``target_frames`` (10 s at 32 kHz / hop 320: 1001 frames), a shorter
    waveform zero-padded first; the whole fixed-length waveform is transformed, so clip padding is
    part of the input as in the reference recipe.

    Input: waveforms ``(batch, samples)`` and their ``lengths``. Output: ``(batch, target_frames,
    n_mels)`` and the number of frames holding audio.
    """

    def __init__(
        self,
        sample_rate: int = 32000,
        n_fft: int = 1024,
        hop_length: int = 320,
        n_mels: int = 64,
        f_min: float = 50.0,
        f_max: float = 14000.0,
        target_frames: int = 1001,
        batch_norm: bool = True,
    ):
        super().__init__()
        if f_max > sample_rate / 2:
            raise ConfigValueError(
                "features.f_max",
                f"at most the Nyquist frequency of data.sample_rate={sample_rate} "
                "(HTS-AT's front-end runs at data.sample_rate=32000)",
                f_max,
            )
        self.frame_shift_ms = 1000.0 * hop_length / sample_rate
        self.sample_rate, self.hop_length, self.n_mels, self.target_frames = (
            sample_rate,
            hop_length,
            n_mels,
            target_frames,
        )
        self.mel = T.MelSpectrogram(
            sample_rate=sample_rate,
            n_fft=n_fft,
            win_length=n_fft,
            hop_length=hop_length,
            f_min=f_min,
            f_max=f_max,
            n_mels=n_mels,
            power=2.0,
            center=True,
            pad_mode="reflect",
            norm="slaney",
            mel_scale="slaney",
        )
        self.norm = nn.BatchNorm1d(n_mels) if batch_norm else nn.Identity()

    @property
    def output_dim(self) -> int:
        """Mel bins per frame."""
        return self.n_mels

    def adopt_pretrained(self, state: dict[str, torch.Tensor]) -> None:
        """Take a pretrained model file's mel BatchNorm (HTS-AT's ``bn0``)."""
        self.norm.load_state_dict(state)

    def num_frames(self, num_samples: torch.Tensor) -> torch.Tensor:
        """Frames holding audio (centred frames: one per hop, plus one), capped at
        ``target_frames``."""
        return torch.clamp(num_samples // self.hop_length + 1, max=self.target_frames)

    def log_mel(self, waveforms: torch.Tensor) -> torch.Tensor:
        """``(batch, samples)`` -> ``(batch, target_frames, n_mels)`` in dB, before the
        BatchNorm."""
        # a short waveform is zero-padded (silence, -100 dB) rather than its spectrogram padded with
        # 0 dB
        needed = (self.target_frames - 1) * self.hop_length
        if waveforms.shape[1] < needed:
            waveforms = nn.functional.pad(waveforms, (0, needed - waveforms.shape[1]))
        with torch.autocast(device_type=waveforms.device.type, enabled=False):
            power = self.mel(waveforms.float())  # (batch, n_mels, frames)
            db = 10.0 * torch.log10(torch.clamp(power, min=1e-10))
        return db[..., : self.target_frames].transpose(1, 2)

    def forward(
        self, waveforms: torch.Tensor, lengths: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if lengths is None:
            lengths = torch.full((waveforms.shape[0],), waveforms.shape[1], device=waveforms.device)
        feats = self.norm(self.log_mel(waveforms).transpose(1, 2)).transpose(1, 2)
        return feats, self.num_frames(lengths)
