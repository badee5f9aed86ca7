"""CPU threads and loader workers that follow the cores a process may really use.

PyTorch sizes its intra-op pool from the CPUs the process may be scheduled on, which ignores a
container's CPU quota (``docker --cpus``, Kubernetes limits, Slurm's cgroups): a job limited to 2
CPUs on a 64-core host then runs 64 threads that the quota throttles in turn.

OpenMP's idle threads also spin a while before they sleep, which costs a second busy process on
the same cores its speed; ``OMP_WAIT_POLICY=PASSIVE`` stops the spinning but slows a process that
has its cores to itself (both measured in docs/benchmarks.md), so that choice is left to the user.
"""

from __future__ import annotations

import logging
import math
import os
from pathlib import Path

from omegaconf import OmegaConf

log = logging.getLogger(__name__)

_CGROUP_V2 = Path("/sys/fs/cgroup/cpu.max")
_CGROUP_V1 = (
    Path("/sys/fs/cgroup/cpu/cpu.cfs_quota_us"),
    Path("/sys/fs/cgroup/cpu/cpu.cfs_period_us"),
)


def _cgroup_quota() -> float | None:
    """CPUs' worth of time the process's cgroup allows, or None when it sets no quota."""
    try:
        if _CGROUP_V2.is_file():
            quota, period = _CGROUP_V2.read_text().split()[:2]
            return None if quota == "max" else int(quota) / int(period)
        if _CGROUP_V1[0].is_file():
            quota, period = (int(p.read_text()) for p in _CGROUP_V1)
            return None if quota <= 0 else quota / period
    except (OSError, ValueError):
        pass
    return None


def usable_cores() -> int:
    """The cores this process can use: its CPU affinity, capped by a cgroup CPU quota (rounded
    up)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    quota = _cgroup_quota()
    if quota is not None:
        cores = min(cores, max(1, math.ceil(quota)))
    return cores


def follow_usable_cores() -> int:
    """Shrink PyTorch's intra-op threads to :func:`usable_cores` when it has more (never grows
    them, and leaves them alone when ``OMP_NUM_THREADS`` says how many); returns the count in
    use."""
    import torch

    cores = usable_cores()
    threads = torch.get_num_threads()
    if "OMP_NUM_THREADS" not in os.environ and threads > cores:
        log.info("%d CPU threads -> %d: the cores this process may use", threads, cores)
        torch.set_num_threads(cores)
        threads = cores
    return threads


def loader_workers(cap: int | str = 8) -> int:
    """DataLoader workers for this machine: one per usable core (:func:`usable_cores`), at most
    ``cap``. The data configs of the GPU recipes say ``num_workers: ${loader_workers:16}``, so a
    16-core GPU machine decodes with 16 workers where a 2-core one keeps 2 (the results do not
    depend on the count: every crop and mixup draw is seeded by its place in the epoch)."""
    return max(0, min(int(cap), usable_cores()))


if not OmegaConf.has_resolver("loader_workers"):  # data configs: ${loader_workers:16}
    OmegaConf.register_new_resolver("loader_workers", loader_workers)
