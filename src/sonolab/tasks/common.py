"""What every task family shares: the start-up component check and the optimiser / LR schedule."""

from __future__ import annotations

from functools import partial
from typing import Callable

import lightning as L
import torch
from torch import nn

from ..utils.errors import IncompatibleConfigError


def check_components(task: L.LightningModule, model: nn.Module, loss) -> None:
    """Refuse a model or loss of another task family before any data is read.

    ``loss`` may be a module or a partial of a loss class (verification losses are completed with
    the embedding size and class count by the task).
    """
    output = getattr(model, "output_type", None)
    if output not in task.model_outputs:
        raise IncompatibleConfigError(
            f"model {type(model).__name__} outputs {output!r}; the {task.family} task needs {task.model_outputs}")
    loss_cls = getattr(loss, "func", loss)
    family = getattr(loss_cls, "task_family", None)
    if family != task.family:
        name = getattr(loss_cls, "__name__", type(loss_cls).__name__)
        raise IncompatibleConfigError(f"loss {name} is for {family!r}; the {task.family} task needs a {task.family} loss")


def warmup_exponential_decay(step: int, total_steps: int, warmup_steps: int, final_ratio: float) -> float:
    """LR multiplier: linear warm-up, then exponential decay to ``final_ratio`` at the last step (WeSpeaker's shape)."""
    if warmup_steps > 0 and step < warmup_steps:
        return (step + 1) / warmup_steps
    span = max(1, total_steps - warmup_steps)
    return final_ratio ** (min(step - warmup_steps, span) / span)


def configure_optimization(task: L.LightningModule, optimizer: Callable[..., torch.optim.Optimizer],
                           scheduler: dict | None):
    """The optimiser over the task's parameters and, with ``scheduler`` = ``{warmup_epochs,
    final_lr_ratio}``, a per-step warm-up + exponential decay over the whole run."""
    opt = optimizer(params=task.parameters())
    if not scheduler:
        return opt
    total = int(task.trainer.estimated_stepping_batches)
    epochs = max(1, task.trainer.max_epochs or 1)
    warmup = int(scheduler.get("warmup_epochs", 0) * total / epochs)
    schedule = partial(warmup_exponential_decay, total_steps=total, warmup_steps=warmup,
                       final_ratio=float(scheduler.get("final_lr_ratio", 0.01)))
    return {"optimizer": opt, "lr_scheduler": {"scheduler": torch.optim.lr_scheduler.LambdaLR(opt, schedule),
                                               "interval": "step"}}
