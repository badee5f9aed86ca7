"""Audio I/O through soundfile (torchaudio.load needs torchcodec + ffmpeg, which we do not rely on)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf
import torch
import torchaudio.functional as AF

from ..utils.errors import DataFormatError


def _open(path: str | Path) -> sf.SoundFile:
    try:
        return sf.SoundFile(str(path))
    except Exception as err:  # soundfile raises LibsndfileError / RuntimeError / TypeError by version
        if not Path(path).exists():
            raise DataFormatError(path, "an audio file", found="missing file") from err
        raise DataFormatError(path, "audio readable by libsndfile (wav, flac, ogg, ...)", found=str(err).strip()) from err


def _read(f: sf.SoundFile, path: str | Path, sample_rate: int, resample: bool, start: int,
          num_frames: int) -> torch.Tensor:
    """Checks and reading shared by the loaders; ``f`` is already open."""
    rate, total = f.samplerate, f.frames
    if rate != sample_rate and not resample:
        raise DataFormatError(path, f"audio at {sample_rate} Hz (or set resample=true)", found=f"{rate} Hz")
    if total <= 0:
        raise DataFormatError(path, "non-empty audio", found="0 samples")
    try:
        if start:
            f.seek(start)
        data = f.read(frames=num_frames, dtype="float32", always_2d=True)
    except Exception as err:
        raise DataFormatError(path, "complete audio data", found=f"read error: {err}") from err
    if data.shape[0] == 0:
        raise DataFormatError(path, "audio samples after the header", found="truncated file (no samples)")
    wave = torch.from_numpy(np.ascontiguousarray(data[:, 0]))
    if rate != sample_rate:
        wave = AF.resample(wave, rate, sample_rate)
    return wave


def load_audio(path: str | Path, sample_rate: int, resample: bool = True, start: int = 0,
               num_frames: int = -1) -> torch.Tensor:
    """Mono float32 waveform at ``sample_rate``; ``start`` / ``num_frames`` are at the file's rate.

    A file at another rate is resampled when ``resample`` is true and rejected otherwise; an
    empty or truncated file raises DataFormatError naming it.
    """
    with _open(path) as f:
        return _read(f, path, sample_rate, resample, start, num_frames)


def load_random_crop(path: str | Path, sample_rate: int, resample: bool, num_samples: float,
                     rng: np.random.Generator, margin: int = 0) -> torch.Tensor:
    """A random excerpt of about ``num_samples`` samples at ``sample_rate`` (the whole file if shorter).

    The file is opened once: its header gives the length from which the start is drawn. ``margin``
    extra samples at the file's rate are read for callers that resample afterwards.
    """
    with _open(path) as f:
        need = int(np.ceil(num_samples * f.samplerate / sample_rate)) + margin
        start = int(rng.integers(0, f.frames - need + 1)) if f.frames > need else 0
        return _read(f, path, sample_rate, resample, start, need)
