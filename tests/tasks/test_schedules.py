"""Learning-rate schedules: WeSpeaker's curve and its batch scaling against the formula written
out."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch
from torch import nn

from sonolab.data.base import AudioDataModule
from sonolab.tasks.schedules import configure_optimization
from sonolab.utils.errors import ConfigValueError


def _wespeaker_reference(
    t: int, lr0: float, lr_end: float, warmup: int, total: int, scale: float, from_zero: bool = True
) -> float:
    """WeSpeaker's ExponentialDecrease as its recipes define it, written independently."""
    coefficient = scale
    if t < warmup and from_zero:
        coefficient = scale * t / warmup
    elif t < warmup and scale > 1:
        coefficient = (scale - 1) * t / warmup + 1.0
    return coefficient * lr0 * math.exp((t / total) * math.log(lr_end / lr0))


class _Data(AudioDataModule):
    def __init__(self, batch_size: int):
        super().__init__()
        self.batch_size = batch_size


class _Task(nn.Module):
    def __init__(
        self, gpus: int, batch: int, steps_per_epoch: int, epochs: int, accumulate: int = 1
    ):
        super().__init__()
        self.layer = nn.Linear(2, 2)
        self.trainer = SimpleNamespace(
            world_size=gpus,
            accumulate_grad_batches=accumulate,
            max_epochs=epochs,
            estimated_stepping_batches=steps_per_epoch * epochs,
            datamodule=_Data(batch),
        )


def _curve(task: _Task, scheduler: dict, lr0: float = 0.1) -> list[float]:
    config = configure_optimization(task, lambda params: torch.optim.SGD(params, lr=lr0), scheduler)
    opt, sched = config["optimizer"], config["lr_scheduler"]["scheduler"]
    lrs = []
    for _ in range(task.trainer.estimated_stepping_batches):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return lrs


@pytest.mark.parametrize("gpus", [1, 8])
def test_wespeaker_schedule_follows_the_recipe_on_any_number_of_gpus(gpus):
    """ECAPA recipe: lr 0.1 -> 5e-5, 6 warm-up epochs of 150, batch 128 per GPU, reference batch
    64."""
    steps, epochs = 20, 150
    task = _Task(gpus, 128, steps, epochs)
    scheduler = {
        "type": "wespeaker",
        "warmup_epochs": 6,
        "final_lr_ratio": 5e-5 / 0.1,
        "lr_scaling": "linear",
        "reference_batch": 64,
    }
    lrs = _curve(task, scheduler)
    scale = gpus * 128 / 64
    reference = [
        _wespeaker_reference(t, 0.1, 5e-5, 6 * steps, steps * epochs, scale)
        for t in range(steps * epochs)
    ]
    assert lrs == pytest.approx(reference, rel=1e-9, abs=1e-12)
    assert max(lrs) == pytest.approx(
        0.1 * scale * (5e-4) ** (6 / 150)
    )  # the peak: end of the warm-up
    assert lrs[0] == 0.0 and lrs[-1] == pytest.approx(scale * 5e-5, rel=0.01)


@pytest.mark.parametrize("gpus", [1, 8])
def test_wespeaker_schedule_without_warm_up_from_zero(gpus):
    """The XVEC recipe's variant: the warm-up ramps the scale from 1 (not from 0)."""
    steps, epochs = 10, 150
    scheduler = {
        "type": "wespeaker",
        "warmup_epochs": 6,
        "final_lr_ratio": 5e-4,
        "lr_scaling": "linear",
        "warm_from_zero": False,
    }
    lrs = _curve(_Task(gpus, 128, steps, epochs), scheduler)
    reference = [
        _wespeaker_reference(t, 0.1, 5e-5, 6 * steps, steps * epochs, gpus * 2.0, from_zero=False)
        for t in range(steps * epochs)
    ]
    assert lrs == pytest.approx(reference, rel=1e-9, abs=1e-12) and lrs[0] == pytest.approx(0.1)


def test_linear_scaling_counts_accumulation_and_none_leaves_the_curve():
    plain = _curve(_Task(1, 32, 10, 4), {"warmup_epochs": 1, "final_lr_ratio": 0.1})
    scaled = _curve(
        _Task(2, 32, 10, 4, accumulate=2),
        {"warmup_epochs": 1, "final_lr_ratio": 0.1, "lr_scaling": "linear", "reference_batch": 64},
    )
    assert scaled == pytest.approx([2 * v for v in plain])  # 32 x 2 GPUs x 2 accumulation / 64 = 2
    with pytest.raises(ConfigValueError, match="task.scheduler.lr_scaling"):
        _curve(_Task(1, 32, 10, 4), {"lr_scaling": "sqrt"})


def test_cosine_schedule_warms_up_then_follows_the_half_cosine_to_the_final_ratio():
    lrs = _curve(
        _Task(1, 32, 10, 5),
        {"type": "warmup_cosine", "warmup_epochs": 1, "final_lr_ratio": 0.01},
        lr0=0.2,
    )
    assert lrs[:10] == pytest.approx([0.2 * (t + 1) / 10 for t in range(10)])
    for t in range(10, 50):  # after the warm-up: 0.2 * (0.01 + 0.99 * (1 + cos(pi * progress)) / 2)
        progress = (t - 10) / 40
        assert lrs[t] == pytest.approx(
            0.2 * (0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * progress)))
        )
    assert lrs[30] == pytest.approx(0.2 * 0.505)  # half-way down at the middle of the decay


def test_noam_warm_up_is_stated_against_the_run_s_steps(caplog):
    task = _Task(gpus=1, batch=64, steps_per_epoch=250, epochs=4)
    scheduler = {"type": "noam", "warmup_steps": 25000, "d_model": 256}
    with caplog.at_level("INFO", logger="sonolab.tasks.schedules"):
        curve = _curve(task, scheduler, lr0=1.0)
    assert "warm-up: 25000 steps = 100.0 epochs of 250 steps (1000 steps in the run)" in caplog.text
    assert "longer than the run (1000 steps): the learning rate never reaches" in caplog.text
    assert curve == sorted(curve)  # still rising at the last step
