"""Audio tagging: clip-level classification (one label, ESC-50) or tagging (several labels,
AudioSet)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..data.augment import Mixup, ShiftGain, SpecAugment
from ..data.info import DataInfo
from ..data.tagging import ClassesDataInfo, ClipDataModule
from ..features.base import FrontEnd
from ..features.statistics import load_statistics, measure_statistics, save_statistics
from ..losses.base import Prediction
from ..metrics.tagging import (
    DEFAULT_THRESHOLD,
    decision_metrics,
    multilabel_metrics,
    single_label_metrics,
    tune_thresholds,
)
from ..models.base import AudioModel
from ..report.tagging import write_tagging_report
from ..utils.errors import IncompatibleConfigError, check_settings
from .base import Task, loss_class, loss_input
from .gather import gather_by_index

log = logging.getLogger(__name__)

# what a SpecAugment mask holds: 0 in the model's input, or a raw 0 after normalising (AST)
MASK_FILLS = ("zero", "raw_zero")


class TaggingTask(Task):
    """A spectrogram model (AST) trained on clip labels; validation and test gather the clip scores
    of every process and compute accuracy / top-5 (single label) or mAP / AUC / d' (multi-label).

    Args:
        model: features ``(batch, frames, mels)`` -> ``{"logits"}``; its head is sized here
            (``reset_classifier``) from the data's classes.
        features: waveforms -> features; a front-end with ``has_statistics`` False (AST fbank with
            null mean / std) gets them measured on ``statistics_clips`` training clips before
            training.
        loss: a tagging loss (single label: ``label_ce``; multi-label: ``bce``), matching the data.
        data_info: the datamodule's ``info`` (``num_classes``, ``labels``, ``multi_label``,
        ``sample_rate``).
        optimizer / scheduler: as in the other tasks.
        spec_augment: :class:`SpecAugment` fields ``{freq_mask, time_mask, freq_masks, time_masks}``
            and ``fill`` (``zero``: masks hold 0 in the model's input, as HTS-AT / PANNs mask
            after their BatchNorm; ``raw_zero``: the normalised value of a raw 0, as AST masks its
            fbank before normalising), or null.
        mixup: :class:`Mixup` fields ``{prob, alpha, domain, partners, targets, per_example}`` or
            null.
        shift_gain: :class:`ShiftGain` fields ``{shift_seconds, gain_db}`` or null (applied to the
            training waveforms before mixup).
    """

    model_outputs = ("logits",)
    loss_inputs = (Prediction.CLASS_LOGITS, Prediction.MULTILABEL_LOGITS)
    info_type = ClassesDataInfo
    monitor = ("val/score", "max")  # accuracy (single label) or mAP (multi-label), in %
    metric_directions = {
        "score": "max",
        "accuracy": "max",
        "top5": "max",
        "mAP": "max",
        "map": "max",
        "mean_auc": "max",
        "d_prime": "max",
        "f1_macro": "max",
        "f1_micro": "max",
    }
    headline_metrics = ("accuracy", "mAP", "mean_auc", "d_prime", "f1_macro", "f1_micro")
    inference = "sonolab.inference.tagger.Tagger"

    def __init__(
        self,
        model: nn.Module,
        features: nn.Module,
        loss: nn.Module,
        data_info: dict,
        optimizer: Callable[..., torch.optim.Optimizer],
        scheduler: dict | None = None,
        spec_augment: dict | None = None,
        statistics_clips: int = 500,
        mixup: dict | None = None,
        shift_gain: dict | None = None,
    ):
        super().__init__(model, features, loss, data_info, optimizer, scheduler)
        self.multi_label = bool(self.data_info.multi_label)
        self.labels = list(self.data_info.labels)
        spec_augment = dict(spec_augment or {})
        self.mask_fill = spec_augment.pop("fill", "zero")
        check_settings(
            "task.spec_augment",
            {"fill": (lambda v: v in MASK_FILLS, " or ".join(MASK_FILLS))},
            fill=self.mask_fill,
        )
        self.spec_augment = SpecAugment(**spec_augment) if spec_augment else None
        self.mixup = Mixup(**mixup) if mixup else None
        self.shift_gain = (
            ShiftGain(int(self.data_info.sample_rate), **shift_gain) if shift_gain else None
        )
        self.statistics_clips = statistics_clips
        # multi-label decisions: per-class probability thresholds tuned on the validation clips
        # (None: 0.5 for every class); saved in checkpoints beside the weights
        self.decision_thresholds: np.ndarray | None = None
        self._collected: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []

    def prepare_model(self, model: AudioModel, features: FrontEnd, info: ClassesDataInfo) -> None:
        """The head sized for the data's classes; a pretrained file's front-end layer (HTS-AT's
        mel BatchNorm) handed to the features."""
        model.reset_classifier(int(info.num_classes))
        if model.pretrained_frontend:
            features.adopt_pretrained(model.pretrained_frontend)

    def build_loss(self, loss: nn.Module, model: nn.Module, info: DataInfo) -> nn.Module:
        """The loss as given, once its prediction type is checked against the data's labels."""
        wanted = Prediction.MULTILABEL_LOGITS if info.multi_label else Prediction.CLASS_LOGITS
        if loss_input(loss_class(loss)) != wanted:
            kind = "multi-label (loss=bce)" if info.multi_label else "single-label (loss=label_ce)"
            raise IncompatibleConfigError(
                f"the data is {'multi' if info.multi_label else 'single'}-label: "
                f"use a {kind} loss, not {type(loss).__name__}"
            )
        return loss

    def on_fit_start(self) -> None:
        """Give the front-end its normalisation when it has none: those the pretrained file was
        trained with (an official AST checkpoint; with a warning), else the statistics stored
        beside the data for these training clips (``python -m sonolab.stats``, or an earlier run),
        else measured now and stored (every process reads the same clips in the same order, so all
        get the same numbers)."""
        if self.features.has_statistics:
            return
        official = self.model.pretrained_statistics
        if official:
            log.warning(
                "features.mean / std not set: using those model.pretrained was trained with "
                "(mean %s, std %s), not statistics of this data; set them to choose",
                official["mean"],
                official["std"],
            )
            self.features.set_statistics(official["mean"], official["std"])
            return
        datamodule = self.trainer.datamodule
        path = datamodule.statistics_file(self.features.statistics_settings, self.statistics_clips)
        stored = load_statistics(path)
        if stored is None:
            stored = measure_statistics(
                self.features, datamodule.statistics_clips(self.statistics_clips), self.device
            )
            if self.trainer.is_global_zero:
                save_statistics(path, stored)
        self.features.set_statistics(stored["mean"], stored["std"])

    def setup(self, stage: str) -> None:
        """Dataset-wide mixup partners are loaded by the datamodule: ask it for them."""
        if stage == "fit" and self.mixup is not None and self.mixup.partners == "dataset":
            datamodule = self.trainer.datamodule
            if not isinstance(datamodule, ClipDataModule):
                raise IncompatibleConfigError(
                    f"task.mixup.partners=dataset needs a datamodule that loads partner "
                    f"clips; {type(datamodule).__name__} does not (use partners=batch)"
                )
            datamodule.mixup_partners = True

    def forward(
        self, wave: torch.Tensor, length: torch.Tensor, partner: dict | None = None
    ) -> torch.Tensor:
        """Waveforms -> clip logits (in training mixed with ``partner`` clips, see
        :meth:`Mixup.draw`)."""
        return self.outputs(wave, length, partner)["logits"]

    def _mixed_features(
        self, feats: torch.Tensor, frames: torch.Tensor, partner: dict
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if "perm" in partner:  # partners from this batch: their features are already here
            return self.mixup.inputs(feats, partner), self.mixup.lengths(frames, partner)
        other, other_frames = self.features(partner["wave"], partner["length"])
        if self.training and self.spec_augment is not None and self._mix_after_masks:
            other = self.spec_augment(other, self._mask_value())
        return (
            self.mixup.inputs(feats, partner, other),
            self.mixup.lengths(frames, partner, other_frames),
        )

    @property
    def _mix_after_masks(self) -> bool:
        return self.mixup is not None and self.mixup.domain == "masked_spectrogram"

    def _mask_value(self) -> float:
        """What a masked bin holds: 0 in the features, or what a raw 0 becomes after the
        front-end's normalisation (``spec_augment.fill: raw_zero``: AST masks its raw fbank)."""
        if self.mask_fill == "raw_zero":
            return self.features.normalised_value(0.0)
        return 0.0

    def outputs(
        self, wave: torch.Tensor, length: torch.Tensor, partner: dict | None = None
    ) -> dict[str, torch.Tensor]:
        """The model's outputs for a batch of waveforms (mixed with ``partner`` clips in the
        mixup's domain when given), with SpecAugment in training."""
        if partner is not None and self.mixup.domain == "waveform":  # the partners' waves as drawn
            wave, length = (
                self.mixup.inputs(wave, partner, partner["wave"]),
                self.mixup.lengths(length, partner, partner["length"]),
            )
        feats, frames = self.features(wave, length)
        if partner is not None and self.mixup.domain == "spectrogram":
            feats, frames = self._mixed_features(feats, frames, partner)
        if self.training and self.spec_augment is not None:
            feats = self.spec_augment(feats, self._mask_value())
        if partner is not None and self.mixup.domain == "masked_spectrogram":
            feats, frames = self._mixed_features(feats, frames, partner)
        return self.model(feats, frames)

    def _hot(self, labels: torch.Tensor, classes: int) -> torch.Tensor:
        return (
            labels.float() if self.multi_label else nn.functional.one_hot(labels, classes).float()
        )

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        targets = batch["label"]
        if self.shift_gain is not None:
            batch = dict(batch)
            batch["wave"], batch["length"] = self.shift_gain(batch["wave"], batch["length"])
            if "partner_wave" in batch:
                batch["partner_wave"], batch["partner_length"] = self.shift_gain(
                    batch["partner_wave"], batch["partner_length"]
                )
        partner = self.mixup.draw(batch) if self.mixup is not None else None
        logits = self(batch["wave"], batch["length"], partner)
        if partner is not None:
            classes = logits.shape[1]
            targets = self.mixup.targets(
                self._hot(Mixup.own(targets, partner), classes),
                self._hot(partner["label"], classes),
                partner["lam"],
            )
        loss = self.loss(logits, targets)
        self.log_train_loss(loss, logits.shape[0])
        return loss

    # -- evaluation: clip scores gathered from every process, metrics computed once ---------------
    def _collect(self, batch: dict) -> None:
        self._store(batch, self.outputs(batch["wave"], batch["length"]))

    def _store(self, batch: dict, outputs: dict[str, torch.Tensor]) -> None:
        """Keep what the epoch's metrics read of an evaluation batch: clip logits and labels."""
        labels = batch["label"].float() if self.multi_label else batch["label"].float()[:, None]
        self._collected.append((batch["index"], outputs["logits"].float(), labels))

    def _metrics(self, count: int, tune: bool = False) -> dict[str, Any] | None:
        """Metrics of the clips collected this epoch (all processes'); multi-label: with the
        decisions of :attr:`decision_thresholds` (``tune``: first set from these clips)."""
        if not self._collected:
            return None
        index = torch.cat([c[0] for c in self._collected]).to(self.device)
        rows = torch.cat([torch.cat([c[1], c[2]], dim=1) for c in self._collected])
        self._collected = []
        gathered, seen = gather_by_index(self, index, rows, count)
        classes = int(self.data_info.num_classes)
        scores, targets = gathered[seen, :classes].numpy(), gathered[seen, classes:].numpy()
        if not self.multi_label:
            return single_label_metrics(scores, targets[:, 0].astype(np.int64))
        metrics = multilabel_metrics(scores, targets)
        probabilities = 1.0 / (1.0 + np.exp(-scores.astype(np.float64)))
        if tune:
            self.decision_thresholds = tune_thresholds(probabilities, targets)
        tuned = self.decision_thresholds is not None
        thresholds = self.decision_thresholds if tuned else DEFAULT_THRESHOLD
        metrics.update(decision_metrics(probabilities, targets, thresholds))
        metrics["thresholds"] = (
            "per class, tuned on validation" if tuned else f"{DEFAULT_THRESHOLD} for every class"
        )
        return metrics

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """The per-class decision thresholds travel with the weights they were tuned for."""
        if self.decision_thresholds is not None:
            checkpoint["decision_thresholds"] = self.decision_thresholds.tolist()

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """A checkpoint's tuned thresholds, if it has any."""
        saved = checkpoint.get("decision_thresholds")
        self.decision_thresholds = None if saved is None else np.asarray(saved, dtype=np.float64)

    @staticmethod
    def _score(metrics: dict) -> float:
        return 100.0 * metrics["mAP"] if "mAP" in metrics else metrics["accuracy"]

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        self._collect(batch)

    def on_validation_epoch_end(self) -> None:
        tune = self.multi_label and not self.trainer.sanity_checking
        metrics = self._metrics(len(self.trainer.val_dataloaders.dataset), tune=tune)
        if metrics is None or self.trainer.sanity_checking:
            return
        self.log("val/score", self._score(metrics), prog_bar=True, sync_dist=False)
        for key in ("accuracy", "mAP", "mean_auc", "d_prime", "f1_macro", "f1_micro"):
            if key in metrics:
                self.log(f"val/{key}", metrics[key], sync_dist=False)

    def test_step(self, batch: dict, batch_idx: int) -> None:
        self._collect(batch)

    def on_test_epoch_end(self) -> None:
        name = self.trainer.datamodule.test_name
        metrics = self._metrics(len(self.trainer.test_dataloaders.dataset))
        self.test_results[name] = metrics
        self.log(f"test/{name}/score", self._score(metrics), sync_dist=False)

    def report(self, out_dir: Path, extra: dict[str, Any]) -> dict[str, Any]:
        """metrics.json, results.md and the confusion-matrix PNG of the last test run."""
        return write_tagging_report(out_dir, self.test_results, self.labels, extra)
