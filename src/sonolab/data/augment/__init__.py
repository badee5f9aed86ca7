"""Augmentation: waveforms from noise / reverberation corpora in the data loaders
(:mod:`.waveform`), and whole batches on the device in the tasks (:mod:`.batch`)."""

from .batch import Mixup, ShiftGain, SpecAugment
from .waveform import DEFAULT_SNR, WaveformAugment, audio_files, reverberate, scale_to_snr

__all__ = [
    "DEFAULT_SNR",
    "Mixup",
    "ShiftGain",
    "SpecAugment",
    "WaveformAugment",
    "audio_files",
    "reverberate",
    "scale_to_snr",
]
