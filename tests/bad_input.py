"""Helpers of the bad-input tests (tones, truncated files, a private datamodule, scripts)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from .conftest import ROOT, voxceleb_datamodule

SR = 16000


def tone(seconds: float = 1.0, rate: int = SR) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)


def truncate(path: Path) -> Path:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


dm = voxceleb_datamodule  # the tests here damage copies of the tiny set read by it


def script(
    script: str, args: list[str], cwd: Path, env: dict | None = None, **popen
) -> subprocess.Popen:
    """Start a script of the checkout (``train.py``) or a module (``sonolab.embed``) as a user
    would, with ``env`` (default: this process's) and the checkout as ``SONOLAB_ROOT``."""
    env = {**(env or os.environ), "SONOLAB_ROOT": str(ROOT), "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        [
            sys.executable,
            *([str(ROOT / script)] if script.endswith(".py") else ["-m", script]),
            *args,
        ],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **popen,
    )
