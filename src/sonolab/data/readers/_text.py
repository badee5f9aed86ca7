"""Line-numbered reading of text list files, shared by every reader."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

from ...utils.errors import DataFormatError


def read_text(path: str | Path, what: str) -> str:
    """The whole file as UTF-8 (a leading byte-order mark is dropped, as Windows editors write one);
    a missing or undecodable file raises DataFormatError naming ``what``."""
    path = Path(path)
    if not path.is_file():
        raise DataFormatError(path, what, found="no such file")
    try:
        return path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as err:
        raise DataFormatError(
            path, what + " as UTF-8 text", found=f"undecodable bytes at offset {err.start}"
        ) from err


def numbered_lines(
    path: str | Path, what: str, comments: bool = False
) -> Iterator[tuple[int, str, str]]:
    """``(1-based line number, raw line, content)`` of every non-blank line of a UTF-8 text file.

    With ``comments`` everything after ``#`` is dropped first. A missing or undecodable file raises
    DataFormatError naming it and ``what`` was expected.
    """
    for number, raw in enumerate(read_text(path, what).splitlines(), start=1):
        content = (raw.split("#", 1)[0] if comments else raw).strip()
        if content:
            yield number, raw, content


def parse_float(
    value: str, path: Path, line: int, what: str, minimum: float | None = None
) -> float:
    """A finite float field, or DataFormatError at ``path:line`` saying which field was wrong.

    ``nan`` and ``inf`` parse as floats but are never valid times, durations or scores.
    """
    try:
        number = float(value)
    except ValueError:
        raise DataFormatError(path, f"a number for {what}", line=line, found=value) from None
    if not math.isfinite(number):
        raise DataFormatError(path, f"a finite number for {what}", line=line, found=value)
    if minimum is not None and number < minimum:
        raise DataFormatError(path, f"{what} >= {minimum:g}", line=line, found=value)
    return number


def read_id_list(path: str | Path, item: str, comments: bool = False) -> list[str]:
    """Identifiers (speakers, URIs, ...) one per line, each listed once; ``item`` names them in
    errors."""
    path = Path(path)
    ids: list[str] = []
    seen: set[str] = set()
    for number, raw, line in numbered_lines(
        path, f"a list of {item}s (one per line)", comments=comments
    ):
        if len(line.split()) != 1:
            raise DataFormatError(path, f"one {item} per line", line=number, found=raw)
        if line in seen:
            raise DataFormatError(path, f"each {item} listed once", line=number, found=line)
        seen.add(line)
        ids.append(line)
    if not ids:
        raise DataFormatError(path, f"at least one {item}", found="an empty list")
    return ids
