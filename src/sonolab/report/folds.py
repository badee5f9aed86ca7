"""Cross-validation summary: the runs of a sweep over the test fold (the datamodule's ``fold_key``;
ESC-50's protocol: train on four folds, test on the fifth, five times) gathered into a per-fold
metric and mean +- std.

Written by a Hydra callback at the end of every multirun (``folds.md`` / ``folds.json`` in the sweep
folder, nothing when the sweep has no fold results), and by hand with
``python -m sonolab.report.folds <sweep folder> [more folders ...]``.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import logging
import re
import sys
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from ..cli import as_flags
from ..utils.io import write_text_atomic
from ..utils.targets import declared_class_or_none
from .ablation import UnreadableRunFile, headline_patterns, last_log_line, parse_run_file

log = logging.getLogger(__name__)

FOLD_SET = re.compile(r"^fold(\d+)$")


def _job_config(job: Path) -> dict[str, Any]:
    """The job's saved config (empty when it has none)."""
    path = job / ".hydra" / "config.yaml"
    return (parse_run_file(path, yaml.safe_load) or {}) if path.is_file() else {}


def _fold_override(config: dict[str, Any]) -> re.Pattern | None:
    """The override that picks a job's test fold: ``data.<fold_key>=`` of the datamodule class in
    its ``config`` (:attr:`~sonolab.data.base.AudioDataModule.fold_key`), None when it declares
    none or can no longer be imported."""
    from ..data.base import AudioDataModule  # imported late: the CLI starts without torch otherwise

    data_cls = declared_class_or_none((config.get("data") or {}).get("_target_"), AudioDataModule)
    key = data_cls.fold_key if data_cls is not None else None
    return re.compile(rf"^\+*data\.{re.escape(key)}=") if key else None


def _job_dirs(folders: list[Path]) -> list[Path]:
    """Hydra job folders (holding ``.hydra/overrides.yaml``) under the given sweep or run
    folders."""
    jobs = []
    for folder in folders:
        jobs += [p.parent.parent for p in sorted(folder.glob("**/.hydra/overrides.yaml"))]
    return sorted(set(jobs))


def _fold_metric(metric: str, headline: tuple[str, ...], result: dict[str, Any]) -> str | None:
    """The key of ``result`` to read: ``metric``, or with ``auto`` the first of the job's task's
    ``headline`` patterns (:func:`~sonolab.report.ablation.headline_patterns`) found in it."""
    if metric != "auto":
        return metric if metric in result else None
    for pattern in headline:
        relative = pattern.removeprefix("test/*/")
        found = [key for key in result if fnmatch.fnmatchcase(key, relative)]
        if found:
            return found[0]
    return None


def _read_job(job: Path, metric: str) -> tuple[str, dict[str, Any] | None, tuple[str, ...]]:
    """A job's configuration (its overrides other than the fold's), its test results (None without
    ``metrics.json``) and its task's headline patterns; a file that cannot be parsed raises."""
    overrides = parse_run_file(job / ".hydra" / "overrides.yaml", yaml.safe_load) or []
    # read once: the fold key and the headline metrics come from it
    job_config = _job_config(job)
    fold = _fold_override(job_config)
    config = " ".join(o for o in overrides if not (fold and fold.match(o))) or "(defaults)"
    metrics_file = job / "metrics.json"
    if not metrics_file.is_file():
        return config, None, ()
    headline = headline_patterns(job_config.get("task") or {}) if metric == "auto" else ()
    return config, parse_run_file(metrics_file, json.loads).get("test", {}), headline


def collect_folds(folders: list[Path], metric: str = "auto") -> list[dict[str, Any]]:
    """One row per configuration (the job's overrides other than its fold's): ``{"config",
    "folds": {fold: value}, "metric", "failed": [(job folder, last error line)]}``. A job without
    ``metrics.json`` is failed. ``metric``: the per-fold test metric, or ``auto`` for the first
    headline metric of the job's task."""
    groups: dict[str, dict[str, Any]] = {}
    for job in _job_dirs(folders):
        try:
            config, results, headline = _read_job(job, metric)
        except UnreadableRunFile as err:  # truncated by a kill or a full disk
            row = groups.setdefault(str(job), {"config": str(job), "folds": {}, "failed": []})
            row["failed"].append((str(job), str(err)))
            continue
        row = groups.setdefault(config, {"config": config, "folds": {}, "failed": []})
        if results is None:
            row["failed"].append((str(job), last_log_line(job)))
            continue
        for name, result in results.items():
            match = FOLD_SET.match(name)
            key = _fold_metric(metric, headline, result) if match else None
            if key is not None:
                row["folds"][int(match.group(1))] = float(result[key])
                row["metric"] = key
    return [row for row in groups.values() if row["folds"] or row["failed"]]


def _metric_name(rows: list[dict[str, Any]], metric: str) -> str:
    """What the table reports: ``metric``, or for ``auto`` the metric(s) the rows were read by."""
    if metric != "auto":
        return metric
    return "/".join(sorted({row["metric"] for row in rows if "metric" in row})) or "auto"


def summarise(rows: list[dict[str, Any]], metric: str = "auto") -> tuple[str, list[dict[str, Any]]]:
    """A markdown table (per-fold values, mean +- sample standard deviation over folds, fold count)
    and the same numbers as JSON-ready rows."""
    folds = sorted({f for row in rows for f in row["folds"]})
    metric = _metric_name(rows, metric)
    header = ["configuration", *(f"fold {f}" for f in folds), f"mean {metric}", "std", "folds"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    records = []
    for row in rows:
        values = np.array([row["folds"][f] for f in folds if f in row["folds"]])
        mean = float(values.mean()) if values.size else float("nan")
        std = float(values.std(ddof=1)) if values.size > 1 else float("nan")
        cells = [f"{row['folds'][f]:.2f}" if f in row["folds"] else "-" for f in folds]
        lines.append(
            f"| {row['config']} | "
            + " | ".join(cells)
            + f" | {mean:.2f} | {std:.2f} | {values.size} |"
        )
        records.append(
            {
                "config": row["config"],
                "folds": row["folds"],
                "mean": mean,
                "std": std,
                "num_folds": int(values.size),
                "failed": row["failed"],
            }
        )
    failed = [f for row in rows for f in row["failed"]]
    if failed:
        lines += ["", "Failed runs:", ""] + [f"- {job}: {line}" for job, line in failed]
    return "\n".join(lines) + "\n", records


def write_fold_summary(folders: list[Path], out_dir: Path, metric: str = "auto") -> str | None:
    """``folds.md`` and ``folds.json`` in ``out_dir``; returns the table, or None when there are no
    fold results."""
    rows = collect_folds(folders, metric)
    if not rows:
        return None
    table, records = summarise(rows, metric)
    metric = _metric_name(rows, metric)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_text_atomic(
        out_dir / "folds.md", f"# Cross-validation: test {metric} per fold (%)\n\n" + table
    )
    write_text_atomic(
        out_dir / "folds.json", json.dumps({"metric": metric, "rows": records}, indent=2)
    )
    return table


try:
    from hydra.experimental.callback import Callback
except ImportError:  # pragma: no cover - kept importable without hydra for the CLI
    Callback = object


class FoldSummaryCallback(Callback):
    """Hydra callback: at the end of a multirun, the fold summary of its jobs into the sweep
    folder."""

    def __init__(self, metric: str = "auto"):
        self.metric = metric

    def on_multirun_end(self, config, **kwargs) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        table = write_fold_summary([sweep_dir], sweep_dir, self.metric)
        if table:
            log.info("cross-validation summary (%s):\n%s", sweep_dir / "folds.md", table)


def main(argv: list[str] | None = None) -> int:
    """Per-fold table of test-fold sweeps: sonolab folds <folder> [...] [--out DIR] [--metric auto]

    (also ``python -m sonolab.report.folds``; flags as --help lists them)."""
    parser = argparse.ArgumentParser(
        prog="python -m sonolab.report.folds", description=__doc__.splitlines()[0]
    )
    parser.add_argument(
        "folders", nargs="+", type=Path, help="sweep folders (or run folders) to gather"
    )
    parser.add_argument(
        "--out", type=Path, help="where folds.md / folds.json go (default: the first folder)"
    )
    parser.add_argument(
        "--metric",
        default="auto",
        help="the per-fold test metric (default: auto, the first headline metric of the task)",
    )
    args = parser.parse_args(as_flags(parser, sys.argv[1:] if argv is None else argv))
    missing = [str(f) for f in args.folders if not f.is_dir()]
    if missing:
        parser.error(f"no such folder: {', '.join(missing)}")
    table = write_fold_summary(args.folders, args.out or args.folders[0], args.metric)
    if table is None:
        print(
            f"no fold results (test sets named fold<k> with {args.metric!r}) under "
            f"{', '.join(map(str, args.folders))}",
            file=sys.stderr,
        )
        return 1
    print(table, end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
