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


def _ast_reference(
    lr0: float,
    steps_per_epoch: int,
    epochs: int,
    start: int,
    every: int,
    gamma: float,
    warmup: bool,
) -> list[float]:
    """AST's training loop (YuanGongND/ast src/traintest.py lines 62, 93-125, 227): torch's
    MultiStepLR over milestones range(start, 1000, every), stepped after each epoch; in the first
    1000 steps the rate is set to global_step / 1000 * lr every 50 steps."""
    opt = torch.optim.SGD(nn.Linear(1, 1).parameters(), lr=lr0)
    milestones = list(range(start, 1000, every))
    sched = torch.optim.lr_scheduler.MultiStepLR(opt, milestones, gamma=gamma)
    lrs, global_step = [], 0
    for _ in range(epochs):
        for _ in range(steps_per_epoch):
            if global_step <= 1000 and global_step % 50 == 0 and warmup:
                for group in opt.param_groups:
                    group["lr"] = global_step / 1000 * lr0
            lrs.append(opt.param_groups[0]["lr"])
            opt.step()
            global_step += 1
        sched.step()
    return lrs


@pytest.mark.parametrize(
    "recipe",
    [
        # run.sh (full AudioSet): lr 1e-5, lrscheduler_start 2, step 1, decay 0.5, warmup True
        dict(lr0=1e-5, start=2, every=1, gamma=0.5, warmup=True, epochs=5),
        # run.sh (balanced AudioSet): lr 5e-5, start 10, step 5, decay 0.5
        dict(lr0=5e-5, start=10, every=5, gamma=0.5, warmup=True, epochs=25),
        # egs/esc50/run_esc.sh: lr 1e-5, start 5, step 1, decay 0.85, warmup False
        dict(lr0=1e-5, start=5, every=1, gamma=0.85, warmup=False, epochs=25),
    ],
)
def test_multistep_schedule_is_ast_s_training_loop(recipe):
    # AST's epochs are thousands of steps: its 1000-step warm-up ends inside the first one
    steps_per_epoch = 1100
    reference = _ast_reference(
        recipe["lr0"],
        steps_per_epoch,
        recipe["epochs"],
        recipe["start"],
        recipe["every"],
        recipe["gamma"],
        recipe["warmup"],
    )
    scheduler = {
        "type": "multistep",
        "decay_start": recipe["start"],
        "decay_every": recipe["every"],
        "gamma": recipe["gamma"],
        "warmup_steps": 1000 if recipe["warmup"] else 0,
        "warmup_every": 50,
    }
    ours = _curve(_Task(1, 12, steps_per_epoch, recipe["epochs"]), scheduler, lr0=recipe["lr0"])
    assert ours == pytest.approx(reference, rel=1e-9, abs=0)
    assert ours[0] == (0.0 if recipe["warmup"] else recipe["lr0"])  # AST's warm-up starts at 0


def test_piecewise_schedule_is_htsat_s_lr_foo():
    import bisect

    def lr_foo(epoch):  # HTS-AT sed_model.py lines 240-251, config.py lines 33-34
        lr_rate, lr_scheduler_epoch = [0.02, 0.05, 0.1], [10, 20, 30]
        if epoch < 3:
            return lr_rate[epoch]
        lr_pos = int(-1 - bisect.bisect_left(lr_scheduler_epoch, epoch))
        if lr_pos < -3:
            return max(lr_rate[0] * (0.98**epoch), 0.03)
        return lr_rate[lr_pos]

    steps_per_epoch, epochs = 7, 40
    scheduler = {
        "type": "piecewise",
        "epochs": [0, 1, 2, 3, 11, 21, 31],
        "multipliers": [0.02, 0.05, 0.1, 0.1, 0.05, 0.02, 0.03],
    }
    ours = _curve(_Task(1, 128, steps_per_epoch, epochs), scheduler, lr0=1e-3)
    expected = [1e-3 * lr_foo(step // steps_per_epoch) for step in range(steps_per_epoch * epochs)]
    assert ours == pytest.approx(expected)
    with pytest.raises(ConfigValueError, match="rising epochs"):
        _curve(_Task(1, 4, 2, 2), {"type": "piecewise", "epochs": [1, 2], "multipliers": [1, 2]})
    with pytest.raises(ConfigValueError, match="same non-zero length"):
        _curve(_Task(1, 4, 2, 2), {"type": "piecewise", "epochs": [0], "multipliers": [1, 2]})
