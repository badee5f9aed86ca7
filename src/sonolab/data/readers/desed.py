"""DESED's metadata (DCASE task 4): tab-separated files with a header line.

* strong labels: ``filename  onset  offset  event_label`` (seconds); a row with the three last
  fields empty lists a clip without events, as DESED's own files do;
* weak labels: ``filename  event_labels`` (the clip's labels, comma-separated);
* durations: ``filename  duration``.

A bad row (wrong field count, a time that is not a number, an offset not after its onset, a label
outside ``labels``, a file missing under ``audio_dir``) is a DataFormatError naming the file, the
line and what was expected.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from ...utils.errors import DataFormatError
from ._text import numbered_lines, parse_float

STRONG_HEADER = ("filename", "onset", "offset", "event_label")
WEAK_HEADER = ("filename", "event_labels")
DURATION_HEADER = ("filename", "duration")


@dataclass(frozen=True)
class StrongEvent:
    """One labelled event of a clip: where it starts and ends (seconds) and its class."""

    filename: str
    onset: float
    offset: float
    label: str


def _rows(path: Path, header: tuple[str, ...], what: str):
    """``(line, fields)`` of every row after the header, each with ``len(header)`` tab-separated
    fields (trailing empty fields may be left off)."""
    lines = numbered_lines(path, what)
    first = next(lines, None)
    if first is None:
        raise DataFormatError(path, f"{what} with a header line", found="an empty file")
    number, raw, _ = first
    if tuple(f.strip() for f in raw.split("\t")) != header:
        raise DataFormatError(
            path, f"the header {'<tab>'.join(header)}", line=number, found=raw.strip()
        )
    for number, raw, _ in lines:
        fields = [f.strip() for f in raw.rstrip("\r\n").split("\t")]
        fields += [""] * (len(header) - len(fields))
        if len(fields) != len(header):
            raise DataFormatError(
                path, f"{len(header)} tab-separated fields", line=number, found=raw.strip()
            )
        yield number, fields


def _check_file(path: Path, line: int, filename: str, audio_dir: Path | None) -> None:
    if audio_dir is not None and not (audio_dir / filename).is_file():
        raise DataFormatError(
            path, f"a file under {audio_dir}", line=line, found=f"{filename} is missing"
        )


def _check_label(path: Path, line: int, label: str, labels: Iterable[str] | None) -> None:
    if labels is not None and label not in labels:
        raise DataFormatError(
            path, f"an event label among {sorted(labels)}", line=line, found=label
        )


def read_strong_labels(
    path: str | Path,
    labels: Iterable[str] | None = None,
    audio_dir: str | Path | None = None,
) -> tuple[list[StrongEvent], list[str]]:
    """The events of a strong-label TSV and every clip it lists (in first-listed order, clips
    without events included)."""
    path = Path(path)
    labels = set(labels) if labels is not None else None
    audio = Path(audio_dir) if audio_dir is not None else None
    events: list[StrongEvent] = []
    clips: dict[str, None] = {}
    for line, (filename, onset, offset, label) in _rows(
        path, STRONG_HEADER, "a strong-label TSV (filename, onset, offset, event_label)"
    ):
        if not filename:
            raise DataFormatError(path, "a file name", line=line, found="an empty field")
        if filename not in clips:
            _check_file(path, line, filename, audio)
            clips[filename] = None
        if not (onset or offset or label):
            continue  # a clip without events
        start = parse_float(onset, path, line, "the onset (s)", minimum=0.0)
        end = parse_float(offset, path, line, "the offset (s)")
        if end <= start:
            raise DataFormatError(
                path, "an offset after its onset", line=line, found=f"{onset} -> {offset}"
            )
        _check_label(path, line, label, labels)
        events.append(StrongEvent(filename, start, end, label))
    return events, list(clips)


def read_weak_labels(
    path: str | Path,
    labels: Iterable[str] | None = None,
    audio_dir: str | Path | None = None,
) -> dict[str, tuple[str, ...]]:
    """``{filename: its labels}`` of a weak-label TSV (each file listed once)."""
    path = Path(path)
    labels = set(labels) if labels is not None else None
    audio = Path(audio_dir) if audio_dir is not None else None
    clips: dict[str, tuple[str, ...]] = {}
    for line, (filename, names) in _rows(
        path, WEAK_HEADER, "a weak-label TSV (filename, event_labels)"
    ):
        if filename in clips:
            raise DataFormatError(path, "each file listed once", line=line, found=filename)
        _check_file(path, line, filename, audio)
        clip_labels = tuple(n.strip() for n in names.split(",") if n.strip())
        for label in clip_labels:
            _check_label(path, line, label, labels)
        clips[filename] = clip_labels
    return clips


def read_durations(path: str | Path) -> dict[str, float]:
    """``{filename: duration in seconds}`` of a durations TSV."""
    path = Path(path)
    durations: dict[str, float] = {}
    for line, (filename, duration) in _rows(
        path, DURATION_HEADER, "a durations TSV (filename, duration)"
    ):
        if filename in durations:
            raise DataFormatError(path, "each file listed once", line=line, found=filename)
        value = parse_float(duration, path, line, "the duration (s)")
        if value <= 0:
            raise DataFormatError(path, "a positive duration", line=line, found=duration)
        durations[filename] = value
    return durations
