"""A synthetic speaker dataset in the VoxCeleb on-disk format.

Layout written under ``out``::

    wav/id1XXXX/<session>/<nnnnn>.wav   16-bit PCM, one folder per speaker and recording session
    train_speakers.txt                  training speakers, one id per line
    val_trials.txt, trials.txt          ``1|0 enroll test`` lists (paths relative to wav/) over
                                        speakers disjoint from training and from each other
    musan/{noise,music,speech}/*.wav    small augmentation corpora in MUSAN's layout
    rirs/*.wav                          synthetic room impulse responses
    synth.json                          the parameters; its presence marks a complete dataset

Everything is a pure function of the parameters and ``seed``: the same call writes the same
bytes, whatever the number of worker processes.
"""

from __future__ import annotations

import json
import math
import multiprocessing as mp
import os
import string
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from ...utils.progress import progress
from .channel import SessionChannel, colored_noise, synthetic_rir
from .staging import existing_output, staged_folder
from .voice import SpeakerProfile, synthesize_utterance

MARKER = "synth.json"


@dataclass(frozen=True)
class VoxCelebSynthConfig:
    """Sizes of the synthetic speaker dataset (the defaults keep the default run near 5 minutes)."""

    seed: int = 0
    num_train_speakers: int = 60
    num_val_speakers: int = 12
    num_test_speakers: int = 24
    sessions_per_speaker: int = 3
    utterances_per_session: int = 4
    min_duration: float = 2.5
    max_duration: float = 5.0
    num_val_trials: int = 600
    num_test_trials: int = 2000
    sample_rate: int = 16000
    augment_corpora: bool = True


def _rng(seed: int, *keys: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([seed, *keys]))


def speaker_id(index: int) -> str:
    """VoxCeleb-style speaker id (``id1`` + four digits)."""
    return f"id1{index:04d}"


def _session_name(rng: np.random.Generator) -> str:
    alphabet = string.ascii_letters + string.digits + "-_"
    return "".join(alphabet[i] for i in rng.integers(len(alphabet), size=11))


def _write_speaker(args: tuple[VoxCelebSynthConfig, int, str]) -> list[tuple[str, str]]:
    """Synthesise every utterance of one speaker; returns (relative path, session) pairs."""
    cfg, index, wav_root = args
    rng = _rng(cfg.seed, 1, index)
    profile = SpeakerProfile.sample(rng)
    written = []
    for s in range(cfg.sessions_per_speaker):
        srng = _rng(cfg.seed, 2, index, s)
        session = _session_name(srng)
        channel = SessionChannel.sample(srng, cfg.sample_rate)
        folder = Path(wav_root) / speaker_id(index) / session
        folder.mkdir(parents=True, exist_ok=True)
        for u in range(cfg.utterances_per_session):
            urng = _rng(cfg.seed, 3, index, s, u)
            duration = urng.uniform(cfg.min_duration, cfg.max_duration)
            speech = synthesize_utterance(profile, urng, duration, cfg.sample_rate)
            audio = channel.apply(speech, urng, cfg.sample_rate)
            rel = f"{speaker_id(index)}/{session}/{u + 1:05d}.wav"
            sf.write(folder / f"{u + 1:05d}.wav", audio, cfg.sample_rate, subtype="PCM_16")
            written.append((rel, session))
    return written


def trial_capacity(speakers: int, sessions: int, utterances_per_session: int) -> tuple[int, int]:
    """Distinct (target, non-target) pairs a split can give: targets cross sessions of one
    speaker."""
    per_speaker = sessions * utterances_per_session
    targets = speakers * (
        math.comb(per_speaker, 2) - sessions * math.comb(utterances_per_session, 2)
    )
    return targets, math.comb(speakers, 2) * per_speaker**2


def make_trials(
    utterances: dict[str, list[tuple[str, str]]],
    num_trials: int,
    rng: np.random.Generator,
    cross_session: bool = True,
) -> list[tuple[int, str, str]]:
    """Half target trials (same speaker, different sessions; any two utterances without
    ``cross_session``), half non-target; each pair once, in one order.

    Raises ValueError with the numbers when the speakers cannot give that many distinct pairs of
    each kind (a list with repeats, or without one of the classes, would score nonsense).
    """
    speakers = sorted(utterances)
    n_target = num_trials // 2
    n_nontarget = num_trials - n_target
    target_pairs = [
        (a[0], b[0])
        for spk in speakers
        for i, a in enumerate(utterances[spk])
        for b in utterances[spk][i + 1 :]
        if a[1] != b[1] or not cross_session
    ]
    sizes = [len(utterances[s]) for s in speakers]
    nontarget_capacity = (sum(sizes) ** 2 - sum(n * n for n in sizes)) // 2
    if (
        n_target < 1
        or n_nontarget < 1
        or len(target_pairs) < n_target
        or nontarget_capacity < n_nontarget
    ):
        raise ValueError(
            f"{num_trials} trials need {n_target} target pairs across sessions and {n_nontarget} "
            f"non-target pairs; {len(speakers)} speakers give {len(target_pairs)} and "
            f"{nontarget_capacity} "
            "(ask for fewer trials, or more speakers, sessions or utterances)"
        )
    chosen = rng.choice(len(target_pairs), n_target, replace=False)
    trials = [(1, *target_pairs[i]) for i in sorted(chosen)]
    if nontarget_capacity <= 4 * n_nontarget:  # dense: enumerate, then draw without replacement
        pairs = [
            (a[0], b[0])
            for x, sa in enumerate(speakers)
            for sb in speakers[x + 1 :]
            for a in utterances[sa]
            for b in utterances[sb]
        ]
        trials += [
            (0, *pairs[i]) for i in sorted(rng.choice(len(pairs), n_nontarget, replace=False))
        ]
    else:  # sparse: rejection sampling converges quickly
        seen: set[frozenset[str]] = set()
        while len(seen) < n_nontarget:
            sa, sb = rng.choice(len(speakers), 2, replace=False)
            a = utterances[speakers[sa]][rng.integers(len(utterances[speakers[sa]]))][0]
            b = utterances[speakers[sb]][rng.integers(len(utterances[speakers[sb]]))][0]
            if frozenset((a, b)) not in seen:
                seen.add(frozenset((a, b)))
                trials.append((0, a, b))
    return [trials[i] for i in rng.permutation(len(trials))]


def check_request(cfg: VoxCelebSynthConfig) -> None:
    """Refuse, with the numbers, a configuration that cannot give the lists it asks for (before any
    audio)."""
    positive = (
        "num_train_speakers",
        "sessions_per_speaker",
        "utterances_per_session",
        "sample_rate",
    )
    for name in positive:
        if getattr(cfg, name) < 1:
            raise ValueError(f"{name} must be at least 1, found {getattr(cfg, name)}")
    if not 0 < cfg.min_duration <= cfg.max_duration:
        raise ValueError(
            f"need 0 < min_duration <= max_duration, found {cfg.min_duration} and "
            f"{cfg.max_duration}"
        )
    for split, speakers, trials in (
        ("val", cfg.num_val_speakers, cfg.num_val_trials),
        ("test", cfg.num_test_speakers, cfg.num_test_trials),
    ):
        targets, nontargets = trial_capacity(
            speakers, cfg.sessions_per_speaker, cfg.utterances_per_session
        )
        if speakers < 2 or trials < 2 or targets < trials // 2 or nontargets < trials - trials // 2:
            raise ValueError(
                f"num_{split}_trials={trials} needs at least 2 {split} speakers, {trials // 2} "
                "target pairs across "
                f"sessions and {trials - trials // 2} non-target pairs; "
                f"num_{split}_speakers={speakers} with "
                f"sessions_per_speaker={cfg.sessions_per_speaker} and utterances_per_session="
                f"{cfg.utterances_per_session} give {targets} and {nontargets} (targets need 2+ "
                "sessions)"
            )


def _write_trials(path: Path, trials: list[tuple[int, str, str]]) -> None:
    path.write_text("".join(f"{label} {enroll} {test}\n" for label, enroll, test in trials))


def _write_augment_corpora(cfg: VoxCelebSynthConfig, out: Path) -> None:
    """Tiny MUSAN-like noise / music / babble folders and an RIR folder, for the augmentation
    path."""
    sr = cfg.sample_rate
    for kind in ("noise", "music", "speech"):
        (out / "musan" / kind).mkdir(parents=True)
    (out / "rirs").mkdir()
    for i in range(8):
        rng = _rng(cfg.seed, 4, i)
        sf.write(
            out / "musan/noise" / f"noise-{i:04d}.wav",
            0.05 * colored_noise(rng, 5 * sr, rng.uniform(0, 2)),
            sr,
        )
        t = np.arange(5 * sr) / sr
        notes = 220.0 * 2 ** (rng.integers(0, 24, size=10) / 12.0)
        music = sum(
            np.sin(2 * np.pi * f * t) * (np.floor(t * 2) % 10 == k) for k, f in enumerate(notes)
        )
        sf.write(out / "musan/music" / f"music-{i:04d}.wav", (0.1 * music).astype(np.float32), sr)
        babble_voice = SpeakerProfile.sample(rng)
        sf.write(
            out / "musan/speech" / f"speech-{i:04d}.wav",
            0.3 * synthesize_utterance(babble_voice, rng, 5.0, sr),
            sr,
        )
        rir = synthetic_rir(
            rng, rt60=rng.uniform(0.2, 0.8), drr_db=rng.uniform(0, 10), sample_rate=sr
        )
        sf.write(out / "rirs" / f"rir-{i:04d}.wav", rir.astype(np.float32), sr)


def generate_voxceleb(
    out: str | Path, cfg: VoxCelebSynthConfig = VoxCelebSynthConfig(), workers: int | None = None
) -> Path:
    """Write the dataset to ``out`` unless an identical one is already there; returns ``out``.

    The data is written to a temporary sibling folder and renamed into place, so an interrupted
    run never leaves a half-written dataset that later runs would mistake for a complete one.
    """
    check_request(cfg)
    out = Path(out)
    same = lambda content: content == asdict(cfg)  # noqa: E731
    if existing_output(out, MARKER, same, "a synthetic dataset") is not None:
        return out
    try:
        with staged_folder(out) as tmp:
            wav_root = tmp / "wav"
            n_total = cfg.num_train_speakers + cfg.num_val_speakers + cfg.num_test_speakers
            jobs = [(cfg, i, str(wav_root)) for i in range(n_total)]
            workers = workers or min(len(jobs), os.cpu_count() or 1)
            if workers > 1:
                with mp.get_context("spawn").Pool(workers) as pool:
                    done = pool.imap(_write_speaker, jobs, chunksize=1)  # in job order
                    per_speaker = list(progress(done, "speakers", len(jobs), "speaker", 2))
            else:
                per_speaker = [
                    _write_speaker(j) for j in progress(jobs, "speakers", unit="speaker")
                ]
            utts = {speaker_id(i): per_speaker[i] for i in range(n_total)}
            first_val, first_test = (
                cfg.num_train_speakers,
                cfg.num_train_speakers + cfg.num_val_speakers,
            )
            val = {speaker_id(i): utts[speaker_id(i)] for i in range(first_val, first_test)}
            test = {speaker_id(i): utts[speaker_id(i)] for i in range(first_test, n_total)}
            (tmp / "train_speakers.txt").write_text(
                "".join(f"{speaker_id(i)}\n" for i in range(first_val))
            )
            _write_trials(
                tmp / "val_trials.txt", make_trials(val, cfg.num_val_trials, _rng(cfg.seed, 5))
            )
            _write_trials(
                tmp / "trials.txt", make_trials(test, cfg.num_test_trials, _rng(cfg.seed, 6))
            )
            if cfg.augment_corpora:
                _write_augment_corpora(cfg, tmp)
            (tmp / MARKER).write_text(json.dumps(asdict(cfg), indent=2))
    except OSError:
        if existing_output(out, MARKER, same, "a synthetic dataset") is not None:
            return out  # another process (a DDP rank) finished the same dataset first
        raise
    return out
