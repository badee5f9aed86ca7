"""Speech regions of a waveform by silero-vad, shared by the mixture simulator (its source
segments) and the clustering pipeline (its speech activity). The model ships inside the silero-vad
package: nothing is downloaded."""

from __future__ import annotations

import torch

from .audio import resample_audio

SILERO_RATE = 16000  # the rate silero-vad's model reads (8 kHz is its other)
_MODEL = None  # loaded once per process (each dataloader worker loads its own)


def _silero():
    """silero-vad's model and its timestamp function, imported on first use: importing the package
    sets torch's intra-op threads to 1 for the whole process (silero_vad/model.py:3), which would
    slow and change every run that merely imports sonolab; the thread count is put back."""
    global _MODEL
    threads = torch.get_num_threads()
    from silero_vad import get_speech_timestamps, load_silero_vad

    torch.set_num_threads(threads)
    if _MODEL is None:
        _MODEL = load_silero_vad()
    return _MODEL, get_speech_timestamps


def silero_regions(
    wave: torch.Tensor,
    sample_rate: int,
    threshold: float = 0.5,
    min_speech_seconds: float = 0.25,
    min_silence_seconds: float = 0.1,
) -> list[tuple[float, float]]:
    """``(start, end)`` seconds of the speech silero-vad finds in a mono waveform: frames whose
    speech probability passes ``threshold``, regions shorter than ``min_speech_seconds`` dropped,
    gaps shorter than ``min_silence_seconds`` bridged."""
    model, get_speech_timestamps = _silero()
    if sample_rate != SILERO_RATE:
        wave = resample_audio(wave, sample_rate, SILERO_RATE)
    stamps = get_speech_timestamps(
        wave,
        model,
        threshold=threshold,
        sampling_rate=SILERO_RATE,
        min_speech_duration_ms=int(min_speech_seconds * 1000),
        min_silence_duration_ms=int(min_silence_seconds * 1000),
        return_seconds=True,
    )
    return [(float(s["start"]), float(s["end"])) for s in stamps]
