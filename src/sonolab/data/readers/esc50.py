"""ESC-50 metadata: ``meta/esc50.csv`` (filename, fold, target, category, esc10, src_file, take)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ...utils.errors import DataFormatError
from ._csv import csv_rows

COLUMNS = ("filename", "fold", "target", "category")


@dataclass(frozen=True)
class Esc50Clip:
    """One clip: audio file name (under ``audio/``), fold 1-5, class index and name."""

    filename: str
    fold: int
    target: int
    category: str
    esc10: bool


def read_esc50_meta(path: str | Path, folds: int = 5, num_classes: int = 50) -> list[Esc50Clip]:
    """All rows of an ESC-50 (or ESC-10 subset) metadata CSV, checked for consistent classes.

    Targets must lie in ``0..num_classes-1`` (ESC-10 keeps its ESC-50 numbers, so 50 covers both).
    """
    path = Path(path)
    clips: list[Esc50Clip] = []
    names: dict[int, str] = {}
    first: dict[str, tuple[int, int, int]] = {}  # filename -> (line, fold, target)
    for line, row in csv_rows(path, COLUMNS, "the ESC-50 metadata CSV"):
        try:
            fold, target = int(row["fold"]), int(row["target"])
        except ValueError:
            raise DataFormatError(
                path, "integer fold and target", line=line, found=f"{row['fold']},{row['target']}"
            ) from None
        if not 0 <= target < num_classes:
            raise DataFormatError(
                path, f"target in 0..{num_classes - 1}", line=line, found=row["target"]
            )
        if not 1 <= fold <= folds:
            raise DataFormatError(path, f"fold in 1..{folds}", line=line, found=row["fold"])
        if names.setdefault(target, row["category"]) != row["category"]:
            raise DataFormatError(
                path,
                f"target {target} to be {names[target]!r} as on earlier lines",
                line=line,
                found=row["category"],
            )
        _check_once(path, line, row["filename"], fold, target, first)
        clips.append(
            Esc50Clip(
                row["filename"],
                fold,
                target,
                row["category"],
                row.get("esc10", "False").strip().lower() == "true",
            )
        )
    if not clips:
        raise DataFormatError(path, "at least one clip row", found="none")
    return clips


def _check_once(path: Path, line: int, filename: str, fold: int, target: int, first: dict) -> None:
    """Each clip once: a file in two folds would be trained on and tested, a file with two targets
    is trained both ways; either is named with the line that listed it first."""
    if filename not in first:
        first[filename] = (line, fold, target)
        return
    line0, fold0, target0 = first[filename]
    if fold0 != fold:
        problem = f"in fold {fold0} and fold {fold} (a clip of a test fold would be trained on)"
    elif target0 != target:
        problem = f"with target {target0} and target {target}"
    else:
        problem = "twice in the same fold with the same target"
    raise DataFormatError(
        path,
        f"each filename once (first listed on line {line0})",
        line=line,
        found=f"{filename} {problem}",
    )
