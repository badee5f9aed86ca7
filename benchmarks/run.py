"""The benchmark suite: every row a ratio of a fast path against its baseline measured in the same
run, so the table holds on a noisy or shared machine; absolute rates are listed beside.

Run: .uv/bin/uv run --frozen python benchmarks/run.py [--device cuda] [--only frontends threads]
[--repeats 5] [--quick]. Writes logs/benchmarks/<time>.md and .json, naming the machine.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("SONOLAB_ROOT", str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from suite import (  # noqa: E402
    evaluation,
    frontends,
    inference,
    loading,
    metrics,
    mfu,
    overhead,
    pipeline,
    speedups,
    threads,
)
from suite.common import Row, Settings, machine  # noqa: E402

CASES = {
    **overhead.CASES,
    **pipeline.CASES,
    **loading.CASES,
    **frontends.CASES,
    **evaluation.CASES,
    **inference.CASES,
    **threads.CASES,
    **metrics.CASES,
    **speedups.CASES,
    **mfu.CASES,
}


def markdown(rows: list[Row], host: dict, settings: Settings) -> str:
    """The results table: one line per row, ratio median and range over the repeats."""
    lines = [
        "# Benchmarks",
        "",
        "Machine: " + ", ".join(f"{k} {v}" for k, v in host.items()),
        f"Repeats per row: {settings.repeats} (interleaved)"
        + (" [quick sizes]" if settings.quick else ""),
        "",
        "| case | what | baseline | fast path | unit | baseline (median) | fast (median) | "
        "ratio median (range) | check |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        ratios = row.ratios
        base, fast = statistics.median(row.baseline_rates), statistics.median(row.fast_rates)
        lines.append(
            f"| {row.case} | {row.what} | {row.baseline} | {row.fast} | {row.unit} | "
            f"{base:.4g} | {fast:.4g} | {statistics.median(ratios):.3f} "
            f"({min(ratios):.3f}-{max(ratios):.3f}) | {row.check} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--only", nargs="+", choices=sorted(CASES), default=sorted(CASES))
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="small sizes, for a quick look")
    parser.add_argument("--out", type=Path, default=ROOT / "logs" / "benchmarks")
    args = parser.parse_args(argv)
    settings = Settings(device=args.device, repeats=args.repeats, quick=args.quick)
    host = machine(args.device)
    rows: list[Row] = []
    args.out.mkdir(parents=True, exist_ok=True)
    stem = args.out / time.strftime("%Y-%m-%d_%H-%M-%S")
    for name in args.only:
        print(f"running {name} ...", flush=True)
        rows.extend(CASES[name](settings))
        # written after every case, so a run stopped at a time limit keeps what it measured
        table = markdown(rows, host, settings)
        stem.with_suffix(".md").write_text(table)
        stem.with_suffix(".json").write_text(
            json.dumps(
                {"machine": host, "settings": vars(settings), "rows": [r.to_dict() for r in rows]},
                indent=1,
            )
        )
    print(table)
    print(f"written: {stem}.md / .json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
