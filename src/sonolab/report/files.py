"""What every family's report writes the same way: ``metrics.json`` and ``results.md`` (atomically),
and figures."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # headless: runs on servers without a display
import matplotlib.pyplot as plt  # noqa: E402

from ..utils.io import write_text_atomic  # noqa: E402


def write_metrics_and_table(out: Path, content: dict[str, Any], table: str) -> dict[str, Any]:
    """``metrics.json`` (``content``, whose ``test`` holds the metrics per test set) and the
    markdown ``results.md`` in ``out``; returns ``content``."""
    write_text_atomic(out / "metrics.json", json.dumps(content, indent=2) + "\n")
    write_text_atomic(out / "results.md", table)
    return content


def save_figure(fig: plt.Figure, path: Path, dpi: int = 90) -> None:
    """Lay the figure out, write it as ``path`` and free it."""
    fig.tight_layout()
    fig.savefig(path, dpi=dpi)
    plt.close(fig)
