"""Framework overhead: training steps per second through the real task and Lightning trainer (the
configured loggers and callbacks, validation off) against a bare PyTorch loop with the same model,
front-end, loss, optimiser and batch, data in memory in both.

Each family's batch is the first one its own datamodule gives at its CPU experiment's settings
(the project's synthetic sets, generated on first use), so shapes and labels are the real ones.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass

import lightning as L
import torch
from hydra import compose, initialize_config_dir
from omegaconf import open_dict
from torch.utils.data import DataLoader, Dataset

from sonolab.run import build_datamodule, build_task, build_trainer
from sonolab.utils.allocator import retain_freed_memory
from suite.common import ROOT, Row, Settings, peak_memory, reset_peak_memory, synchronise


class _SameBatch(Dataset):
    """``steps`` copies of one ready batch (the loader is not what is measured here)."""

    def __init__(self, batch: dict, steps: int):
        self.batch, self.steps = batch, steps

    def __len__(self) -> int:
        return self.steps

    def __getitem__(self, index: int) -> dict:
        return self.batch


class _StepClock(L.Callback):
    """Times the steps after the first ``warmup`` ones, hooks between them included (counted
    across epochs: the batch index starts again at each)."""

    def __init__(self, warmup: int):
        self.warmup, self.start, self.end, self.seen = warmup, None, None, 0

    @property
    def steps(self) -> int:
        """Steps timed."""
        return max(self.seen - self.warmup, 0)

    def on_train_batch_start(self, trainer, module, batch, batch_idx) -> None:
        if self.seen == self.warmup:
            synchronise(str(module.device))
            self.start = time.perf_counter()

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
        self.seen += 1
        if self.seen > self.warmup:
            synchronise(str(module.device))
            self.end = time.perf_counter()


# The loss of one training step as each family's task computes it, without Lightning (no
# logging, no hooks, no trainer state): the bare loop's body.
def _verification_loss(task, batch: dict) -> torch.Tensor:
    return task.loss(task.embed(batch["wave"], batch["length"]), batch["label"])


def _tagging_loss(task, batch: dict) -> torch.Tensor:
    wave, length = batch["wave"], batch["length"]
    if task.shift_gain is not None:
        wave, length = task.shift_gain(wave, length)
    return task.loss(task(wave, length), batch["label"])


def _diarization_loss(task, batch: dict) -> torch.Tensor:
    feats, frames = task.features(batch["wave"], batch["length"])
    out, targets, frame_mask, speaker_mask = task._forward(batch, feats, frames)
    return task.loss(
        out["activities"], targets, frame_mask, speaker_mask, existence_logits=out["existence"]
    )


SHARED_ESC10 = ROOT.parent / "shared" / "data" / "esc10"


@dataclass(frozen=True)
class Family:
    """One family's CPU experiment: its overrides and the bare loop's loss; for an experiment on
    the shared real data, ``synthetic_stand_in``: the overrides that run it on a synthetic set
    where that data is absent (the GPU machines)."""

    overrides: tuple[str, ...]
    loss: Callable[[object, dict], torch.Tensor]
    synthetic_stand_in: tuple[str, ...] | None = None

    def here(self, what: str) -> tuple[str, tuple[str, ...]]:
        """The row's name and the family's overrides on this machine (a stand-in named)."""
        if self.synthetic_stand_in is None or SHARED_ESC10.is_dir():
            return what, self.overrides
        print(f"  {what}: ../shared/data/esc10 is absent, on the synthetic ESC-50 set instead")
        return f"{what} on synthetic ESC-50", (*self.overrides, *self.synthetic_stand_in)


FAMILIES = {
    "ECAPA C=128 (default run)": Family((), _verification_loss),
    "EEND-EDA small (synth_eend_eda)": Family(("experiment=synth_eend_eda",), _diarization_loss),
    # fixed statistics: the task measures them on the training clips only inside trainer.fit
    "AST tiny, depth 4 (synth_esc50_ast)": Family(
        ("experiment=synth_esc50_ast", "features.mean=-4.27", "features.std=4.57"), _tagging_loss
    ),
    "HTS-AT tiny (synth_esc50_htsat)": Family(("experiment=synth_esc50_htsat",), _tagging_loss),
    "CNN6 half width (esc10_cnn6)": Family(
        ("experiment=esc10_cnn6", "data.test_fold=5"),
        _tagging_loss,
        synthetic_stand_in=("data=synth_esc50",),  # 10 classes of 40 clips, as ESC-10
    ),
}


def _compose(overrides: tuple[str, ...], device: str, out: str):
    with initialize_config_dir(config_dir=str(ROOT / "configs"), version_base="1.3"):
        cfg = compose(
            "train",
            [
                *overrides,
                f"trainer.accelerator={'gpu' if device.startswith('cuda') else 'cpu'}",
                f"paths.output_dir={out}",
            ],
        )
    return cfg


def _first_batch(cfg) -> tuple[dict, object]:
    """The family's first training batch and its data info, from its own datamodule."""
    datamodule = build_datamodule(cfg)
    datamodule.prepare_data()
    datamodule.setup("fit")
    return next(iter(datamodule.train_dataloader())), datamodule.info


def _to(batch: dict, device: str) -> dict:
    return {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}


def timed_fit(cfg, task, steps: int, warmup: int, epochs: int = 1, **fit) -> float:
    """Steps / s of ``trainer.fit(task, **fit)`` over ``steps`` steps after ``warmup`` ones (in at
    most ``epochs`` epochs), with the configured trainer, loggers and callbacks (validation off)."""
    with tempfile.TemporaryDirectory() as out:
        with open_dict(cfg):
            cfg.trainer.max_steps = warmup + steps
            cfg.trainer.max_epochs = epochs
            cfg.trainer.limit_val_batches = 0
            cfg.trainer.num_sanity_val_steps = 0
        trainer = build_trainer(cfg, out, validates=False)
        clock = _StepClock(warmup)
        trainer.callbacks.append(clock)
        trainer.fit(task, **fit)
    return clock.steps / (clock.end - clock.start)


def _lightning_rate(cfg, info, batch: dict, steps: int, warmup: int) -> float:
    torch.manual_seed(0)
    loader = DataLoader(_SameBatch(batch, warmup + steps), batch_size=None)
    return timed_fit(cfg, build_task(cfg, info), steps, warmup, train_dataloaders=loader)


def _bare_rate(
    cfg,
    info,
    family: Family,
    batch: dict,
    steps: int,
    warmup: int,
    device,
    speedups=None,
    autocast: torch.dtype | None = None,
) -> float:
    """The family's loss, backward and the task's optimiser step in a plain loop (the schedule's
    per-step learning-rate update left out), the model given ``speedups`` (a
    :class:`~sonolab.callbacks.ModelSpeedups`) when set, the forward pass under ``autocast`` to
    that dtype when set (float16 with a gradient scaler, as Lightning's ``16-mixed``)."""
    task, optimiser, batch = _bare_setup(cfg, info, batch, device, speedups)
    step = bare_step(task, optimiser, family, batch, device, autocast)
    for _ in range(warmup):
        step()
    synchronise(device)
    start = time.perf_counter()
    for _ in range(steps):
        step()
    synchronise(device)
    return steps / (time.perf_counter() - start)


def _bare_setup(cfg, info, batch: dict, device: str, speedups=None):
    torch.manual_seed(0)
    task = build_task(cfg, info).to(device)
    task.train()
    if speedups is not None:
        speedups.setup(None, task, "fit")
    return task, task.optimizer_factory(task.parameters()), _to(batch, device)


def autocast_to(device: str, dtype: torch.dtype | None):
    """``torch.autocast`` to ``dtype`` on ``device``'s kind; a no-op context for None."""
    return torch.autocast(
        torch.device(device).type, dtype=dtype or torch.float32, enabled=dtype is not None
    )


def bare_step(task, optimiser, family: Family, batch: dict, device: str, autocast=None):
    """One bare training step of ``task`` on ``batch`` as a callable (see :func:`_bare_rate`)."""
    scaler = torch.amp.GradScaler(torch.device(device).type, enabled=autocast == torch.float16)

    def step():
        with autocast_to(device, autocast):
            loss = family.loss(task, batch)
        optimiser.zero_grad()
        scaler.scale(loss).backward()
        scaler.step(optimiser)
        scaler.update()

    return step


def overhead(settings: Settings) -> list[Row]:
    """Each family's training steps / s, Lightning against bare PyTorch, interleaved repeats."""
    retain_freed_memory()  # as train.py does (retain_freed_memory: true)
    steps, warmup = (4, 1) if settings.quick else (10, 2)
    rows = []
    for name, family in FAMILIES.items():
        what, overrides = family.here(name)
        with tempfile.TemporaryDirectory() as out:
            cfg = _compose(overrides, settings.device, out)
            batch, info = _first_batch(cfg)
            size = int(batch["wave"].shape[0])
            bare, lightning, peaks = [], [], {"bare": [], "lightning": []}
            for r in range(settings.repeats):
                order = ("bare", "lightning") if r % 2 == 0 else ("lightning", "bare")
                for kind in order:
                    reset_peak_memory(settings.device)
                    if kind == "bare":
                        bare.append(
                            _bare_rate(cfg, info, family, batch, steps, warmup, settings.device)
                        )
                    else:
                        lightning.append(_lightning_rate(cfg.copy(), info, batch, steps, warmup))
                    peaks[kind].append(peak_memory(settings.device))
        check = "ratio 1 = no overhead; target >= 0.95"
        if settings.device.startswith("cuda"):
            check += "; peak GPU memory bare {:.0f} MiB, Lightning {:.0f} MiB".format(
                *(max(peaks[kind]) / 2**20 for kind in ("bare", "lightning"))
            )
        rows.append(
            Row(
                "overhead",
                f"{what}, batch {size}, {steps} timed steps",
                "bare PyTorch loop",
                "sonolab task + Lightning trainer",
                "steps/s",
                bare,
                lightning,
                check=check,
            )
        )
    return rows


CASES = {"overhead": overhead}
