"""Waveform augmentation for training crops: additive noise (MUSAN layout) and reverberation (RIRs).

The mixing itself is torchaudio's (``add_noise`` at a given SNR, ``fftconvolve``); what lives
here is picking files and SNRs the way the Kaldi / WeSpeaker recipes do: one augmentation per
crop with probability ``prob``, drawn among reverberation, noise, music and babble.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torchaudio.functional as AF

from ..utils.errors import DataFormatError
from .audio import load_audio, load_random_crop

# SNR ranges (dB) per MUSAN category as in the Kaldi VoxCeleb recipe.
DEFAULT_SNR = {"noise": (0.0, 15.0), "music": (5.0, 15.0), "speech": (13.0, 20.0)}


def audio_files(folder: Path, extensions: tuple[str, ...]) -> list[Path]:
    """Audio files below ``folder`` (recursively, hidden entries excluded), sorted."""
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower().lstrip(".") in extensions
                  and not any(part.startswith(".") for part in p.relative_to(folder).parts))


class WaveformAugment:
    """Callable ``(wave, rng) -> wave`` applied to each training crop in the dataloader workers.

    Args:
        musan_root: folder with MUSAN's ``noise/``, ``music/``, ``speech/`` sub-folders (any may be absent).
        rir_root: folder searched recursively for room impulse responses.
        prob: probability that a crop is augmented at all.
        snr: SNR range in dB per MUSAN category.
        babble_speakers: how many ``speech`` files are summed for babble (inclusive range).
    """

    def __init__(self, musan_root: str | None = None, rir_root: str | None = None, prob: float = 0.6,
                 snr: dict | None = None, babble_speakers: tuple[int, int] = (3, 7), sample_rate: int = 16000,
                 extensions: tuple[str, ...] = ("wav", "flac", "ogg")):
        self.prob = prob
        self.sample_rate = sample_rate
        self.snr = {k: tuple(v) for k, v in (snr or DEFAULT_SNR).items()}
        self.babble_speakers = tuple(babble_speakers)
        self.noises: dict[str, list[Path]] = {}
        if musan_root:
            root = Path(musan_root)
            if not root.is_dir():
                raise DataFormatError(root, "a MUSAN folder with noise/, music/ and/or speech/", found="no such folder")
            for category in self.snr:
                files = audio_files(root / category, extensions) if (root / category).is_dir() else []
                if files:
                    self.noises[category] = files
            if not self.noises:
                raise DataFormatError(root, f"audio under {', '.join(c + '/' for c in self.snr)}", found="none")
        self.rirs: list[Path] = []
        if rir_root:
            root = Path(rir_root)
            self.rirs = audio_files(root, extensions) if root.is_dir() else []
            if not self.rirs:
                raise DataFormatError(root, "a folder of room impulse responses (audio files)", found="none")
        self.kinds = (["reverb"] if self.rirs else []) + list(self.noises)

    def __bool__(self) -> bool:
        return bool(self.kinds) and self.prob > 0

    def _segment(self, path: Path, length: int, rng: np.random.Generator) -> torch.Tensor:
        wave = load_random_crop(path, self.sample_rate, True, length, rng)
        if wave.numel() < length:  # loop short noise files
            wave = wave.repeat(int(np.ceil(length / max(1, wave.numel()))))
        return wave[:length]

    def __call__(self, wave: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
        if not self or rng.random() >= self.prob:
            return wave
        kind = self.kinds[int(rng.integers(len(self.kinds)))]
        if kind == "reverb":
            rir = load_audio(self.rirs[int(rng.integers(len(self.rirs)))], self.sample_rate)
            rir = rir / (rir.norm() + 1e-8)
            peak = wave.abs().max()
            out = AF.fftconvolve(wave, rir)[: wave.numel()]
            return out * (peak / (out.abs().max() + 1e-8))
        files = self.noises[kind]
        count = int(rng.integers(self.babble_speakers[0], self.babble_speakers[1] + 1)) if kind == "speech" else 1
        noise = sum(self._segment(files[int(rng.integers(len(files)))], wave.numel(), rng) for _ in range(count))
        snr = torch.tensor([rng.uniform(*self.snr[kind])], dtype=wave.dtype)
        if noise.abs().max() == 0:
            return wave
        return AF.add_noise(wave[None], noise[None], snr)[0]
