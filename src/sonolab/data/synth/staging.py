"""Writing a generated dataset so that it appears whole or not at all, shared by every generator.

A generator writes into a hidden temporary sibling of its output folder, holding an owner file
(host and pid), and renames it into place at the end. A marker file inside the finished folder
records the parameters, so a later call with the same parameters is a no-op and other parameters
are refused. Temporary folders left by a killed generator are removed by the next one.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import socket
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

log = logging.getLogger(__name__)

OWNER = ".sonolab-synth-owner"  # in a temporary folder being written: "<host> <pid>" of the writer
STALE_AFTER_S = 24 * 3600


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_temporaries(out: Path) -> list[Path]:
    """Delete the temporary folders that an earlier, killed generation of ``out`` left beside it.

    Only folders a generator made (they hold its owner file) are touched: those whose writer
    process is gone on this host, or that are older than a day (a writer on another host).
    """
    removed = []
    for tmp in out.parent.glob(f".{out.name}.*") if out.parent.is_dir() else []:
        owner = tmp / OWNER
        if not owner.is_file():
            continue
        host, _, pid = owner.read_text().strip().partition(" ")
        dead = host == socket.gethostname() and pid.isdigit() and not _alive(int(pid))
        if dead or time.time() - owner.stat().st_mtime > STALE_AFTER_S:
            shutil.rmtree(tmp, ignore_errors=True)
            log.warning("removed %s, left by an interrupted generation of %s", tmp, out)
            removed.append(tmp)
    return removed


def existing_output(out: Path, marker: str, same: Callable[[dict], bool], what: str) -> dict | None:
    """The marker content of a finished ``out`` made with the same parameters (``same(content)``),
    or None when ``out`` is absent or empty; FileExistsError for another dataset or a foreign
    folder."""
    remove_stale_temporaries(out)
    path = out / marker
    if path.is_file():
        content = json.loads(path.read_text())
        if same(content):
            return content
        raise FileExistsError(
            f"{out} holds {what} made with other parameters ({path}); choose another folder "
            "or delete it"
        )
    if out.exists() and any(out.iterdir()):
        raise FileExistsError(
            f"{out} exists and is not {what} (no {marker}); refusing to write into it"
        )
    return None


@contextmanager
def staged_folder(out: Path) -> Iterator[Path]:
    """A temporary sibling folder to write into; it becomes ``out`` when the block completes, and is
    deleted if the block fails (an OSError from the final rename reaches the caller)."""
    remove_stale_temporaries(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    (tmp / OWNER).write_text(f"{socket.gethostname()} {os.getpid()}\n")
    try:
        yield tmp
        (tmp / OWNER).unlink()
        if out.exists():
            out.rmdir()  # only ever an empty folder: existing_output refused anything else
        tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def write_once(
    out: str | Path, marker: str, parameters: dict, what: str, write: Callable[[Path], dict]
) -> dict:
    """Write a generated dataset to ``out`` once: returns the marker's content (``{"parameters":
    ...,
    **write(folder)}``). A finished set with the same parameters is reused as it is; a different
    one, or a foreign folder, is refused (FileExistsError). ``write`` fills a staged folder, which
    becomes ``out`` only when complete; if another process (a DDP rank) finished the same set first,
    its result is used."""
    out = Path(out)
    params = json.loads(
        json.dumps(parameters)
    )  # tuples -> lists, int keys -> str, as they are read back
    same = lambda content: content.get("parameters") == params  # noqa: E731
    existing = existing_output(out, marker, same, what)
    if existing is not None:
        return existing
    try:
        with staged_folder(out) as tmp:
            content = {"parameters": params, **write(tmp)}
            (tmp / marker).write_text(json.dumps(content, indent=2) + "\n")
    except OSError:
        existing = existing_output(out, marker, same, what)
        if existing is not None:
            return existing
        raise
    return content
