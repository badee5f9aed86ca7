"""Waveform augmentation for training crops: additive noise (MUSAN layout) and reverberation (RIRs).

Two schemes, named for the recipes they follow (``scheme``):

- ``wespeaker`` (WeSpeaker's VoxCeleb recipes): with probability ``prob`` a crop is reverberated or
  noised, half and half; the noise file is drawn over all MUSAN files together, at an SNR drawn
  uniformly from its category's range (speech 10-30 dB, one talker; noise 0-15; music 5-15) with
  WeSpeaker's energy formula; the result is peak-normalised.
- ``kaldi`` (Kaldi's egs/voxceleb/v2 ``steps/data/augment_data_dir.py`` settings): reverberation,
  noise, music or babble with equal chance, SNRs from discrete sets (noise 15/10/5/0, music
  15/10/8/5, babble 20/17/15/13 dB per talker, 3-7 talkers); reverberation keeps the crop's peak.
  One noise segment spans the crop (Kaldi adds foreground noises at 1 s intervals).

The convolution is scipy's ``fftconvolve`` (see :func:`reverberate`); the SNR scaling is written
out because the two recipes define the energies differently (WeSpeaker adds 1e-4 to each mean
square before the log).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from scipy import signal

from ...utils.errors import ConfigValueError, DataFormatError
from ..audio import load_audio, load_random_crop

SCHEMES = ("wespeaker", "kaldi")
CATEGORIES = ("noise", "music", "speech")
# dB per MUSAN category: WeSpeaker's uniform ranges, Kaldi's discrete sets.
DEFAULT_SNR = {
    "wespeaker": {"noise": [0.0, 15.0], "music": [5.0, 15.0], "speech": [10.0, 30.0]},
    "kaldi": {
        "noise": [15.0, 10.0, 5.0, 0.0],
        "music": [15.0, 10.0, 8.0, 5.0],
        "speech": [20.0, 17.0, 15.0, 13.0],
    },
}


def reverberate(wave: torch.Tensor, rir: torch.Tensor) -> torch.Tensor:
    """``wave`` (1-D, on the CPU) convolved with the room impulse response ``rir`` scaled to unit
    energy, cut to ``wave``'s length.

    scipy's ``fftconvolve`` rather than torchaudio's: torchaudio transforms at the exact length
    ``len(wave) + len(rir) - 1``, mostly a number with large prime factors, where scipy pads to a
    fast FFT length: 8-24x faster for a 2 s crop and responses of 0.25-1 s at 16 kHz on the 2-core
    machine, which made reverberation most of a VoxCeleb recipe's loader time (docs/benchmarks.md).
    """
    kernel = (rir / (rir.norm() + 1e-8)).numpy()
    return torch.from_numpy(signal.fftconvolve(wave.numpy(), kernel)[: wave.numel()])


def audio_files(folder: Path, extensions: tuple[str, ...]) -> list[Path]:
    """Audio files below ``folder`` (recursively, hidden entries excluded), sorted."""
    return sorted(
        p
        for p in folder.rglob("*")
        if p.is_file()
        and p.suffix.lower().lstrip(".") in extensions
        and not any(part.startswith(".") for part in p.relative_to(folder).parts)
    )


def scale_to_snr(
    wave: torch.Tensor, noise: torch.Tensor, snr_db: float, floor: float = 0.0
) -> torch.Tensor:
    """``noise`` scaled so that ``wave`` is ``snr_db`` above it, energies as mean squares (+
    ``floor``, WeSpeaker's 1e-4, before the log)."""
    wave_db = 10 * torch.log10(wave.pow(2).mean() + floor + 1e-20)
    noise_db = 10 * torch.log10(noise.pow(2).mean() + floor + 1e-20)
    return noise * torch.sqrt(10 ** ((wave_db - noise_db - snr_db) / 10))


class WaveformAugment:
    """Callable ``(wave, rng) -> wave`` applied to each training crop in the dataloader workers.

    Args:
        musan_root: folder with MUSAN's ``noise/``, ``music/``, ``speech/`` sub-folders (any may be
        absent).
        rir_root: folder searched recursively for room impulse responses.
        prob: probability that a crop is augmented at all.
        scheme: ``wespeaker`` or ``kaldi`` (module docstring).
        snr: dB per MUSAN category: ``[low, high]`` ranges (wespeaker) or sets of values (kaldi);
            null = the scheme's.
        babble_speakers: talkers summed for babble (inclusive range; kaldi only).
    """

    def __init__(
        self,
        musan_root: str | None = None,
        rir_root: str | None = None,
        prob: float = 0.6,
        scheme: str = "wespeaker",
        snr: dict | None = None,
        babble_speakers: tuple[int, int] = (3, 7),
        sample_rate: int = 16000,
        extensions: tuple[str, ...] = ("wav", "flac", "ogg"),
    ):
        if scheme not in SCHEMES:
            raise ConfigValueError("augment.scheme", " or ".join(SCHEMES), scheme)
        self.scheme = scheme
        self.prob = prob
        self.sample_rate = sample_rate
        self.snr = {k: [float(x) for x in v] for k, v in (snr or DEFAULT_SNR[scheme]).items()}
        if scheme == "wespeaker" and any(len(v) != 2 for v in self.snr.values()):
            raise ConfigValueError(
                "augment.snr", "[low, high] per category for scheme=wespeaker", snr
            )
        self.babble_speakers = tuple(babble_speakers)
        self.musan_root = Path(musan_root) if musan_root else None
        self.rir_root = Path(rir_root) if rir_root else None
        self.extensions = tuple(extensions)
        self._kinds: list[str] | None = None

    def scan(self) -> None:
        """Lists the corpora's files (once): the datamodule calls it in its ``setup``, after
        ``prepare_data`` has written a synthetic set's corpora (the configured folders need not
        exist when the augmentation is built) and before the loader workers start, so they share
        the lists. Raises :class:`DataFormatError` naming a folder that is missing or empty."""
        if self._kinds is not None:
            return
        self.noises: dict[str, list[Path]] = {}
        if self.musan_root:
            root = self.musan_root
            if not root.is_dir():
                raise DataFormatError(
                    root,
                    "a MUSAN folder with noise/, music/ and/or speech/",
                    found="no such folder",
                )
            for category in CATEGORIES:
                folder = root / category
                files = audio_files(folder, self.extensions) if folder.is_dir() else []
                if files:
                    self.noises[category] = files
            if not self.noises:
                raise DataFormatError(
                    root, f"audio under {', '.join(c + '/' for c in CATEGORIES)}", found="none"
                )
        self.all_noises = [
            (category, path) for category, files in self.noises.items() for path in files
        ]
        self.rirs: list[Path] = []
        if self.rir_root:
            root = self.rir_root
            self.rirs = audio_files(root, self.extensions) if root.is_dir() else []
            if not self.rirs:
                raise DataFormatError(
                    root, "a folder of room impulse responses (audio files)", found="none"
                )
        noise_kinds = (
            (["noise"] if self.noises else []) if self.scheme == "wespeaker" else list(self.noises)
        )
        self._kinds = (["reverb"] if self.rirs else []) + noise_kinds

    @property
    def kinds(self) -> list[str]:
        """What a crop may get: ``reverb`` and the scheme's noise kinds (the corpora scanned)."""
        self.scan()
        return self._kinds

    def __bool__(self) -> bool:
        """Whether crops may be augmented: a corpus configured and ``prob`` above 0 (a configured
        folder without audio is an error of :meth:`scan`, not an empty augmentation)."""
        return bool(self.musan_root or self.rir_root) and self.prob > 0

    def _segment(self, path: Path, length: int, rng: np.random.Generator) -> torch.Tensor:
        wave = load_random_crop(path, self.sample_rate, True, length, rng)
        if wave.numel() < length:  # loop short noise files
            wave = wave.repeat(int(np.ceil(length / max(1, wave.numel()))))
        return wave[:length]

    def _reverb(self, wave: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
        rir = load_audio(self.rirs[int(rng.integers(len(self.rirs)))], self.sample_rate)
        return reverberate(wave, rir)

    def _wespeaker(self, kind: str, wave: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
        if kind == "reverb":
            out = self._reverb(wave, rng)
        else:
            category, path = self.all_noises[int(rng.integers(len(self.all_noises)))]
            noise = self._segment(path, wave.numel(), rng)
            out = wave + scale_to_snr(wave, noise, rng.uniform(*self.snr[category]), floor=1e-4)
        return out / (out.abs().max() + 1e-4)

    def _kaldi(self, kind: str, wave: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
        if kind == "reverb":
            out = self._reverb(wave, rng)
            return out * (wave.abs().max() / (out.abs().max() + 1e-8))
        files = self.noises[kind]
        talkers = (
            int(rng.integers(self.babble_speakers[0], self.babble_speakers[1] + 1))
            if kind == "speech"
            else 1
        )
        out = wave
        for _ in range(
            talkers
        ):  # each babble talker at its own SNR, as Kaldi adds background noises
            noise = self._segment(files[int(rng.integers(len(files)))], wave.numel(), rng)
            if noise.abs().max() > 0:
                out = out + scale_to_snr(wave, noise, float(rng.choice(self.snr[kind])))
        return out

    def __call__(self, wave: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
        if not self or rng.random() >= self.prob:
            return wave
        kind = self.kinds[int(rng.integers(len(self.kinds)))]
        return (
            self._wespeaker(kind, wave, rng)
            if self.scheme == "wespeaker"
            else self._kaldi(kind, wave, rng)
        )
