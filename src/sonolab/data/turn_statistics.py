"""Conversation statistics of references (overlap ratio, silence ratio, speakers, turn and
recording lengths), to set simulated conversations beside the corpus they stand in for.

The EEND papers tabulate the overlap ratio as the time two or more speakers talk over the time
one or more talk; the silence ratio here is the time nobody talks over the whole scored time.

Run on a set of references:
``python -m sonolab.data.turn_statistics REFERENCE.rttm [--uem SCORED.uem] [--list URIS.lst]``
(files or ``{uri}`` templates, as ``data.sets`` takes them).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable, Iterator

import numpy as np
import torch
from pyannote.core import Annotation, Timeline

from .mixtures import LABEL_RATE, turns_to_activity


def mixture_statistics(
    activities: Iterable[torch.Tensor], rate: int = LABEL_RATE
) -> dict[str, float]:
    """Corpus statistics of ``(frames, speakers)`` 0/1 activities, read one at a time (a long corpus
    is never held whole): overlap ratio (overlapped / total speech time), silence ratio, speakers
    per recording, mean turn length (s) and mean duration (s)."""
    speech = overlap = silence = frames = 0.0
    turn_lengths, speakers = [], []
    for act in activities:
        active = act.sum(dim=1)
        speech += float((active >= 1).sum())
        overlap += float((active >= 2).sum())
        silence += float((active == 0).sum())
        frames += act.shape[0]
        speakers.append(int((act.sum(dim=0) > 0).sum()))
        for k in range(act.shape[1]):
            edges = torch.diff(torch.cat([torch.zeros(1), act[:, k], torch.zeros(1)]))
            starts, ends = torch.nonzero(edges == 1).flatten(), torch.nonzero(edges == -1).flatten()
            turn_lengths += ((ends - starts).float() / rate).tolist()
    return {
        "recordings": len(speakers),
        "overlap_ratio": overlap / max(speech, 1.0),
        "silence_ratio": silence / max(frames, 1.0),
        "speakers_per_recording": float(np.mean(speakers)) if speakers else 0.0,
        "mean_turn_seconds": float(np.mean(turn_lengths)) if turn_lengths else 0.0,
        "mean_duration_seconds": frames / rate / max(len(speakers), 1),
    }


def reference_activities(
    references: dict[str, Annotation], uems: dict[str, Timeline], rate: int = LABEL_RATE
) -> Iterator[torch.Tensor]:
    """One activity per scored region of each recording (its reference cropped to the region),
    made as they are read; a recording without a UEM is taken from 0 to its last turn's end."""
    for uri, reference in references.items():
        labels = sorted(reference.labels())
        regions = uems.get(uri) or Timeline([reference.get_timeline().extent()])
        for region in regions:
            turns = [
                (label, seg.start - region.start, seg.end - region.start)
                for seg, _, label in reference.crop(region).itertracks(yield_label=True)
            ]
            yield turns_to_activity(turns, labels, int(round(region.duration * rate)), rate)


def describe(statistics: dict[str, float], expected_overlap: float | None = None) -> str:
    """One line for the log: the overlap ratio beside the declared one, then the rest."""
    declared = f" (declared {expected_overlap:.3f})" if expected_overlap is not None else ""
    return (
        f"overlap ratio {statistics['overlap_ratio']:.3f}{declared}, "
        f"silence ratio {statistics['silence_ratio']:.3f}, "
        f"{statistics['speakers_per_recording']:.2f} speakers per recording, "
        f"mean turn {statistics['mean_turn_seconds']:.2f} s, "
        f"mean length {statistics['mean_duration_seconds']:.1f} s "
        f"({statistics['recordings']} recordings)"
    )


def main(argv: list[str] | None = None) -> int:
    """Print the statistics of a set of references as JSON (and one line on stderr)."""
    from .diarization import per_uri  # the datamodule's reading of files and {uri} templates
    from .readers.rttm import read_rttm, read_uem, read_uri_list

    parser = argparse.ArgumentParser(
        prog="python -m sonolab.data.turn_statistics", description=__doc__
    )
    parser.add_argument("rttm", help="reference turns: one RTTM file or a {uri} template")
    parser.add_argument("--uem", default=None, help="scored regions (file or {uri} template)")
    parser.add_argument(
        "--list", default=None, help="URIs to include, one per line (needed for {uri} templates)"
    )
    args = parser.parse_args(argv)
    uris = read_uri_list(args.list) if args.list else None
    if uris is None and "{uri}" in args.rttm:
        parser.error("a {uri} template needs --list")

    references = per_uri(args.rttm, uris or [], read_rttm)
    uems = per_uri(args.uem, uris or [], read_uem) if args.uem else {}
    if uris is not None:
        references = {u: r for u, r in references.items() if u in uris}
    statistics = mixture_statistics(reference_activities(references, uems))
    print(json.dumps(statistics, indent=2))
    print(describe(statistics), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
