"""The optimiser and its learning-rate schedules, shared by every task."""

from __future__ import annotations

import bisect
import logging
import math
from collections.abc import Callable
from functools import partial

import lightning as L
import torch

from ..data.base import AudioDataModule
from ..utils.errors import ConfigValueError, IncompatibleConfigError

log = logging.getLogger(__name__)


def warmup_exponential_decay(
    step: int, total_steps: int, warmup_steps: int, final_ratio: float
) -> float:
    """LR multiplier: linear warm-up, then exponential decay to ``final_ratio`` at the last step
    (WeSpeaker's shape)."""
    if warmup_steps > 0 and step < warmup_steps:
        return (step + 1) / warmup_steps
    span = max(1, total_steps - warmup_steps)
    return final_ratio ** (min(step - warmup_steps, span) / span)


def warmup_cosine_decay(
    step: int, total_steps: int, warmup_steps: int, final_ratio: float
) -> float:
    """LR multiplier: linear warm-up, then a half cosine from 1 down to ``final_ratio`` at the last
    step."""
    if warmup_steps > 0 and step < warmup_steps:
        return (step + 1) / warmup_steps
    span = max(1, total_steps - warmup_steps)
    progress = min(step - warmup_steps, span) / span
    return final_ratio + (1.0 - final_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))


def wespeaker_exponential(
    step: int,
    total_steps: int,
    warmup_steps: int,
    final_ratio: float,
    scale: float,
    warm_from_zero: bool = True,
) -> float:
    """LR multiplier of WeSpeaker's ``ExponentialDecrease``: the exponential decay runs from step 0
    over the whole run, ``(lr_end / lr0) ** (t / T)`` at step ``t`` (``lr0`` is the optimiser's lr),
    times a warm-up coefficient: ``scale * min(1, t / W)`` with ``warm_from_zero`` (its ECAPA
    configs), else
    ``1 + (scale - 1) * min(1, t / W)`` when ``scale > 1`` and ``scale`` otherwise (its XVEC
    config)."""
    ramp = min(1.0, step / warmup_steps) if warmup_steps > 0 else 1.0
    if warm_from_zero:
        coefficient = scale * ramp
    else:
        coefficient = 1.0 + (scale - 1.0) * ramp if scale > 1 else scale
    return coefficient * final_ratio ** (min(step, total_steps) / max(1, total_steps))


def _scaled(step: int, schedule: Callable[[int], float], scale: float) -> float:
    return scale * schedule(step)


def noam(step: int, warmup_steps: int, d_model: int) -> float:
    """LR multiplier of the Transformer paper's schedule ("Noam"), as the EEND recipes use it with a
    base learning rate of 1: ``d_model^-0.5 * min(t^-0.5, t * warmup^-1.5)`` at step ``t = step +
    1`` (rises linearly to ``(d_model * warmup)^-0.5`` at the end of the warm-up, then falls as
    ``t^-0.5``)."""
    t = step + 1
    return d_model**-0.5 * min(t**-0.5, t * warmup_steps**-1.5)


def multistep(
    step: int,
    steps_per_epoch: int,
    decay_start: int,
    decay_every: int,
    gamma: float,
    warmup_steps: int = 0,
    warmup_every: int = 1,
) -> float:
    """LR multiplier of AST's recipes (YuanGongND/ast src/traintest.py): ``gamma`` to the number of
    milestones ``decay_start, decay_start + decay_every, ...`` reached by the epochs completed
    (``MultiStepLR`` stepped after each epoch: with ``decay_start=2``, ``decay_every=1`` the first
    two epochs run at the full rate, the third at ``gamma``), times a stepped linear warm-up over
    the first ``warmup_steps`` optimiser steps: ``s / warmup_steps`` with ``s`` the step rounded
    down to a multiple of ``warmup_every`` (AST sets it every 50 steps of the first 1000, starting
    from 0)."""
    epoch = step // max(1, steps_per_epoch)
    decays = 0 if epoch < decay_start else 1 + (epoch - decay_start) // max(1, decay_every)
    factor = gamma**decays
    if warmup_steps > 0 and step < warmup_steps:
        factor *= (step - step % max(1, warmup_every)) / warmup_steps
    return factor


def piecewise(
    step: int, steps_per_epoch: int, epochs: list[int], multipliers: list[float]
) -> float:
    """LR multiplier constant over epochs: ``multipliers[i]`` from epoch ``epochs[i]`` (0-based)
    until the next entry's epoch. HTS-AT's ``lr_foo`` (sed_model.py) is ``epochs: [0, 1, 2, 3, 11,
    21, 31]``, ``multipliers: [0.02, 0.05, 0.1, 0.1, 0.05, 0.02, 0.03]``."""
    epoch = step // max(1, steps_per_epoch)
    return multipliers[bisect.bisect_right(epochs, epoch) - 1]


def check_piecewise(scheduler: dict) -> tuple[list[int], list[float]]:
    """``epochs`` / ``multipliers`` of a piecewise schedule, checked: as many of each, epochs
    rising from 0."""
    epochs = [int(e) for e in scheduler.get("epochs") or []]
    multipliers = [float(m) for m in scheduler.get("multipliers") or []]
    if not epochs or len(epochs) != len(multipliers):
        raise ConfigValueError(
            "task.scheduler.epochs / multipliers",
            "two lists of the same non-zero length",
            f"{len(epochs)} epochs, {len(multipliers)} multipliers",
        )
    if epochs[0] != 0 or any(b <= a for a, b in zip(epochs, epochs[1:])):
        raise ConfigValueError("task.scheduler.epochs", "rising epochs starting at 0", epochs)
    return epochs, multipliers


SCHEDULER_TYPES = (
    "warmup_exponential",
    "warmup_cosine",
    "wespeaker",
    "noam",
    "multistep",
    "piecewise",
)
LR_SCALINGS = ("none", "linear")


def global_batch_size(trainer: L.Trainer, per_device: int) -> int:
    """Examples per optimiser step over all processes: per-device batch x processes x
    accumulation."""
    return int(per_device) * int(trainer.world_size) * int(trainer.accumulate_grad_batches)


def lr_scale(trainer: L.Trainer, scheduler: dict) -> float:
    """The factor on the whole LR curve: 1 with ``lr_scaling: none``; with ``linear`` the global
    batch over ``reference_batch`` (WeSpeaker: world size x batch / 64), so the recipe's learning
    rate follows it on any number of devices."""
    kind = scheduler.get("lr_scaling", "none") or "none"
    if kind not in LR_SCALINGS:
        raise ConfigValueError("task.scheduler.lr_scaling", " or ".join(LR_SCALINGS), kind)
    if kind == "none":
        return 1.0
    datamodule = trainer.datamodule
    if not isinstance(datamodule, AudioDataModule):
        raise IncompatibleConfigError(
            "task.scheduler.lr_scaling=linear needs a datamodule with a batch_size"
        )
    return global_batch_size(trainer, datamodule.batch_size_per_device) / float(
        scheduler.get("reference_batch", 64)
    )


def log_warmup_span(task: L.LightningModule, warmup_steps: int) -> None:
    """Say how the warm-up compares with this run's steps per epoch and in all (a warm-up set in
    steps, as Noam's, is easily longer than a short run: its learning rate then never peaks)."""
    total = int(task.trainer.estimated_stepping_batches)
    epochs = max(1, task.trainer.max_epochs or 1)
    per_epoch = max(1, total // epochs)
    log.info(
        "warm-up: %d steps = %.1f epochs of %d steps (%d steps in the run)",
        warmup_steps,
        warmup_steps / per_epoch,
        per_epoch,
        total,
    )
    if warmup_steps > total:
        log.warning(
            "the warm-up (%d steps) is longer than the run (%d steps): the learning rate never "
            "reaches its peak",
            warmup_steps,
            total,
        )


def configure_optimization(
    task: L.LightningModule, optimizer: Callable[..., torch.optim.Optimizer], scheduler: dict | None
):
    """The optimiser over the task's parameters and a per-step LR multiplier: with ``scheduler`` =
    ``{warmup_epochs, final_lr_ratio}`` (``type: warmup_exponential``, the default) a warm-up then
    exponential decay over the rest of the run (``type: warmup_cosine``: a half-cosine decay);
    ``type: wespeaker`` WeSpeaker's curve (:func:`wespeaker_exponential`); with ``{type: noam,
    warmup_steps, d_model}`` :func:`noam`; ``{type: multistep, decay_start, decay_every, gamma,
    warmup_steps, warmup_every}`` AST's :func:`multistep`; ``{type: piecewise, epochs,
    multipliers}`` HTS-AT's :func:`piecewise`. All but noam take ``lr_scaling`` (none | linear,
    with ``reference_batch``, :func:`lr_scale`)."""
    opt = optimizer(params=task.parameters())
    if not scheduler:
        return opt
    kind = scheduler.get("type", "warmup_exponential")
    if kind not in SCHEDULER_TYPES:
        raise ConfigValueError("task.scheduler.type", f"one of {', '.join(SCHEDULER_TYPES)}", kind)
    if kind == "noam":
        warmup = int(scheduler["warmup_steps"])
        schedule = partial(noam, warmup_steps=warmup, d_model=int(scheduler["d_model"]))
        log_warmup_span(task, warmup)
    elif kind in ("multistep", "piecewise"):
        per_epoch = max(
            1, int(task.trainer.estimated_stepping_batches) // max(1, task.trainer.max_epochs or 1)
        )
        if kind == "multistep":
            warmup = int(scheduler.get("warmup_steps", 0))
            schedule = partial(
                multistep,
                steps_per_epoch=per_epoch,
                decay_start=int(scheduler["decay_start"]),
                decay_every=int(scheduler.get("decay_every", 1)),
                gamma=float(scheduler["gamma"]),
                warmup_steps=warmup,
                warmup_every=int(scheduler.get("warmup_every", 1)),
            )
            if warmup:
                log_warmup_span(task, warmup)
        else:
            epochs, multipliers = check_piecewise(scheduler)
            schedule = partial(
                piecewise, steps_per_epoch=per_epoch, epochs=epochs, multipliers=multipliers
            )
        scale = lr_scale(task.trainer, scheduler)
        if scale != 1.0:
            schedule = partial(_scaled, schedule=schedule, scale=scale)
    else:
        total = int(task.trainer.estimated_stepping_batches)
        epochs = max(1, task.trainer.max_epochs or 1)
        warmup = int(scheduler.get("warmup_epochs", 0) * total / epochs)
        final_ratio = float(scheduler.get("final_lr_ratio", 0.01))
        scale = lr_scale(task.trainer, scheduler)
        if kind == "wespeaker":
            schedule = partial(
                wespeaker_exponential,
                total_steps=total,
                warmup_steps=warmup,
                final_ratio=final_ratio,
                scale=scale,
                warm_from_zero=bool(scheduler.get("warm_from_zero", True)),
            )
        else:
            shape = warmup_cosine_decay if kind == "warmup_cosine" else warmup_exponential_decay
            base = partial(shape, total_steps=total, warmup_steps=warmup, final_ratio=final_ratio)
            schedule = base if scale == 1.0 else partial(_scaled, schedule=base, scale=scale)
    return {
        "optimizer": opt,
        "lr_scheduler": {
            "scheduler": torch.optim.lr_scheduler.LambdaLR(opt, schedule),
            "interval": "step",
        },
    }
