"""A synthetic multi-label tagging dataset in AudioSet's layout, from the synthetic ESC-50 sound
classes.

Layout written under ``out``::

    audio/<YTID>.wav                          clips of ``seconds`` (default 10 s, 16 kHz PCM)
    class_labels_indices.csv                  index,mid,display_name (mids /m/synth00 ...)
    balanced_train_segments.csv               YTID,start_seconds,end_seconds,positive_labels, after
    unbalanced_train_segments.csv             Google's three '#' comment lines, as the official
    eval_segments.csv                         files
    synth.json                                parameters; its presence marks a complete dataset

Each clip holds 1 to ``max_labels`` events of different classes, each a stretch of 2-5 s of that
class's sound (:func:`sonolab.data.synth.esc50.synth_clip`) at a random time and level; its labels
are those classes. Classes are drawn with Zipf-like frequencies (class k about 1 / (k + 1) as often
as class 0), so rare classes exist as in AudioSet and balanced sampling has something to balance.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from ...utils.progress import progress
from .esc50 import Esc50SynthConfig, class_list, synth_clip
from .staging import write_once

MARKER = "synth.json"


@dataclass
class AudioSetSynthConfig:
    """What to generate (each a ``--flag`` of ``python -m sonolab.data.synth audioset``)."""

    num_classes: int = 10
    train_clips: int = 300
    eval_clips: int = 100
    # rows of unbalanced_train_segments.csv, which full-AudioSet recipes read beside the balanced
    # set
    unbalanced_clips: int = 100
    max_labels: int = 3
    seconds: float = 10.0
    sample_rate: int = 16000
    seed: int = 0

    def __post_init__(self):
        if not 1 <= self.max_labels <= self.num_classes:
            raise ValueError(f"max_labels must be 1..num_classes, found {self.max_labels}")
        if self.seconds < 2.0:
            raise ValueError(
                f"seconds must be at least 2 (events last 2-5 s), found {self.seconds}"
            )


def _clip(
    config: AudioSetSynthConfig, classes: list[tuple[str, str]], rng: np.random.Generator
) -> tuple[np.ndarray, list[int]]:
    sr = config.sample_rate
    n = int(round(config.seconds * sr))
    frequency = 1.0 / (np.arange(config.num_classes) + 1.0)
    count = int(rng.integers(1, config.max_labels + 1))
    labels = sorted(
        int(k)
        for k in rng.choice(config.num_classes, count, replace=False, p=frequency / frequency.sum())
    )
    clip = np.zeros(n, dtype=np.float32)
    for k in labels:
        length = min(config.seconds, float(rng.uniform(2.0, 5.0)))
        texture, pattern = classes[k]
        event = synth_clip(
            texture,
            pattern,
            Esc50SynthConfig(
                num_classes=max(2, config.num_classes),
                seconds=length,
                sample_rate=sr,
                clips_per_class=5,
            ),
            rng,
        )
        start = int(rng.integers(0, n - event.size + 1))
        clip[start : start + event.size] += event * 10 ** (rng.uniform(-6, 0) / 20)
    return np.clip(clip, -1, 1), labels


def _segments(path: Path, rows: list[tuple[str, float, list[str]]], seconds: float) -> None:
    with path.open("w", encoding="utf-8") as f:
        f.write(
            f"# Segments csv created by sonolab's synthetic generator\n# num_ytids={len(rows)}\n"
            "# YTID, start_seconds, end_seconds, positive_labels\n"
        )
        for ytid, start, mids in rows:
            f.write(f'{ytid}, {start:.3f}, {start + seconds:.3f}, "{",".join(mids)}"\n')


def generate_audioset(out: str | Path, config: AudioSetSynthConfig | None = None) -> dict:
    """Write the dataset to ``out`` (no-op if the same dataset is already there); returns
    ``synth.json``."""
    config = config or AudioSetSynthConfig()
    classes = class_list(Esc50SynthConfig(num_classes=config.num_classes, seed=config.seed))
    mids = [f"/m/synth{k:02d}" for k in range(config.num_classes)]

    def write(tmp: Path) -> dict:
        (tmp / "audio").mkdir()
        with (tmp / "class_labels_indices.csv").open("w", encoding="utf-8") as f:
            f.write("index,mid,display_name\n")
            f.writelines(
                f'{k},{mid},"{pattern} {texture}"\n'
                for k, (mid, (texture, pattern)) in enumerate(zip(mids, classes))
            )
        counts = np.zeros(config.num_classes, dtype=int)
        for subset, total, offset in (
            ("balanced_train", config.train_clips, 0),
            ("eval", config.eval_clips, 1),
            ("unbalanced_train", config.unbalanced_clips, 2),
        ):
            rows = []
            for index in progress(range(total), subset, unit="clip"):
                rng = np.random.default_rng([config.seed, offset, index])
                wave, labels = _clip(config, classes, rng)
                ytid = f"syn{offset}{index:06d}"
                sf.write(tmp / "audio" / f"{ytid}.wav", wave, config.sample_rate, subtype="PCM_16")
                rows.append((ytid, 0.0, [mids[k] for k in labels]))
                if subset != "eval":
                    counts[labels] += 1
            _segments(tmp / f"{subset}_segments.csv", rows, config.seconds)
        return {"classes": [f"{p} {t}" for t, p in classes], "train_label_counts": counts.tolist()}

    return write_once(out, MARKER, asdict(config), "an AudioSet-layout dataset", write)
