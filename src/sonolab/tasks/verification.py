"""Speaker verification: train an embedding extractor as a speaker classifier, evaluate on
trials."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch.utilities import rank_zero_warn
from omegaconf import DictConfig
from torch import nn

from ..data.verification import SpeakerDataInfo, VoxCelebDataModule
from ..inference.scoring import ScoringConfig, score_trials
from ..losses.base import Prediction
from ..losses.margin import CosineMarginSoftmax
from ..metrics.eer import DetectionCost, verification_metrics
from ..report.verification import write_verification_report
from ..utils.errors import DataFormatError, IncompatibleConfigError
from .base import Task
from .gather import gather_by_index


class VerificationTask(Task):
    """Embedding extractor + classification loss; validation / test score trial lists (EER, minDCF).

    Args:
        model: maps features ``(batch, frames, dim)`` to embeddings ``(batch, emb)``.
        features: maps waveforms to features on the device (e.g. :class:`KaldiFbank`).
        loss: partial of a verification loss, completed with ``embedding_dim`` and ``num_classes``.
        data_info: the datamodule's ``info`` (``num_classes`` ...), stored in the checkpoint.
        optimizer: partial of a ``torch.optim`` optimiser (parameters are filled in).
        scheduler: ``{warmup_epochs, final_lr_ratio}`` or null for a constant learning rate.
        scoring: :class:`ScoringConfig` fields.
        dcf: list of ``{p_target, c_miss, c_fa}``: minDCF operating points reported.
    """

    model_outputs = ("embedding",)
    loss_inputs = (Prediction.EMBEDDING,)
    info_type = SpeakerDataInfo
    monitor = ("val/eer", "min")  # what the checkpoint callback follows when its monitor is 'auto'
    metric_directions = {"eer": "min", "min_dcf_*": "min", "acc": "max", "margin": "max"}
    headline_metrics = ("eer", "min_dcf_*")
    evaluate_sections = ("scoring",)
    inference = "sonolab.inference.speaker.SpeakerVerifier"

    def __init__(
        self,
        model: nn.Module,
        features: nn.Module,
        loss: Callable[..., nn.Module],
        data_info: dict,
        optimizer: Callable[..., torch.optim.Optimizer],
        scheduler: dict | None = None,
        scoring: dict | None = None,
        dcf: list[dict] | None = None,
    ):
        super().__init__(model, features, loss, data_info, optimizer, scheduler)
        self.scoring = ScoringConfig(**(scoring or {}))
        self.costs = tuple(
            DetectionCost(**c) for c in (dcf or [{"p_target": 0.01}, {"p_target": 0.05}])
        )
        self._collected: dict[str, list[tuple[torch.Tensor, torch.Tensor]]] = {}

    def build_loss(
        self, loss: Callable[..., nn.Module], model: nn.Module, info: SpeakerDataInfo
    ) -> nn.Module:
        """The loss partial completed with the embedding size and the training speakers."""
        return loss(embedding_dim=model.embedding_dim, num_classes=int(info.num_classes))

    @classmethod
    def check_config(cls, cfg: DictConfig, command: str) -> None:
        """Mean subtraction and AS-norm need a cohort of training embeddings."""
        scoring = cfg.task.get("scoring") or {}
        cohort = (cfg.data.get("cohort") or {}).get("utts_per_speaker")
        if (scoring.get("mean_subtraction") or scoring.get("as_norm")) and not cohort:
            key = (
                "cohort_utts_per_speaker"
                if command == "evaluate"
                else "data.cohort.utts_per_speaker"
            )
            raise IncompatibleConfigError(
                "task.scoring.mean_subtraction / as_norm need a cohort of training embeddings: "
                f"set {key} to a positive number (e.g. {key}=2)"
            )

    # -- training ---------------------------------------------------------------------------
    def embed(self, wave: torch.Tensor, length: torch.Tensor) -> torch.Tensor:
        """Waveforms -> embeddings (features computed on the module's device)."""
        feats, frames = self.features(wave, length)
        return self.model(feats, frames)["embedding"]

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        batches = (
            max(1, int(self.trainer.num_training_batches))
            if self.trainer.num_training_batches != float("inf")
            else 1
        )
        self.loss.set_epoch(self.current_epoch + batch_idx / batches)
        embeddings = self.embed(batch["wave"], batch["length"])
        loss = self.loss(embeddings, batch["label"])
        with torch.no_grad():
            accuracy = (self.loss.logits(embeddings).argmax(dim=1) == batch["label"]).float().mean()
        size = batch["wave"].shape[0]
        self.log_train_loss(loss, size)
        self.log(
            "train/acc", accuracy, prog_bar=True, on_step=False, on_epoch=True, batch_size=size
        )
        if isinstance(self.loss, CosineMarginSoftmax):
            self.log(
                "train/margin",
                float(self.loss.margin),
                on_step=False,
                on_epoch=True,
                batch_size=size,
            )
        return loss

    # -- evaluation -------------------------------------------------------------------------
    def _collect(self, batch: dict) -> None:
        frames = self.features.num_frames(batch["length"])
        if int(frames.min()) < 1:
            i = int(frames.argmin())
            raise DataFormatError(
                batch["path"][i],
                f"audio at least one {self.features.frame_length_ms} ms analysis frame long",
                found=f"{int(batch['length'][i])} samples",
            )
        embeddings = self.embed(batch["wave"], batch["length"])
        finite = torch.isfinite(embeddings).all(dim=1)
        if not bool(finite.all()):
            raise RuntimeError(
                f"{batch['path'][int((~finite).nonzero()[0])]}: its embedding is NaN or infinite "
                "(the audio loaded finite, so the model weights have probably diverged: check "
                "train/loss)"
            )
        for name in set(batch["set"]):
            mask = torch.tensor([s == name for s in batch["set"]], device=embeddings.device)
            self._collected.setdefault(name, []).append(
                (batch["index"][mask], embeddings[mask].float())
            )

    def _gathered(self, name: str, count: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Embeddings of set ``name`` from every rank in utterance order, and which ones were
        embedded.

        Duplicates from DDP sampler padding collapse onto the same row.
        """
        parts = self._collected.pop(name, [])
        if not parts:
            raise RuntimeError(f"no embeddings were collected for evaluation set {name!r}")
        index = torch.cat([p[0] for p in parts]).to(self.device)
        return gather_by_index(self, index, torch.cat([p[1] for p in parts]), count)

    def _score(
        self,
        name: str,
        scoring: ScoringConfig,
        cohort: torch.Tensor | None = None,
        cohort_speakers: list[str] | None = None,
        partial_ok: bool = False,
        gathered: tuple[torch.Tensor, torch.Tensor] | None = None,
    ):
        """Scores, labels and metrics of one trial list (its embeddings ``gathered`` already, or
        now).

        With ``partial_ok`` (validation under limit_val_batches / fast_dev_run) only the trials
        whose two utterances were embedded are scored; ``trials`` in the metrics says how many.
        """
        eval_set = self.trainer.datamodule.eval_sets[name]
        embeddings, seen = gathered or self._gathered(name, len(eval_set.utterances))
        enroll, test, labels = eval_set.enroll_index, eval_set.test_index, eval_set.labels
        if not bool(seen.all()):
            if not partial_ok:
                raise RuntimeError(
                    f"evaluation set {name!r}: {int((~seen).sum())} utterances were not embedded"
                )
            keep = (seen[enroll] & seen[test]).numpy()
            enroll, test, labels = enroll[keep], test[keep], labels[keep]
            if labels.size == 0 or labels.all() or not labels.any():
                return None, labels, None
        scores = score_trials(embeddings, enroll, test, scoring, cohort, cohort_speakers)
        metrics = verification_metrics(scores, labels, self.costs)
        metrics["trials"] = float(labels.size)
        return scores, labels, metrics

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        self._collect(batch)

    def on_validation_epoch_end(self) -> None:
        if self.trainer.sanity_checking:  # a few batches do not cover the list
            self._collected.clear()
            return
        # Validation always scores plain cosine: it tracks training, the cohort costs an extra pass.
        _, _, metrics = self._score("val", ScoringConfig(), partial_ok=True)
        if metrics is None:
            rank_zero_warn(
                "validation covered too few trials (no target or no non-target): val/eer not "
                "computed"
            )
            return
        for key, value in metrics.items():
            self.log(f"val/{key}", value, prog_bar=key == "eer", sync_dist=False)

    def test_step(self, batch: dict, batch_idx: int, dataloader_idx: int = 0) -> None:
        self._collect(batch)

    def _cohort(self, dm: VoxCelebDataModule) -> tuple[torch.Tensor, list[str]]:
        """The cohort's embeddings (read from the run's cache, or gathered from every rank and
        cached)."""
        speakers = dm.cohort_speakers()
        if dm.cached_cohort is not None:
            return dm.cached_cohort, speakers
        if "cohort" not in self._collected:
            raise IncompatibleConfigError(
                "task.scoring needs a cohort: set data.cohort.utts_per_speaker > 0 (or -1)"
            )
        cohort, seen = self._gathered("cohort", len(speakers))
        if not bool(seen.all()):
            raise RuntimeError(f"cohort: {int((~seen).sum())} utterances were not embedded")
        path = dm.cohort_cache_file()
        if path is not None and self.trainer.is_global_zero:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{path.name}.tmp")
            torch.save({"embeddings": cohort, "speakers": speakers}, tmp)
            tmp.replace(path)
        return cohort, speakers

    def on_test_epoch_end(self) -> None:
        dm = self.trainer.datamodule
        cohort = speakers = None
        if self.scoring.needs_cohort:
            cohort, speakers = self._cohort(dm)
        self._collected.pop("cohort", None)
        # Every rank takes part in gathering; the scoring (and the cohort statistics) is rank 0's
        # alone.
        gathered = {
            name: self._gathered(name, len(dm.eval_sets[name].utterances))
            for name in dm.lists.test_trials
        }
        if not self.trainer.is_global_zero:
            return
        for name in dm.lists.test_trials:
            scores, labels, metrics = self._score(
                name, self.scoring, cohort, speakers, gathered=gathered[name]
            )
            eval_set = dm.eval_sets[name]
            self.test_results[name] = {
                "scores": scores,
                "labels": labels,
                "metrics": metrics,
                "list": eval_set.list_path,
                "enroll": [eval_set.utterances[i] for i in eval_set.enroll_index],
                "test": [eval_set.utterances[i] for i in eval_set.test_index],
            }
            for key, value in metrics.items():
                self.log(f"test/{name}/{key}", value, rank_zero_only=True)

    def report(self, out_dir: Path, extra: dict[str, Any]) -> dict[str, Any]:
        """metrics.json, results.md, per-trial score files, DET curve and score histograms of the
        last test run."""
        return write_verification_report(out_dir, self.test_results, extra, self.costs)
