"""Writing result files so that an interrupted run never leaves a half-written one behind."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO


@contextmanager
def atomic_file(path: str | Path, mode: str = "w") -> Iterator[IO]:
    """A file object whose content replaces ``path`` only once the block completes.

    It writes to a hidden temporary file in the same folder (so the final rename never crosses
    filesystems), flushes it to disk, then renames it over ``path``: a reader, or a run killed
    half-way, sees the old file or the new one, never a truncated mix.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, mode, **({} if "b" in mode else {"encoding": "utf-8"})) as out:
            yield out
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_text_atomic(path: str | Path, text: str) -> None:
    """Replace ``path`` with ``text`` atomically (see :func:`atomic_file`)."""
    with atomic_file(path) as out:
        out.write(text)


def from_cwd(path: str | Path) -> str:
    """A path given on a command line (evaluate.py's arguments), absolute, relative to the current
    folder."""
    return str(Path(path).expanduser().absolute())


def under_root(root: str | Path, path: str | Path | None) -> Path | None:
    """``path`` as configured for a dataset: absolute paths as they are, relative ones under
    ``root``."""
    if path is None:
        return None
    path = Path(path)
    return path if path.is_absolute() else Path(root) / path
