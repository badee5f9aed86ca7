"""Audio I/O through soundfile (torchaudio.load needs torchcodec + ffmpeg, which we do not rely on).

One policy everywhere audio is read: multi-channel files are averaged to mono unless a
``channel`` index is given; a file whose samples end before its header says (a truncated
download or copy), that holds NaN / infinite samples, or that is at another sample rate
when resampling is off, raises :class:`DataFormatError` naming it. Nothing is cut, padded or
reduced without the caller asking for it.
"""

from __future__ import annotations

import functools
import os
import re
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
import torchaudio.functional as AF
from torchaudio.transforms import Resample

from ..utils.errors import DataFormatError

# What the loaders read by default (libsndfile decodes them)
AUDIO_EXTENSIONS = ("wav", "flac", "ogg")
# Audio that libsndfile cannot decode or that the tree's configured extensions leave out; named
# apart from other stray files in the counts because it usually means a conversion step was missed.
OTHER_AUDIO_EXTENSIONS = (
    "m4a",
    "mp3",
    "mp4",
    "aac",
    "opus",
    "wma",
    "webm",
    "aif",
    "aiff",
    "au",
    "caf",
    "sph",
    "nist",
    "wv",
    "wav",
    "flac",
    "ogg",
)

# libsndfile reads a WAV / AIFF / CAF whose data chunk runs past the end of the file without an
# error: it shortens the frame count and only notes "data : <declared> (should be <actual>)" in its
# log. That note is the one place the header's own count survives, so it is parsed here.
_SHORT_CHUNK = re.compile(r"^\s*(?:data|SSND)\s*:\s*(\d+)\s*\(should be (\d+)\)", re.MULTILINE)
# Streaming writers (sox / ffmpeg to a pipe) put a placeholder size in the header: not truncation.
_UNKNOWN_SIZES = {0, 0xFFFFFFFF, 0x7FFFFFFF, 0xFFFFFFFF - 8}


def _open(path: str | Path) -> sf.SoundFile:
    """The file opened by libsndfile under its name as the OS gives it: as bytes, since soundfile
    encodes a str name strictly as UTF-8, which fails for a name that is not (Latin-1 bytes, held
    in Python as surrogate escapes)."""
    try:
        return sf.SoundFile(os.fsencode(path))
    except (
        Exception
    ) as err:  # soundfile raises LibsndfileError / RuntimeError / TypeError by version
        if not Path(path).exists():
            raise DataFormatError(path, "an audio file", found="missing file") from err
        raise DataFormatError(
            path, "audio readable by libsndfile (wav, flac, ogg, ...)", found=str(err).strip()
        ) from err


def _check_header(
    f: sf.SoundFile, path: str | Path, sample_rate: int, resample: bool, channel: int | None
) -> None:
    """Rate, channel index, emptiness and a data chunk shorter than its header declares."""
    if f.samplerate != sample_rate and not resample:
        raise DataFormatError(
            path, f"audio at {sample_rate} Hz (or set resample=true)", found=f"{f.samplerate} Hz"
        )
    if channel is not None and not 0 <= channel < f.channels:
        raise DataFormatError(
            path,
            f"a channel {channel} (data.audio.channel counts from 0)",
            found=f"{f.channels} channel(s)",
        )
    log = f.extra_info
    short = _SHORT_CHUNK.search(log)
    if (
        short
        and int(short.group(1)) not in _UNKNOWN_SIZES
        and int(short.group(1)) > int(short.group(2))
    ):
        raise DataFormatError(
            path,
            f"the {short.group(1)} data bytes its header declares",
            found=f"a truncated file with {short.group(2)} bytes of audio data",
        )
    if f.frames <= 0:
        found = (
            "a truncated file (stream ends without its end marker)"
            if "ended unexpectedly" in log
            else "0 samples"
        )
        raise DataFormatError(path, "non-empty audio", found=found)


def _to_mono(data: np.ndarray, channel: int | None) -> np.ndarray:
    """The policy for multi-channel audio: the channel mean, or the one channel asked for."""
    if data.shape[1] == 1:
        return data[:, 0]
    if channel is None:
        return data.mean(axis=1, dtype=np.float32)
    return data[:, channel]


@functools.lru_cache(maxsize=32)
def _resampler(orig_rate: int, new_rate: int) -> Resample:
    # float32 like the waves: the kernel is then the functional form's, so outputs equal it bit
    # for bit
    return Resample(orig_rate, new_rate, dtype=torch.float32)


def resample_audio(wave: torch.Tensor, orig_rate: int, new_rate: int) -> torch.Tensor:
    """``wave`` (float, last dimension time) from ``orig_rate`` to ``new_rate`` Hz by torchaudio's
    windowed-sinc resampling, its kernel built once per pair of rates (per process) for float32
    waves on the CPU (the loaders'): torchaudio's functional form builds it at every call, 40 % of
    the time of resampling a 10 s clip from 44.1 to 32 kHz (docs/benchmarks.md)."""
    if orig_rate == new_rate:
        return wave
    if wave.dtype != torch.float32 or wave.device.type != "cpu":
        return AF.resample(wave, orig_rate, new_rate)
    return _resampler(orig_rate, new_rate)(wave)


def _read(
    f: sf.SoundFile,
    path: str | Path,
    sample_rate: int,
    resample: bool,
    start: int,
    num_frames: int,
    channel: int | None,
) -> torch.Tensor:
    """Checks and reading shared by the loaders; ``f`` is already open."""
    _check_header(f, path, sample_rate, resample, channel)
    expected = f.frames - start if num_frames < 0 else min(num_frames, f.frames - start)
    try:
        if start:
            f.seek(start)
        data = f.read(frames=num_frames, dtype="float32", always_2d=True)
    except Exception as err:
        raise DataFormatError(path, "complete audio data", found=f"read error: {err}") from err
    if data.shape[0] < expected:
        raise DataFormatError(
            path,
            f"{f.frames} samples as its header says",
            found=f"a truncated file: samples end at {start + data.shape[0]}",
        )
    finite = np.isfinite(data)
    if not finite.all():
        first = int(np.argwhere(~finite)[0][0]) + start
        raise DataFormatError(
            path, "finite sample values", found=f"NaN or infinity at sample {first}"
        )
    wave = torch.from_numpy(np.ascontiguousarray(_to_mono(data, channel)))
    if f.samplerate != sample_rate:
        wave = resample_audio(wave, f.samplerate, sample_rate)
    return wave


def load_audio(
    path: str | Path,
    sample_rate: int,
    resample: bool = True,
    start: int = 0,
    num_frames: int = -1,
    channel: int | None = None,
) -> torch.Tensor:
    """Mono float32 waveform at ``sample_rate``; ``start`` / ``num_frames`` are at the file's rate.

    Multi-channel files are averaged unless ``channel`` picks one. A file at another rate is
    resampled when ``resample`` is true and rejected otherwise; an empty, truncated or non-finite
    file raises DataFormatError naming it.
    """
    with _open(path) as f:
        return _read(f, path, sample_rate, resample, start, num_frames, channel)


def load_random_crop(
    path: str | Path,
    sample_rate: int,
    resample: bool,
    num_samples: float,
    rng: np.random.Generator,
    margin: int = 0,
    channel: int | None = None,
) -> torch.Tensor:
    """A random excerpt of about ``num_samples`` samples at ``sample_rate`` (the whole file if
    shorter).

    The file is opened once: its header gives the length from which the start is drawn. ``margin``
    extra samples at the file's rate are read for callers that resample afterwards.
    """
    with _open(path) as f:
        need = int(np.ceil(num_samples * f.samplerate / sample_rate)) + margin
        start = int(rng.integers(0, f.frames - need + 1)) if f.frames > need else 0
        return _read(f, path, sample_rate, resample, start, need, channel)


def load_segment(
    path: str | Path,
    sample_rate: int,
    start: float = 0.0,
    duration: float | None = None,
    resample: bool = True,
    channel: int | None = None,
) -> torch.Tensor:
    """``duration`` seconds from ``start`` seconds (to the end when None), at ``sample_rate``.

    Only that part is read, so a long recording can be processed chunk by chunk in bounded memory.
    """
    with _open(path) as f:
        first = int(round(start * f.samplerate))
        count = -1 if duration is None else int(round(duration * f.samplerate))
        return _read(f, path, sample_rate, resample, first, count, channel)


def audio_duration(path: str | Path) -> float:
    """Length in seconds from the header (DataFormatError naming the file if it cannot be
    opened)."""
    with _open(path) as f:
        return f.frames / f.samplerate


# sample formats that can hold NaN or infinity (integer PCM, FLAC and Vorbis cannot): files in
# them are decoded whole by the pre-scan
FLOAT_SUBTYPES = ("FLOAT", "DOUBLE")


def _non_finite_problem(f, path: str | Path, block: int = 1 << 20) -> str | None:
    """The first non-finite sample of an open float file, named with its time, or None."""
    f.seek(0)
    start = 0
    for chunk in f.blocks(blocksize=block, dtype="float32", always_2d=True):
        bad = ~np.isfinite(chunk)
        if bad.any():
            frame = start + int(np.argmax(bad.any(axis=1)))
            return (
                f"{path}: expected finite samples, found {int(bad.sum())} NaN / infinite ones "
                f"(the first at {frame / f.samplerate:.3f} s)"
            )
        start += chunk.shape[0]
    return None


def audio_problem(
    path: str | Path,
    sample_rate: int,
    resample: bool,
    channel: int | None = None,
    min_seconds: float = 0.0,
) -> str | None:
    """Why ``path`` cannot be used as training / evaluation audio, or None when it can.

    Cheaper than a full decode: the header is checked as the loaders check it, then the last
    sample is read (a compressed file cut short fails to seek or decode there); float files, which
    alone can hold them, are decoded whole to find NaN or infinite samples. Used by the
    datamodules' pre-scan (``data.verify_audio``).
    """
    try:
        with _open(path) as f:
            _check_header(f, path, sample_rate, resample, channel)
            if f.frames < min_seconds * f.samplerate:
                found = f.frames / f.samplerate
                return f"{path}: expected at least {min_seconds:g} s of audio, found {found:.3f} s"
            try:
                f.seek(f.frames - 1)
                last = f.read(frames=1, dtype="float32", always_2d=True)
            except Exception as err:
                return (
                    f"{path}: expected {f.frames} samples as its header says, "
                    f"found a read error at the end: {err}"
                )
            if last.shape[0] != 1:
                return (
                    f"{path}: expected {f.frames} samples as its header says, "
                    "found a truncated file"
                )
            if f.subtype in FLOAT_SUBTYPES:
                return _non_finite_problem(f, path)
    except DataFormatError as err:
        return str(err)
    return None
