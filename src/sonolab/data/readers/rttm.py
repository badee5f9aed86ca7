"""Diarization references: RTTM, UEM and URI lists (AMI / pyannote / NIST formats).

Parsed here rather than with pyannote.database's loaders because those go through pandas and
report neither the file line nor the field at fault; the results are pyannote.core objects, so
DER is then computed by pyannote.metrics on exactly what was read.

* RTTM: ``SPEAKER <uri> <channel> <onset> <duration> <NA> <NA> <speaker> <NA> <NA>``
* UEM: ``<uri> <channel> <start> <end>``
* list: one URI per line (URIs may be non-ASCII; files are read as UTF-8).
"""

from __future__ import annotations

from pathlib import Path

from pyannote.core import Annotation, Segment, Timeline

from ...utils.errors import DataFormatError
from ._text import numbered_lines, parse_float, read_id_list

RTTM_FORMAT = "'SPEAKER <uri> <channel> <onset> <duration> <NA> <NA> <speaker> <NA> <NA>'"
UEM_FORMAT = "'<uri> <channel> <start> <end>'"


def read_rttm(path: str | Path) -> dict[str, Annotation]:
    """Speaker turns per URI; non-SPEAKER records (e.g. SPKR-INFO) are skipped."""
    path = Path(path)
    annotations: dict[str, Annotation] = {}
    for number, raw, line in numbered_lines(path, f"an RTTM file ({RTTM_FORMAT})"):
        fields = line.split()
        if fields[0] != "SPEAKER":
            if fields[0].isupper():  # other RTTM record types carry no speaker turn
                continue
            raise DataFormatError(path, RTTM_FORMAT, line=number, found=raw)
        if len(fields) < 8:
            raise DataFormatError(path, RTTM_FORMAT, line=number, found=raw)
        uri, speaker = fields[1], fields[7]
        onset = parse_float(fields[3], path, number, "onset", minimum=0.0)
        duration = parse_float(fields[4], path, number, "duration", minimum=0.0)
        annotation = annotations.setdefault(uri, Annotation(uri=uri))
        turn = Segment(onset, onset + duration)
        annotation[turn, annotation.new_track(turn)] = speaker
    return annotations


def read_uem(path: str | Path) -> dict[str, Timeline]:
    """Scored regions per URI."""
    path = Path(path)
    timelines: dict[str, Timeline] = {}
    for number, raw, line in numbered_lines(path, f"a UEM file ({UEM_FORMAT})"):
        fields = line.split()
        if len(fields) != 4:
            raise DataFormatError(path, UEM_FORMAT, line=number, found=raw)
        start = parse_float(fields[2], path, number, "start", minimum=0.0)
        end = parse_float(fields[3], path, number, "end")
        if end <= start:
            raise DataFormatError(path, "end > start", line=number, found=raw)
        timelines.setdefault(fields[0], Timeline(uri=fields[0])).add(Segment(start, end))
    return timelines


def read_uri_list(path: str | Path) -> list[str]:
    """URIs (meeting / file ids), one per line, each once."""
    return read_id_list(path, "URI")
