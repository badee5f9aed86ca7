"""VoxCeleb on-disk format: ``wav/<speaker>/<session>/<utt>.<ext>`` trees, trial and speaker lists.

Trial lists are VoxCeleb's ``veri_test.txt`` format, one trial per line:
``<1|0> <enroll path> <test path>``, paths relative to the ``wav`` folder. The O / E / H lists
and their cleaned ``...2.txt`` versions all use it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ...utils.errors import DataFormatError
from ._text import numbered_lines, read_id_list

AUDIO_EXTENSIONS = ("wav", "flac", "ogg")
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


def scan_speaker_tree(root: str | Path, extensions: tuple[str, ...] = AUDIO_EXTENSIONS,
                      speakers: list[str] | None = None) -> list[Utterance]:
    """All audio files of a VoxCeleb tree, sorted; optionally only the listed ``speakers``.

    Raises DataFormatError when the folder is missing, holds no speaker folders with sessions,
    holds audio at the wrong depth, or a listed speaker has no folder.
    """
    root = Path(root)
    if not root.is_dir():
        raise DataFormatError(root, f"a folder in {LAYOUT}", found="no such folder")
    exts = {"." + e.lower().lstrip(".") for e in extensions}
    wanted = None if speakers is None else set(speakers)
    utterances: list[Utterance] = []
    for speaker_dir in sorted(p for p in root.iterdir() if p.is_dir()):
        if wanted is not None and speaker_dir.name not in wanted:
            continue
        for entry in sorted(speaker_dir.iterdir()):
            if entry.is_file() and entry.suffix.lower() in exts:
                raise DataFormatError(entry, LAYOUT, found="audio directly under the speaker folder (no session folder)")
            if not entry.is_dir():
                continue
            for audio in sorted(entry.iterdir()):
                if audio.is_file() and audio.suffix.lower() in exts:
                    utterances.append(Utterance(f"{speaker_dir.name}/{entry.name}/{audio.name}", speaker_dir.name, entry.name))
                elif audio.is_dir():
                    raise DataFormatError(audio, LAYOUT, found="a folder below the session folder")
    if not utterances:
        stray = next((p for p in root.rglob("*") if p.suffix.lower() in exts), None)
        found = f"audio at {stray.relative_to(root)}" if stray else f"no *{'/*'.join(sorted(exts))} files"
        raise DataFormatError(root, LAYOUT + f" with extensions {sorted(exts)}", found=found)
    if wanted is not None:
        missing = sorted(wanted - {u.speaker for u in utterances})
        if missing:
            raise DataFormatError(root, "a folder for every listed speaker", found=f"none for {', '.join(missing[:5])}")
    return utterances


def read_speaker_list(path: str | Path) -> list[str]:
    """Speaker ids, one per line (blank lines and ``#`` comments ignored); duplicates are an error."""
    return read_id_list(path, "speaker id", comments=True)


def read_trial_list(path: str | Path) -> list[Trial]:
    """Parse a ``veri_test.txt``-format trial list; every malformed line is reported with its number."""
    path = Path(path)
    trials: list[Trial] = []
    for number, raw, line in numbered_lines(path, "a trial list file ('1|0 enroll test' per line)"):
        fields = line.split()
        if len(fields) != 3 or fields[0] not in ("0", "1"):
            raise DataFormatError(path, "'<1|0> <enroll path> <test path>'", line=number, found=raw)
        trials.append(Trial(int(fields[0]), fields[1], fields[2], number))
    if not trials:
        raise DataFormatError(path, "at least one trial", found="an empty list")
    return trials


def check_trial_audio(trials: list[Trial], audio_root: str | Path, list_path: str | Path) -> None:
    """Every path a trial names must exist under ``audio_root``; the first missing one is reported."""
    audio_root = Path(audio_root)
    checked: set[str] = set()
    for trial in trials:
        for rel in (trial.enroll, trial.test):
            if rel in checked:
                continue
            if not (audio_root / rel).is_file():
                raise DataFormatError(list_path, f"an audio file {audio_root / rel}", line=trial.line, found="missing file")
            checked.add(rel)
