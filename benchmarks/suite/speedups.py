"""Speed-ups that change no weight: ``callbacks.speedups`` (``torch.compile`` of the model,
channels-last weights) and HTS-AT's ``model.fused_attention``, each on and off in the bare training
loop of a family's CPU experiment, with the loss of one batch compared."""

from __future__ import annotations

import tempfile

import torch

from sonolab.callbacks import ModelSpeedups
from sonolab.run import build_task
from sonolab.utils.allocator import retain_freed_memory
from suite.common import Row, Settings
from suite.overhead import FAMILIES, _bare_rate, _compose, _first_batch

# (family, fast path, callbacks.speedups settings, config overrides of the fast path)
CASES_RUN = (
    ("ECAPA C=128 (default run)", "compile", dict(compile=True), ()),
    ("CNN6 half width (esc10_cnn6)", "compile", dict(compile=True), ()),
    ("CNN6 half width (esc10_cnn6)", "channels_last", dict(channels_last=True), ()),
    ("HTS-AT tiny (synth_esc50_htsat)", "fused attention", {}, ("model.fused_attention=true",)),
)


def _first_loss(cfg, info, family, batch, speedups) -> float:
    torch.manual_seed(0)
    task = build_task(cfg, info)
    task.eval()  # no dropout or masks: compiled and channels-last code draw them differently
    if speedups is not None:
        speedups.setup(None, task, "fit")
    torch.manual_seed(1)  # the same dither and masks in both
    with torch.no_grad():
        return float(family.loss(task, batch))


def speedups(settings: Settings) -> list[Row]:
    """Training steps / s with each speed-up against none (compilation in the warm-up steps); the
    check compares the loss of one batch in evaluation mode."""
    retain_freed_memory()
    steps, warmup = (4, 3) if settings.quick else (10, 3)
    rows = []
    for what, name, options, overrides in CASES_RUN:
        family = FAMILIES[what]
        with tempfile.TemporaryDirectory() as out:
            cfg = _compose(family.overrides, settings.device, out)
            fast_cfg = _compose((*family.overrides, *overrides), settings.device, out)
            batch, info = _first_batch(cfg)
            dev = settings.device
            plain, fast = [], []
            for r in range(settings.repeats):
                for on in (False, True) if r % 2 == 0 else (True, False):
                    extra = ModelSpeedups(**options) if on and options else None
                    config = fast_cfg if on else cfg
                    rate = _bare_rate(config, info, family, batch, steps, warmup, dev, extra)
                    (fast if on else plain).append(rate)
                    torch._dynamo.reset()
            difference = abs(
                _first_loss(cfg, info, family, batch, None)
                - _first_loss(fast_cfg, info, family, batch, ModelSpeedups(**options))
            )
            torch._dynamo.reset()
        rows.append(
            Row(
                "speedups",
                f"{what}, training step, {steps} timed steps",
                "plain model",
                name,
                "steps/s",
                plain,
                fast,
                check=f"loss of one batch (evaluation mode), abs. difference {difference:.1e}",
            )
        )
    return rows


CASES = {"speedups": speedups}
