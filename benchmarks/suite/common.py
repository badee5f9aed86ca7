"""What every benchmark case shares: the run settings, the result row, interleaved timing, and a
description of the machine."""

from __future__ import annotations

import os
import platform
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Settings:
    """How the suite runs: the device, repeats per row, and whether sizes are cut for a quick
    look (``quick``: minutes rather than tens of minutes; not the documented sizes)."""

    device: str = "cpu"
    repeats: int = 5
    quick: bool = False


@dataclass
class Row:
    """One comparison: ``fast`` against ``baseline`` in the same run, rates in ``unit`` (higher is
    better), each repeat's ratio fast / baseline summarised by its median and range; ``check`` says
    how the two outputs compare (or what else the row shows)."""

    case: str
    what: str
    baseline: str
    fast: str
    unit: str
    baseline_rates: list[float]
    fast_rates: list[float]
    check: str = ""
    extra: dict = field(default_factory=dict)

    @property
    def ratios(self) -> list[float]:
        return [f / b for f, b in zip(self.fast_rates, self.baseline_rates)]

    def to_dict(self) -> dict:
        """The row with its summary, for the JSON file."""
        out = asdict(self)
        out.update(
            ratio_median=statistics.median(self.ratios),
            ratio_min=min(self.ratios),
            ratio_max=max(self.ratios),
            baseline_median=statistics.median(self.baseline_rates),
            fast_median=statistics.median(self.fast_rates),
        )
        return out


def interleaved(
    baseline: Callable[[], float], fast: Callable[[], float], repeats: int
) -> tuple[list[float], list[float]]:
    """Each callable's rate ``repeats`` times, alternating baseline and fast (baseline first in
    even repeats, fast first in odd ones), so drift on a shared machine hits both alike."""
    base, quick = [], []
    for r in range(repeats):
        order = (baseline, fast) if r % 2 == 0 else (fast, baseline)
        for run in order:
            (base if run is baseline else quick).append(run())
    return base, quick


def rate(run: Callable[[], object], items: float, device: str) -> float:
    """``items`` per second of one call of ``run`` (the device synchronised around it)."""
    synchronise(device)
    start = time.perf_counter()
    run()
    synchronise(device)
    return items / (time.perf_counter() - start)


def kept_rate(
    results: dict, key: str, run: Callable[[], object], items: float, device: str = "cpu"
) -> Callable[[], float]:
    """A callable giving ``items`` per second of one call of ``run`` (see :func:`rate`); the
    call's result is kept in ``results[key]``, so a row compares what was timed instead of
    computing it again."""

    def call() -> None:
        results[key] = run()

    return lambda: rate(call, items, device)


def synchronise(device: str) -> None:
    """Wait for queued GPU work (nothing on the CPU)."""
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def reset_peak_memory(device: str) -> None:
    """Start a new peak of GPU memory (nothing on the CPU, where a process's resident peak keeps
    what earlier cases left in the allocator's pools)."""
    if device.startswith("cuda"):
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)


def peak_memory(device: str) -> int:
    """Bytes of GPU memory allocated at most since :func:`reset_peak_memory` (0 on the CPU)."""
    return torch.cuda.max_memory_allocated(device) if device.startswith("cuda") else 0


def machine(device: str) -> dict:
    """What the numbers were measured on."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    info = {
        "cpu": cpu,
        "cores_available": len(os.sched_getaffinity(0)),
        "torch_threads": torch.get_num_threads(),
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", "(unset)"),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "system": f"{platform.system()} {platform.release()}",
        "device": device,
    }
    if device.startswith("cuda"):
        info["gpu"] = torch.cuda.get_device_name(device)
    return info
