"""Ablation tables from run folders: ``python -m sonolab.report <sweep or run folders, or globs>
[--out DIR] [--metrics PATTERN ...]``.

Every job folder found (a Hydra run or sweep job: ``.hydra/config.yaml``) is one run. Runs are
grouped by their command-line overrides other than ``seed``; the overrides whose values differ
between the groups become the table's columns; each metric is the mean +- sample standard deviation
over the group's completed runs, with their count. A run's published target (its experiment's
``expected``
block: ``{metric, value, source, tolerance}``, the tolerance optional and absolute) is shown
beside the measured value, and a mean outside ``value +- tolerance`` is marked. Runs that failed
(``run.json`` status, or no ``metrics.json``) are counted per row and listed under the table with
the last line of their error; nothing is dropped. Writes ``ablation.md``, ``ablation.csv`` and
``ablation.tex`` (booktabs) and prints the table. A Hydra callback writes them into every multirun's
sweep folder.
"""

from __future__ import annotations

import argparse
import csv
import fnmatch
import glob
import io
import json
import logging
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from ..cli import as_flags
from ..utils.io import write_text_atomic
from ..utils.targets import declared_class_or_none
from .record import RECORD, flatten_metrics

log = logging.getLogger(__name__)

IGNORED_OVERRIDES = ("seed", "hydra.", "trainer.enable_progress_bar")


def job_folders(paths: list[str | Path]) -> list[Path]:
    """Run folders (holding ``.hydra/config.yaml``) under the given folders or glob patterns."""
    roots: list[Path] = []
    for path in map(str, paths):
        matches = sorted(glob.glob(path)) if any(c in path for c in "*?[") else [path]
        roots += [Path(m) for m in matches]
    jobs = {p.parent.parent for root in roots for p in root.glob("**/.hydra/config.yaml")}
    return sorted(jobs, key=_natural)


def _natural(path: Path) -> list:
    """Sort key reading digit runs as numbers, so a sweep's jobs 0, 1, 2, ..., 10 (and the table's
    rows) come in launch order rather than 0, 1, 10, 11, 2."""
    return [
        (0, int(part), "") if part.isdigit() else (1, 0, part)
        for part in re.split(r"(\d+)", str(path))
    ]


def last_log_line(job: Path) -> str:
    """The last non-empty line of the job's log (what a failed run last said)."""
    for log_file in sorted(job.glob("*.log")):
        lines = [ln for ln in log_file.read_text(errors="replace").splitlines() if ln.strip()]
        if lines:
            return lines[-1]
    return "no metrics.json and no log"


class UnreadableRunFile(ValueError):
    """A run's file (``run.json``, ``metrics.json``, its saved config) that cannot be parsed: cut
    short by a kill or a full disk, or edited by hand."""


def parse_run_file(path: Path, parse: Callable[[str], Any]) -> Any:
    """``parse`` of the file's text; UnreadableRunFile ``unreadable <file>: <error's first line>``
    when it cannot be read or parsed."""
    try:
        return parse(path.read_text(errors="replace"))
    except (ValueError, yaml.YAMLError, OSError) as err:
        first = str(err).splitlines()[0] if str(err) else ""
        raise UnreadableRunFile(f"unreadable {path.name}: {type(err).__name__}: {first}") from err


def read_run(job: Path) -> dict[str, Any]:
    """One run: overrides, seed, status, error line, flattened test metrics and ``expected``
    targets. A run whose ``run.json``, ``metrics.json`` or saved config cannot be read (truncated
    by a full disk or a kill) is ``unreadable``, with the file and the parser's complaint as its
    error: listed under the table like a failed run, never a reason to lose the table."""
    problems = []

    def load(path: Path, parse) -> Any:
        if not path.is_file():
            return None
        try:
            return parse_run_file(path, parse)
        except UnreadableRunFile as err:
            problems.append(str(err))
            return None

    record = load(job / RECORD, json.loads)
    record = record if isinstance(record, dict) else {}
    overrides = record.get("overrides")
    if overrides is None:
        overrides = load(job / ".hydra" / "overrides.yaml", yaml.safe_load) or []
    config = load(job / ".hydra" / "config.yaml", yaml.safe_load)
    config = config if isinstance(config, dict) else {}
    metrics_file = job / "metrics.json"
    tree = load(metrics_file, json.loads)
    metrics = flatten_metrics(tree.get("test", {})) if isinstance(tree, dict) else {}
    if problems:
        status, error = "unreadable", "; ".join(problems)
    else:
        status = record.get("status") or ("completed" if metrics_file.is_file() else "failed")
        error = record.get("error") or (None if status == "completed" else last_log_line(job))
    # run.json holds the resolved config (an expected metric's name may interpolate a data key)
    expected = (record.get("config") or config).get("expected") or []
    expected = [expected] if isinstance(expected, dict) else list(expected)
    return {
        "job": str(job),
        "overrides": [str(o) for o in overrides],
        "seed": config.get("seed"),
        "status": status,
        "error": error,
        "metrics": metrics,
        "expected": expected,
        "headline": headline_patterns((record.get("config") or config).get("task") or {}),
    }


def headline_patterns(task_config: dict) -> tuple[str, ...]:
    """The ``test/<set>/...`` patterns of the headline metrics the run's task class declares
    (:attr:`~sonolab.tasks.base.Task.headline_metrics`); every test metric when the class cannot be
    imported (a run of code that has since changed) or declares none."""
    from ..tasks.base import Task  # imported late: the report CLI starts without torch otherwise

    task_cls = declared_class_or_none(task_config.get("_target_"), Task)
    if task_cls is None or not task_cls.headline_metrics:
        return ("test/*",)
    return tuple(f"test/*/{pattern}" for pattern in task_cls.headline_metrics)


def _key(override: str) -> tuple[str, str]:
    name, _, value = override.lstrip("+~").partition("=")
    return name, value


def group_runs(runs: list[dict[str, Any]]) -> tuple[list[str], list[dict[str, Any]]]:
    """The swept keys (overrides that differ between runs, seed excluded) and one group per
    setting."""
    settings = []
    for run in runs:
        kept = dict(
            _key(o) for o in run["overrides"] if not _key(o)[0].startswith(IGNORED_OVERRIDES)
        )
        settings.append(kept)
    names = sorted({k for s in settings for k in s})
    swept = [k for k in names if len({s.get(k, "") for s in settings}) > 1]
    groups: dict[tuple, dict[str, Any]] = {}
    for run, setting in zip(runs, settings):
        key = tuple(setting.get(k, "") for k in swept)
        group = groups.setdefault(
            key,
            {
                "setting": dict(zip(swept, key)),
                "runs": [],
                "constant": {k: v for k, v in setting.items() if k not in swept},
            },
        )
        group["runs"].append(run)
    return swept, list(groups.values())


def _matching(metrics: list[str], patterns: tuple[str, ...]) -> list[str]:
    return [m for m in metrics if any(fnmatch.fnmatchcase(m, p) for p in patterns)]


def summarise(
    runs: list[dict[str, Any]], patterns: tuple[str, ...] | None = None
) -> dict[str, Any]:
    """The table as data: swept keys, metric columns (``patterns``, by default each run's headline
    metrics), and per group the mean / std / count of each metric over its completed runs, the
    published targets and the failed runs."""
    swept, groups = group_runs(runs)
    columns = sorted(
        {
            metric
            for run in runs
            for metric in _matching(
                list(run["metrics"]), patterns or run.get("headline", ("test/*",))
            )
        }
    )
    rows = []
    for group in groups:
        done = [r for r in group["runs"] if r["status"] == "completed"]
        cells = {}
        for metric in columns:
            values = np.array([r["metrics"][metric] for r in done if metric in r["metrics"]])
            cells[metric] = {
                "mean": float(values.mean()) if values.size else None,
                "std": float(values.std(ddof=1)) if values.size > 1 else None,
                "n": int(values.size),
            }
        expected = {e["metric"]: e for r in group["runs"] for e in r["expected"] if "metric" in e}
        rows.append(
            {
                "setting": group["setting"],
                "cells": cells,
                "expected": expected,
                "seeds": sorted({str(r["seed"]) for r in done}),
                "completed": len(done),
                "failed": [
                    (r["job"], r["error"]) for r in group["runs"] if r["status"] != "completed"
                ],
            }
        )
    published = [m for m in columns if any(m in row["expected"] for row in rows)]
    return {"swept": swept, "columns": columns, "published": published, "rows": rows}


def _labels(metrics: list[str]) -> dict[str, str]:
    """Column labels: ``<set>/.../<metric>`` without the ``test/`` prefix and without the middle
    path parts that every nested metric of the table shares (they tell no column apart)."""
    parts = {m: m.removeprefix("test/").split("/") for m in metrics}
    middles = [set(p[1:-1]) for p in parts.values() if len(p) > 2]
    shared = set.intersection(*middles) if middles else set()
    return {
        m: "/".join([p[0], *[x for x in p[1:-1] if x not in shared], p[-1]] if len(p) > 2 else p)
        for m, p in parts.items()
    }


def _cell(cell: dict[str, Any]) -> str:
    if cell["mean"] is None:
        return "-"
    return f"{cell['mean']:.4g}" + (f" +- {cell['std']:.2g}" if cell["std"] is not None else "")


def _published(entry: dict[str, Any]) -> str:
    tolerance = f" +- {entry['tolerance']}" if entry.get("tolerance") is not None else ""
    return f"{entry['value']}{tolerance} ({entry.get('source', '')})"


def outside_tolerance(cell: dict[str, Any], entry: dict[str, Any] | None) -> bool:
    """Whether a measured mean lies outside its ``expected`` entry's ``value +- tolerance`` (an
    entry without a tolerance marks nothing)."""
    if not entry or entry.get("tolerance") is None or cell["mean"] is None:
        return False
    return abs(cell["mean"] - float(entry["value"])) > float(entry["tolerance"])


def _tolerance_mark(cell: dict[str, Any], entry: dict[str, Any] | None) -> str:
    return " (outside tolerance)" if outside_tolerance(cell, entry) else ""


def _table_rows(table: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    label = _labels([*table["columns"], *table["published"]])
    header = [
        *(table["swept"] or ["configuration"]),
        *[label[m] for m in table["columns"]],
        *[f"{label[m]} published" for m in table["published"]],
        "seeds",
        "failed",
    ]
    body = []
    for row in table["rows"]:
        setting = (
            [row["setting"][k] for k in table["swept"]] if table["swept"] else ["(as configured)"]
        )
        published = [
            _published(row["expected"][m]) if m in row["expected"] else "-"
            for m in table["published"]
        ]
        body.append(
            [
                *setting,
                *[
                    _cell(row["cells"][m])
                    + _tolerance_mark(row["cells"][m], row["expected"].get(m))
                    for m in table["columns"]
                ],
                *published,
                str(row["completed"]),
                str(len(row["failed"])),
            ]
        )
    return header, body


def markdown(table: dict[str, Any]) -> str:
    """The table in markdown, failed runs listed under it with their error's last line."""
    header, body = _table_rows(table)
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cells) + " |" for cells in body]
    failed = [f for row in table["rows"] for f in row["failed"]]
    if failed:
        lines += ["", "Failed runs:", ""] + [f"- {job}: {error}" for job, error in failed]
    return "\n".join(lines) + "\n"


def csv_text(table: dict[str, Any]) -> str:
    """The table as CSV (means and standard deviations in separate columns)."""
    out = io.StringIO()
    writer = csv.writer(out)
    metrics = table["columns"]
    writer.writerow(
        [
            *table["swept"],
            *[f"{m} {s}" for m in metrics for s in ("mean", "std", "n")],
            *[
                f"{m} {s}"
                for m in table["published"]
                for s in ("published", "tolerance", "outside tolerance")
            ],
            "seeds",
            "failed",
        ]
    )
    for row in table["rows"]:
        cells = [
            v
            for m in metrics
            for v in (row["cells"][m]["mean"], row["cells"][m]["std"], row["cells"][m]["n"])
        ]
        published = [
            value
            for m in table["published"]
            for value in (
                row["expected"].get(m, {}).get("value", ""),
                row["expected"].get(m, {}).get("tolerance", ""),
                int(outside_tolerance(row["cells"][m], row["expected"].get(m))),
            )
        ]
        writer.writerow(
            [
                *(row["setting"][k] for k in table["swept"]),
                *cells,
                *published,
                row["completed"],
                len(row["failed"]),
            ]
        )
    return out.getvalue()


# LaTeX's special characters in table cells; pandas' Styler.to_latex would do it but pandas is not a
# dependency, and a booktabs tabular of plain cells is all a paper needs.
_LATEX_ESCAPES = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
}


def _latex_cell(text: str) -> str:
    escaped = "".join(_LATEX_ESCAPES.get(ch, ch) for ch in text)
    return escaped.replace(" +- ", r" $\pm$ ")


def latex(table: dict[str, Any]) -> str:
    """The table as a booktabs ``tabular`` (cells "mean \\pm std") to paste into a paper."""
    header, body = _table_rows(table)
    lines = [
        r"\begin{tabular}{"
        + "l" * len(table["swept"] or ["configuration"])
        + "r" * (len(header) - len(table["swept"] or ["configuration"]))
        + "}",
        r"\toprule",
        " & ".join(_latex_cell(h) for h in header) + r" \\",
        r"\midrule",
    ]
    lines += [" & ".join(_latex_cell(c) for c in cells) + r" \\" for cells in body]
    lines += [r"\bottomrule", r"\end{tabular}"]
    return "\n".join(lines) + "\n"


def write_ablation(
    paths: list[str | Path], out_dir: Path, patterns: tuple[str, ...] | None = None
) -> str | None:
    """``ablation.md`` / ``ablation.csv`` / ``ablation.tex`` in ``out_dir`` from the runs under
    ``paths``; returns the markdown table, or None when no run folder is found."""
    jobs = job_folders(paths)
    if not jobs:
        return None
    table = summarise([read_run(job) for job in jobs], patterns)
    text = markdown(table)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_text_atomic(out_dir / "ablation.md", f"# Ablation: {len(jobs)} runs\n\n" + text)
    write_text_atomic(out_dir / "ablation.csv", csv_text(table))
    write_text_atomic(out_dir / "ablation.tex", latex(table))
    return text


try:
    from hydra.experimental.callback import Callback
except ImportError:  # pragma: no cover - hydra is a dependency
    Callback = object


class AblationTableCallback(Callback):
    """Hydra callback: ``ablation.md`` / ``ablation.csv`` in a multirun's sweep folder, rewritten
    after every
    job (Hydra's sweeper raises a failed job's error once its batch ends, before the multirun's end,
    so the table must already be there and list it) and logged at the end."""

    def on_job_end(self, config, job_return=None, **kwargs) -> None:
        from hydra.core.hydra_config import HydraConfig
        from hydra.types import RunMode

        if HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN:
            sweep_dir = Path(HydraConfig.get().sweep.dir)
            write_ablation([sweep_dir], sweep_dir)

    def on_multirun_end(self, config, **kwargs) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        table = write_ablation([sweep_dir], sweep_dir)
        if table:
            log.info("ablation table (%s):\n%s", sweep_dir / "ablation.md", table)


def main(argv: list[str] | None = None) -> int:
    """Ablation table of sweeps and runs: sonolab report <folders or globs> [--out DIR]

    Prints the table and writes it (``--out``, default the first folder given; also
    ``python -m sonolab.report``)."""
    parser = argparse.ArgumentParser(
        prog="python -m sonolab.report", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument(
        "paths", nargs="+", help="sweep folders, run folders or glob patterns of them"
    )
    parser.add_argument("--out", type=Path, help="where ablation.md / ablation.csv go")
    parser.add_argument(
        "--metrics",
        nargs="+",
        help="metric patterns over test/<set>/... keys (default: the headline metrics each run's "
        "task declares)",
    )
    args = parser.parse_args(as_flags(parser, sys.argv[1:] if argv is None else argv))
    first = sorted(glob.glob(args.paths[0])) or [args.paths[0]]
    out = args.out or Path(first[0])
    table = write_ablation(args.paths, out, tuple(args.metrics) if args.metrics else None)
    if table is None:
        print(f"no run folders (.hydra/config.yaml) under {', '.join(args.paths)}", file=sys.stderr)
        return 1
    print(table, end="")
    print(f"\nwritten: {out / 'ablation.md'}, {out / 'ablation.csv'}, {out / 'ablation.tex'}")
    return 0
