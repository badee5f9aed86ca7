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
import multiprocessing as mp
import os
import shutil
import string
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from .channel import SessionChannel, colored_noise, synthetic_rir
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


def make_trials(
    utterances: dict[str, list[tuple[str, str]]], num_trials: int, rng: np.random.Generator
) -> list[tuple[int, str, str]]:
    """Half target trials (same speaker, different sessions), half non-target; no duplicates."""
    speakers = sorted(utterances)
    if len(speakers) < 2:
        raise ValueError("trials need at least two speakers")
    n_target = num_trials // 2
    targets: set[tuple[int, str, str]] = set()
    nontargets: set[tuple[int, str, str]] = set()
    for _ in range(num_trials * 50):  # bounded: tiny speaker sets may not have enough distinct pairs
        if len(targets) + len(nontargets) >= num_trials:
            break
        if len(targets) < n_target:
            utts = utterances[speakers[rng.integers(len(speakers))]]
            a, b = (utts[i] for i in rng.choice(len(utts), 2, replace=False))
            if a[1] != b[1]:  # targets always cross recording sessions
                targets.add((1, a[0], b[0]))
        else:
            sa, sb = rng.choice(len(speakers), 2, replace=False)
            a = utterances[speakers[sa]][rng.integers(len(utterances[speakers[sa]]))]
            b = utterances[speakers[sb]][rng.integers(len(utterances[speakers[sb]]))]
            nontargets.add((0, a[0], b[0]))
    trials = targets | nontargets
    ordered = sorted(trials, key=lambda t: (t[1], t[2]))
    return [ordered[i] for i in rng.permutation(len(ordered))]


def _write_trials(path: Path, trials: list[tuple[int, str, str]]) -> None:
    path.write_text("".join(f"{label} {enroll} {test}\n" for label, enroll, test in trials))


def _write_augment_corpora(cfg: VoxCelebSynthConfig, out: Path) -> None:
    """Tiny MUSAN-like noise / music / babble folders and an RIR folder, for the augmentation path."""
    sr = cfg.sample_rate
    for kind in ("noise", "music", "speech"):
        (out / "musan" / kind).mkdir(parents=True)
    (out / "rirs").mkdir()
    for i in range(8):
        rng = _rng(cfg.seed, 4, i)
        sf.write(out / "musan/noise" / f"noise-{i:04d}.wav", 0.05 * colored_noise(rng, 5 * sr, rng.uniform(0, 2)), sr)
        t = np.arange(5 * sr) / sr
        notes = 220.0 * 2 ** (rng.integers(0, 24, size=10) / 12.0)
        music = sum(np.sin(2 * np.pi * f * t) * (np.floor(t * 2) % 10 == k) for k, f in enumerate(notes))
        sf.write(out / "musan/music" / f"music-{i:04d}.wav", (0.1 * music).astype(np.float32), sr)
        babble_voice = SpeakerProfile.sample(rng)
        sf.write(out / "musan/speech" / f"speech-{i:04d}.wav", 0.3 * synthesize_utterance(babble_voice, rng, 5.0, sr), sr)
        rir = synthetic_rir(rng, rt60=rng.uniform(0.2, 0.8), drr_db=rng.uniform(0, 10), sample_rate=sr)
        sf.write(out / "rirs" / f"rir-{i:04d}.wav", rir.astype(np.float32), sr)


def generate_voxceleb(out: str | Path, cfg: VoxCelebSynthConfig = VoxCelebSynthConfig(), workers: int | None = None) -> Path:
    """Write the dataset to ``out`` unless an identical one is already there; returns ``out``.

    The data is written to a temporary sibling folder and renamed into place, so an interrupted
    run never leaves a half-written dataset that later runs would mistake for a complete one.
    """
    out = Path(out)
    marker = out / MARKER
    if marker.exists():
        if json.loads(marker.read_text()) == asdict(cfg):
            return out
        raise FileExistsError(f"{out} holds a synthetic dataset made with other parameters ({marker}); "
                              "choose another --out or delete it")
    if out.exists() and any(out.iterdir()):
        raise FileExistsError(f"{out} exists and is not a synthetic dataset (no {MARKER}); refusing to write into it")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        wav_root = tmp / "wav"
        n_total = cfg.num_train_speakers + cfg.num_val_speakers + cfg.num_test_speakers
        jobs = [(cfg, i, str(wav_root)) for i in range(n_total)]
        workers = workers or min(len(jobs), os.cpu_count() or 1)
        if workers > 1:
            with mp.get_context("spawn").Pool(workers) as pool:
                per_speaker = pool.map(_write_speaker, jobs, chunksize=1)
        else:
            per_speaker = [_write_speaker(job) for job in jobs]
        utts = {speaker_id(i): per_speaker[i] for i in range(n_total)}
        train = [speaker_id(i) for i in range(cfg.num_train_speakers)]
        val = {s: utts[s] for s in (speaker_id(i) for i in range(cfg.num_train_speakers, cfg.num_train_speakers + cfg.num_val_speakers))}
        test = {s: utts[s] for s in (speaker_id(i) for i in range(cfg.num_train_speakers + cfg.num_val_speakers, n_total))}
        (tmp / "train_speakers.txt").write_text("".join(f"{s}\n" for s in train))
        _write_trials(tmp / "val_trials.txt", make_trials(val, cfg.num_val_trials, _rng(cfg.seed, 5)))
        _write_trials(tmp / "trials.txt", make_trials(test, cfg.num_test_trials, _rng(cfg.seed, 6)))
        if cfg.augment_corpora:
            _write_augment_corpora(cfg, tmp)
        (tmp / MARKER).write_text(json.dumps(asdict(cfg), indent=2))
        if out.exists():
            out.rmdir()
        tmp.rename(out)
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)
        if marker.exists() and json.loads(marker.read_text()) == asdict(cfg):
            return out  # another process (a DDP rank) finished the same dataset first
        raise
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out
