"""Verification report: metrics JSON, a markdown table, DET curves and score histograms (PNG)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # headless: runs on servers without a display
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from scipy.stats import norm  # noqa: E402

from ..metrics.eer import DetectionCost, error_rates  # noqa: E402
from ..utils.io import write_text_atomic  # noqa: E402
from .files import save_figure, write_metrics_and_table  # noqa: E402

DET_TICKS = [0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.4]


def markdown_table(
    results: dict[str, dict[str, Any]], costs: tuple[DetectionCost, ...] = ()
) -> str:
    """One row per trial list: trials, EER (%) and every minDCF, its operating point in the
    header."""
    keys = sorted({k for r in results.values() for k in r["metrics"] if k not in ("eer", "trials")})
    names = {c.key(): c.label() for c in costs}
    header = "| trial list | trials | EER (%) | " + " | ".join(names.get(k, k) for k in keys) + " |"
    lines = [header, "|" + "---|" * (3 + len(keys))]
    for name, r in results.items():
        cells = [name, str(len(r["labels"])), f"{r['metrics']['eer']:.2f}"] + [
            f"{r['metrics'][k]:.4f}" for k in keys
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def plot_det(results: dict[str, dict[str, Any]], path: Path) -> None:
    """DET curves (probit axes) of every trial list in one figure."""
    fig, ax = plt.subplots(figsize=(5, 5))
    for name, r in results.items():
        p_miss, p_fa, _ = error_rates(r["scores"], r["labels"])
        clip = lambda p: np.clip(p, 1e-4, 1 - 1e-4)  # noqa: E731 - probit of 0 or 1 is infinite
        ax.plot(
            norm.ppf(clip(p_fa)),
            norm.ppf(clip(p_miss)),
            label=f"{name} (EER {r['metrics']['eer']:.2f}%)",
        )
    ticks = norm.ppf(DET_TICKS)
    labels = [f"{100 * t:g}" for t in DET_TICKS]
    ax.set_xticks(ticks, labels)
    ax.set_yticks(ticks, labels)
    ax.set_xlim(ticks[0], ticks[-1])
    ax.set_ylim(ticks[0], ticks[-1])
    ax.plot([ticks[0], ticks[-1]], [ticks[0], ticks[-1]], "k:", linewidth=0.8)
    ax.set_xlabel("false acceptance rate (%)")
    ax.set_ylabel("miss rate (%)")
    ax.grid(alpha=0.3)
    ax.legend(loc="upper right", fontsize=8)
    save_figure(fig, path, dpi=100)


def plot_histogram(name: str, scores: np.ndarray, labels: np.ndarray, path: Path) -> None:
    """Target and non-target score distributions of one trial list."""
    fig, ax = plt.subplots(figsize=(6, 3.5))
    bins = np.linspace(scores.min(), scores.max() + 1e-9, 60)
    ax.hist(scores[labels == 0], bins=bins, alpha=0.6, density=True, label="non-target")
    ax.hist(scores[labels == 1], bins=bins, alpha=0.6, density=True, label="target")
    ax.set_xlabel("score")
    ax.set_title(name)
    ax.legend()
    save_figure(fig, path, dpi=100)


def write_score_file(
    path: Path, enroll: list[str], test: list[str], scores: np.ndarray, labels: np.ndarray
) -> None:
    """One line per trial: ``enroll test score label`` (label 1 = target, 0 = non-target)."""
    lines = (
        f"{e} {t} {s:.8g} {int(y)}\n"
        for e, t, s, y in zip(enroll, test, np.asarray(scores), np.asarray(labels))
    )
    write_text_atomic(path, "".join(lines))


def write_verification_report(
    out_dir: str | Path,
    results: dict[str, dict[str, Any]],
    extra: dict[str, Any] | None = None,
    costs: tuple[DetectionCost, ...] = (),
) -> dict[str, Any]:
    """Write ``metrics.json``, ``results.md``, ``det.png``, ``scores_<list>.png`` and, for results
    that name their utterances (``enroll`` / ``test``), the score file ``scores_<list>.txt``
    (``enroll test score label`` per trial, in the list's order, as the scoring tools of Kaldi /
    WeSpeaker write them); returns the JSON content."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    content = {
        "test": {
            name: {"list": r["list"], **r["metrics"], "trials": int(len(r["labels"]))}
            for name, r in results.items()
        }
    }
    if costs:
        content["min_dcf_operating_points"] = {c.key(): c.label() for c in costs}
    if extra:
        content.update(extra)
    write_metrics_and_table(out, content, markdown_table(results, costs))
    plot_det(results, out / "det.png")
    for name, r in results.items():
        plot_histogram(name, r["scores"], r["labels"], out / f"scores_{name}.png")
        if "enroll" in r:
            write_score_file(
                out / f"scores_{name}.txt", r["enroll"], r["test"], r["scores"], r["labels"]
            )
    return content
