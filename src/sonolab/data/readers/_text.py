"""Line-numbered reading of text list files, shared by every reader."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import unquote

from ...utils.errors import DataFormatError


def read_text(path: str | Path, what: str) -> str:
    """The whole file as UTF-8 (a leading byte-order mark is dropped, as Windows editors write one);
    a missing or binary file raises DataFormatError naming ``what``.

    Bytes that are not UTF-8 in a text file are file names as the OS spells them (a Latin-1 name
    listed by a tool, or by sonolab itself): they are kept as surrogate escapes, the form Python
    gives such names, so the listed file is found. A file holding NUL bytes is binary."""
    path = Path(path)
    if not path.is_file():
        raise DataFormatError(path, what, found="no such file")
    data = path.read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        if b"\x00" in data:
            raise DataFormatError(
                path, what + " as UTF-8 text", found=f"undecodable bytes at offset {err.start}"
            ) from err
        return data.decode("utf-8-sig", errors="surrogateescape")


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


def escape_field(name: str) -> str:
    """``name`` (a URI, a file path) as one field of a whitespace-separated format (RTTM, UEM,
    trial lists): whitespace, ``%``, control characters and bytes that are not UTF-8 (surrogate
    escapes) become ``%XX`` of their UTF-8 bytes (or the original byte), as in a URL; everything
    else, non-ASCII letters included (AMI's ``trñ00``), is written as it is. ``my meeting`` is
    written ``my%20meeting``; :func:`unescape_field` reverses it."""
    out = []
    for ch in name:
        if ch.isspace() or ch == "%" or not ch.isprintable() or "\udc80" <= ch <= "\udcff":
            out.append("".join(f"%{b:02X}" for b in ch.encode("utf-8", "surrogateescape")))
        else:
            out.append(ch)
    return "".join(out)


def unescape_field(field: str) -> str:
    """The name :func:`escape_field` wrote (fields without ``%`` are returned as they are)."""
    if "%" not in field:
        return field
    return unquote(field, encoding="utf-8", errors="surrogateescape")


def printable(name: str) -> str:
    """``name`` for text that must be valid Unicode (plot titles): bytes that are not UTF-8 in a
    file name shown as ``\\xe9``."""
    return name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
