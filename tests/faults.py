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


class SignalAtStep(L.Callback):
    """Sends ``signum`` (a real signal, as a scheduler would) to its own process when training step
    ``step`` ends, or when the first test batch starts with ``step=0``."""

    def __init__(self, step: int, signum: int = signal.SIGTERM):
        self.step = step
        self.signum = signum

    def on_train_batch_end(self, trainer: L.Trainer, *args) -> None:
        """Signal once ``step`` optimizer steps are done."""
        if self.step and trainer.global_step >= self.step:
            os.kill(os.getpid(), self.signum)

    def on_test_batch_start(self, trainer: L.Trainer, *args) -> None:
        """Signal at the first test batch (``step=0``)."""
        if not self.step:
            os.kill(os.getpid(), self.signum)
