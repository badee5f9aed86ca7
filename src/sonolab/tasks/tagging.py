"""Audio tagging: clip-level classification (one label, ESC-50) or tagging (several labels,
AudioSet)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
import torchaudio.transforms as T
from torch import nn

from ..checkpoints import describe_model
from ..metrics.tagging import multilabel_metrics, single_label_metrics
from ..report.tagging import write_tagging_report
from ..utils.errors import ConfigValueError, IncompatibleConfigError
from ..utils.io import write_text_atomic
from .common import check_components, configure_optimization, gather_by_index


class SpecAugment(nn.Module):
    """Time and frequency masks on ``(batch, frames, mel bins)`` features in training (torchaudio's
    masking, independent masks per example): ``freq_masks`` masks of up to ``freq_mask`` bins and
    ``time_masks`` of up to ``time_mask`` frames. AST on ESC-50: one of 24 bins and one of 96
    frames; HTS-AT: two of 8 bins and two of 64 frames."""

    def __init__(
        self, freq_mask: int = 24, time_mask: int = 96, freq_masks: int = 1, time_masks: int = 1
    ):
        super().__init__()
        masks = [
            T.FrequencyMasking(freq_mask, iid_masks=True)
            for _ in range(freq_masks if freq_mask else 0)
        ]
        masks += [
            T.TimeMasking(time_mask, iid_masks=True) for _ in range(time_masks if time_mask else 0)
        ]
        self.masks = nn.Sequential(*masks)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        x = features.transpose(1, 2).unsqueeze(1)  # (batch, 1, mel bins, frames)
        return self.masks(x).squeeze(1).transpose(1, 2)


class ShiftGain(nn.Module):
    """Training-time augmentation of fixed-length clip waveforms: each clip rolled circularly by a
    uniform shift of at most ``shift_seconds`` either way (an event in a padded clip moves, nothing
    is cut off) and scaled by a uniform gain of at most ``gain_db`` dB either way. Draws come from
    torch's generator, which the run reseeds per epoch, so they are reproducible.

    Written here because the libraries at hand shift with zero fill or on a single clip
    (``torch.roll`` rolls a whole batch by one amount): this rolls each clip of a batch by its own
    amount.
    """

    def __init__(self, sample_rate: int, shift_seconds: float = 0.0, gain_db: float = 0.0):
        super().__init__()
        if shift_seconds < 0 or gain_db < 0:
            raise ConfigValueError(
                "task.shift_gain",
                "shift_seconds and gain_db >= 0",
                {"shift_seconds": shift_seconds, "gain_db": gain_db},
            )
        self.max_shift = int(round(shift_seconds * sample_rate))
        self.gain_db = float(gain_db)

    def forward(
        self, wave: torch.Tensor, length: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(batch, samples)`` waveforms and valid lengths -> augmented waveforms and lengths (a
        rolled clip's padding can land anywhere, so its whole length counts as valid)."""
        batch, samples = wave.shape
        if self.max_shift > 0:
            shift = torch.randint(-self.max_shift, self.max_shift + 1, (batch, 1)).to(wave.device)
            positions = (torch.arange(samples, device=wave.device).unsqueeze(0) - shift) % samples
            wave = torch.gather(wave, 1, positions)
            length = torch.full_like(length, samples)
        if self.gain_db > 0:
            gain_db = (torch.rand(batch, 1) * 2 - 1).to(wave.device) * self.gain_db
            wave = wave * torch.pow(10.0, gain_db / 20.0)
        return wave, length


class Mixup(nn.Module):
    """Mixup (Zhang et al. 2018): with probability ``prob`` a batch is mixed, each example with a
    partner clip, ``lam ~ Beta(alpha, alpha)`` per example.

    domain: ``waveform`` (AST mixes the raw audio) or ``spectrogram`` (the normalised features).
    partners: ``batch`` (another example of the same batch) or ``dataset`` (a clip drawn from the
        whole training set for each example, as AST's dataset does; the datamodule loads it with the
        batch).
    mix_labels: targets mixed with the same ``lam`` (soft labels; AST), or else each example keeps
        the labels of whichever clip dominates its mix.
    """

    def __init__(
        self,
        prob: float = 0.5,
        alpha: float = 10.0,
        domain: str = "waveform",
        mix_labels: bool = True,
        partners: str = "batch",
    ):
        super().__init__()
        if domain not in ("waveform", "spectrogram"):
            raise ConfigValueError("task.mixup.domain", "waveform or spectrogram", domain)
        if partners not in ("batch", "dataset"):
            raise ConfigValueError("task.mixup.partners", "batch or dataset", partners)
        self.prob, self.alpha, self.domain, self.mix_labels, self.partners = (
            prob,
            alpha,
            domain,
            mix_labels,
            partners,
        )

    def draw(self, batch: dict) -> dict | None:
        """The partners of one batch (``wave``, ``length``, ``label`` and, for batch partners, their
        positions ``perm``) and the weights ``lam``, or None when this batch is not mixed."""
        size = batch["wave"].shape[0]
        if (self.partners == "batch" and size < 2) or float(torch.rand(())) >= self.prob:
            return None
        if self.partners == "dataset":
            if "partner_wave" not in batch:
                raise RuntimeError(
                    "task.mixup.partners=dataset but the batch has no partner clips: the "
                    "datamodule "
                    "must be asked for them (TaggingTask.setup does)"
                )
            partner = {k: batch[f"partner_{k}"] for k in ("wave", "length", "label")}
        else:
            perm = torch.randperm(size, device=batch["wave"].device)
            partner = {"perm": perm, **{k: batch[k][perm] for k in ("wave", "length", "label")}}
        partner["lam"] = (
            torch.distributions.Beta(self.alpha, self.alpha)
            .sample((size,))
            .to(batch["wave"].device)
        )
        return partner

    @staticmethod
    def mix(x: torch.Tensor, other: torch.Tensor, lam: torch.Tensor) -> torch.Tensor:
        """``lam * x + (1 - lam) * other`` with one weight per example (first axis)."""
        shape = (-1,) + (1,) * (x.dim() - 1)
        return lam.view(shape) * x + (1 - lam.view(shape)) * other

    def targets(
        self, targets: torch.Tensor, partner_targets: torch.Tensor, lam: torch.Tensor
    ) -> torch.Tensor:
        """Mixed (or dominant-clip) targets; both are one-hot or multi-hot floats."""
        if self.mix_labels:
            return self.mix(targets, partner_targets, lam)
        return torch.where((lam >= 0.5).view(-1, 1), targets, partner_targets)


def measure_statistics(
    features: nn.Module, clips, device: torch.device | str = "cpu", batch_size: int = 16
) -> dict[str, float]:
    """Mean and standard deviation of the front-end's unnormalised output (``features.raw``) over
    the valid frames of ``clips`` (a clip dataset), accumulated in float64."""
    total, squares, count = 0.0, 0.0, 0
    for start in range(0, len(clips), batch_size):
        items = [clips[i] for i in range(start, min(start + batch_size, len(clips)))]
        wave = torch.stack([it["wave"] for it in items]).to(device)
        feats, frames = features.raw(
            wave, torch.tensor([it["length"] for it in items], device=device)
        )
        for f, n in zip(feats, frames.tolist()):
            valid = f[:n].double()
            total, squares, count = (
                total + float(valid.sum()),
                squares + float((valid**2).sum()),
                count + valid.numel(),
            )
    if not count:
        raise ValueError(
            "no audio frames to measure the front-end statistics on (are the training clips empty?)"
        )
    mean = total / count
    return {
        "mean": mean,
        "std": max(squares / count - mean**2, 0.0) ** 0.5,
        "clips": len(clips),
        "frames": count,
    }


def save_statistics(path: Path, statistics: dict[str, float]) -> None:
    """Store measured statistics (JSON, written atomically)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(path, json.dumps(statistics, indent=2))


def load_statistics(path: Path) -> dict[str, float] | None:
    """Stored statistics, or None when absent or unreadable (then they are measured again)."""
    try:
        stored = json.loads(path.read_text())
        return stored if {"mean", "std"} <= set(stored) and stored["std"] > 0 else None
    except (OSError, ValueError, TypeError):
        return None


class TaggingTask(L.LightningModule):
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
        or null.
        mixup: :class:`Mixup` fields ``{prob, alpha, domain, partners, mix_labels}`` or null.
        shift_gain: :class:`ShiftGain` fields ``{shift_seconds, gain_db}`` or null (applied to the
            training waveforms before mixup).
    """

    family = "tagging"
    model_outputs = ("logits",)
    monitor = ("val/score", "max")  # accuracy (single label) or mAP (multi-label), in %

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
        super().__init__()
        check_components(self, model, loss)
        self.multi_label = bool(data_info.get("multi_label", False))
        if bool(getattr(loss, "multi_label", False)) != self.multi_label:
            kind = "multi-label (loss=bce)" if self.multi_label else "single-label (loss=label_ce)"
            raise IncompatibleConfigError(
                f"the data is {'multi' if self.multi_label else 'single'}-label: "
                f"use a {kind} loss, not {type(loss).__name__}"
            )
        self.labels = list(data_info.get("labels") or [])
        model.reset_classifier(int(data_info["num_classes"]))
        frontend_state = getattr(model, "pretrained_frontend", None)
        if frontend_state:  # a pretrained file's front-end layer (HTS-AT's mel BatchNorm)
            if not hasattr(features, "adopt_pretrained"):
                raise IncompatibleConfigError(
                    f"model.pretrained carries front-end weights ({', '.join(frontend_state)}) "
                    f"that {type(features).__name__} has no place for: use its front-end "
                    "(features=htsat_mel for HTS-AT)"
                )
            features.adopt_pretrained(frontend_state)
        self.save_hyperparameters(
            {"data_info": dict(data_info), "model_info": describe_model(model)}
        )
        self.model = model
        self.features = features
        self.loss = loss
        self.optimizer_factory = optimizer
        self.scheduler_cfg = dict(scheduler) if scheduler else None
        self.spec_augment = SpecAugment(**spec_augment) if spec_augment else None
        self.mixup = Mixup(**mixup) if mixup else None
        self.shift_gain = (
            ShiftGain(int(data_info["sample_rate"]), **shift_gain) if shift_gain else None
        )
        self.statistics_clips = statistics_clips
        self._collected: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []
        self.test_results: dict[str, dict] = {}

    def on_fit_start(self) -> None:
        """Give the front-end its normalisation when it has none: the statistics stored beside the
        data for these training clips (``python -m sonolab.stats``, or an earlier run), else
        measured now and
        stored (every process reads the same clips in the same order, so all get the same
        numbers)."""
        if getattr(self.features, "has_statistics", True):
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
            if not hasattr(datamodule, "mixup_partners"):
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
        if partner is not None and self.mixup.domain == "waveform":
            wave, length = (
                Mixup.mix(wave, partner["wave"], partner["lam"]),
                torch.maximum(length, partner["length"]),
            )
        feats, frames = self.features(wave, length)
        if partner is not None and self.mixup.domain == "spectrogram":
            if "perm" in partner:  # partners from this batch: their features are already here
                other, other_frames = feats[partner["perm"]], frames[partner["perm"]]
            else:
                other, other_frames = self.features(partner["wave"], partner["length"])
            feats, frames = (
                Mixup.mix(feats, other, partner["lam"]),
                torch.maximum(frames, other_frames),
            )
        if self.training and self.spec_augment is not None:
            feats = self.spec_augment(feats)
        return self.model(feats, frames)["logits"]

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
                self._hot(targets, classes), self._hot(partner["label"], classes), partner["lam"]
            )
        loss = self.loss(logits, targets)
        self.log(
            "train/loss",
            loss,
            prog_bar=True,
            on_step=True,
            on_epoch=True,
            batch_size=logits.shape[0],
        )
        return loss

    def configure_optimizers(self):
        return configure_optimization(self, self.optimizer_factory, self.scheduler_cfg)

    # -- evaluation: clip scores gathered from every process, metrics computed once ---------------
    def _collect(self, batch: dict) -> None:
        logits = self(batch["wave"], batch["length"]).float()
        labels = batch["label"].float() if self.multi_label else batch["label"].float()[:, None]
        self._collected.append((batch["index"], logits, labels))

    def _metrics(self, count: int) -> dict[str, Any] | None:
        if not self._collected:
            return None
        index = torch.cat([c[0] for c in self._collected]).to(self.device)
        rows = torch.cat([torch.cat([c[1], c[2]], dim=1) for c in self._collected])
        self._collected = []
        gathered, seen = gather_by_index(self, index, rows, count)
        classes = int(self.hparams["data_info"]["num_classes"])
        scores, targets = gathered[seen, :classes].numpy(), gathered[seen, classes:].numpy()
        if self.multi_label:
            return multilabel_metrics(scores, targets)
        return single_label_metrics(scores, targets[:, 0].astype(np.int64))

    @staticmethod
    def _score(metrics: dict) -> float:
        return 100.0 * metrics["mAP"] if "mAP" in metrics else metrics["accuracy"]

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        self._collect(batch)

    def on_validation_epoch_end(self) -> None:
        metrics = self._metrics(len(self.trainer.val_dataloaders.dataset))
        if metrics is None or self.trainer.sanity_checking:
            return
        self.log("val/score", self._score(metrics), prog_bar=True, sync_dist=False)
        for key in ("accuracy", "mAP", "mean_auc", "d_prime"):
            if key in metrics:
                self.log(f"val/{key}", metrics[key], sync_dist=False)

    def test_step(self, batch: dict, batch_idx: int) -> None:
        self._collect(batch)

    def on_test_epoch_end(self) -> None:
        name = getattr(self.trainer.datamodule, "test_name", "test")
        metrics = self._metrics(len(self.trainer.test_dataloaders.dataset))
        self.test_results[name] = metrics
        self.log(f"test/{name}/score", self._score(metrics), sync_dist=False)

    def write_report(self, out_dir: str, extra: dict | None = None) -> dict[str, Any]:
        """metrics.json, results.md and the confusion-matrix PNG of the last test run."""
        if not self.test_results:
            raise RuntimeError("no test results to report: run trainer.test first")
        return write_tagging_report(out_dir, self.test_results, self.labels, extra)
