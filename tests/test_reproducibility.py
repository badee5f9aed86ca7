"""Same seed, same numbers: two runs of one command agree to the last digit on the CPU, and a run
SIGKILLed in the middle of an epoch then resumed ends with the weights and metrics of one that never
stopped."""

from __future__ import annotations

import csv
import json
import os
import signal
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from sonolab.checkpoints import load_checkpoint, resumed_epoch
from sonolab.data.samplers import Draw, ShuffleSampler, draw_rng, start_at_epoch

from .conftest import ROOT, run_script, tiny_overrides


def _losses(run_dir: Path) -> list[tuple[str, str]]:
    """Every logged training loss of a run (all CSV versions, in order), as (step, value)."""
    rows = []
    for path in sorted((run_dir / "csv").glob("version_*/metrics.csv")):
        for row in csv.DictReader(path.open()):
            for key in ("train/loss_step", "train/loss_epoch"):
                if row.get(key):
                    rows.append((row["step"], row[key]))
    return rows


def _weights(run_dir: Path) -> dict[str, torch.Tensor]:
    return load_checkpoint(run_dir / "checkpoints" / "last.ckpt")["state_dict"]


def _same_weights(a: Path, b: Path) -> bool:
    wa, wb = _weights(a), _weights(b)
    return wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)


def _overrides(tiny_voxceleb: Path, *extra: str) -> list[str]:
    # Speed perturbation and MUSAN/RIR augmentation: every random choice of the data path is
    # exercised.
    return [
        *tiny_overrides(tiny_voxceleb),
        "trainer.max_epochs=3",
        "data.crops.speed_perturb=true",
        "augment=musan_rir",
        "trainer.enable_progress_bar=false",
        "~callbacks.progress_bar",
        *extra,
    ]


def test_training_draws_are_keyed_by_seed_epoch_and_position():
    sampler = ShuffleSampler(10, seed=3)
    first = list(sampler)
    assert [d.position for d in first] == list(range(10)) and sorted(
        d.index for d in first
    ) == list(range(10))
    assert (
        list(ShuffleSampler(10, seed=3)) == first
    )  # a function of (seed, epoch), not of process state
    sampler.set_epoch(1)
    assert [d.index for d in sampler] != [d.index for d in first]
    index, rng = draw_rng(Draw(4, 1, 7), seed=3)
    _, again = draw_rng(Draw(4, 1, 7), seed=3)
    _, other = draw_rng(
        Draw(4, 1, 8), seed=3
    )  # the same clip drawn again in the epoch: another crop
    assert index == 4 and rng.random() == again.random() != other.random()
    assert draw_rng(5, seed=3) == (5, None)
    # The epoch a resumed run starts in reaches the sampler before Lightning restores its loops.
    module = SimpleNamespace(trainer=None, resume_epoch=2)
    assert start_at_epoch(ShuffleSampler(4), module).epoch == 2
    assert resumed_epoch({"epoch": 4}) == 5


@pytest.mark.slow  # two training runs in subprocesses (~70 s): the default suite's time
def test_two_runs_with_the_same_seed_give_identical_numbers(tiny_voxceleb, tmp_path):
    runs = {}
    for name, seed in (("a", 7), ("b", 7), ("other_seed", 8)):
        runs[name] = tmp_path / name
        result = run_script(
            "train.py",
            _overrides(tiny_voxceleb, f"seed={seed}", f"hydra.run.dir={runs[name]}"),
            tmp_path,
        )
        assert result.returncode == 0, result.stderr[-3000:]
    metrics = {name: json.loads((run / "metrics.json").read_text()) for name, run in runs.items()}
    assert metrics["a"]["test"] == metrics["b"]["test"]
    assert _losses(runs["a"]) == _losses(runs["b"]) and len(_losses(runs["a"])) >= 3
    assert _same_weights(runs["a"], runs["b"])
    assert _losses(runs["a"]) != _losses(
        runs["other_seed"]
    )  # the seed is what decides, not a constant
    # last.ckpt is the last epoch even when validation did not improve (Lightning 2.6 alone would
    # leave the best epoch there).
    assert load_checkpoint(runs["a"] / "checkpoints" / "last.ckpt")["epoch"] == 2


@pytest.mark.slow  # three training subprocesses with a loader worker each: ~1.5 min on 2 cores
def test_sigkill_mid_epoch_then_resume_ends_as_a_run_that_never_stopped(tiny_voxceleb, tmp_path):
    args = _overrides(
        tiny_voxceleb, "data.num_workers=1"
    )  # worker seeding is part of what must not matter
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    result = run_script("train.py", [*args, f"hydra.run.dir={whole}"], tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    steps_per_epoch = int(load_checkpoint(whole / "checkpoints" / "last.ckpt")["global_step"]) // 3
    assert steps_per_epoch >= 4
    kill_at = steps_per_epoch + steps_per_epoch // 2  # half-way through the second epoch
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = run_script(
        "train.py",
        [
            *args,
            f"hydra.run.dir={killed}",
            "+callbacks.kill._target_=tests.faults.KillAtStep",
            f"+callbacks.kill.step={kill_at}",
        ],
        tmp_path,
        env=env,
    )
    assert result.returncode == -signal.SIGKILL, result.stderr[-3000:]
    assert not (killed / "metrics.json").exists()
    assert (
        load_checkpoint(killed / "checkpoints" / "last.ckpt")["epoch"] == 0
    )  # the first epoch's checkpoint
    result = run_script("train.py", [*args, f"resume={killed}"], tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    resumed = json.loads((killed / "metrics.json").read_text())
    assert resumed["resumed_from"] == "checkpoints/last.ckpt"
    assert resumed["test"] == json.loads((whole / "metrics.json").read_text())["test"]
    assert _same_weights(whole, killed)
    # The epochs trained after the resume logged the losses of the uninterrupted run.
    resumed_losses = [row for row in _losses(killed) if int(row[0]) >= steps_per_epoch]
    assert resumed_losses and set(resumed_losses) <= set(_losses(whole))


@pytest.mark.slow  # two processes each start torch and Lightning: ~1 min on 2 cores
def test_two_process_ddp_training_validates_as_one_process_does(tiny_voxceleb, tmp_path):
    """trainer=ddp on 2 CPU processes (gloo): each rank trains on its share of the epoch's draws,
    and the validation EER it logs is computed from the embeddings of both ranks, so it equals what
    one process computes on the whole validation list with the same weights."""
    run_dir = tmp_path / "ddp"
    result = run_script(
        "train.py",
        [
            *tiny_overrides(tiny_voxceleb),
            "trainer=ddp",
            "trainer.accelerator=cpu",
            "trainer.devices=2",
            "trainer.precision=32-true",
            "trainer.sync_batchnorm=false",
            "trainer.enable_progress_bar=false",
            "~callbacks.progress_bar",
            f"hydra.run.dir={run_dir}",
        ],
        tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    rows = [
        row
        for path in sorted((run_dir / "csv").glob("version_*/metrics.csv"))
        for row in csv.DictReader(path.open())
        if row.get("val/eer")
    ]
    logged = {key: float(rows[-1][key]) for key in ("val/eer", "val/min_dcf_0.01")}
    one = tmp_path / "one_process"
    result = run_script(
        "evaluate.py",
        [
            f"run_dir={run_dir}",
            f"hydra.run.dir={one}",
            "trainer.enable_progress_bar=false",
            f"trials={{val: {tiny_voxceleb / 'val_trials.txt'}}}",
        ],
        tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    again = json.loads((one / "metrics.json").read_text())["test"]["val"]
    assert again["eer"] == pytest.approx(logged["val/eer"], abs=1e-4)
    assert again["min_dcf_0.01"] == pytest.approx(logged["val/min_dcf_0.01"], abs=1e-4)
