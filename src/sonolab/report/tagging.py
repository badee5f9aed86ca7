"""Tagging report: metrics.json, a markdown table, and a confusion-matrix PNG (single label) or the
best and worst classes' average precision (multi-label)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # headless: runs on servers without a display
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from .files import save_figure, write_metrics_and_table  # noqa: E402


def markdown_table(results: dict[str, dict], labels: list[str]) -> str:
    """Single label: accuracy and top-5 per test set, then each set's per-class accuracy.
    Multi-label: mAP, mean AUC, d' and the decisions' F1 per test set with the classes scored /
    skipped, and where the decision thresholds came from."""
    if any("mAP" in r for r in results.values()):
        lines = [
            "| set | mAP | mean AUC | d' | F1 micro (%) | F1 macro (%) | classes scored | "
            "classes skipped (no positive) |",
            "|---|---|---|---|---|---|---|---|",
        ]
        lines += [
            f"| {name} | {r['mAP']:.4f} | {r['mean_auc']:.4f} | {r['d_prime']:.3f} | "
            f"{r.get('f1_micro', float('nan')):.2f} | {r.get('f1_macro', float('nan')):.2f} | "
            f"{r['classes_scored']} | {r['classes_skipped']} |"
            for name, r in results.items()
        ]
        thresholds = {r["thresholds"] for r in results.values() if "thresholds" in r}
        if thresholds:
            lines += ["", f"Decision thresholds: {', '.join(sorted(thresholds))}."]
        return "\n".join(lines) + "\n"
    lines = ["| set | clips | accuracy (%) | top-5 (%) |", "|---|---|---|---|"]
    for name, r in results.items():
        top = next(k for k in r if k.startswith("top"))
        lines.append(f"| {name} | {r['clips']} | {r['accuracy']:.2f} | {r[top]:.2f} |")
    for name, r in results.items():
        confusion = np.array(r["confusion"])
        lines += [
            "",
            f"Per class ({name}):",
            "",
            "| class | clips | accuracy (%) |",
            "|---|---|---|",
        ]
        for k, label in enumerate(labels):
            total = int(confusion[k].sum())
            if total:
                lines.append(f"| {label} | {total} | {100.0 * confusion[k, k] / total:.1f} |")
    return "\n".join(lines) + "\n"


def plot_confusion(confusion: list[list[int]], labels: list[str], path: Path, title: str) -> None:
    """Row-normalised confusion matrix (true class down, predicted across) with the counts written
    in."""
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
                ax.text(
                    j,
                    i,
                    int(matrix[i, j]),
                    ha="center",
                    va="center",
                    fontsize=6,
                    color="white" if rates[i, j] > 0.5 else "black",
                )
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title, fontsize=9)
    save_figure(fig, path)


def plot_class_ap(
    per_class_ap: list[float], labels: list[str], path: Path, title: str, count: int = 10
) -> None:
    """Average precision of the ``count`` best and ``count`` worst scored classes, by name."""
    scored = sorted(
        (ap, k) for k, ap in enumerate(per_class_ap) if ap == ap
    )  # NaN: no positive, not scored
    shown = scored if len(scored) <= 2 * count else scored[:count] + scored[-count:]
    fig, ax = plt.subplots(figsize=(7, 0.3 * len(shown) + 1.2))
    ax.barh(
        range(len(shown)),
        [ap for ap, _ in shown],
        color=[
            "tab:red" if i < min(count, len(shown) // 2) else "tab:green" for i in range(len(shown))
        ],
    )
    ax.set_yticks(
        range(len(shown)), [labels[k] if k < len(labels) else str(k) for _, k in shown], fontsize=7
    )
    ax.set_xlim(0, 1)
    ax.set_xlabel("average precision")
    ax.set_title(title, fontsize=9)
    save_figure(fig, path)


def write_tagging_report(
    out_dir: str | Path,
    results: dict[str, dict],
    labels: list[str],
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """``metrics.json`` (per test set: accuracy, top-5, clips, confusion; or mAP, AUC, d', per-class
    AP), ``results.md`` and ``confusion_<set>.png`` (single label) or ``class_ap_<set>.png``
    (multi-label)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    content = {"test": results, "labels": labels, **(extra or {})}
    write_metrics_and_table(out, content, markdown_table(results, labels))
    for name, r in results.items():
        if "per_class_ap" in r:
            plot_class_ap(
                r["per_class_ap"],
                labels,
                out / f"class_ap_{name}.png",
                f"{name}: mAP {r['mAP']:.3f}, best and worst classes",
            )
        if "confusion" in r:
            plot_confusion(
                r["confusion"],
                labels,
                out / f"confusion_{name}.png",
                f"{name}: accuracy {r['accuracy']:.1f} %",
            )
    return content
