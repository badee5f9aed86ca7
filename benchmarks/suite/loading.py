"""What the loaders do per item, each on and off in one process with the same draws:

- the VoxCeleb recipes' training crops (speed perturbation, then MUSAN noise or RIR reverberation
  by WeSpeaker's scheme), sonolab's reverberation (scipy's FFT convolution at a fast length)
  against torchaudio's ``fftconvolve`` (at the exact full-convolution length);
- clips read and resampled (AudioSet's 44.1 kHz to the 32 kHz of HTS-AT and PANNs), sonolab's
  resampling (torchaudio's kernel built once per pair of rates) against torchaudio's functional
  form (the kernel built at every call).
"""

from __future__ import annotations

import tempfile
from functools import partial
from pathlib import Path
from unittest import mock

import numpy as np
import soundfile as sf
import torch
import torchaudio.functional as AF

from sonolab.data import audio
from sonolab.data.augment import waveform
from sonolab.data.samplers import Draw
from sonolab.run import build_datamodule
from suite.common import Row, Settings, interleaved, kept_rate
from suite.overhead import _compose


def _torchaudio_reverberate(wave: torch.Tensor, rir: torch.Tensor) -> torch.Tensor:
    return AF.fftconvolve(wave, rir / (rir.norm() + 1e-8))[: wave.numel()]


def _patched(module, name: str, replacement, work):
    """``work()`` with ``module.name`` (what the loaders call) replaced by ``replacement``."""
    with mock.patch.object(module, name, replacement):
        return work()


def _augmented_crops(settings: Settings) -> Row:
    """Crops / s of the recipe's training crops, reverberation by scipy against torchaudio."""
    count = 64 if settings.quick else 512
    with tempfile.TemporaryDirectory() as out:
        cfg = _compose(
            ("experiment=vox2_ecapa_c1024_aam", "data=synth_voxceleb", "data.num_workers=0"),
            "cpu",
            out,
        )
        datamodule = build_datamodule(cfg)
        datamodule.prepare_data()
        datamodule.setup("fit")
        dataset = datamodule.train_dataloader().dataset
        keys = [Draw(i % len(dataset), 0, i) for i in range(count)]

        def crops() -> list[torch.Tensor]:
            return [dataset[key]["wave"] for key in keys]

        outputs = {}
        torchaudio = partial(_patched, waveform, "reverberate", _torchaudio_reverberate, crops)
        base, fast = interleaved(
            kept_rate(outputs, "torchaudio", torchaudio, count),
            kept_rate(outputs, "scipy", crops, count),
            settings.repeats,
        )
    pairs = list(zip(outputs["torchaudio"], outputs["scipy"]))
    difference = max(float((a - b).abs().max()) for a, b in pairs)
    reverberated = np.mean([not torch.equal(a, b) for a, b in pairs])
    return Row(
        "loading",
        f"VoxCeleb recipe crops (vox2_ecapa_c1024_aam on the synthetic set: 2 s, speed "
        f"perturbation, MUSAN + RIR), {count} crops, one process",
        "reverberation by torchaudio fftconvolve",
        "by scipy fftconvolve (sonolab)",
        "crops/s",
        base,
        fast,
        check=f"max abs. difference {difference:.1e} (peak-normalised crops); "
        f"{reverberated:.0%} of the crops differ (the reverberated ones)",
    )


def _resampled_clips(settings: Settings) -> Row:
    """Clips / s read from WAV files at 44.1 kHz and resampled to 32 kHz, kernel cached or not."""
    count = 8 if settings.quick else 40
    generator = torch.Generator().manual_seed(0)
    with tempfile.TemporaryDirectory() as folder:
        paths = [Path(folder) / f"{i}.wav" for i in range(count)]
        for path in paths:
            sf.write(path, (torch.randn(441000, generator=generator) * 0.1).numpy(), 44100)

        def clips() -> list[torch.Tensor]:
            return [audio.load_audio(path, 32000) for path in paths]

        outputs = {}
        functional_clips = partial(_patched, audio, "resample_audio", AF.resample, clips)
        base, fast = interleaved(
            kept_rate(outputs, "functional", functional_clips, count),
            kept_rate(outputs, "cached", clips, count),
            settings.repeats,
        )
    pairs = zip(outputs["functional"], outputs["cached"])
    equal = all(torch.equal(a, b) for a, b in pairs)
    return Row(
        "loading",
        f"{count} WAV clips of 10 s at 44.1 kHz read and resampled to 32 kHz, one process",
        "torchaudio resample (kernel at every call)",
        "kernel built once per pair of rates (sonolab)",
        "clips/s",
        base,
        fast,
        check="outputs equal bit for bit" if equal else "OUTPUTS DIFFER",
    )


def loading(settings: Settings) -> list[Row]:
    """The recipe's augmented crops, and clips resampled from 44.1 to 32 kHz."""
    return [_augmented_crops(settings), _resampled_clips(settings)]


CASES = {"loading": loading}
