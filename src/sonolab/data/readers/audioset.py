"""AudioSet metadata: ``class_labels_indices.csv``, segment CSVs and AST-style JSON datafiles."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from ...utils.errors import DataFormatError
from ._csv import csv_rows
from ._text import parse_float, read_text


@dataclass(frozen=True)
class AudioSetLabel:
    """One class: its index in the model's output, ontology id (``/m/09x0r``) and name."""

    index: int
    mid: str
    name: str


@dataclass(frozen=True)
class AudioSetClip:
    """One segment (YouTube id and time span) or one datafile entry (audio path), with label
    indices."""

    source: str
    labels: tuple[int, ...]
    start: float = 0.0
    end: float = 10.0


def read_class_labels(path: str | Path) -> list[AudioSetLabel]:
    """``index,mid,display_name`` rows; indices must run 0..N-1 and mids be unique."""
    path = Path(path)
    labels: list[AudioSetLabel] = []
    seen: set[str] = set()
    for line, row in csv_rows(
        path, ("index", "mid", "display_name"), "AudioSet's class_labels_indices.csv"
    ):
        if not row["index"].strip().isdigit() or int(row["index"]) != len(labels):
            raise DataFormatError(
                path,
                f"index {len(labels)} (indices 0..N-1 in order)",
                line=line,
                found=row["index"],
            )
        if row["mid"].strip() in seen:
            raise DataFormatError(path, "each mid once", line=line, found=row["mid"])
        seen.add(row["mid"].strip())
        labels.append(AudioSetLabel(len(labels), row["mid"].strip(), row["display_name"]))
    if not labels:
        raise DataFormatError(path, "at least one class row", found="none")
    return labels


def _indices(mids: str, index: dict[str, int], path: Path, line: int | None) -> tuple[int, ...]:
    out = []
    for mid in (m.strip() for m in mids.split(",") if m.strip()):
        if mid not in index:
            raise DataFormatError(
                path, "labels listed in class_labels_indices.csv", line=line, found=mid
            )
        out.append(index[mid])
    if not out:
        raise DataFormatError(path, "at least one positive label", line=line, found=mids)
    return tuple(sorted(set(out)))


def _check_once(
    path: Path,
    where: str,
    key: str,
    labels: tuple[int, ...],
    first: dict[str, tuple[str, tuple[int, ...]]],
    line: int | None = None,
) -> None:
    """Each clip once in a listing: a repeated clip id is named with where it was first listed,
    and its two label sets when they conflict."""
    if key not in first:
        first[key] = (where, labels)
        return
    where0, labels0 = first[key]
    problem = (
        f"with labels {list(labels0)} there and {list(labels)} here"
        if labels0 != labels
        else "twice with the same labels"
    )
    raise DataFormatError(
        path,
        f"each clip once (first listed at {where0})",
        line=line,
        found=f"{key} {problem}" + ("" if line is not None else f" at {where}"),
    )


def read_segments(path: str | Path, labels: list[AudioSetLabel]) -> list[AudioSetClip]:
    """``YTID,start_seconds,end_seconds,positive_labels`` rows (header row or AudioSet's ``#``
    header)."""
    path = Path(path)
    index = {label.mid: label.index for label in labels}
    clips = []
    first: dict[str, tuple[str, tuple[int, ...]]] = {}
    for line, row in csv_rows(
        path, ("YTID", "start_seconds", "end_seconds", "positive_labels"), "an AudioSet segment CSV"
    ):
        start = parse_float(row["start_seconds"], path, line, "start_seconds", minimum=0.0)
        end = parse_float(row["end_seconds"], path, line, "end_seconds")
        if end <= start:
            raise DataFormatError(
                path, "end_seconds > start_seconds", line=line, found=f"{start},{end}"
            )
        clip = AudioSetClip(
            row["YTID"].strip(), _indices(row["positive_labels"], index, path, line), start, end
        )
        _check_once(path, f"line {line}", f"{clip.source} at {start:g} s", clip.labels, first, line)
        clips.append(clip)
    if not clips:
        raise DataFormatError(path, "at least one segment row", found="a header without rows")
    return clips


def read_json_datafile(path: str | Path, labels: list[AudioSetLabel]) -> list[AudioSetClip]:
    """AST / HTS-AT datafile ``{"data": [{"wav": path, "labels": "/m/..,/m/.."}, ...]}``."""
    path = Path(path)
    text = read_text(path, 'a JSON datafile {"data": [{"wav": ..., "labels": ...}]}')
    try:
        content = json.loads(text)
    except json.JSONDecodeError as err:
        raise DataFormatError(path, "valid JSON", line=err.lineno, found=err.msg) from err
    entries = content.get("data") if isinstance(content, dict) else None
    if not isinstance(entries, list):
        raise DataFormatError(path, 'a top-level object with a "data" list')
    index = {label.mid: label.index for label in labels}
    clips = []
    first: dict[str, tuple[str, tuple[int, ...]]] = {}
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict) or "wav" not in entry or "labels" not in entry:
            raise DataFormatError(
                path, f'data[{i}] to have "wav" and "labels"', found=str(entry)[:80]
            )
        clip = AudioSetClip(str(entry["wav"]), _indices(str(entry["labels"]), index, path, None))
        _check_once(path, f"data[{i}]", clip.source, clip.labels, first)
        clips.append(clip)
    if not clips:
        raise DataFormatError(path, 'at least one entry in "data"', found="an empty list")
    return clips
