"""A synthetic sound-event dataset in the ESC-50 layout, so tagging runs and tests work offline.

Layout written under ``out`` (the real ESC-50's)::

    audio/<fold>-<source id>-A-<target>.wav     5 s clips, 44.1 kHz, 16-bit PCM
    meta/esc50.csv                               filename, fold, target, category, esc10, src_file,
    take synth.json                                   parameters; its presence marks a complete
    dataset

Every class is a *texture* (harmonic stack, band of noise, pure tone, clicks) shaped by a *temporal
pattern* (rising or falling glide, slow or fast tremolo, regular or irregular pulses, percussive
decays, swells). Where a clip sits in frequency, its loudness, its event timing and its background
noise are drawn per clip from ranges shared by all classes, so neither loudness, duration nor one
frequency identifies a class: the mean spectrum tells textures apart only roughly, and the pattern,
which needs the time axis, is what separates classes with the same texture (a linear classifier on
mean log-mel is far from perfect; the tests check it). Clips are a pure function of (seed, class,
index).
"""

from __future__ import annotations

import csv
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from ...utils.progress import progress
from .staging import write_once

MARKER = "synth.json"
TEXTURES = ("harmonic", "noise_band", "tone", "clicks")
PATTERNS = (
    "rising",
    "falling",
    "slow_tremolo",
    "fast_tremolo",
    "regular_pulses",
    "irregular_pulses",
    "decays",
    "swell",
)


@dataclass
class Esc50SynthConfig:
    """What to generate (each a ``--flag`` of ``python -m sonolab.data.synth esc50``).

    num_classes: classes (texture x pattern pairs, at most 32), in the order the seed draws them.
    clips_per_class: clips per class, spread evenly over ``folds`` (ESC-50: 40 and 5).
    seconds: clip length (ESC-50: 5 s). sample_rate: 44100 like the real clips.
    The ``esc10`` column marks every other class (targets 0, 2, 4, ...), a subset in the place of
    the real ESC-10 so that ``data.esc10=true`` (selection and re-indexing) runs on generated data
    too.
    """

    num_classes: int = 10
    clips_per_class: int = 40
    folds: int = 5
    seconds: float = 5.0
    sample_rate: int = 44100
    seed: int = 0

    def __post_init__(self):
        if not 2 <= self.num_classes <= len(TEXTURES) * len(PATTERNS):
            raise ValueError(
                f"num_classes must be 2..{len(TEXTURES) * len(PATTERNS)}, found {self.num_classes}"
            )
        if self.clips_per_class < self.folds or self.clips_per_class % self.folds:
            raise ValueError(
                f"clips_per_class ({self.clips_per_class}) must be a multiple of folds "
                f"({self.folds})"
            )


def class_list(config: Esc50SynthConfig) -> list[tuple[str, str]]:
    """The (texture, pattern) of each class: a seeded draw of distinct pairs."""
    pairs = [(t, p) for t in TEXTURES for p in PATTERNS]
    order = np.random.default_rng([config.seed, 7]).permutation(len(pairs))
    return [pairs[i] for i in order[: config.num_classes]]


def _texture(kind: str, n: int, sr: int, freq: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A texture following the instantaneous frequency track ``freq`` (Hz, one value per sample)."""
    phase = 2 * np.pi * np.cumsum(freq) / sr
    if kind == "tone":
        return np.sin(phase + rng.uniform(0, 2 * np.pi))
    if kind == "harmonic":
        harmonics = int(rng.integers(4, 9))
        tilt = rng.uniform(0.5, 1.5)
        out = np.zeros(n)
        for h in range(1, harmonics + 1):
            alias = freq * h < sr / 2 - 500  # no harmonic above Nyquist
            out += alias * np.sin(h * phase + rng.uniform(0, 2 * np.pi)) / h**tilt
        return out
    if kind == "noise_band":
        # white noise ring-modulated by the track: a band of noise centred on freq, ~ +-bandwidth
        # wide
        bandwidth = rng.uniform(150, 500)
        spectrum = np.fft.rfft(rng.normal(size=n))
        spectrum[np.fft.rfftfreq(n, 1 / sr) > bandwidth] = 0
        return np.fft.irfft(spectrum, n) * np.sin(phase) * 4
    # clicks: short broadband bursts whose rate follows the track (freq / 40 clicks per second)
    out = np.zeros(n)
    rate = freq / 40.0
    positions = np.flatnonzero(np.diff(np.floor(np.cumsum(rate) / sr)) > 0)
    burst = rng.normal(size=int(0.004 * sr)) * np.hanning(int(0.004 * sr))
    for p in positions:
        out[p : p + burst.size] += burst[: max(0, min(burst.size, n - p))]
    return out


def _pattern(kind: str, n: int, sr: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Frequency multiplier (glides) and amplitude envelope of a pattern, one value per sample."""
    t = np.arange(n) / sr
    length = n / sr
    glide = np.ones(n)
    envelope = np.ones(n)
    if kind in ("rising", "falling"):
        octaves = rng.uniform(1.0, 2.0) * (1 if kind == "rising" else -1)
        period = length / int(rng.integers(1, 4))  # 1-3 sweeps
        glide = 2 ** (octaves * ((t % period) / period - 0.5))
    elif kind in ("slow_tremolo", "fast_tremolo"):
        rate = rng.uniform(1.5, 3.5) if kind == "slow_tremolo" else rng.uniform(9, 15)
        envelope = 0.5 + 0.5 * np.sin(2 * np.pi * rate * t + rng.uniform(0, 2 * np.pi))
    elif kind in ("regular_pulses", "irregular_pulses"):
        rate = rng.uniform(3, 6)
        if kind == "regular_pulses":
            onsets = np.arange(rng.uniform(0, 1 / rate), length, 1 / rate)
        else:
            onsets = np.cumsum(rng.exponential(1 / rate, size=int(length * rate * 3)))
            onsets = onsets[onsets < length]
        width = rng.uniform(0.04, 0.08)
        envelope = np.zeros(n)
        for onset in onsets:
            envelope = np.maximum(
                envelope, (np.abs(t - onset - width / 2) < width / 2).astype(float)
            )
    elif kind == "decays":
        onsets = np.sort(rng.uniform(0, length - 0.3, size=int(rng.integers(2, 5))))
        envelope = np.zeros(n)
        for onset in onsets:
            envelope += (t >= onset) * np.exp(-(t - onset) / rng.uniform(0.08, 0.25))
    else:  # swell: slow rises cut off sharply
        period = length / int(rng.integers(1, 3))
        envelope = ((t % period) / period) ** 2
    return glide, envelope


def synth_clip(
    texture: str, pattern: str, config: Esc50SynthConfig, rng: np.random.Generator
) -> np.ndarray:
    """One clip of the class (texture, pattern) with per-clip frequency, loudness and background."""
    sr = config.sample_rate
    n = int(round(config.seconds * sr))
    base = 2 ** rng.uniform(np.log2(200), np.log2(2500))  # shared by every class
    glide, envelope = _pattern(pattern, n, sr, rng)
    clip = _texture(texture, n, sr, np.minimum(base * glide, sr / 2 - 1000), rng) * envelope
    clip /= np.sqrt(np.mean(clip**2)) + 1e-9
    # background: brown-ish noise at 10-30 dB below the event
    background = np.cumsum(rng.normal(size=n))
    background -= np.convolve(background, np.ones(2001) / 2001, mode="same")
    background /= np.sqrt(np.mean(background**2)) + 1e-9
    clip = clip + background * 10 ** (-rng.uniform(10, 30) / 20)
    level = 10 ** (
        rng.uniform(-30, -12) / 20
    )  # RMS -30..-12 dBFS: loudness says nothing of the class
    clip *= level / (np.sqrt(np.mean(clip**2)) + 1e-9)
    return np.clip(clip, -1, 1).astype(np.float32)


def generate_esc50(out: str | Path, config: Esc50SynthConfig | None = None) -> dict:
    """Write the dataset to ``out`` (no-op if the same dataset is already there); returns
    ``synth.json``."""
    config = config or Esc50SynthConfig()
    classes = class_list(config)

    def write(tmp: Path) -> dict:
        (tmp / "audio").mkdir()
        (tmp / "meta").mkdir()
        rows = []
        for target, (texture, pattern) in enumerate(progress(classes, "classes", unit="class")):
            for index in range(config.clips_per_class):
                fold = index % config.folds + 1
                source = f"{config.seed:02d}{target:03d}{index:03d}"
                name = f"{fold}-{source}-A-{target}.wav"
                rng = np.random.default_rng([config.seed, target, index])
                sf.write(
                    tmp / "audio" / name,
                    synth_clip(texture, pattern, config, rng),
                    config.sample_rate,
                    subtype="PCM_16",
                )
                rows.append(
                    [name, fold, target, f"{pattern}_{texture}", target % 2 == 0, source, "A"]
                )
        with (tmp / "meta" / "esc50.csv").open("w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            writer.writerow(["filename", "fold", "target", "category", "esc10", "src_file", "take"])
            writer.writerows(rows)
        return {"classes": [f"{p}_{t}" for t, p in classes]}

    return write_once(out, MARKER, asdict(config), "an ESC-50-layout dataset", write)
