"""Sound-event-detection soundscapes in DESED's layout, made from real ESC-50 / ESC-10 clips: each
soundscape is background noise with 1 to ``max_events`` clips placed at random onsets, and its
strong labels are where each placed clip's sound is.

Layout written under ``out`` (DESED's names; ``<part>`` is ``train``, ``validation``, ``eval``)::

    audio/train/weak/<name>.wav, audio/validation/<name>.wav, audio/eval/<name>.wav
    metadata/train/weak.tsv                 filename  event_labels       (comma-separated; weak)
    metadata/train/strong.tsv               filename  onset  offset  event_label (kept for
                                            analysis; weak-label training never reads it)
    metadata/validation/validation.tsv      filename  onset  offset  event_label
    metadata/validation/validation_durations.tsv   filename  duration
    metadata/eval/eval.tsv, metadata/eval/eval_durations.tsv
    metadata/<part>/<part>_sources.tsv      filename  onset  source (the ESC clip of each event)
    synth.json                              parameters; its presence marks a complete dataset

What is placed is each clip's active region: ESC clips are often mostly silence, so a clip is
trimmed to its first and last 20 ms frames within ``trim_db`` of its loudest frame before it is
placed, and its label spans exactly that trimmed sound. Clips of the training folds make the
training soundscapes, those of ``validation_fold`` the validation ones, those of ``eval_fold`` the
evaluation ones: no recording is heard in two parts. The background is pink noise at a level drawn
per soundscape; each event is scaled to an event-to-background ratio drawn from ``snr_db``.
Everything is drawn from ``seed``, soundscape by soundscape, so a dataset is the same wherever it
is made.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from ...utils.progress import progress
from ..audio import load_audio
from ..readers.esc50 import read_esc50_meta
from .staging import write_once

MARKER = "synth.json"
FRAME_SECONDS = 0.02  # the energy frames of the trimming
PARTS = ("train", "validation", "eval")


@dataclass
class SoundscapeSynthConfig:
    """What to generate (each a ``--flag`` of ``sonolab synth soundscapes``); ``source`` is the
    ESC-50-layout tree (``meta/esc50.csv`` + ``audio/``) whose clips are placed."""

    source: str = ""
    train_soundscapes: int = 400
    validation_soundscapes: int = 100
    eval_soundscapes: int = 100
    seconds: float = 10.0
    max_events: int = 3
    sample_rate: int = 22050
    validation_fold: int = 4
    eval_fold: int = 5
    trim_db: float = 30.0
    snr_db_min: float = 0.0
    snr_db_max: float = 15.0
    background_db_min: float = -50.0
    background_db_max: float = -35.0
    esc10: bool = True
    seed: int = 0

    def __post_init__(self):
        if not self.source:
            raise ValueError("source must name an ESC-50-layout tree (meta/esc50.csv + audio/)")
        if self.validation_fold == self.eval_fold or not {self.validation_fold, self.eval_fold} <= {
            1,
            2,
            3,
            4,
            5,
        }:
            raise ValueError(
                "validation_fold and eval_fold must be two different folds 1..5, found "
                f"{self.validation_fold} and {self.eval_fold}"
            )
        if not 1 <= self.max_events <= 10:
            raise ValueError(f"max_events must be 1..10, found {self.max_events}")
        if self.seconds < 5.0:
            raise ValueError(f"seconds must be at least 5 (an ESC clip), found {self.seconds}")
        if self.snr_db_min > self.snr_db_max or self.background_db_min > self.background_db_max:
            raise ValueError("each *_min must be at most its *_max")


def active_region(wave: np.ndarray, sample_rate: int, trim_db: float) -> tuple[int, int]:
    """``(start, end)`` samples of the first and last 20 ms frames whose energy is within
    ``trim_db`` dB of the loudest frame's (the whole clip if it is silent)."""
    hop = max(1, int(round(FRAME_SECONDS * sample_rate)))
    frames = len(wave) // hop
    if frames == 0:
        return 0, len(wave)
    energy = (wave[: frames * hop].reshape(frames, hop) ** 2).mean(axis=1)
    if energy.max() <= 0:
        return 0, len(wave)
    level = 10 * np.log10(np.maximum(energy, 1e-20) / energy.max())
    loud = np.flatnonzero(level > -trim_db)
    return int(loud[0] * hop), int(min(len(wave), (loud[-1] + 1) * hop))


def pink_noise(samples: int, rng: np.random.Generator) -> np.ndarray:
    """Unit-RMS noise with a 1/f power spectrum (white noise shaped in the frequency domain)."""
    spectrum = np.fft.rfft(rng.standard_normal(samples))
    spectrum /= np.sqrt(np.maximum(np.arange(len(spectrum)), 1.0))
    noise = np.fft.irfft(spectrum, samples)
    return noise / max(float(np.sqrt(np.mean(noise**2))), 1e-12)


def _rms_db(wave: np.ndarray) -> float:
    return 10 * np.log10(max(float(np.mean(wave**2)), 1e-20))


def _soundscape(
    events: list[tuple[np.ndarray, str, str]],
    config: SoundscapeSynthConfig,
    rng: np.random.Generator,
) -> tuple[np.ndarray, list[tuple[float, float, str, str]]]:
    """Background plus ``events`` (trimmed waveforms with their labels and source clips) at
    random onsets; the labels ``(onset, offset, label, source)`` in time order."""
    sr = config.sample_rate
    n = int(round(config.seconds * sr))
    background_db = rng.uniform(config.background_db_min, config.background_db_max)
    mix = pink_noise(n, rng) * 10 ** (background_db / 20)
    labels = []
    for wave, label, clip in events:
        wave = wave[:n]
        onset = int(rng.integers(0, n - len(wave) + 1))
        snr = rng.uniform(config.snr_db_min, config.snr_db_max)
        gain = 10 ** ((background_db + snr - _rms_db(wave)) / 20)
        mix[onset : onset + len(wave)] += gain * wave
        labels.append((onset / sr, (onset + len(wave)) / sr, label, clip))
    peak = float(np.abs(mix).max())
    if peak > 0.99:  # keep the file in range; the labels do not move
        mix *= 0.99 / peak
    return mix.astype(np.float32), sorted(labels)


def _tsv(path: Path, header: str, rows: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(header + "\n" + "".join(r + "\n" for r in rows), encoding="utf-8")


def generate_soundscapes(out: str | Path, config: SoundscapeSynthConfig) -> dict:
    """Write the soundscapes of the ESC-50-layout dataset at ``config.source`` to ``out`` (no-op if
    the same dataset is already there); returns ``synth.json``'s content (parameters, classes,
    event counts per part)."""
    source = Path(config.source)
    clips = read_esc50_meta(source / "meta" / "esc50.csv")
    if config.esc10:
        clips = [c for c in clips if c.esc10]  # the meta's esc10 column
    classes = sorted({c.category for c in clips})
    folds = {
        "train": [c for c in clips if c.fold not in (config.validation_fold, config.eval_fold)],
        "validation": [c for c in clips if c.fold == config.validation_fold],
        "eval": [c for c in clips if c.fold == config.eval_fold],
    }
    counts = {
        "train": config.train_soundscapes,
        "validation": config.validation_soundscapes,
        "eval": config.eval_soundscapes,
    }
    for part, members in folds.items():
        if not members and counts[part]:
            raise ValueError(f"no clips of {source} fall in the {part} fold(s)")
    cache: dict[str, np.ndarray] = {}

    def trimmed(filename: str) -> np.ndarray:
        if filename not in cache:
            wave = load_audio(source / "audio" / filename, config.sample_rate).numpy()
            start, end = active_region(wave, config.sample_rate, config.trim_db)
            cache[filename] = wave[start:end]
        return cache[filename]

    def write(tmp: Path) -> dict:
        events_per_part = {}
        for offset, part in enumerate(PARTS):
            audio_dir = tmp / "audio" / ("train/weak" if part == "train" else part)
            audio_dir.mkdir(parents=True)
            strong, weak, durations, sources = [], [], [], []
            for index in progress(range(counts[part]), f"{part} soundscapes", unit="file"):
                rng = np.random.default_rng([config.seed, offset, index])
                chosen = rng.choice(
                    len(folds[part]), size=int(rng.integers(1, config.max_events + 1))
                )
                events = [
                    (trimmed(c.filename), c.category, c.filename)
                    for c in (folds[part][k] for k in chosen)
                ]
                wave, labels = _soundscape(events, config, rng)
                name = f"{part}_{index:05d}.wav"
                sf.write(audio_dir / name, wave, config.sample_rate, subtype="PCM_16")
                strong += [f"{name}\t{on:.3f}\t{off:.3f}\t{label}" for on, off, label, _ in labels]
                sources += [f"{name}\t{on:.3f}\t{clip}" for on, _, _, clip in labels]
                weak.append(f"{name}\t{','.join(sorted({label for _, _, label, _ in labels}))}")
                durations.append(f"{name}\t{config.seconds:.3f}")
            events_per_part[part] = len(strong)
            _tsv(tmp / f"metadata/{part}/{part}_sources.tsv", "filename\tonset\tsource", sources)
            strong_header = "filename\tonset\toffset\tevent_label"
            if part == "train":
                _tsv(tmp / "metadata/train/weak.tsv", "filename\tevent_labels", weak)
                _tsv(tmp / "metadata/train/strong.tsv", strong_header, strong)
            else:
                _tsv(tmp / f"metadata/{part}/{part}.tsv", strong_header, strong)
                _tsv(tmp / f"metadata/{part}/{part}_durations.tsv", "filename\tduration", durations)
        return {"classes": classes, "events": events_per_part, "source": str(source)}

    parameters = {**asdict(config), "source": str(source.resolve())}
    return write_once(Path(out), MARKER, parameters, "a soundscape dataset", write)
