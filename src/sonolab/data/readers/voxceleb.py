"""VoxCeleb on-disk format: ``wav/<speaker>/<session>/<utt>.<ext>`` trees, trial and speaker lists.

Trial lists are VoxCeleb's ``veri_test.txt`` format, one trial per line:
``<1|0> <enroll path> <test path>``, paths relative to the ``wav`` folder. The O / E / H lists
and their cleaned ``...2.txt`` versions all use it.
"""

from __future__ import annotations

import logging
import posixpath
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from ...utils.errors import DataFormatError
from ..audio import AUDIO_EXTENSIONS, OTHER_AUDIO_EXTENSIONS
from ..skips import SkipLog
from ._text import escape_field, numbered_lines, read_id_list, unescape_field

log = logging.getLogger(__name__)

LAYOUT = "the VoxCeleb layout <root>/<speaker>/<session>/<utterance>.<ext>"


@dataclass(frozen=True)
class Utterance:
    """One audio file of the tree: its path relative to the root, speaker and session."""

    path: str
    speaker: str
    session: str


@dataclass(frozen=True)
class Trial:
    """One verification trial: ``label`` 1 = same speaker; ``line`` is its 1-based line number."""

    label: int
    enroll: str
    test: str
    line: int


def _visible(folder: Path, skips: SkipLog) -> list[Path]:
    """Sorted entries of ``folder`` without hidden ones (``.git/``, macOS ``._*`` / ``.DS_Store``),
    which are counted."""
    entries = []
    for entry in sorted(folder.iterdir()):
        if entry.name.startswith("."):
            skips.add("hidden file or folder ignored", str(entry))
        else:
            entries.append(entry)
    return entries


def scan_speaker_tree(
    root: str | Path,
    extensions: tuple[str, ...] = AUDIO_EXTENSIONS,
    speakers: list[str] | None = None,
    skips: SkipLog | None = None,
) -> list[Utterance]:
    """All audio files of a VoxCeleb tree, sorted; optionally only the listed ``speakers``.

    Hidden entries are ignored; files with an extension not in ``extensions`` are left out. Both
    are counted in ``skips`` by reason (and logged when no ``skips`` is given), as are speakers
    that lose every file that way. Raises DataFormatError when the folder is missing, holds no
    speaker folders with sessions, holds audio at the wrong depth, or a listed speaker has no
    usable audio.
    """
    root = Path(root)
    if not root.is_dir():
        raise DataFormatError(root, f"a folder in {LAYOUT}", found="no such folder")
    own_log = skips is None
    skips = SkipLog() if skips is None else skips
    exts = {"." + e.lower().lstrip(".") for e in extensions}
    wanted = None if speakers is None else set(speakers)
    utterances: list[Utterance] = []
    other_ext: dict[str, Counter[str]] = {}  # speaker -> extension -> files left out
    for speaker_dir in (p for p in _visible(root, skips) if p.is_dir()):
        if wanted is not None and speaker_dir.name not in wanted:
            continue
        found = len(utterances)
        for entry in _visible(speaker_dir, skips):
            if entry.is_file() and entry.suffix.lower() in exts:
                raise DataFormatError(
                    entry,
                    LAYOUT,
                    found="audio directly under the speaker folder (no session folder)",
                )
            if not entry.is_dir():
                skips.add("file outside a session folder ignored", str(entry))
                continue
            for audio in _visible(entry, skips):
                if audio.is_dir():
                    raise DataFormatError(audio, LAYOUT, found="a folder below the session folder")
                if audio.suffix.lower() in exts:
                    utterances.append(
                        Utterance(
                            f"{speaker_dir.name}/{entry.name}/{audio.name}",
                            speaker_dir.name,
                            entry.name,
                        )
                    )
                    continue
                suffix = audio.suffix.lower() or "(no extension)"
                is_audio = suffix.lstrip(".") in OTHER_AUDIO_EXTENSIONS
                skips.add(
                    f"{'audio' if is_audio else 'other'} file with an extension not in "
                    "data.audio.extensions "
                    f"({suffix})",
                    str(audio),
                )
                other_ext.setdefault(speaker_dir.name, Counter())[suffix] += 1
        if len(utterances) == found and speaker_dir.name in other_ext:
            counts = ", ".join(
                f"{n} {ext}" for ext, n in sorted(other_ext[speaker_dir.name].items())
            )
            skips.add(
                "speaker left out: no file with an extension in data.audio.extensions",
                f"{speaker_dir.name} ({counts})",
            )
    if own_log:
        skips.report(log, str(root))
    if not utterances:
        stray = next((p for p in root.rglob("*") if p.suffix.lower() in exts), None)
        found = (
            f"audio at {stray.relative_to(root)}"
            if stray
            else f"no *{'/*'.join(sorted(exts))} files"
        )
        raise DataFormatError(root, LAYOUT + f" with extensions {sorted(exts)}", found=found)
    if wanted is not None:
        missing = sorted(wanted - {u.speaker for u in utterances})
        if missing:
            detail = [
                f"{spk} (only {', '.join(sorted(other_ext[spk]))} files; add the extension to "
                "data.audio.extensions "
                "or convert them)"
                if spk in other_ext
                else f"{spk} (no folder)"
                for spk in missing[:5]
            ]
            raise DataFormatError(
                root,
                "usable audio for every listed speaker",
                found=f"{len(missing)} without: {'; '.join(detail)}",
            )
    return utterances


def read_speaker_list(path: str | Path) -> list[str]:
    """Speaker ids, one per line (blank lines and ``#`` comments ignored); duplicates are an
    error."""
    return read_id_list(path, "speaker id", comments=True)


DUPLICATE_POLICIES = ("error", "drop")


def trial_line(label: int, enroll: str, test: str) -> str:
    """One line of a ``veri_test.txt``-format trial list, paths escaped where a space would split
    them (read back by :func:`read_trial_list`)."""
    return f"{label} {escape_field(enroll)} {escape_field(test)}\n"


def read_trial_list(
    path: str | Path, duplicates: str = "error", skips: SkipLog | None = None
) -> list[Trial]:
    """Parse a ``veri_test.txt``-format trial list; every malformed line is reported with its
    number.

    A path holding a space is written ``%20`` (:func:`~sonolab.data.readers._text.escape_field`).
    Paths are normalised (``posixpath.normpath``: ``./``, ``//`` and ``x/../`` removed), so one
    file has one name. A pair is the same trial in either order (cosine and AS-norm scores are
    symmetric). The same pair with both labels, a file paired with itself, or a list without both
    target and non-target trials is an error. A repeated pair is an error with
    ``duplicates="error"``; with ``"drop"`` the repeats are left out and counted in ``skips``.
    """
    if duplicates not in DUPLICATE_POLICIES:
        raise ValueError(f"duplicates must be one of {DUPLICATE_POLICIES}, found {duplicates!r}")
    path = Path(path)
    trials: list[Trial] = []
    first: dict[frozenset[str], Trial] = {}
    for number, raw, line in numbered_lines(path, "a trial list file ('1|0 enroll test' per line)"):
        fields = line.split()
        if len(fields) != 3 or fields[0] not in ("0", "1"):
            raise DataFormatError(path, "'<1|0> <enroll path> <test path>'", line=number, found=raw)
        # one spelling per file (./a/s/1.wav and a//s/1.wav are a/s/1.wav) before the self-pair
        # and repeat checks and before files are embedded
        trial = Trial(
            int(fields[0]),
            posixpath.normpath(unescape_field(fields[1])),
            posixpath.normpath(unescape_field(fields[2])),
            number,
        )
        if trial.enroll == trial.test:
            raise DataFormatError(path, "two different files per trial", line=number, found=raw)
        pair = frozenset((trial.enroll, trial.test))
        earlier = first.setdefault(pair, trial)
        if earlier is not trial:
            if earlier.label != trial.label:
                raise DataFormatError(
                    path,
                    f"one label per pair, but line {earlier.line} labels the same pair "
                    f"{earlier.label}",
                    line=number,
                    found=raw,
                )
            if duplicates == "error":
                raise DataFormatError(
                    path,
                    f"each pair once (line {earlier.line} has the same pair; "
                    "data.lists.duplicate_trials=drop scores it once)",
                    line=number,
                    found=raw,
                )
            if skips is not None:
                skips.add(f"repeated trial dropped ({path.name})", f"{path}:{number}")
            continue
        trials.append(trial)
    if not trials:
        raise DataFormatError(path, "at least one trial", found="an empty list")
    targets = sum(t.label for t in trials)
    if targets in (0, len(trials)):
        raise DataFormatError(
            path,
            "both target (1) and non-target (0) trials: EER and minDCF need both",
            found=f"only {len(trials)} {'target' if targets else 'non-target'} trials",
        )
    return trials


def check_trial_audio(trials: list[Trial], audio_root: str | Path, list_path: str | Path) -> None:
    """Every path a trial names must exist under ``audio_root``; the first missing one is
    reported."""
    audio_root = Path(audio_root)
    checked: set[str] = set()
    for trial in trials:
        for rel in (trial.enroll, trial.test):
            if rel in checked:
                continue
            if not (audio_root / rel).is_file():
                raise DataFormatError(
                    list_path,
                    f"an audio file {audio_root / rel}",
                    line=trial.line,
                    found="missing file",
                )
            checked.add(rel)
