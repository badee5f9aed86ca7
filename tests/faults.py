"""Faults injected into training subprocesses by tests (loaded through a
``+callbacks.<name>._target_`` override with the repository root on PYTHONPATH)."""

from __future__ import annotations

import os
import signal

import lightning as L


class KillAtStep(L.Callback):
    """SIGKILLs its own process after training step ``step`` (global, counted from 1): a crash
    in the middle of an epoch, at a point a test can choose exactly."""

    def __init__(self, step: int):
        self.step = step

    def on_train_batch_end(self, trainer: L.Trainer, *args) -> None:
        """Kill the process once ``step`` optimizer steps are done."""
        if trainer.global_step >= self.step:
            os.kill(os.getpid(), signal.SIGKILL)
