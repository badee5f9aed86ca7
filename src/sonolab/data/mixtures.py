"""Simulated conversations for diarization, the EEND recipe (Fujita et al. 2019, Horiguchi et al.
2020).

For each mixture: draw N speakers (N from a configured distribution) from a single-speaker corpus
in the VoxCeleb layout; give each a sequence of its utterances separated by silences drawn from
Exp(beta) (beta per N, as in the EEND papers: larger beta, longer silences, less overlap); sum the
tracks; optionally reverberate; add noise at an SNR drawn from a set. Everything is a pure function
of (seed, index), so training mixtures are generated on the fly with no storage and are the same in
every run and worker.

Two kinds of source piece (``sources``): whole utterances, whose reference turns are the speech
regions found inside them by an energy detector (so the leading / trailing silence of real
recordings is not labelled as speech); or, as the EEND recipe does, speech segments of
``min_segment_seconds`` and more cut out of the utterances by a speech detector (energy or
silero-vad), each segment placed alone and labelled as speech from end to end.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from .audio import AUDIO_EXTENSIONS, load_audio, resample_audio
from .augment import audio_files, reverberate
from .readers.voxceleb import read_speaker_list, scan_speaker_tree
from .speech_activity import silero_regions

# The EEND-EDA papers' simulated sets: Sim1spk beta=2, Sim2spk beta=2 (also 3, 5), Sim3spk beta=5,
# Sim4spk beta=9.
DEFAULT_BETA = {1: 2.0, 2: 2.0, 3: 5.0, 4: 9.0}
LABEL_RATE = 100  # frames per second of the activity labels (the 10 ms feature hop)
SOURCES = ("utterances", "segments")
SEGMENTERS = ("energy", "silero")


@dataclass
class MixtureConfig:
    """How conversations are simulated (every field is a ``data.simulation.*`` config key).

    speakers: probability of each speaker count, e.g. ``{1: 0.25, 2: 0.25, 3: 0.25, 4: 0.25}``.
    beta: mean silence (s) between one speaker's utterances, per speaker count.
    utterances_per_speaker: inclusive range of pieces (utterances or segments) each speaker says
        (EEND: 10-20).
    snr_db: SNRs (dB) of the added noise, one drawn per mixture (EEND: 5, 10, 15, 20); empty = no
    noise.
    reverb_prob: probability that each speaker's track is convolved with a room impulse response.
    sample_rate: output rate; utterances at other rates are resampled.
    vad_threshold_db: speech = frames within this many dB of the utterance's 95th-percentile energy.
    speed_perturb: speed factors, one drawn per speaker per mixture and applied to all its
        utterances (pitch and tempo change together, as Kaldi's speed perturbation): each factor
        makes the corpus's speakers sound like other ones, for corpora with few speakers. Empty =
        off (the EEND recipe).
    sources: ``utterances`` (each piece a whole file, its turns the speech inside it) or
        ``segments`` (each piece one speech segment of ``min_segment_seconds`` or more, as the
        recipe's SAD segments: hitachi-speech/EEND egs/callhome/v1/run_prepare_shared.sh:147 keeps
        segments longer than 1.5 s). A speaker's segments are taken in file order from a random
        file on, cycling, as random_mixture.py walks a speaker's segment list from a random start.
    segmenter: what finds the speech in a source file (an utterance's turns, or the segments
        cut): ``energy`` (the detector set by ``vad_threshold_db``) or ``silero`` (silero-vad).
    """

    speakers: dict[int, float] = field(default_factory=lambda: {2: 1.0})
    beta: dict[int, float] = field(default_factory=lambda: dict(DEFAULT_BETA))
    utterances_per_speaker: tuple[int, int] = (3, 6)
    snr_db: tuple[float, ...] = (5.0, 10.0, 15.0, 20.0)
    reverb_prob: float = 0.0
    sample_rate: int = 16000
    vad_threshold_db: float = 30.0
    speed_perturb: tuple[float, ...] = ()
    sources: str = "utterances"
    min_segment_seconds: float = 1.5
    segmenter: str = "energy"

    def __post_init__(self):
        self.speakers = {int(k): float(v) for k, v in dict(self.speakers).items()}
        self.beta = {int(k): float(v) for k, v in dict(self.beta).items()}
        self.utterances_per_speaker = tuple(int(v) for v in self.utterances_per_speaker)
        self.snr_db = tuple(float(v) for v in self.snr_db)
        self.speed_perturb = tuple(float(v) for v in self.speed_perturb)
        if any(not 0.5 <= f <= 2.0 for f in self.speed_perturb):
            raise ValueError(
                f"simulation.speed_perturb factors must lie in [0.5, 2], found {self.speed_perturb}"
            )
        if (
            not self.speakers
            or min(self.speakers) < 1
            or min(self.speakers.values()) < 0
            or sum(self.speakers.values()) <= 0
        ):
            raise ValueError(
                f"simulation.speakers must map counts >= 1 to probabilities, found {self.speakers}"
            )
        missing = sorted(set(self.speakers) - set(self.beta))
        if missing:
            raise ValueError(
                f"simulation.beta has no value for {missing} speakers (keys: {sorted(self.beta)})"
            )
        if self.sources not in SOURCES:
            raise ValueError(f"simulation.sources must be one of {SOURCES}, found {self.sources!r}")
        if self.segmenter not in SEGMENTERS:
            raise ValueError(
                f"simulation.segmenter must be one of {SEGMENTERS}, found {self.segmenter!r}"
            )
        if self.min_segment_seconds < 0:
            raise ValueError(
                f"simulation.min_segment_seconds must be >= 0, found {self.min_segment_seconds}"
            )
        low, high = self.utterances_per_speaker
        if not 1 <= low <= high:
            raise ValueError(
                f"simulation.utterances_per_speaker must be 1 <= min <= max, found {low}, {high}"
            )


@dataclass
class Mixture:
    """One simulated recording: waveform, the speakers in order of first speech, and their turns
    (seconds)."""

    uri: str
    wave: torch.Tensor
    sample_rate: int
    speakers: list[str]
    turns: list[tuple[str, float, float]]

    @property
    def duration(self) -> float:
        """Length in seconds."""
        return self.wave.numel() / self.sample_rate

    def activity(self, rate: int = LABEL_RATE, num_frames: int | None = None) -> torch.Tensor:
        """``(frames, speakers)`` 0/1 activity at ``rate`` frames/s (a frame is active if its centre
        is in a turn)."""
        return turns_to_activity(
            self.turns, self.speakers, num_frames or int(self.duration * rate), rate
        )


def turns_to_activity(
    turns: list[tuple[str, float, float]],
    speakers: list[str],
    num_frames: int,
    rate: int = LABEL_RATE,
) -> torch.Tensor:
    """Frame ``t`` (centre ``(t + 0.5) / rate``) of speaker ``k`` is 1 when a turn of
    ``speakers[k]`` covers it."""
    out = torch.zeros(num_frames, len(speakers))
    column = {s: k for k, s in enumerate(speakers)}
    for speaker, start, end in turns:
        # rounded first: a boundary exactly on a frame centre must not flip with float error
        first = max(0, math.ceil(round(start * rate - 0.5, 6)))
        last = min(num_frames, math.ceil(round(end * rate - 0.5, 6)))
        out[first:last, column[speaker]] = 1.0
    return out


def speech_regions(
    wave: np.ndarray,
    sample_rate: int,
    threshold_db: float = 30.0,
    min_gap: float = 0.25,
    min_length: float = 0.1,
) -> list[tuple[float, float]]:
    """Speech regions (seconds) of one utterance: 25 ms frames (10 ms hop) within ``threshold_db``
    of the 95th-percentile frame energy, gaps under ``min_gap`` filled, regions under ``min_length``
    dropped."""
    hop, win = sample_rate // 100, int(0.025 * sample_rate)
    if wave.size < win:
        return []
    frames = np.lib.stride_tricks.sliding_window_view(wave, win)[::hop]
    db = 10 * np.log10(np.mean(frames.astype(np.float64) ** 2, axis=1) + 1e-12)
    active = db > np.percentile(db, 95) - threshold_db
    regions: list[list[float]] = []
    for t in np.flatnonzero(active):
        start, end = t * hop / sample_rate, (t * hop + win) / sample_rate
        if regions and start - regions[-1][1] < min_gap:
            regions[-1][1] = end
        else:
            regions.append([start, end])
    return [(s, e) for s, e in regions if e - s >= min_length]


class MixtureSimulator:
    """Builds mixture ``index`` of a seeded series from single-speaker utterances.

    Args:
        utterances: speaker -> audio files of that speaker.
        config: :class:`MixtureConfig`.
        seed: series seed; mixture ``i`` depends on ``(seed, i)`` only.
        noises: noise files (MUSAN layout's ``noise/``) for the additive noise; none = no noise.
        rirs: room impulse responses for reverberation.
        prefix: URIs are ``<prefix><index:06d>``.
    """

    def __init__(
        self,
        utterances: dict[str, list[Path]],
        config: MixtureConfig,
        seed: int = 0,
        noises: list[Path] | None = None,
        rirs: list[Path] | None = None,
        prefix: str = "mix",
    ):
        self.utterances = {s: list(p) for s, p in sorted(utterances.items()) if p}
        self.speaker_ids = list(self.utterances)
        self.config = config
        self.seed = seed
        self.noises = list(noises or [])
        self.rirs = list(rirs or [])
        self.prefix = prefix
        most = max(config.speakers)
        if len(self.speaker_ids) < most:
            raise ValueError(
                f"simulation.speakers asks for up to {most} speakers per mixture; "
                f"the corpus has {len(self.speaker_ids)}"
            )
        self._regions: dict[Path, list[tuple[float, float]]] = {}

    def _load(self, path: Path, speed: float = 1.0) -> tuple[np.ndarray, list[tuple[float, float]]]:
        """A source file at the simulation rate, played ``speed`` times faster, and its speech
        regions (seconds, found once per file by the configured segmenter)."""
        sr = self.config.sample_rate
        wave = load_audio(path, sr)
        if path not in self._regions:
            if self.config.segmenter == "silero":
                self._regions[path] = silero_regions(wave, sr)
            else:
                self._regions[path] = speech_regions(wave.numpy(), sr, self.config.vad_threshold_db)
        if speed == 1.0:
            return wave.numpy(), self._regions[path]
        # played `speed` times faster: read as if sampled at sr * speed, brought back to sr
        faster = resample_audio(wave, int(round(sr * speed)), sr).numpy()
        return faster, [(s / speed, e / speed) for s, e in self._regions[path]]

    def _utterances(
        self, files: list[Path], picks: np.ndarray, speed: float
    ) -> list[tuple[np.ndarray, list[tuple[float, float]]]]:
        """Whole files as pieces, each with its speech regions as turns."""
        return [self._load(files[int(i)], speed) for i in picks]

    def _segments(
        self, speaker: str, first: int, count: int, speed: float
    ) -> list[tuple[np.ndarray, list[tuple[float, float]]]]:
        """``count`` speech segments of ``min_segment_seconds`` or more, cut from the speaker's
        files in order from file ``first`` on (cycling), each a piece that is speech throughout."""
        files, sr = self.utterances[speaker], self.config.sample_rate
        pieces: list[tuple[np.ndarray, list[tuple[float, float]]]] = []
        # every pass over the files adds at least one segment, so `count` passes are enough
        for step in range(len(files) * count):
            wave, regions = self._load(files[(first + step) % len(files)], speed)
            for start, end in regions:
                if end - start >= self.config.min_segment_seconds:
                    piece = wave[int(round(start * sr)) : int(round(end * sr))]
                    pieces.append((piece, [(0.0, piece.size / sr)]))
                    if len(pieces) == count:
                        return pieces
            if step == len(files) - 1 and not pieces:
                raise ValueError(
                    f"speaker {speaker}: none of its {len(files)} files holds a speech segment of "
                    f"{self.config.min_segment_seconds} s or more (simulation.min_segment_seconds, "
                    f"segmenter {self.config.segmenter}); first file: {files[0]}"
                )
        return pieces

    def _reverberate(self, track: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        rir = load_audio(self.rirs[int(rng.integers(len(self.rirs)))], self.config.sample_rate)
        return reverberate(torch.from_numpy(track), rir).numpy()

    def __call__(self, index: int) -> Mixture:
        cfg = self.config
        rng = np.random.default_rng([self.seed, index])
        counts = sorted(cfg.speakers)
        probs = np.array([cfg.speakers[c] for c in counts], dtype=np.float64)
        n = counts[int(rng.choice(len(counts), p=probs / probs.sum()))]
        chosen = [self.speaker_ids[i] for i in rng.choice(len(self.speaker_ids), n, replace=False)]
        sr = cfg.sample_rate
        tracks, turns = [], []
        for speaker in chosen:
            files = self.utterances[speaker]
            count = int(
                rng.integers(cfg.utterances_per_speaker[0], cfg.utterances_per_speaker[1] + 1)
            )
            if cfg.sources == "segments":
                first = int(rng.integers(len(files)))
            else:
                picks = rng.choice(len(files), count, replace=count > len(files))
            # drawn only when configured, so mixtures without it stay what they were
            speed = (
                float(cfg.speed_perturb[int(rng.integers(len(cfg.speed_perturb)))])
                if cfg.speed_perturb
                else 1.0
            )
            sources = (
                self._segments(speaker, first, count, speed)
                if cfg.sources == "segments"
                else self._utterances(files, picks, speed)
            )
            pieces, position = [], 0
            for wave, regions in sources:
                silence = int(round(rng.exponential(cfg.beta[n]) * sr))
                pieces += [np.zeros(silence, dtype=np.float32), wave]
                onset = (position + silence) / sr
                # to the millisecond, as RTTM stores them: the written reference is exactly these
                # turns
                turns += [(speaker, round(onset + s, 3), round(onset + e, 3)) for s, e in regions]
                position += silence + wave.size
            track = np.concatenate(pieces)
            if self.rirs and rng.random() < cfg.reverb_prob:
                track = self._reverberate(track, rng)
            tracks.append(track)
        mixture = np.zeros(max(t.size for t in tracks), dtype=np.float32)
        for track in tracks:
            mixture[: track.size] += track
        if self.noises and cfg.snr_db:
            mixture = self._add_noise(mixture, rng)
        turns.sort(key=lambda t: (t[1], t[0]))
        order = list(dict.fromkeys(t[0] for t in turns))  # speakers in order of first speech
        order += [
            s for s in chosen if s not in order
        ]  # a speaker whose audio held no detected speech
        return Mixture(f"{self.prefix}{index:06d}", torch.from_numpy(mixture), sr, order, turns)

    def _add_noise(self, mixture: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        noise = load_audio(
            self.noises[int(rng.integers(len(self.noises)))], self.config.sample_rate
        ).numpy()
        if noise.size < mixture.size:  # loop short noise files
            noise = np.tile(noise, math.ceil(mixture.size / max(1, noise.size)))
        start = int(rng.integers(0, noise.size - mixture.size + 1))
        noise = noise[start : start + mixture.size]
        snr = float(self.config.snr_db[int(rng.integers(len(self.config.snr_db)))])
        power = lambda x: float(np.mean(x.astype(np.float64) ** 2)) + 1e-12  # noqa: E731
        return (
            mixture + noise * math.sqrt(power(mixture) / (power(noise) * 10 ** (snr / 10)))
        ).astype(np.float32)


def simulator_from_tree(
    tree: str | Path,
    config: MixtureConfig,
    seed: int = 0,
    speakers_file: str | Path | None = None,
    noise_dir: str | Path | None = None,
    rir_dir: str | Path | None = None,
    prefix: str = "mix",
    extensions: tuple[str, ...] = AUDIO_EXTENSIONS,
    exclude_file: str | Path | None = None,
) -> MixtureSimulator:
    """A simulator over the speakers of a VoxCeleb-layout ``tree`` (only those in ``speakers_file``
    when given, none of those in ``exclude_file``: e.g. held-out speakers for a test set), with
    noise and impulse responses from folders searched recursively (absent folders: none)."""
    speakers = read_speaker_list(speakers_file) if speakers_file else None
    excluded = set(read_speaker_list(exclude_file)) if exclude_file else set()
    utterances: dict[str, list[Path]] = {}
    for utt in scan_speaker_tree(tree, extensions, speakers):
        if utt.speaker not in excluded:
            utterances.setdefault(utt.speaker, []).append(Path(tree) / utt.path)
    noises = (
        audio_files(Path(noise_dir), extensions) if noise_dir and Path(noise_dir).is_dir() else []
    )
    rirs = audio_files(Path(rir_dir), extensions) if rir_dir and Path(rir_dir).is_dir() else []
    return MixtureSimulator(utterances, config, seed, noises, rirs, prefix)
