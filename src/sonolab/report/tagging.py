"""Tagging report: metrics.json, a markdown table and a confusion-matrix PNG (single label)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # headless: runs on servers without a display
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from ..utils.io import write_text_atomic  # noqa: E402


def markdown_table(results: dict[str, dict], labels: list[str]) -> str:
    """Single label: accuracy and top-5 per test set, then each set's per-class accuracy.
    Multi-label: mAP, mean AUC and d' per test set with the classes scored / skipped."""
    if any("mAP" in r for r in results.values()):
        lines = ["| set | mAP | mean AUC | d' | classes scored | classes skipped (no positive) |", "|---|---|---|---|---|---|"]
        lines += [f"| {name} | {r['mAP']:.4f} | {r['mean_auc']:.4f} | {r['d_prime']:.3f} | {r['classes_scored']} | "
                  f"{r['classes_skipped']} |" for name, r in results.items()]
        return "\n".join(lines) + "\n"
    lines = ["| set | clips | accuracy (%) | top-5 (%) |", "|---|---|---|---|"]
    for name, r in results.items():
        top = next(k for k in r if k.startswith("top"))
        lines.append(f"| {name} | {r['clips']} | {r['accuracy']:.2f} | {r[top]:.2f} |")
    for name, r in results.items():
        confusion = np.array(r["confusion"])
        lines += ["", f"Per class ({name}):", "", "| class | clips | accuracy (%) |", "|---|---|---|"]
        for k, label in enumerate(labels):
            total = int(confusion[k].sum())
            if total:
                lines.append(f"| {label} | {total} | {100.0 * confusion[k, k] / total:.1f} |")
    return "\n".join(lines) + "\n"


def plot_confusion(confusion: list[list[int]], labels: list[str], path: Path, title: str) -> None:
    """Row-normalised confusion matrix (true class down, predicted across) with the counts written in."""
    matrix = np.array(confusion, dtype=float)
    rates = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    size = max(4.0, 0.45 * len(labels) + 2)
    fig, ax = plt.subplots(figsize=(size, size))
    ax.imshow(rates, cmap="Blues", vmin=0, vmax=1)
    ticks = range(len(labels))
    ax.set_xticks(ticks, labels, rotation=90, fontsize=7)
    ax.set_yticks(ticks, labels, fontsize=7)
    for i in ticks:
        for j in ticks:
            if matrix[i, j]:
                ax.text(j, i, int(matrix[i, j]), ha="center", va="center", fontsize=6,
                        color="white" if rates[i, j] > 0.5 else "black")
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def write_tagging_report(out_dir: str | Path, results: dict[str, dict], labels: list[str],
                         extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """``metrics.json`` (per test set: accuracy, top-5, clips, confusion), ``results.md`` and
    ``confusion_<set>.png``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    content = {"test": results, "labels": labels, **(extra or {})}
    write_text_atomic(out / "metrics.json", json.dumps(content, indent=2) + "\n")
    write_text_atomic(out / "results.md", markdown_table(results, labels))
    for name, r in results.items():
        if "confusion" in r:
            plot_confusion(r["confusion"], labels, out / f"confusion_{name}.png",
                           f"{name}: accuracy {r['accuracy']:.1f} %")
    return content
