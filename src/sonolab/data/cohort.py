"""The score-normalisation cohort: which training utterances it holds, and where the embeddings of a
tested checkpoint are cached (so evaluate.py does not embed them again)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np

from ..utils.io import content_key
from .readers.voxceleb import Utterance


def draw_cohort(utterances: list[Utterance], per_speaker: int, seed: int) -> list[Utterance]:
    """``per_speaker`` utterances of each speaker at random, taken round-robin over the speaker's
    sessions in a random order (so a cohort of 5 spans up to 5 sessions); seeded, returned in path
    order."""
    rng = np.random.default_rng([seed, 23])
    sessions: dict[str, dict[str, list[Utterance]]] = {}
    for utt in sorted(utterances, key=lambda u: u.path):
        sessions.setdefault(utt.speaker, {}).setdefault(utt.session, []).append(utt)
    chosen: list[Utterance] = []
    for speaker in sorted(sessions):
        pools = [list(sessions[speaker][name]) for name in sorted(sessions[speaker])]
        for pool in pools:
            rng.shuffle(pool)
        pools = [pools[i] for i in rng.permutation(len(pools))]
        taken = 0
        while taken < per_speaker and any(pools):
            for pool in pools:
                if pool and taken < per_speaker:
                    chosen.append(pool.pop())
                    taken += 1
    return sorted(chosen, key=lambda u: u.path)


def cohort_cache_file(
    checkpoint: str | Path | None, cohort: list[str], settings: dict[str, Any]
) -> Path | None:
    """``<run>/cohort/<checkpoint stem>_<key>.pt`` beside the run's ``checkpoints/`` folder, keyed
    by the checkpoint file (path, size, time), the cohort's utterances (paths, and each file's size
    and time: audio changed in place is embedded again) and the evaluation
    ``settings``; None when no checkpoint file is tested (weights in memory)."""
    if not checkpoint or not Path(checkpoint).is_file():
        return None
    ckpt = Path(checkpoint).resolve()
    stat = ckpt.stat()
    key = {
        "checkpoint": [str(ckpt), stat.st_size, stat.st_mtime_ns],
        "eval_max_seconds": settings.get("eval_max_seconds"),
        "sample_rate": settings.get("sample_rate"),
        "cohort": list(cohort),
        "cohort_audio": content_key(
            str(Path(settings.get("train_dir") or ".") / path) for path in cohort
        ),
        "train_dir": settings.get("train_dir"),
    }
    tag = hashlib.sha1(json.dumps(key).encode()).hexdigest()[:12]
    return ckpt.parent.parent / "cohort" / f"{ckpt.stem}_{tag}.pt"
