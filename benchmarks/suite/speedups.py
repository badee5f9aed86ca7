"""Speed-ups that change no weight: ``callbacks.speedups`` (``torch.compile`` of the model,
channels-last weights), ``model.fused_attention`` (HTS-AT; AST and EEND-EDA, where it is the
default, against their written-out attention) and mixed precision (the forward pass
under autocast, as ``trainer.precision: bf16-mixed`` / ``16-mixed``), each on and off in the bare
training loop of a family's CPU experiment, with the loss of one batch compared."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field

import torch

from sonolab.callbacks import ModelSpeedups
from sonolab.run import build_task
from sonolab.utils.allocator import retain_freed_memory
from suite.common import Row, Settings
from suite.overhead import FAMILIES, _bare_rate, _compose, _first_batch, _to, autocast_to


@dataclass(frozen=True)
class Speedup:
    """One fast path: the family, its name, its ``callbacks.speedups`` settings, the config
    overrides that turn it on, the autocast dtype, and whether it runs on a CPU at all (float16
    autocast is a GPU path); the baseline (by default the family's config as it is) with the
    overrides that turn the fast path off where it is the default."""

    family: str
    name: str
    options: dict = field(default_factory=dict)
    overrides: tuple[str, ...] = ()
    autocast: torch.dtype | None = None
    on_cpu: bool = True
    baseline: str = "plain model"
    baseline_overrides: tuple[str, ...] = ()


ECAPA, CNN6 = "ECAPA C=128 (default run)", "CNN6 half width (esc10_cnn6)"
AST, HTSAT = "AST tiny, depth 4 (synth_esc50_ast)", "HTS-AT tiny (synth_esc50_htsat)"
EEND = "EEND-EDA small (synth_eend_eda)"
WRITTEN_OUT = dict(
    baseline="written-out attention", baseline_overrides=("model.fused_attention=false",)
)
SPEEDUPS = (
    Speedup(ECAPA, "compile", dict(compile=True)),
    Speedup(CNN6, "compile", dict(compile=True)),
    Speedup(CNN6, "channels_last", dict(channels_last=True)),
    Speedup(HTSAT, "fused attention", overrides=("model.fused_attention=true",)),
    Speedup(AST, "fused attention (the default)", **WRITTEN_OUT),
    Speedup(EEND, "fused attention (the default)", **WRITTEN_OUT),
    Speedup(ECAPA, "bf16 autocast", autocast=torch.bfloat16),
    Speedup(AST, "bf16 autocast", autocast=torch.bfloat16),
    Speedup(ECAPA, "float16 autocast + gradient scaler", autocast=torch.float16, on_cpu=False),
    Speedup(AST, "float16 autocast + gradient scaler", autocast=torch.float16, on_cpu=False),
)


def _speedups(fast_path: Speedup) -> ModelSpeedups | None:
    return ModelSpeedups(**fast_path.options) if fast_path.options else None


def _first_loss(cfg, info, family, batch, speedups, device, autocast=None) -> float:
    torch.manual_seed(0)
    task = build_task(cfg, info).to(device)
    task.eval()  # no dropout or masks: compiled and channels-last code draw them differently
    if speedups is not None:
        speedups.setup(None, task, "fit")
    torch.manual_seed(1)  # the same dither and masks in both
    with torch.no_grad(), autocast_to(device, autocast):
        return float(family.loss(task, _to(batch, device)))


def speedups(settings: Settings) -> list[Row]:
    """Training steps / s with each speed-up against none (compilation in the warm-up steps); the
    check compares the loss of one batch in evaluation mode."""
    retain_freed_memory()
    steps, warmup = (4, 3) if settings.quick else (10, 3)
    rows = []
    for fast_path in SPEEDUPS:
        if not fast_path.on_cpu and not settings.device.startswith("cuda"):
            continue
        family = FAMILIES[fast_path.family]
        what, overrides = family.here(fast_path.family)
        with tempfile.TemporaryDirectory() as out:
            cfg = _compose((*overrides, *fast_path.baseline_overrides), settings.device, out)
            fast_cfg = _compose((*overrides, *fast_path.overrides), settings.device, out)
            batch, info = _first_batch(cfg)
            dev = settings.device
            plain, fast = [], []
            for r in range(settings.repeats):
                for on in (False, True) if r % 2 == 0 else (True, False):
                    rate = _bare_rate(
                        fast_cfg if on else cfg,
                        info,
                        family,
                        batch,
                        steps,
                        warmup,
                        dev,
                        _speedups(fast_path) if on else None,
                        fast_path.autocast if on else None,
                    )
                    (fast if on else plain).append(rate)
                    torch._dynamo.reset()
            difference = abs(
                _first_loss(cfg, info, family, batch, None, dev)
                - _first_loss(
                    fast_cfg, info, family, batch, _speedups(fast_path), dev, fast_path.autocast
                )
            )
            torch._dynamo.reset()
        name = fast_path.name
        rows.append(
            Row(
                "speedups",
                f"{what}, training step, {steps} timed steps",
                fast_path.baseline,
                name,
                "steps/s",
                plain,
                fast,
                check=f"loss of one batch (evaluation mode), abs. difference {difference:.1e}",
            )
        )
    return rows


CASES = {"speedups": speedups}
