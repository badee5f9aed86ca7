"""Speaker verification: train an embedding extractor as a speaker classifier, evaluate on
trials."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import lightning as L
import torch
from lightning.pytorch.utilities import rank_zero_warn
from torch import nn

from ..checkpoints import describe_model
from ..inference.scoring import ScoringConfig, score_trials
from ..metrics.eer import DetectionCost, verification_metrics
from ..report.verification import write_verification_report
from ..utils.errors import DataFormatError, IncompatibleConfigError
from .common import check_components, configure_optimization, gather_by_index


class VerificationTask(L.LightningModule):
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

    family = "verification"
    model_outputs = ("embedding",)
    monitor = ("val/eer", "min")  # what the checkpoint callback follows when its monitor is 'auto'

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
        super().__init__()
        # model_info lets a checkpoint loaded into the wrong model be named (class, size), not
        # dumped key by key.
        self.save_hyperparameters(
            {"data_info": dict(data_info), "model_info": describe_model(model)}
        )
        check_components(self, model, loss)
        self.model = model
        self.features = features
        self.loss = loss(
            embedding_dim=model.embedding_dim, num_classes=int(data_info["num_classes"])
        )
        self.optimizer_factory = optimizer
        self.scheduler_cfg = dict(scheduler) if scheduler else None
        self.scoring = ScoringConfig(**(scoring or {}))
        self.costs = tuple(
            DetectionCost(**c) for c in (dcf or [{"p_target": 0.01}, {"p_target": 0.05}])
        )
        self._collected: dict[str, list[tuple[torch.Tensor, torch.Tensor]]] = {}
        self.test_results: dict[str, dict[str, Any]] = {}

    # -- training ---------------------------------------------------------------------------
    def embed(self, wave: torch.Tensor, length: torch.Tensor) -> torch.Tensor:
        """Waveforms -> embeddings (features computed on the module's device)."""
        feats, frames = self.features(wave, length)
        return self.model(feats, frames)

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
        self.log("train/loss", loss, prog_bar=True, on_step=True, on_epoch=True, batch_size=size)
        self.log(
            "train/acc", accuracy, prog_bar=True, on_step=False, on_epoch=True, batch_size=size
        )
        if hasattr(self.loss, "margin"):
            self.log(
                "train/margin",
                float(self.loss.margin),
                on_step=False,
                on_epoch=True,
                batch_size=size,
            )
        return loss

    def configure_optimizers(self):
        return configure_optimization(self, self.optimizer_factory, self.scheduler_cfg)

    # -- evaluation -------------------------------------------------------------------------
    def _collect(self, batch: dict) -> None:
        frames = (
            self.features.num_frames(batch["length"])
            if hasattr(self.features, "num_frames")
            else None
        )
        if frames is not None and int(frames.min()) < 1:
            i = int(frames.argmin())
            window = getattr(self.features, "frame_length_ms", None)
            raise DataFormatError(
                batch["path"][i],
                f"audio at least one {window or ''} ms analysis frame long",
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

    def _cohort(self, dm) -> tuple[torch.Tensor, list[str]]:
        """The cohort's embeddings (read from the run's cache, or gathered from every rank and
        cached)."""
        speakers = dm.cohort_speakers()
        cached = getattr(dm, "cached_cohort", None)
        if cached is not None:
            return cached, speakers
        if "cohort" not in self._collected:
            raise IncompatibleConfigError(
                "task.scoring needs a cohort: set data.cohort_utts_per_speaker > 0 (or -1)"
            )
        cohort, seen = self._gathered("cohort", len(speakers))
        if not bool(seen.all()):
            raise RuntimeError(f"cohort: {int((~seen).sum())} utterances were not embedded")
        path = dm.cohort_cache_file() if hasattr(dm, "cohort_cache_file") else None
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
            for name in dm.test_trials
        }
        if not self.trainer.is_global_zero:
            return
        for name in dm.test_trials:
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

    def write_report(self, out_dir: str, extra: dict | None = None) -> dict[str, Any]:
        """metrics.json, results.md, per-trial score files, DET curve and score histograms of the
        last test run."""
        if not self.test_results:
            raise RuntimeError("no test results to report: run trainer.test first")
        return write_verification_report(out_dir, self.test_results, extra, self.costs)
