"""Speaker diarization: an end-to-end model trained with PIT-BCE; scored by DER
(pyannote.metrics)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from pyannote.core import Annotation
from torch import nn

from ..data.diarization import DiarizationDataInfo, RecordingSet
from ..inference.diarization import (
    DecodingConfig,
    activities_to_annotation,
    diarize_recording,
    one_speaker_baseline,
    oracle_speech,
    tune_decoding,
)
from ..inference.embedding import SpeakerEmbedder
from ..losses.base import Prediction
from ..metrics.der import diarization_error_rates, frame_der, frame_error_counts
from ..report.diarization import write_diarization_report
from ..utils.errors import ConfigValueError
from .base import Task


class DiarizationTask(Task):
    """Frame-level speaker activities from an end-to-end model (EEND-EDA).

    Training: chunks with activity targets; the targets (100 frames/s) are subsampled to the model's
    rate. Validation: loss and frame-level DER over the validation chunks at threshold
    ``decoding.threshold``, with the oracle speaker count (``val/der``) and with the count the
    existence head estimates (``val/der_estimated``, and ``val/count_exact``: the share of chunks
    whose count it gets right); the checkpoint callback follows ``val/der`` unless its monitor says
    otherwise. Test: every test recording is diarized
    whole (chunked inference, estimated speaker count) and scored by DER in both setups, next to
    the one-speaker floor (all reference speech as one speaker).

    Args:
        model: returns ``activities`` / ``existence`` / ``frames`` and has ``subsampling``.
        features: waveforms -> features on the device.
        loss: e.g. :class:`~sonolab.losses.PermutationInvariantBCE`.
        data_info: the datamodule's ``info`` (sample rate, speakers per chunk), stored in
        checkpoints.
        optimizer: partial of a ``torch.optim`` optimiser.
        scheduler: ``{warmup_epochs, final_lr_ratio}`` or null.
        decoding: :class:`~sonolab.inference.diarization.DecodingConfig` fields.
    """

    model_outputs = ("activities",)
    loss_inputs = (Prediction.FRAME_ACTIVITIES,)
    info_type = DiarizationDataInfo
    monitor = ("val/der", "min")  # what the checkpoint callback follows when its monitor is 'auto'
    metric_directions = {
        "der*": "min",
        "jer*": "min",
        "missed*": "min",
        "false_alarm*": "min",
        "confusion*": "min",
        "count_error*": "min",
        "count_exact*": "max",
    }
    headline_metrics = ("system/collar*/corpus/der",)
    evaluate_sections = ("decoding",)
    inference = "sonolab.inference.diarizer.Diarizer"

    def __init__(
        self,
        model: nn.Module,
        features: nn.Module,
        loss: nn.Module,
        data_info: DiarizationDataInfo | dict,
        optimizer: Callable[..., torch.optim.Optimizer],
        scheduler: dict | None = None,
        decoding: dict | None = None,
    ):
        super().__init__(model, features, loss, data_info, optimizer, scheduler)
        self.sample_rate = int(self.data_info.sample_rate)
        self.decoding = DecodingConfig.from_config(decoding)
        self._embedder: SpeakerEmbedder | None = None
        self._val_counts: dict[str, float] = {}
        self._hypotheses: list[tuple[str, str, Any]] = []
        self.tuning: dict | None = None
        self.test_hypotheses: dict[str, dict] = {}
        self.test_references: dict[str, dict] = {}

    def _forward(
        self, batch: dict, feats: torch.Tensor, frames: torch.Tensor
    ) -> tuple[dict, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Model outputs for the batch's features, targets at the model's frame rate, and the
        frame / speaker masks."""
        speakers = max(1, int(batch["num_speakers"].max()))
        out = self.model(feats, frames, num_speakers=speakers)
        step = self.model.subsampling
        length = out["activities"].shape[1]
        targets = batch["labels"][:, ::step][:, :length, :speakers]
        targets = nn.functional.pad(
            targets, (0, speakers - targets.shape[2], 0, length - targets.shape[1])
        )
        label_frames = (batch["label_frames"] + step - 1) // step
        valid = torch.minimum(out["frames"], label_frames.to(out["frames"].device))
        frame_mask = torch.arange(length, device=targets.device)[None] < valid[:, None]
        speaker_mask = (
            torch.arange(speakers, device=targets.device)[None] < batch["num_speakers"][:, None]
        )
        return out, targets, frame_mask, speaker_mask

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        feats, frames = self.features(batch["wave"], batch["length"])
        out, targets, frame_mask, speaker_mask = self._forward(batch, feats, frames)
        loss = self.loss(
            out["activities"], targets, frame_mask, speaker_mask, existence_logits=out["existence"]
        )
        self.log_train_loss(loss, targets.shape[0])
        return loss

    # -- validation: chunk loss and frame-level DER -------------------------------------------
    def validation_step(self, batch: dict, batch_idx: int) -> None:
        feats, frames = self.features(batch["wave"], batch["length"])
        out, targets, frame_mask, speaker_mask = self._forward(batch, feats, frames)
        loss = self.loss(
            out["activities"], targets, frame_mask, speaker_mask, existence_logits=out["existence"]
        )
        self.log("val/loss", loss, sync_dist=True, batch_size=targets.shape[0])
        predicted = (torch.sigmoid(out["activities"]) > self.decoding.threshold) & speaker_mask[
            :, None, :
        ]
        self._count_errors("", frame_error_counts(predicted, targets, frame_mask))
        # the same chunks with the count the model estimates (decoding.max_speakers attractors,
        # existence above decoding.existence_threshold), so that model selection can see the
        # existence head (callbacks.model_checkpoint.monitor=val/der_estimated)
        estimated = self.model(feats, frames, num_speakers=self.decoding.max_speakers)
        count = self.model.count_speakers(estimated["existence"], self.decoding.existence_threshold)
        slots = torch.arange(estimated["activities"].shape[2], device=count.device)
        kept = (slots[None] < count[:, None])[:, None, :]
        predicted = (torch.sigmoid(estimated["activities"]) > self.decoding.threshold) & kept
        errors = frame_error_counts(predicted, targets, frame_mask)
        errors["count_exact"] = float((count.cpu() == batch["num_speakers"].cpu()).sum())
        errors["chunks"] = float(count.numel())
        self._count_errors("estimated_", errors)

    def _count_errors(self, prefix: str, errors: dict[str, float]) -> None:
        for key, value in errors.items():
            self._val_counts[prefix + key] = self._val_counts.get(prefix + key, 0.0) + value

    def on_validation_epoch_end(self) -> None:
        errors = ("speech", "missed", "false_alarm", "confusion")
        keys = [*errors, *(f"estimated_{k}" for k in (*errors, "count_exact", "chunks"))]
        counts = torch.tensor(
            [self._val_counts.get(k, 0.0) for k in keys], dtype=torch.float64, device=self.device
        )
        if self.trainer.world_size > 1:  # errors and speech summed over ranks, the DER once
            counts = self.all_gather(counts).sum(dim=0)
        self._val_counts.clear()
        if self.trainer.sanity_checking or counts[0] <= 0:
            return
        total = dict(zip(keys, counts.tolist()))
        estimated = {k: total[f"estimated_{k}"] for k in errors}
        self.log("val/der", frame_der(total), prog_bar=True, sync_dist=False)
        self.log("val/der_estimated", frame_der(estimated), prog_bar=True, sync_dist=False)
        self.log(
            "val/count_exact",
            total["estimated_count_exact"] / max(total["estimated_chunks"], 1.0),
            sync_dist=False,
        )

    # -- test: whole recordings, DER against references ----------------------------------------
    def _activities(self, path, count: int | None) -> tuple[Any, float]:
        """A recording's activities and frame step under the task's decoding (``count``: the
        speakers to decode, None: estimated); the verification run of ``decoding.embedding_run``
        is loaded once, when windowed decoding first needs it."""
        if self.decoding.embedding_run and self.decoding.window_seconds and self._embedder is None:
            self._embedder = SpeakerEmbedder(self.decoding.embedding_run, device=self.device)
        return diarize_recording(
            self.model,
            self.features,
            path,
            self.sample_rate,
            self.decoding,
            num_speakers=count,
            device=self.device,
            embedder=self._embedder,
        )

    def _diarize(self, recordings: RecordingSet, uri: str) -> tuple[Any, float]:
        """:meth:`_activities` of a set's recording (with ``decoding.oracle_count``, its
        reference's speaker count)."""
        count = recordings.speaker_count(uri) if self.decoding.oracle_count else None
        return self._activities(recordings.audio[uri], count)

    def on_test_start(self) -> None:
        """Tune the threshold and median filter on the validation recordings (never on a test
        set)."""
        datamodule = self.trainer.datamodule
        self.tuning = None
        if not self.decoding.tune or not datamodule.val_name:
            return
        recordings = datamodule.recordings(datamodule.val_name)
        probabilities = {uri: self._diarize(recordings, uri) for uri in recordings.uris}
        threshold, median, der = tune_decoding(
            probabilities, recordings.references, recordings.uems, self.decoding
        )
        self.decoding.threshold, self.decoding.median_frames = threshold, median
        self.tuning = {
            "set": recordings.name,
            "threshold": threshold,
            "median_frames": median,
            f"der_{self.decoding.tune_setup}": der,
        }

    def hypothesis(self, recordings: RecordingSet, uri: str) -> Annotation:
        """The diarization of one recording of a set (a pipeline task overrides it); with
        ``decoding.speech_activity=oracle``, inside the reference's speech."""
        speech = None
        if self.decoding.speech_activity == "oracle":
            if not recordings.scored:
                raise ConfigValueError(
                    "task.decoding.speech_activity",
                    f"model for recordings without references (set {recordings.name}), or "
                    "rttm=<references> for oracle speech",
                    "oracle",
                )
            speech = oracle_speech(recordings.references[uri], recordings.uems.get(uri))
        probs, step = self._diarize(recordings, uri)
        return activities_to_annotation(
            probs, step, uri, self.decoding.threshold, self.decoding.median_frames, speech=speech
        )

    # -- inference on any recording (sonolab.load, sonolab diarize) ------------------------------
    def restore_tuning(self, metrics: dict[str, Any]) -> None:
        """Decode as the run was scored: the threshold and median filter its test used (tuned on
        the validation recordings), from its ``metrics.json``."""
        saved = metrics.get("decoding") or {}
        for key in ("threshold", "median_frames"):
            if saved.get(key) is not None:
                setattr(self.decoding, key, saved[key])

    def _no_oracle(self, setting: str) -> None:
        if setting == "oracle":
            raise ConfigValueError(
                "speech_activity",
                "model (or silero / eend) for recordings without references",
                "oracle",
            )

    def diarize_file(
        self,
        path: str | Path,
        uri: str,
        num_speakers: int | None = None,
        min_speakers: int | None = None,
        max_speakers: int | None = None,
    ) -> Annotation:
        """The turns of one recording without a reference: ``num_speakers`` fixes the count;
        otherwise it is estimated and then held within ``[min_speakers, max_speakers]`` (decoded
        again with the bound when it falls outside)."""
        self._no_oracle(self.decoding.speech_activity)
        probs, step = self._activities(path, num_speakers)
        if num_speakers is None:
            found = probs.shape[1]
            bounded = max(found, min_speakers or 0)
            bounded = min(bounded, max_speakers) if max_speakers is not None else bounded
            if bounded != found:
                probs, step = self._activities(path, bounded)
        return activities_to_annotation(
            probs, step, uri, self.decoding.threshold, self.decoding.median_frames
        )

    def test_step(self, item: dict, batch_idx: int, dataloader_idx: int = 0) -> None:
        recordings = self.trainer.datamodule.recordings(item["set"])
        self._hypotheses.append(
            (item["set"], item["uri"], self.hypothesis(recordings, item["uri"]))
        )

    def on_test_epoch_end(self) -> None:
        found = self._hypotheses
        if self.trainer.world_size > 1:  # each rank diarized a share of the recordings
            gathered: list = [None] * self.trainer.world_size
            dist.all_gather_object(gathered, found)
            found = [h for part in gathered for h in part]
        self._hypotheses = []
        datamodule = self.trainer.datamodule
        for name in datamodule.test_names:
            recordings = datamodule.recordings(name)
            hypotheses = {uri: h for set_name, uri, h in found if set_name == name}
            self.test_hypotheses[name] = hypotheses
            self.test_references[name] = recordings.references
            if not recordings.scored:  # recordings given without references: diarized, not scored
                self.test_results[name] = {"scored": False, "recordings": len(hypotheses)}
                continue
            floor = {
                uri: one_speaker_baseline(recordings.references[uri]) for uri in recordings.uris
            }
            system = diarization_error_rates(recordings.references, hypotheses, recordings.uems)
            self.test_results[name] = {
                "system": system,
                "floor": diarization_error_rates(recordings.references, floor, recordings.uems),
            }
            for key, entry in system.items():
                self.log(f"test/{name}/der_{key}", entry["corpus"]["der"], sync_dist=False)

    def decoding_summary(self) -> dict[str, Any]:
        """How the reported turns were decoded (for metrics.json), tuned values included."""
        return {
            "decoding": {
                "threshold": self.decoding.threshold,
                "median_frames": self.decoding.median_frames,
                "tuned_on": self.tuning,
            }
        }

    def report(self, out_dir: Path, extra: dict[str, Any]) -> dict[str, Any]:
        """metrics.json, results.md, RTTMs and timelines of the last test run."""
        extra.update(self.decoding_summary())
        return write_diarization_report(
            out_dir, self.test_results, self.test_hypotheses, self.test_references, extra
        )
