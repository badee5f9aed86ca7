"""A fixed set of simulated conversations on disk, in the layout of the AMI excerpts.

Layout written under ``out``::

    audio/<uri>.wav                 16-bit PCM mixtures
    <subset>.lst                    URIs, one per line
    <subset>.rttm, <subset>.uem     reference turns and the scored region (the whole recording)
    mixtures.json                   parameters and corpus statistics; its presence marks a complete
    set

The set is written to a temporary folder beside ``out`` and renamed into place, like the speaker
dataset, so an interrupted run never leaves a half-written set that looks complete.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import soundfile as sf

from ...utils.progress import progress
from ..mixtures import MixtureConfig, MixtureSimulator
from ..readers.rttm import write_rttm, write_uem
from ..turn_statistics import mixture_statistics
from .staging import write_once

MARKER = "mixtures.json"
# MixtureConfig fields added after sets were first written: recorded only when they differ from
# their defaults, so a set written before they existed is still recognised as the same set.
ADDED_LATER = ("sources", "min_segment_seconds", "segmenter")


def recorded_simulation(config: MixtureConfig) -> dict:
    """The simulation parameters a set records (:data:`ADDED_LATER` fields only when changed)."""
    fields, defaults = asdict(config), asdict(MixtureConfig())
    return {k: v for k, v in fields.items() if k not in ADDED_LATER or v != defaults[k]}


def write_mixture_set(
    out: str | Path,
    simulator: MixtureSimulator,
    count: int,
    subset: str = "test",
    first_index: int = 0,
) -> dict:
    """Write mixtures ``first_index .. first_index + count - 1`` of ``simulator`` to ``out``;
    returns the content of ``mixtures.json`` (parameters and :func:`mixture_statistics`). A complete
    identical set is left as it is; anything else already at ``out`` is refused."""
    params = {
        "count": count,
        "subset": subset,
        "first_index": first_index,
        "seed": simulator.seed,
        "speakers_in_corpus": len(simulator.speaker_ids),
        "simulation": recorded_simulation(simulator.config),
    }

    def write(tmp: Path) -> dict:
        (tmp / "audio").mkdir()
        turns, regions, activities = {}, {}, []
        for index in progress(range(first_index, first_index + count), "mixtures", unit="mixture"):
            mixture = simulator(index)
            sf.write(
                tmp / "audio" / f"{mixture.uri}.wav",
                mixture.wave.numpy(),
                mixture.sample_rate,
                subtype="PCM_16",
            )
            turns[mixture.uri] = mixture.turns
            regions[mixture.uri] = (0.0, mixture.duration)
            activities.append(mixture.activity())
        (tmp / f"{subset}.lst").write_text("".join(uri + "\n" for uri in turns), encoding="utf-8")
        write_rttm(tmp / f"{subset}.rttm", turns)
        write_uem(tmp / f"{subset}.uem", regions)
        return {"statistics": mixture_statistics(activities)}

    return write_once(out, MARKER, params, "a mixture set", write)
