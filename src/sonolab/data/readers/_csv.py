"""CSV rows with their file line numbers and a header check (csv module; no pandas needed)."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path

from ...utils.errors import DataFormatError
from ._text import read_text


def csv_rows(
    path: str | Path, required: tuple[str, ...], what: str
) -> Iterator[tuple[int, dict[str, str]]]:
    """``(line number, row)`` for each data row; the header must hold the ``required`` columns.

    Lines starting with ``#`` before the header are skipped (AudioSet's original segment files start
    with such comments, then ``# YTID, start_seconds, ...``: that commented header is accepted too).
    """
    path = Path(path)
    lines = read_text(path, what).splitlines()
    start = 0
    while start < len(lines) and lines[start].startswith("#"):
        candidate = lines[start].lstrip("#").strip()
        if all(col in [c.strip() for c in candidate.split(",")] for col in required):
            lines[start] = candidate
            break
        start += 1
    if start >= len(lines):
        raise DataFormatError(
            path, f"{what} with header columns {', '.join(required)}", found="no header"
        )
    reader = csv.reader(lines[start:], skipinitialspace=True)
    header = [h.strip() for h in next(reader)]
    missing = [c for c in required if c not in header]
    if missing:
        raise DataFormatError(
            path, f"header columns {', '.join(required)}", line=start + 1, found=",".join(header)
        )
    for offset, values in enumerate(reader, start=start + 2):
        if not values or not any(v.strip() for v in values):
            continue
        if len(values) != len(header):
            raise DataFormatError(
                path,
                f"{len(header)} comma-separated fields ({', '.join(header)})",
                line=offset,
                found=lines[offset - 1],
            )
        yield offset, dict(zip(header, values))
