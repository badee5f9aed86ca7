"""Training callbacks that sonolab adds to Lightning's own."""

from __future__ import annotations

import random
from typing import Any

import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import ModelCheckpoint, WeightAveraging

from .utils.errors import ConfigValueError


class EpochWeightAveraging(WeightAveraging):
    """The equal-weight average of the end-of-epoch weights of epochs ``first_epoch`` ..
    ``last_epoch`` (counted from 1), as AST averages the models of a range of epochs and WeSpeaker
    its last ``num_avg`` checkpoints, but kept in memory while training instead of re-read from
    saved files.

    Lightning's :class:`~lightning.pytorch.callbacks.WeightAveraging` does the bookkeeping:
    validation and checkpoints use the average (the checkpoint also keeps the current weights for
    resuming), and when training ends the model holds the average, so it is what gets tested.
    Buffers (BatchNorm statistics) are averaged too. Unlike the base class, nothing is swapped in
    before the first
    averaged epoch: there the "average" would be the initial weights.

    Args:
        first_epoch / last_epoch: the epochs averaged (``last_epoch`` null: to the end of training).
        last_epochs: instead of ``first_epoch``, the last N epochs of ``trainer.max_epochs``.
    """

    def __init__(
        self,
        first_epoch: int | None = None,
        last_epoch: int | None = None,
        last_epochs: int | None = None,
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        self._swapped = False  # whether the averaged weights are in the model (while validating)
        if (first_epoch is None) == (last_epochs is None):
            raise ConfigValueError(
                "callbacks.weight_averaging",
                "exactly one of first_epoch and last_epochs",
                f"first_epoch={first_epoch}, last_epochs={last_epochs}",
            )
        for name, value in (
            ("first_epoch", first_epoch),
            ("last_epoch", last_epoch),
            ("last_epochs", last_epochs),
        ):
            if value is not None and value < 1:
                raise ConfigValueError(
                    f"callbacks.weight_averaging.{name}",
                    "a positive number (epochs count from 1)",
                    value,
                )
        self.first_epoch, self.last_epoch, self.last_epochs = first_epoch, last_epoch, last_epochs

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        """Fix the averaged range (``last_epochs`` needs the trainer's epoch budget)."""
        if self.last_epochs is not None:
            if trainer.max_epochs is None or trainer.max_epochs < 1:
                raise ConfigValueError(
                    "callbacks.weight_averaging.last_epochs",
                    "a run with trainer.max_epochs set",
                    trainer.max_epochs,
                )
            self.first_epoch = max(1, trainer.max_epochs - self.last_epochs + 1)
        super().setup(trainer, pl_module, stage)

    def on_train_batch_end(
        self,
        trainer: L.Trainer,
        pl_module: L.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
    ) -> None:
        """Average after an epoch's last batch, before that epoch's validation and checkpoint
        (Lightning validates before ``on_train_epoch_end``, where the base class would add the epoch
        one epoch late)."""
        epoch = trainer.current_epoch
        if (
            trainer.is_last_batch
            and epoch > self._latest_update_epoch
            and self.should_update(epoch_idx=epoch)
        ):
            self._average_model.update_parameters(pl_module)
            self._latest_update_epoch = epoch

    def _has_average(self) -> bool:
        return self._average_model is not None and int(self._average_model.n_averaged) > 0

    def on_validation_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Validate the average once there is one (the current weights before the range)."""
        self._swapped = self._has_average()
        if self._swapped:
            self._swap_models(pl_module)

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Put the current weights back after validating the average."""
        if self._swapped:
            self._swap_models(pl_module)
            self._swapped = False

    def on_save_checkpoint(
        self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        """Checkpoints hold the average once there is one, the current weights before."""
        if self._average_model is None or self._has_average():
            super().on_save_checkpoint(trainer, pl_module, checkpoint)

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """The model ends with the average (left as trained when the range was never reached)."""
        if self._has_average():
            super().on_train_end(trainer, pl_module)

    def should_update(self, step_idx: int | None = None, epoch_idx: int | None = None) -> bool:
        """At the end of every epoch in the range; never per step."""
        if epoch_idx is None:
            return False
        epoch = epoch_idx + 1
        return epoch >= self.first_epoch and (self.last_epoch is None or epoch <= self.last_epoch)


class EpochSeed(L.Callback):
    """Reseeds the process's generators (torch, numpy, random) before the first training batch of
    every epoch from (seed, epoch, rank), so what the model draws while training (dropout,
    SpecAugment masks, mixup weights) depends on where the run is and not on what the process did
    before: a run resumed from an epoch's checkpoint continues as one that never stopped. (Not at
    ``on_train_epoch_start``: Lightning creates a fresh run's data iterator after that hook, drawing
    worker seeds from the global generator, but a resumed run's before it.) Added to every training
    run by :func:`sonolab.run.build_trainer`; the data side is seeded per draw by
    :mod:`sonolab.data.samplers`."""

    def __init__(self, seed: int):
        self.seed = seed

    def on_train_batch_start(
        self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        """At an epoch's first batch, seed every generator for this epoch on this rank."""
        if batch_idx != 0:
            return
        state = np.random.SeedSequence(
            [self.seed, trainer.current_epoch, trainer.global_rank]
        ).generate_state(2)
        torch.manual_seed(int(state[0]))
        np.random.seed(int(state[1]))
        random.seed(int(state[1]))


class RunCheckpoint(ModelCheckpoint):
    """Lightning's ModelCheckpoint whose ``last.ckpt`` is the last epoch, always.

    Since Lightning 2.6, ``save_last=True`` rewrites ``last.ckpt`` only in a step where a top-k
    checkpoint was saved: with a monitored metric it is a copy of the best epoch, so resuming from
    it silently repeats epochs and ``ckpt_path=last`` tests the wrong weights. This class writes it
    after every checkpointing point where the top-k did not (options as ModelCheckpoint's)."""

    def _save_last_if_skipped(self, trainer) -> None:
        # Lightning's skip test includes "already saved at this step": then the top-k wrote
        # last.ckpt too.
        if self.save_last and not self._should_skip_saving_checkpoint(trainer):
            self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        """Top-k as ModelCheckpoint, then last.ckpt if the top-k did not write it (when saving at
        epoch end)."""
        super().on_train_epoch_end(trainer, pl_module)
        if self._should_save_on_train_epoch_end(trainer):
            self._save_last_if_skipped(trainer)

    def on_validation_end(self, trainer, pl_module) -> None:
        """Top-k as ModelCheckpoint, then last.ckpt if the top-k did not write it."""
        super().on_validation_end(trainer, pl_module)
        if not self._should_save_on_train_epoch_end(trainer):
            self._save_last_if_skipped(trainer)


class ModelSpeedups(L.Callback):
    """Speed-ups of the task's model that change no weight, applied once when training, testing or
    validation starts.

    Args:
        compile: ``torch.compile`` the model's forward in place (``nn.Module.compile``: the state
            dict keeps its keys, so checkpoints load with or without it). The first steps pay the
            compilation; each new input shape (full-length evaluation utterances) may compile
            again, up to torch's recompile limit, then runs uncompiled.
        compile_mode: ``default``, ``reduce-overhead`` (CUDA graphs), ``max-autotune`` or
            ``max-autotune-no-cudagraphs``.
        channels_last: store the model's 4-D weights channels-last (NHWC), the layout tensor-core
            convolutions read without a transpose; for the 2-D CNNs (PANNs, HTS-AT's patch
            embedding), nothing for 1-D models.
    """

    def __init__(
        self, compile: bool = False, compile_mode: str = "default", channels_last: bool = False
    ):
        modes = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")
        if compile_mode not in modes:
            key = "callbacks.speedups.compile_mode"
            raise ConfigValueError(key, " | ".join(modes), compile_mode)
        self.compile, self.compile_mode, self.channels_last = compile, compile_mode, channels_last
        self._applied = False

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if self._applied:
            return
        self._applied = True
        model = pl_module.model
        if self.channels_last:
            model.to(memory_format=torch.channels_last)
        if self.compile:
            model.compile(mode=self.compile_mode)
