"""Sound event detection report: the event scores added to the tagging report's ``results.md``,
per-class event F1, and timelines of test clips (reference events above the detected ones)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless: runs on servers without a display
import matplotlib.pyplot as plt  # noqa: E402

from ..utils.io import write_text_atomic  # noqa: E402
from .files import save_figure  # noqa: E402

SCORES = {
    "psds1": "PSDS1",
    "psds2": "PSDS2",
    "event_f1_macro": "event F1 macro (%)",
    "event_f1_micro": "event F1 micro (%)",
    "segment_f1_macro": "segment F1 macro (%)",
    "segment_f1_micro": "segment F1 micro (%)",
}


def sed_table(results: dict[str, dict]) -> str:
    """Markdown: PSDS and event / segment F1 of each test set and of its whole-clip baseline, the
    decisions used, and per-class event F1."""
    scored = {name: r for name, r in results.items() if "event_f1_macro" in r}
    shown = [k for k in SCORES if any(k in r for r in scored.values())]
    lines = [
        "## Sound event detection",
        "",
        "| set | system | " + " | ".join(SCORES[k] for k in shown) + " |",
        "|---|---|" + "---|" * len(shown),
    ]
    for name, r in scored.items():
        for system, scores in (("detected", r), ("whole-clip baseline", r["whole_clip_baseline"])):
            cells = [_score(k, scores.get(k)) for k in shown]
            lines.append(f"| {name} | {system} | " + " | ".join(cells) + " |")
    for name, r in scored.items():
        d = r["decisions"]
        psds_medians = ", ".join(
            f"{k.upper()} {v}" for k, v in d.get("psds_median_frames", {}).items() if k in r
        )
        lines += [
            "",
            f"Decisions ({name}): threshold {d['threshold']}, median filter {d['median_frames']} "
            f"frames of {r['frame_seconds']:.3f} s ({d['from']}); event collars 200 ms onset, "
            "max(200 ms, 20 %) offset; 1 s segments."
            + (
                f" PSDS over a threshold sweep with median filters of {psds_medians} frames."
                if psds_medians
                else ""
            )
            + " The whole-clip baseline marks each clip's reference tags over the whole clip.",
            "",
            "| class | event F1 (%) | whole-clip baseline (%) |",
            "|---|---|---|",
        ]
        baseline = r["whole_clip_baseline"]["per_class_event_f1"]
        for label, f1 in r["per_class_event_f1"].items():
            lines.append(f"| {label} | {_cell(f1)} | {_cell(baseline[label])} |")
    return "\n".join(lines) + "\n"


def _cell(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def _score(key: str, value: float | None) -> str:
    """PSDS (0 to 1) to three places, F1 (%) to two; - where not defined."""
    if value is None:
        return "-"
    return f"{value:.3f}" if key.startswith("psds") else f"{value:.2f}"


def plot_timeline(reference, detected, labels: list[str], seconds: float, path: Path, title: str):
    """One row per class that occurs: reference events (upper bar) above detected ones (lower)."""
    shown = sorted({e.label for e in reference} | {e.label for e in detected}) or labels[:1]
    fig, ax = plt.subplots(figsize=(9, 0.5 * len(shown) + 1.2))
    for row, label in enumerate(shown):
        for events, offset, colour in (
            (reference, 0.45, "tab:green"),
            (detected, 0.05, "tab:blue"),
        ):
            spans = [(e.onset, e.offset - e.onset) for e in events if e.label == label]
            ax.broken_barh(spans, (row + offset, 0.4), color=colour)
    ax.set_yticks([r + 0.5 for r in range(len(shown))], shown)
    ax.set_xlim(0, seconds)
    ax.set_xlabel("seconds (upper bar: reference, lower: detected)")
    ax.set_title(title)
    save_figure(fig, path)


def write_sed_report(
    out: Path, results: dict[str, dict], events: dict[str, dict], timelines: int
) -> None:
    """Add the sound-event section to ``out/results.md`` and draw ``timelines`` test clips of each
    set into ``out/timelines/``."""
    table = out / "results.md"
    write_text_atomic(table, table.read_text() + "\n" + sed_table(results))
    for name, sets in events.items():
        seconds = results[name]["clip_seconds"]
        clips = sorted(sets["reference"])[:timelines]
        if clips:
            (out / "timelines").mkdir(exist_ok=True)
        labels = sorted({e.label for c in clips for e in sets["reference"][c]})
        for clip in clips:
            plot_timeline(
                sets["reference"][clip],
                sets["detected"].get(clip, []),
                labels,
                seconds,
                out / "timelines" / f"{name}_{Path(clip).stem}.png",
                f"{name}: {Path(clip).name}",
            )
