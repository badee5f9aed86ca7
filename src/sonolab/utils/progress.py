"""Progress bars for long work outside Lightning's loops (pre-scan, generation, packing,
inference): tqdm on stderr when it is a terminal, nothing in logs and pipes."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TypeVar

from tqdm.auto import tqdm

T = TypeVar("T")


def progress(
    items: Iterable[T], desc: str, total: int | None = None, unit: str = "file", min_items: int = 8
) -> Iterable[T]:
    """``items`` with a progress bar, shown on a terminal only and only over ``min_items`` or more
    (``total``: their count when ``items`` has no length)."""
    count = total if total is not None else (len(items) if hasattr(items, "__len__") else None)
    disable = True if count is not None and count < min_items else None  # None: on a tty only
    return tqdm(items, desc=desc, total=count, unit=unit, disable=disable, leave=False)
