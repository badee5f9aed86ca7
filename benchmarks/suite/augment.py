"""Waveform augmentation in the loaders: the VoxCeleb recipes' training crops (speed perturbation,
then MUSAN noise or RIR reverberation by WeSpeaker's scheme) made in one process, with sonolab's
reverberation (scipy's FFT convolution at a fast length) against torchaudio's ``fftconvolve`` (at
the exact full-convolution length), the same draws in both."""

from __future__ import annotations

import tempfile
import time

import numpy as np
import torch
import torchaudio.functional as AF

from sonolab.data.augment import waveform
from sonolab.data.samplers import Draw
from sonolab.run import build_datamodule
from suite.common import Row, Settings, interleaved
from suite.overhead import _compose


def _torchaudio_reverberate(wave: torch.Tensor, rir: torch.Tensor) -> torch.Tensor:
    return AF.fftconvolve(wave, rir / (rir.norm() + 1e-8))[: wave.numel()]


def _crops(dataset, keys: list[Draw], reverberate) -> tuple[list[torch.Tensor], float]:
    """The crops of ``keys`` with ``reverberate`` in the augmentation, and crops / s."""
    plain = waveform.reverberate
    waveform.reverberate = reverberate  # what WaveformAugment._reverb calls
    try:
        start = time.perf_counter()
        crops = [dataset[key]["wave"] for key in keys]
        return crops, len(keys) / (time.perf_counter() - start)
    finally:
        waveform.reverberate = plain


def augment(settings: Settings) -> list[Row]:
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
        outputs = {}

        def timed(name: str, reverberate) -> float:
            outputs[name], crops_per_second = _crops(dataset, keys, reverberate)
            return crops_per_second

        base, fast = interleaved(
            lambda: timed("torchaudio", _torchaudio_reverberate),
            lambda: timed("scipy", waveform.reverberate),
            settings.repeats,
        )
    difference = max(
        float((a - b).abs().max()) for a, b in zip(outputs["torchaudio"], outputs["scipy"])
    )
    reverberated = np.mean([not torch.equal(a, b) for a, b in zip(*outputs.values())])
    return [
        Row(
            "augment",
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
    ]


CASES = {"augment": augment}
