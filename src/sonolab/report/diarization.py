"""Diarization report: metrics.json, a markdown DER table, one RTTM and one timeline PNG per
recording."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # headless: runs on servers without a display
import matplotlib.pyplot as plt  # noqa: E402
from pyannote.core import Annotation  # noqa: E402

from ..data.readers._text import escape_field, printable  # noqa: E402
from ..data.readers.rttm import write_rttm  # noqa: E402
from ..utils.io import write_text_atomic  # noqa: E402
from .files import save_figure, write_metrics_and_table  # noqa: E402

# beside a set's RTTM files: ``<URI as written in the RTTM>\t<its RTTM file>`` for each URI a
# space, '%' or a byte that is not UTF-8 made us escape (``my meeting`` -> ``my%20meeting``)
ESCAPED_URIS = "escaped_uris.tsv"


def _row(name: str, system: str, entry: dict) -> str:
    return (
        f"| {name} | {system} | {entry['der']:.2f} | "
        f"{100 * entry['false_alarm'] / max(entry['speech'], 1e-9):.2f} | "
        f"{100 * entry['missed'] / max(entry['speech'], 1e-9):.2f} | "
        f"{100 * entry['confusion'] / max(entry['speech'], 1e-9):.2f} | {entry['speech']:.1f} | "
        f"{entry['jer']:.2f} | {entry['count_error']:.2f} |"
    )


def markdown_tables(results: dict[str, dict]) -> str:
    """One table per scoring setup: each scored set's corpus DER and its parts (% of scored speech),
    for the system and for the one-speaker floor, then the per-recording DERs of the system; sets
    given without references are listed as diarized, not scored."""
    scored = {name: r for name, r in results.items() if r.get("scored", True)}
    lines = []
    if scored:
        setups = next(iter(scored.values()))["system"]
        for key, first in setups.items():
            lines += [
                f"### DER, {first['label']}",
                "",
                "| set | system | DER (%) | false alarm (%) | missed (%) | confusion (%) | scored "
                "speech (s) | JER (%) | speaker count error (mean per file) |",
                "|---|---|---|---|---|---|---|---|---|",
            ]
            for name, r in scored.items():
                lines.append(_row(name, "model", r["system"][key]["corpus"]))
                lines.append(_row(name, "one speaker (floor)", r["floor"][key]["corpus"]))
            lines.append("")
        first_key = next(iter(setups))
        lines += [
            f"Per recording ({setups[first_key]['label']}):",
            "",
            "| set | recording | DER (%) | floor DER (%) | JER (%) | speakers (reference / "
            "found) |",
            "|---|---|---|---|---|---|",
        ]
        for name, r in scored.items():
            for uri, entry in r["system"][first_key]["files"].items():
                lines.append(
                    f"| {name} | {uri} | {entry['der']:.2f} | "
                    f"{r['floor'][first_key]['files'][uri]['der']:.2f} | {entry['jer']:.2f} | "
                    f"{entry['speakers']} / {entry['hypothesis_speakers']} |"
                )
        lines.append("")
    for name, r in results.items():
        if name not in scored:
            lines.append(
                f"Set {name}: {r['recordings']} recordings diarized, not scored (no references "
                "given); "
                f"RTTMs in rttm/{name}/."
            )
    return "\n".join(lines).rstrip("\n") + "\n"


def plot_timeline(
    reference: Annotation | None, hypothesis: Annotation, path: Path, title: str
) -> None:
    """Reference speakers' rows (when there is a reference) above the hypothesis speakers' rows;
    overlapping speech shows as several bars at the same time."""
    rows = [("ref", label) for label in (reference.labels() if reference is not None else [])]
    rows += [("hyp", label) for label in hypothesis.labels()]
    fig, ax = plt.subplots(figsize=(10, 0.35 * len(rows) + 1.2))
    for y, (side, label) in enumerate(reversed(rows)):
        source = reference if side == "ref" else hypothesis
        spans = [(s.start, s.duration) for s in source.label_timeline(label)]
        ax.broken_barh(spans, (y + 0.1, 0.8), color="tab:blue" if side == "ref" else "tab:orange")
    ax.set_yticks(
        [y + 0.5 for y in range(len(rows))],
        [f"{side}: {printable(str(label))}" for side, label in reversed(rows)],
        fontsize=7,
    )
    ax.set_xlabel("time (s)")
    ax.set_title(printable(title), fontsize=9)
    ax.grid(axis="x", alpha=0.3)
    save_figure(fig, path)


def write_turns(
    rttm_dir: Path,
    timeline_dir: Path,
    hypotheses: dict[str, Annotation],
    references: dict[str, Annotation] | None = None,
    plots: int | None = None,
    title: str = "",
) -> None:
    """``<rttm_dir>/<uri>.rttm`` for each recording (URIs a space would split escaped inside,
    listed in ``escaped_uris.tsv``) and ``<timeline_dir>/<uri>.png`` (every recording, or the
    first ``plots``), with its reference above it when there is one."""
    rttm_dir.mkdir(parents=True, exist_ok=True)
    for uri, h in hypotheses.items():
        write_rttm(
            rttm_dir / f"{uri}.rttm",
            {uri: [(label, s.start, s.end) for s, _, label in h.itertracks(yield_label=True)]},
        )
    escaped = {escape_field(uri): uri for uri in hypotheses if escape_field(uri) != uri}
    if escaped:  # which RTTM file holds a URI written escaped (the file keeps the name)
        write_text_atomic(
            rttm_dir / ESCAPED_URIS,
            "".join(f"{written}\t{uri}.rttm\n" for written, uri in escaped.items()),
        )
    timeline_dir.mkdir(parents=True, exist_ok=True)
    for uri in list(hypotheses)[:plots]:  # [:None] = all
        plot_timeline(
            (references or {}).get(uri),
            hypotheses[uri],
            timeline_dir / f"{uri}.png",
            f"{title} / {uri}" if title else uri,
        )


def write_diarization_report(
    out_dir: str | Path,
    results: dict[str, dict],
    hypotheses: dict[str, dict[str, Annotation]],
    references: dict[str, dict[str, Annotation]],
    extra: dict[str, Any] | None = None,
    plots: int | None = None,
) -> dict[str, Any]:
    """``metrics.json`` (per set: both setups, corpus and per file, and the floor), ``results.md``,
    ``rttm/<set>/<uri>.rttm`` (URIs a space would split escaped inside, listed in
    ``rttm/<set>/escaped_uris.tsv``) and ``timelines/<set>/<uri>.png`` (every recording, or the
    first ``plots`` of each set). A set without references has ``{"scored": false,
    "recordings": n}`` and hypothesis-only timelines."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    content = {"test": results}
    if extra:
        content.update(extra)
    write_metrics_and_table(out, content, markdown_tables(results))
    for name, hyps in hypotheses.items():
        write_turns(
            out / "rttm" / name, out / "timelines" / name, hyps, references[name], plots, name
        )
    return content
