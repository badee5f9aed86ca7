"""A fixed set of simulated conversations on disk, in the layout of the AMI excerpts.

Layout written under ``out``::

    audio/<uri>.wav                 16-bit PCM mixtures
    <subset>.lst                    URIs, one per line
    <subset>.rttm, <subset>.uem     reference turns and the scored region (the whole recording)
    mixtures.json                   parameters and corpus statistics; its presence marks a complete set

The set is written to a temporary folder beside ``out`` and renamed into place, like the speaker
dataset, so an interrupted run never leaves a half-written set that looks complete.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import soundfile as sf

from ..mixtures import MixtureSimulator, mixture_statistics
from ..readers.rttm import write_rttm, write_uem
from .staging import existing_output, staged_folder

MARKER = "mixtures.json"


def write_mixture_set(out: str | Path, simulator: MixtureSimulator, count: int, subset: str = "test",
                      first_index: int = 0) -> dict:
    """Write mixtures ``first_index .. first_index + count - 1`` of ``simulator`` to ``out``; returns the
    content of ``mixtures.json`` (parameters and :func:`mixture_statistics`). A complete identical set
    is left as it is; anything else already at ``out`` is refused."""
    out = Path(out)
    params = {"count": count, "subset": subset, "first_index": first_index, "seed": simulator.seed,
              "speakers_in_corpus": len(simulator.speaker_ids), "simulation": asdict(simulator.config)}
    params = json.loads(json.dumps(params))  # tuples -> lists, int keys -> str, as they are read back
    existing = existing_output(out, MARKER, lambda content: content.get("parameters") == params, "a mixture set")
    if existing is not None:
        return existing
    with staged_folder(out) as tmp:
        (tmp / "audio").mkdir()
        turns, regions, activities = {}, {}, []
        for index in range(first_index, first_index + count):
            mixture = simulator(index)
            sf.write(tmp / "audio" / f"{mixture.uri}.wav", mixture.wave.numpy(), mixture.sample_rate, subtype="PCM_16")
            turns[mixture.uri] = mixture.turns
            regions[mixture.uri] = (0.0, mixture.duration)
            activities.append(mixture.activity())
        (tmp / f"{subset}.lst").write_text("".join(uri + "\n" for uri in turns), encoding="utf-8")
        write_rttm(tmp / f"{subset}.rttm", turns)
        write_uem(tmp / f"{subset}.uem", regions)
        content = {"parameters": params, "statistics": mixture_statistics(activities)}
        (tmp / MARKER).write_text(json.dumps(content, indent=2) + "\n")
    return content
