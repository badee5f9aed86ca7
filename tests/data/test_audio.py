"""Resampling (``sonolab.data.audio.resample_audio``): torchaudio's, its kernel built once per
pair of rates."""

from __future__ import annotations

import pytest
import soundfile as sf
import torch
import torchaudio.functional as AF

from sonolab.data.audio import load_audio, resample_audio


@pytest.mark.parametrize(
    "orig_rate, new_rate", [(44100, 32000), (48000, 16000), (22050, 16000), (14400, 16000)]
)
def test_resample_equals_torchaudio_bit_for_bit(orig_rate, new_rate):
    """The loaders' and speed perturbation's rate pairs: the cached kernel is torchaudio's."""
    wave = torch.randn(2, orig_rate // 2, generator=torch.Generator().manual_seed(0))
    for _ in range(2):  # built, then from the cache
        assert torch.equal(
            resample_audio(wave, orig_rate, new_rate), AF.resample(wave, orig_rate, new_rate)
        )


def test_resample_other_dtypes_and_equal_rates():
    wave = torch.randn(8000, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    assert resample_audio(wave, 8000, 16000).dtype == torch.float64
    assert torch.equal(resample_audio(wave, 8000, 16000), AF.resample(wave, 8000, 16000))
    assert resample_audio(wave, 8000, 8000) is wave


def test_load_audio_resamples_a_file(tmp_path):
    wave = torch.randn(44100, generator=torch.Generator().manual_seed(2)) * 0.1
    sf.write(tmp_path / "a.wav", wave.numpy(), 44100, subtype="FLOAT")
    loaded = load_audio(tmp_path / "a.wav", 32000)
    assert torch.equal(loaded, AF.resample(wave, 44100, 32000))
