"""What every task family shares: the start-up component check and the optimiser / LR schedule."""

from __future__ import annotations

from functools import partial
from typing import Callable

import lightning as L
import torch
from torch import nn

from ..utils.errors import ConfigValueError, IncompatibleConfigError


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


def noam(step: int, warmup_steps: int, d_model: int) -> float:
    """LR multiplier of the Transformer paper's schedule ("Noam"), as the EEND recipes use it with a
    base learning rate of 1: ``d_model^-0.5 * min(t^-0.5, t * warmup^-1.5)`` at step ``t = step + 1``
    (rises linearly to ``(d_model * warmup)^-0.5`` at the end of the warm-up, then falls as ``t^-0.5``)."""
    t = step + 1
    return d_model ** -0.5 * min(t ** -0.5, t * warmup_steps ** -1.5)


SCHEDULER_TYPES = ("warmup_exponential", "noam")


def configure_optimization(task: L.LightningModule, optimizer: Callable[..., torch.optim.Optimizer],
                           scheduler: dict | None):
    """The optimiser over the task's parameters and a per-step LR multiplier: with ``scheduler`` =
    ``{warmup_epochs, final_lr_ratio}`` (``type: warmup_exponential``, the default) a warm-up then
    exponential decay over the whole run; with ``{type: noam, warmup_steps, d_model}`` :func:`noam`."""
    opt = optimizer(params=task.parameters())
    if not scheduler:
        return opt
    kind = scheduler.get("type", "warmup_exponential")
    if kind not in SCHEDULER_TYPES:
        raise ConfigValueError("task.scheduler.type", f"one of {', '.join(SCHEDULER_TYPES)}", kind)
    if kind == "noam":
        schedule = partial(noam, warmup_steps=int(scheduler["warmup_steps"]), d_model=int(scheduler["d_model"]))
        return {"optimizer": opt, "lr_scheduler": {"scheduler": torch.optim.lr_scheduler.LambdaLR(opt, schedule),
                                                   "interval": "step"}}
    total = int(task.trainer.estimated_stepping_batches)
    epochs = max(1, task.trainer.max_epochs or 1)
    warmup = int(scheduler.get("warmup_epochs", 0) * total / epochs)
    schedule = partial(warmup_exponential_decay, total_steps=total, warmup_steps=warmup,
                       final_ratio=float(scheduler.get("final_lr_ratio", 0.01)))
    return {"optimizer": opt, "lr_scheduler": {"scheduler": torch.optim.lr_scheduler.LambdaLR(opt, schedule),
                                               "interval": "step"}}


def gather_by_index(module: L.LightningModule, index: torch.Tensor, values: torch.Tensor,
                    count: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Rows computed on every process put back in dataset order: ``(count, ...)`` values and which
    rows were seen. ``index`` holds each local row's position in the dataset; under DDP every
    rank's rows are gathered (ragged shares padded with index -1), and the duplicates that
    DistributedSampler pads with land on the same row, so nothing is counted twice."""
    if module.trainer.world_size > 1:
        size = torch.tensor(index.numel(), device=module.device)
        longest = int(module.all_gather(size).max())
        pad = longest - index.numel()
        index = torch.cat([index, index.new_full((pad,), -1)])
        values = torch.cat([values, values.new_zeros(pad, *values.shape[1:])])
        index = module.all_gather(index).reshape(-1)
        values = module.all_gather(values).reshape(-1, *values.shape[1:])
    out = values.new_zeros(count, *values.shape[1:])
    seen = torch.zeros(count, dtype=torch.bool, device=values.device)
    valid = index >= 0
    out[index[valid]] = values[valid]
    seen[index[valid]] = True
    return out.cpu(), seen.cpu()
