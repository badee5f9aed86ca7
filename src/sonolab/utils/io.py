"""Writing result files so that an interrupted run never leaves a half-written one behind."""

from __future__ import annotations

import errno
import hashlib
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO


@contextmanager
def atomic_file(path: str | Path, mode: str = "w") -> Iterator[IO]:
    """A file object whose content replaces ``path`` only once the block completes.

    It writes to a hidden temporary file in the same folder (so the final rename never crosses
    filesystems), flushes it to disk, then renames it over ``path``: a reader, or a run killed
    half-way, sees the old file or the new one, never a truncated mix.
    A full disk is raised as :class:`DiskFullError` naming the file and the free space, whatever
    the writer wrapped it in (torch's zip writer turns it into a ``RuntimeError``).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        # surrogateescape: a file name that is not UTF-8 (held as surrogate escapes) is written
        # back as the bytes it was read from
        text = {} if "b" in mode else {"encoding": "utf-8", "errors": "surrogateescape"}
        with os.fdopen(fd, mode, **text) as out:
            yield out
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException as err:
        Path(tmp).unlink(missing_ok=True)
        if is_disk_full(err):
            raise DiskFullError(path) from err
        raise


DISK_FULL_ERRNOS = (errno.ENOSPC, errno.EDQUOT)


def is_disk_full(err: BaseException) -> bool:
    """Whether ``err`` or an error it wraps (its cause or context) is "no space left on device" or
    "disk quota exceeded"."""
    seen = set()
    while err is not None and id(err) not in seen:
        seen.add(id(err))
        if isinstance(err, OSError) and err.errno in DISK_FULL_ERRNOS:
            return True
        if "No space left on device" in str(err) or "Disk quota exceeded" in str(err):
            return True
        err = err.__cause__ or err.__context__
    return False


class DiskFullError(OSError):
    """No space left (or no quota) to write ``path``; says how much is free where, and that the
    previous file at ``path`` (if any) is untouched."""

    def __init__(self, path: str | Path):
        path = Path(path)
        try:
            free = f"{shutil.disk_usage(path.parent).free / 2**20:,.1f} MiB free"
        except OSError:
            free = "free space unknown"
        super().__init__(
            errno.ENOSPC,
            f"disk full: no space left to write {path} ({free} on the filesystem of "
            f"{path.parent}); the previous file there, if any, is kept. Free some space (old "
            "runs' checkpoints/, data caches) or point paths.log_dir / hydra.run.dir elsewhere",
        )
        self.path = str(path)

    def __str__(self) -> str:
        return self.strerror


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


def file_stamp(path: str | Path) -> list[int]:
    """``[size, mtime in ns]`` of a file, ``[-1, -1]`` when it cannot be stat'ed: what a cache
    compares to notice a file replaced or changed in place."""
    try:
        st = os.stat(path)
    except OSError:
        return [-1, -1]
    return [st.st_size, st.st_mtime_ns]


def content_key(paths: Iterable[str | Path]) -> str:
    """A digest of the files' paths and :func:`file_stamp` (as the audio pre-scan keys its cache):
    a cache keyed by it is recomputed when any file is replaced or changed in place. A missing file
    enters as such."""
    digest = hashlib.sha1()
    for path in paths:
        size, mtime = file_stamp(path)
        digest.update(f"{path}\t{size}\t{mtime}\n".encode("utf-8", "surrogateescape"))
    return digest.hexdigest()
