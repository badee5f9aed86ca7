"""Thread counts that follow the usable cores."""

from __future__ import annotations

import os

import pytest
import torch

from sonolab.utils import threads


@pytest.mark.parametrize(
    ("cpu_max", "expected"),
    [("max 100000", 16), ("200000 100000", 2), ("150000 100000", 2), ("50000 100000", 1)],
)
def test_usable_cores_follow_the_cgroup_quota(cpu_max, expected, tmp_path, monkeypatch):
    quota = tmp_path / "cpu.max"
    quota.write_text(cpu_max + "\n")
    monkeypatch.setattr(threads, "_CGROUP_V2", quota)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(16)))
    assert threads.usable_cores() == expected


def test_usable_cores_follow_the_affinity_without_a_quota(tmp_path, monkeypatch):
    monkeypatch.setattr(threads, "_CGROUP_V2", tmp_path / "absent")
    monkeypatch.setattr(threads, "_CGROUP_V1", (tmp_path / "q", tmp_path / "p"))
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 3, 5})
    assert threads.usable_cores() == 3


def test_threads_shrink_to_the_usable_cores_and_never_grow(monkeypatch):
    before = torch.get_num_threads()
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    try:
        monkeypatch.setattr(threads, "usable_cores", lambda: 1)
        torch.set_num_threads(2)
        assert threads.follow_usable_cores() == 1 and torch.get_num_threads() == 1
        monkeypatch.setattr(threads, "usable_cores", lambda: 8)
        assert threads.follow_usable_cores() == 1 and torch.get_num_threads() == 1
        monkeypatch.setenv("OMP_NUM_THREADS", "2")
        torch.set_num_threads(2)
        monkeypatch.setattr(threads, "usable_cores", lambda: 1)
        assert threads.follow_usable_cores() == 2  # the user's count stands
    finally:
        torch.set_num_threads(before)


@pytest.mark.parametrize(
    "cores, cap, expected", [(2, 16, 2), (16, 16, 16), (64, 16, 16), (1, 8, 1)]
)
def test_loader_workers_follow_the_cores_up_to_the_cap(cores, cap, expected, monkeypatch):
    """``num_workers: ${loader_workers:16}`` in a data config resolves to one worker per usable
    core, at most the cap."""
    from omegaconf import OmegaConf

    monkeypatch.setattr(threads, "usable_cores", lambda: cores)
    assert threads.loader_workers(cap) == expected
    config = OmegaConf.create({"num_workers": f"${{loader_workers:{cap}}}"})
    assert config.num_workers == expected
