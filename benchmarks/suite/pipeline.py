"""Data pipeline: each family's training loader alone (decode, resample, crop, augmentation, at
its configured worker count) and the end-to-end training rate through that loader, both against
the bare training step on one batch held in memory (the model's consumption).

On a CPU the families are the CPU experiments; on a GPU the published recipes as configured (the
``mfu`` case's ECAPA C=1024 and AST-base: bf16, their batches, augmentation and mixup) on the
project's synthetic sets, with a loader worker per usable core up to 16: whether the loader keeps
such a model fed."""

from __future__ import annotations

import itertools
import math
import tempfile
import time

import torch

from sonolab.run import build_datamodule, build_task
from sonolab.utils.allocator import retain_freed_memory
from sonolab.utils.threads import loader_workers
from suite.common import Row, Settings
from suite.mfu import MODELS
from suite.overhead import (
    FAMILIES,
    Family,
    _bare_rate,
    _compose,
    _first_batch,
    timed_fit,
)

PIPELINE_FAMILIES = (
    "ECAPA C=128 (default run)",
    "AST tiny, depth 4 (synth_esc50_ast)",
    "CNN6 half width (esc10_cnn6)",
)


def _loader_rate(datamodule, batches: int, skip: int) -> float:
    """Examples / s of the training loader alone, after ``skip`` batches (worker start-up), epoch
    after epoch if one holds fewer (a synthetic set in batches of 128)."""
    one_loader = datamodule.train_dataloader()  # its workers persist from epoch to epoch
    loader = itertools.chain.from_iterable(one_loader for _ in itertools.count())
    for _ in range(skip):
        next(loader)
    count, start = 0, time.perf_counter()
    for batch in itertools.islice(loader, batches):
        count += int(batch["wave"].shape[0])
    return count / (time.perf_counter() - start)


def _end_to_end_rate(cfg, datamodule, steps: int, warmup: int) -> float:
    """Training steps / s through the trainer fed by the real loader (validation off)."""
    torch.manual_seed(0)
    task = build_task(cfg, datamodule.info)
    epochs = math.ceil((warmup + steps) / len(datamodule.train_dataloader()))
    return timed_fit(cfg, task, steps, warmup, epochs, datamodule=datamodule)


def _gpu_families() -> dict[str, Family]:
    workers = loader_workers(16)  # what the real-data configs ask for
    return {
        f"{what}, bf16": Family(
            (
                *model.family.overrides,
                f"data.batch_size={model.gpu_batch}",
                f"data.num_workers={workers}",
            ),
            model.family.loss,
        )
        for what, model in MODELS.items()
    }


def pipeline(settings: Settings) -> list[Row]:
    """Per family: loader alone and end to end, each against the bare in-memory step, in
    examples / s."""
    retain_freed_memory()
    steps, warmup = (4, 1) if settings.quick else (10, 2)
    gpu = settings.device.startswith("cuda")
    families = _gpu_families() if gpu else {what: FAMILIES[what] for what in PIPELINE_FAMILIES}
    rows = []
    for name, family in families.items():
        what, overrides = family.here(name)
        with tempfile.TemporaryDirectory() as out:
            cfg = _compose(overrides, settings.device, out)
            batch, info = _first_batch(cfg)
            size = int(batch["wave"].shape[0])
            workers = int(cfg.data.num_workers)
            # one datamodule for the loader and the trainer: a datamodule that caches decoded
            # audio (cache_audio) then trains from its cache, as every epoch after the first does
            datamodule = build_datamodule(cfg)
            datamodule.prepare_data()
            datamodule.setup("fit")
            model, loader, end_to_end = [], [], []
            for _ in range(settings.repeats):
                model.append(
                    size
                    * _bare_rate(
                        cfg,
                        info,
                        family,
                        batch,
                        steps,
                        warmup,
                        settings.device,
                        autocast=torch.bfloat16 if gpu else None,
                    )
                )
                loader.append(_loader_rate(datamodule, 3 * steps, warmup))
                end_to_end.append(size * _end_to_end_rate(cfg.copy(), datamodule, steps, warmup))
        for label, rates, target in (
            ("loader alone", loader, "ratio > 1: the loader outruns the model"),
            ("end-to-end training", end_to_end, "target >= 0.75"),
        ):
            rows.append(
                Row(
                    "pipeline",
                    f"{what}, batch {size}, {workers} loader workers: {label}",
                    "bare step, batch in memory",
                    label,
                    "examples/s",
                    model,
                    rates,
                    check=target,
                )
            )
    return rows


CASES = {"pipeline": pipeline}
