"""Tagging and diarization inference rates: each tagging family's test clips one at a time
against the batches its test loader gives, and EEND-EDA diarizing one long recording in one pass
against 30 s windows (joined by clustering); real-time factors beside."""

from __future__ import annotations

import statistics
import tempfile
import time
from dataclasses import replace
from functools import partial
from pathlib import Path

import torch
from diarization_inference import long_recording
from omegaconf import OmegaConf

from sonolab.inference.diarization import DecodingConfig, diarize_recording
from sonolab.run import build_datamodule, build_task
from suite.common import Row, Settings, interleaved, synchronise
from suite.overhead import FAMILIES, _compose, _tagging_loss

TAGGING = {what: family for what, family in FAMILIES.items() if family.loss is _tagging_loss}
WINDOW_SECONDS = 30.0


def _test_clips(cfg, device: str) -> tuple[list[tuple[torch.Tensor, torch.Tensor]], object]:
    """The family's test batches (as its test loader gives them, on ``device``) and its data
    info."""
    datamodule = build_datamodule(cfg)
    datamodule.prepare_data()
    datamodule.setup("test")
    batches = [(b["wave"].to(device), b["length"].to(device)) for b in datamodule.test_dataloader()]
    return batches, datamodule.info


def _logits(task, batches, one_at_a_time: bool, device: str) -> tuple[torch.Tensor, float]:
    """Every clip's logits and the seconds it took, clip by clip or batch by batch."""
    out = []
    synchronise(device)
    start = time.perf_counter()
    with torch.no_grad():
        for wave, length in batches:
            if one_at_a_time:
                out.extend(task(wave[i : i + 1], length[i : i + 1]) for i in range(len(wave)))
            else:
                out.append(task(wave, length))
    synchronise(device)
    return torch.cat(out).float().cpu(), time.perf_counter() - start


def _tagging_row(what: str, cfg, settings: Settings) -> Row:
    """One tagging family's test clips, one at a time against its test loader's batches."""
    batches, info = _test_clips(cfg, settings.device)
    if settings.quick:
        batches = batches[:1]
    torch.manual_seed(0)
    task = build_task(cfg, info).to(settings.device).eval()
    clips = sum(len(wave) for wave, _ in batches)
    audio = sum(float(length.sum()) for _, length in batches) / info.sample_rate
    outputs = {}

    def rate(one: bool) -> float:
        outputs[one], seconds = _logits(task, batches, one, settings.device)
        return clips / seconds

    for one in (True, False):  # warm-up: first calls of each shape allocate (and tune, on a GPU)
        _logits(task, batches[:1], one, settings.device)
    base, fast = interleaved(partial(rate, True), partial(rate, False), settings.repeats)
    difference = float((outputs[True] - outputs[False]).abs().max())
    rtf = [clips / statistics.median(r) / audio for r in (base, fast)]
    return Row(
        "inference",
        f"tagging, {what}: {clips} test clips of {audio / clips:.1f} s, untrained weights",
        "one clip at a time",
        f"test loader's batches of {cfg.data.batch_size}",
        "clips/s",
        base,
        fast,
        check=f"max abs. logit difference {difference:.1e}; "
        f"real-time factor {rtf[0]:.5f} -> {rtf[1]:.5f}",
    )


def _tagging_rows(settings: Settings) -> list[Row]:
    rows = []
    for name, family in TAGGING.items():
        what, overrides = family.here(name)
        with tempfile.TemporaryDirectory() as out:
            rows.append(_tagging_row(what, _compose(overrides, settings.device, out), settings))
    return rows


def _diarization_row(settings: Settings) -> Row:
    minutes = 5.0 if settings.quick else 30.0
    with tempfile.TemporaryDirectory() as out:
        cfg = _compose(FAMILIES["EEND-EDA small (synth_eend_eda)"].overrides, settings.device, out)
        torch.manual_seed(0)
        task = build_task(cfg, {"sample_rate": 16000, "max_speakers": 4})
        task = task.to(settings.device).eval()
        whole = DecodingConfig.from_config(OmegaConf.to_container(cfg.task.decoding))
        windowed = replace(whole, window_seconds=WINDOW_SECONDS)
        wav = Path(out) / "long.wav"
        duration = long_recording(wav, minutes)
        frames = {}

        def rate(decoding: DecodingConfig) -> float:
            synchronise(settings.device)
            start = time.perf_counter()
            with torch.no_grad():
                # the count given (the recording's 2 speakers): untrained weights would estimate
                # none, and the windows would then have nothing to cluster
                probs, _ = diarize_recording(
                    task.model, task.features, wav, 16000, decoding, 2, settings.device
                )
            synchronise(settings.device)
            frames[decoding is whole] = probs.shape
            return duration / (time.perf_counter() - start)

        base, fast = interleaved(partial(rate, whole), partial(rate, windowed), settings.repeats)
    return Row(
        "inference",
        f"diarization, EEND-EDA small (synth_eend_eda): {minutes:g} min of simulated "
        "conversation, untrained weights",
        "the whole recording in one pass",
        f"{WINDOW_SECONDS:g} s windows, hop half a window, speakers joined by clustering",
        "audio s/s",
        base,
        fast,
        check=f"activities {tuple(frames[True])} / {tuple(frames[False])} (frames, speakers; "
        "count given: 2); real-time factor "
        f"{1 / statistics.median(base):.4f} -> {1 / statistics.median(fast):.4f}",
    )


def inference(settings: Settings) -> list[Row]:
    """The tagging rows, then the diarization row."""
    return [*_tagging_rows(settings), _diarization_row(settings)]


CASES = {"inference": inference}
