"""Diarization references: RTTM, UEM and URI lists (AMI / pyannote / NIST formats).

Parsed here rather than with pyannote.database's loaders because those go through pandas and
report neither the file line nor the field at fault; the results are pyannote.core objects, so
DER is then computed by pyannote.metrics on exactly what was read.

* RTTM: ``SPEAKER <uri> <channel> <onset> <duration> <NA> <NA> <speaker> <NA> <NA>``
* UEM: ``<uri> <channel> <start> <end>``
* list: one URI per line (URIs may be non-ASCII; files are read as UTF-8).
"""

from __future__ import annotations

import difflib
import logging
from collections.abc import Mapping
from pathlib import Path

from pyannote.core import Annotation, Segment, Timeline

from ...utils.errors import DataFormatError
from ...utils.io import atomic_file
from ..skips import SkipLog
from ._text import escape_field, numbered_lines, parse_float, read_id_list, unescape_field

log = logging.getLogger(__name__)

RTTM_FORMAT = "'SPEAKER <uri> <channel> <onset> <duration> <NA> <NA> <speaker> <NA> <NA>'"
UEM_FORMAT = "'<uri> <channel> <start> <end>'"
# NIST RTTM record types (RT-09 evaluation plan). Only SPEAKER carries a speaker turn; the others
# are skipped, and anything else (a typo such as 'SPEAKR') is an error rather than a lost turn.
RTTM_TYPES = (
    "SPEAKER",
    "SPKR-INFO",
    "SEGMENT",
    "NOSCORE",
    "NO_RT_METADATA",
    "LEXEME",
    "NON-LEX",
    "NON-SPEECH",
    "FILLER",
    "EDIT",
    "IP",
    "SU",
    "CB",
    "A/P",
)


# how far past the audio's end a turn or scored region may reach and be cropped without a word:
# times written with 2-3 decimals, and decoders that disagree by a few samples on a file's length
END_TOLERANCE = 0.1


def _past_end(
    path: Path,
    number: int,
    raw: str,
    what: str,
    start: float,
    end: float,
    durations: Mapping[str, float] | None,
    uri: str,
    skips: SkipLog,
    skip: bool,
) -> tuple[float, float] | None:
    """``(start, end)`` of a turn or region checked against its recording's length (``durations``,
    seconds; None: not checked): cropped when it reaches past the end by up to END_TOLERANCE;
    beyond that an error at ``path:line``, or with ``skip`` cropped (or, when it starts past the
    end, dropped) and counted. None when dropped."""
    duration = durations.get(uri) if durations is not None else None
    if duration is None or end <= duration + END_TOLERANCE:
        return (start, min(end, duration)) if duration is not None else (start, end)
    outside = start >= duration
    if not skip:
        raise DataFormatError(
            path,
            f"a {what} inside its recording's audio (0 to {duration:.3f} s); data.on_missing=skip "
            "crops or drops it and counts it",
            line=number,
            found=raw,
        )
    reason = f"{what} {'past' if outside else 'running past'} the end of its audio " + (
        "dropped" if outside else "cropped"
    )
    skips.add(f"{reason} (data.on_missing=skip)", f"{path}:{number}")
    return None if outside else (start, duration)


def read_rttm(
    path: str | Path,
    skips: SkipLog | None = None,
    durations: Mapping[str, float] | None = None,
    skip_past_end: bool = False,
) -> dict[str, Annotation]:
    """Speaker turns per URI; other known record types (e.g. SPKR-INFO) carry none and are skipped.

    Zero-duration turns, and turns whose end rounds to their onset (an onset of 1e300), hold no
    speech (pyannote.core drops empty segments): they are counted in ``skips`` (logged when none
    is given). A file without any SPEAKER turn is an error. With ``durations`` (``{uri: seconds}``
    of the audio) a turn past its recording's end is an error naming the line, or with
    ``skip_past_end`` cropped / dropped and counted.
    """
    path = Path(path)
    own_log = skips is None
    skips = SkipLog() if skips is None else skips
    annotations: dict[str, Annotation] = {}
    for number, raw, line in numbered_lines(path, f"an RTTM file ({RTTM_FORMAT})"):
        fields = line.split()
        if fields[0] not in RTTM_TYPES:
            raise DataFormatError(
                path,
                f"an RTTM record type ({', '.join(RTTM_TYPES)}): {RTTM_FORMAT}",
                line=number,
                found=raw,
            )
        if fields[0] != "SPEAKER":
            continue
        if len(fields) < 8:
            raise DataFormatError(path, RTTM_FORMAT, line=number, found=raw)
        uri, speaker = unescape_field(fields[1]), unescape_field(fields[7])
        onset = parse_float(fields[3], path, number, "onset", minimum=0.0)
        duration = parse_float(fields[4], path, number, "duration", minimum=0.0)
        annotation = annotations.setdefault(uri, Annotation(uri=uri))
        if duration == 0:
            skips.add("zero-duration RTTM turn ignored", f"{path}:{number}")
            continue
        if not Segment(onset, onset + duration):
            skips.add(
                "RTTM turn ignored: its end rounds to its onset (no time in it)", f"{path}:{number}"
            )
            continue
        span = _past_end(
            path, number, raw, "turn", onset, onset + duration, durations, uri, skips, skip_past_end
        )
        if span is None:
            continue
        turn = Segment(*span)
        annotation[turn, annotation.new_track(turn)] = speaker
    if not annotations:
        raise DataFormatError(
            path, f"at least one SPEAKER turn ({RTTM_FORMAT})", found="none (an empty reference)"
        )
    if own_log:
        skips.report(log, str(path))
    return annotations


def read_uem(
    path: str | Path,
    skips: SkipLog | None = None,
    durations: Mapping[str, float] | None = None,
    skip_past_end: bool = False,
) -> dict[str, Timeline]:
    """Scored regions per URI; an empty file is an error (it would score nothing). With
    ``durations`` (``{uri: seconds}`` of the audio) a region past its recording's end is an error
    naming the line (it would score speech that does not exist as missed), or with
    ``skip_past_end`` cropped / dropped and counted in ``skips``."""
    path = Path(path)
    own_log = skips is None
    skips = SkipLog() if skips is None else skips
    timelines: dict[str, Timeline] = {}
    for number, raw, line in numbered_lines(path, f"a UEM file ({UEM_FORMAT})"):
        fields = line.split()
        if len(fields) != 4:
            raise DataFormatError(path, UEM_FORMAT, line=number, found=raw)
        uri = unescape_field(fields[0])
        start = parse_float(fields[2], path, number, "start", minimum=0.0)
        end = parse_float(fields[3], path, number, "end")
        if end <= start or not Segment(start, end):
            raise DataFormatError(path, "end > start", line=number, found=raw)
        span = _past_end(
            path,
            number,
            raw,
            "scored region",
            start,
            end,
            durations,
            uri,
            skips,
            skip_past_end,
        )
        if span is not None:
            timelines.setdefault(uri, Timeline(uri=uri)).add(Segment(*span))
    if not timelines:
        raise DataFormatError(
            path, f"at least one scored region ({UEM_FORMAT})", found="an empty file"
        )
    if own_log:
        skips.report(log, str(path))
    return timelines


def read_uri_list(path: str | Path) -> list[str]:
    """URIs (meeting / file ids), one per line, each once (``%XX`` escapes as RTTM's)."""
    return [unescape_field(uri) for uri in read_id_list(path, "URI")]


def write_rttm(path: str | Path, turns: dict[str, list[tuple[str, float, float]]]) -> None:
    """Write ``{uri: [(speaker, start, end), ...]}`` as RTTM SPEAKER lines (3 decimals, in time
    order), atomically; a URI or label that a space would split is escaped
    (:func:`~sonolab.data.readers._text.escape_field`: ``my meeting`` -> ``my%20meeting``), as the
    readers here read it back."""
    with atomic_file(path) as out:
        for uri, items in turns.items():
            for speaker, start, end in sorted(items, key=lambda t: (t[1], t[0])):
                out.write(
                    f"SPEAKER {escape_field(uri)} 1 {start:.3f} {end - start:.3f} <NA> <NA> "
                    f"{escape_field(str(speaker))} <NA> <NA>\n"
                )


def write_uem(path: str | Path, regions: dict[str, tuple[float, float]]) -> None:
    """Write one scored region ``{uri: (start, end)}`` per URI as UEM lines (URIs escaped as by
    :func:`write_rttm`)."""
    with atomic_file(path) as out:
        for uri, (start, end) in regions.items():
            out.write(f"{escape_field(uri)} 1 {start:.3f} {end:.3f}\n")


def match_uris(
    sources: dict[str, tuple[str | Path, set[str]]],
    skip: bool = False,
    skips: SkipLog | None = None,
    selection: str | None = None,
) -> set[str]:
    """The URIs found in every source (list, audio, RTTM, UEM, ...); the others are reported.

    With ``selection`` (a source's name: the list) only that source's URIs are wanted: a URI that
    the other sources hold besides (one RTTM file for many subsets) is no problem, though it still
    serves as a look-alike hint.

    ``sources`` maps a name to ``(where it was read, its URIs)``. A URI missing from some source
    is an error naming it and where it was and was not found, with a look-alike URI from the
    other sources when one exists (AMI's ``trñ00`` audio beside a ``trn00`` reference). With
    ``skip`` such URIs are left out and counted in ``skips`` instead.
    """
    names = list(sources)
    every = set.intersection(*(uris for _, uris in sources.values())) if sources else set()
    partial = sorted(set.union(*(uris for _, uris in sources.values())) - every) if sources else []
    if selection is not None:
        partial = [uri for uri in partial if uri in sources[selection][1]]
    if not partial:
        return every
    problems = []
    for uri in partial:
        inside = [n for n in names if uri in sources[n][1]]
        outside = [n for n in names if uri not in sources[n][1]]
        others = sorted(
            set.union(*(sources[n][1] for n in outside))
            - set().union(*(sources[n][1] for n in inside))
        )
        alike = difflib.get_close_matches(uri, others, n=1, cutoff=0.6)
        hint = f"; {outside[0]} has {alike[0]!r}" if alike else ""
        problems.append(f"{uri!r} in {', '.join(inside)} but not in {', '.join(outside)}{hint}")
        if skip and skips is not None:
            skips.add(
                f"recording left out: not in every one of {', '.join(names)}",
                f"{uri} (not in {', '.join(outside)})",
            )
    if not skip:
        where = "; ".join(f"{n}: {sources[n][0]}" for n in names)
        raise DataFormatError(
            sources[names[0]][0],
            f"the same recordings in every source ({where})",
            found=f"{len(partial)} that are not",
            details=problems,
        )
    log.warning(
        "left out %d recordings not found in every source: %s",
        len(partial),
        "; ".join(problems[:6]),
    )
    return every


def find_recordings(source: str | Path, extensions: tuple[str, ...]) -> dict[str, Path]:
    """``{uri: audio file}`` of the recordings to diarize; the URI is the file name without
    extension.

    ``source`` is a folder (its audio files with one of ``extensions``, searched recursively, hidden
    entries ignored) or a text file listing one audio path per line (relative paths are relative to
    the list's folder). Two files with the same URI, a listed file that does not exist, or no
    recording at all is an error naming the file (and line).
    """
    source = Path(source)
    found: dict[str, Path] = {}

    def add(path: Path, where: Path, line: int | None = None) -> None:
        uri = path.name.rsplit(".", 1)[0]
        if uri in found:
            raise DataFormatError(
                where,
                "recordings with different file names (the name is the URI)",
                line=line,
                found=f"{found[uri]} and {path}",
            )
        found[uri] = path

    if source.is_dir():
        for path in sorted(source.rglob("*")):
            hidden = any(part.startswith(".") for part in path.relative_to(source).parts)
            if path.is_file() and not hidden and path.suffix.lower().lstrip(".") in extensions:
                add(path, source)
        if not found:
            raise DataFormatError(source, f"audio files ({', '.join(extensions)})", found="none")
        return found
    for number, raw, line in numbered_lines(
        source, "a folder of recordings or a list of audio files (one per line)"
    ):
        path = Path(line) if Path(line).is_absolute() else source.parent / line
        if not path.is_file():
            raise DataFormatError(
                source, "an existing audio file on every line", line=number, found=raw
            )
        add(path, source, number)
    if not found:
        raise DataFormatError(source, "at least one audio file", found="an empty list")
    return found
