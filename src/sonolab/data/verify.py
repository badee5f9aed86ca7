"""Pre-scan of a dataset's audio files (``data.verify_audio=true``), cached beside the data.

Every file's header, sample rate, channels, length and last sample (and every sample of float
files, for NaN / infinity) are checked once, before training, so a corrupt, truncated or
wrong-rate file is reported with all the others at start-up instead of crashing an epoch hours in.
Results are cached per file with its size and mtime, so a second run (or another DDP rank) only
stats the files; changed files are checked again.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from ..utils.errors import DataFormatError
from ..utils.io import file_stamp, write_text_atomic
from ..utils.progress import progress
from .audio import audio_problem

log = logging.getLogger(__name__)

CACHE_FOLDER = ".sonolab"
# raised whenever audio_problem checks more, so results cached by an older check are not trusted
# (2: float files are scanned for NaN / infinity)
CHECKS_VERSION = 2
USER_CACHE = (
    Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "sonolab" / "audio_check"
)


def _writable_folder(folder: Path) -> bool:
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            return True
    except OSError:
        return False


def cache_file(root: Path, settings: dict, kind: str = "audio_check") -> Path:
    """Where a result about the data in ``root`` under ``settings`` is kept (``kind``: the audio
    check, front-end statistics): ``<root>/.sonolab/`` or, if the data folder is read-only, the
    user's cache
    folder (one file per data root, kind and settings)."""
    tag = hashlib.sha1(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:10]
    name = f"{kind}_{tag}.json"
    if _writable_folder(root / CACHE_FOLDER):
        return root / CACHE_FOLDER / name
    where = hashlib.sha1(os.fsencode(root.resolve())).hexdigest()[:12]
    return USER_CACHE / where / name


def _load_cache(path: Path) -> dict[str, list]:
    try:
        return json.loads(path.read_text())["files"]
    except (OSError, ValueError, KeyError, TypeError):
        return {}  # absent or unreadable: everything is checked again, nothing is trusted


def verify_audio_files(
    files: list[str | Path],
    sample_rate: int,
    resample: bool,
    channel: int | None = None,
    min_seconds: float = 0.0,
    cache_root: str | Path = ".",
    label: str = "files",
    threads: int = 8,
) -> tuple[dict[str, str], Path | None]:
    """``{file: problem}`` for every one of ``files`` that the loaders would reject, and the path of
    the text file listing them all (``bad_audio_<label>.txt`` beside the cache; None when all pass).

    Results are cached under ``cache_root`` (the dataset folder; see :func:`cache_file`), keyed by
    each file's absolute path, size and modification time.
    """
    settings = {
        "checks": CHECKS_VERSION,
        "sample_rate": sample_rate,
        "resample": resample,
        "channel": channel,
        "min_seconds": min_seconds,
    }
    cache_path = cache_file(Path(cache_root), settings)
    cached = _load_cache(cache_path)
    entries: dict[str, list] = {}
    todo: list[tuple[str, list]] = []
    for f in dict.fromkeys(str(Path(f).absolute()) for f in files):
        stamp = file_stamp(f)
        hit = cached.get(f)
        if hit is not None and hit[:2] == stamp:
            entries[f] = hit
        else:
            todo.append((f, stamp))
    if todo:
        log.info(
            "checking %d audio files for %s (%d cached in %s)",
            len(todo),
            label,
            len(entries),
            cache_path,
        )

        def check(item: tuple[str, list]) -> tuple[str, list]:
            path, stamp = item
            return path, stamp + [audio_problem(path, sample_rate, resample, channel, min_seconds)]

        with ThreadPoolExecutor(max_workers=max(1, threads)) as pool:
            entries.update(progress(pool.map(check, todo), "audio pre-scan", len(todo)))
        merged = {**cached, **entries}
        write_text_atomic(cache_path, json.dumps({"settings": settings, "files": merged}) + "\n")
    problems = {f: e[2] for f, e in entries.items() if e[2]}
    if not problems:
        return problems, None
    listing = cache_path.parent / f"bad_audio_{label}.txt"
    write_text_atomic(listing, "".join(p + "\n" for p in problems.values()))
    return problems, listing


def bad_audio_error(
    where: str | Path, expected: str, problems: dict[str, str], listing: Path | None
) -> DataFormatError:
    """The error for files that failed the pre-scan: the first ten problems shown, where all are
    listed, and the key that skips them instead."""
    shown = list(problems.values())
    return DataFormatError(
        where,
        expected,
        found=f"{len(problems)} bad files",
        details=shown[:10] + (["..."] if len(shown) > 10 else []),
        hint=f"all listed in {listing}; data.on_bad_audio=skip leaves them out",
    )


def screen_audio(
    files: list[str | Path],
    where: str | Path,
    expected: str,
    on_bad_audio: str,
    sample_rate: int,
    resample: bool = True,
    channel: int | None = None,
    min_seconds: float = 0.0,
    cache_root: str | Path = ".",
    label: str = "files",
) -> dict[str, str]:
    """The bad-audio flow every datamodule shares: pre-scan ``files`` (:func:`verify_audio_files`)
    and, with ``on_bad_audio=error``, stop on any problem with an error naming ``where`` and what
    was ``expected``; with ``skip``, return ``{absolute path: problem}`` for the caller to leave out
    and count."""
    problems, listing = verify_audio_files(
        files, sample_rate, resample, channel, min_seconds, cache_root=cache_root, label=label
    )
    if problems and on_bad_audio == "error":
        raise bad_audio_error(where, expected, problems, listing)
    return problems
