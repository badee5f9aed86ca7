"""Speaker diarization by clustering: speech activity, sliding-window speaker embeddings from a
trained verification run, and agglomerative or spectral clustering (the x-vector + clustering
system); scored like the end-to-end model, with the one-speaker floor beside it."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from omegaconf import DictConfig
from pyannote.core import Annotation
from torch import nn

from ..data.diarization import DiarizationDataInfo, RecordingSet
from ..inference.clustering import (
    PipelineConfig,
    RecordingEmbeddings,
    diarize_embedded,
    embed_recording,
    tune_pipeline,
)
from ..inference.eend_activity import EendActivity, FrameActivity
from ..models.run_embedder import VerificationRunEmbedder
from ..utils.errors import IncompatibleConfigError
from .diarization import DiarizationTask


class ClusteringDiarizationTask(DiarizationTask):
    """The clustering diarization pipeline as a task: nothing is trained (``train=false``); at test
    the method's parameter is tuned on the validation recordings, then every test recording is
    diarized and scored by DER in both setups beside the one-speaker floor.

    Args:
        model: a :class:`~sonolab.models.VerificationRunEmbedder` (a trained verification run).
        features: null (the run's own front-end is inside the model).
        loss: null (nothing is trained).
        data_info: the datamodule's ``info``.
        optimizer / scheduler: unused (null).
        pipeline: :class:`~sonolab.inference.clustering.PipelineConfig` fields.
    """

    model_outputs = ("embedding",)
    loss_inputs = (None,)  # trains nothing: loss=none
    evaluate_sections = ("pipeline",)

    def __init__(
        self,
        model: nn.Module,
        features: nn.Module | None,
        loss: nn.Module | None,
        data_info: DiarizationDataInfo | dict,
        optimizer=None,
        scheduler: dict | None = None,
        pipeline: dict | None = None,
    ):
        if not isinstance(model, VerificationRunEmbedder):
            raise IncompatibleConfigError(
                f"{type(self).__name__} embeds with a trained verification run: "
                f"model=verification_run (found {type(model).__name__})"
            )
        super().__init__(model, features, loss, data_info, optimizer, scheduler, {"tune": False})
        self.pipeline = PipelineConfig.from_config(pipeline)
        self._embedded: dict[tuple[str, str], RecordingEmbeddings] = {}
        # the EEND-EDA run (pipeline.eend_run) is read from its folder when first needed, not
        # saved with this task: a re-scored run reads it again from there
        self._eend: EendActivity | None = None
        self._activities: dict[tuple[str, str], FrameActivity] = {}

    @classmethod
    def check_config(cls, cfg: DictConfig, command: str) -> None:
        if command == "train" and cfg.get("train", True):
            raise IncompatibleConfigError(
                f"{cls.__name__} trains nothing (its parameter is tuned on the validation "
                "recordings at test): run it with train=false"
            )

    def _config_for(self, recordings: RecordingSet, uri: str) -> PipelineConfig:
        if not self.pipeline.oracle_count:
            return self.pipeline
        return dataclasses.replace(self.pipeline, num_speakers=recordings.speaker_count(uri))

    def _eend_activity(self, path) -> FrameActivity | None:
        """The EEND run's activities of a recording, when the pipeline reads them."""
        if self.pipeline.speech_activity != "eend" and not self.pipeline.overlap:
            return None
        if self._eend is None:
            self._eend = EendActivity(self.pipeline.eend_run, device=self.device)
        return self._eend(path)

    def _activity(self, recordings: RecordingSet, uri: str) -> FrameActivity | None:
        """:meth:`_eend_activity` of a set's recording, computed once per test."""
        key = (recordings.name, uri)
        if key not in self._activities:
            self._activities[key] = self._eend_activity(recordings.audio[uri])
        return self._activities[key]

    def _embedding(self, recordings: RecordingSet, uri: str) -> RecordingEmbeddings:
        key = (recordings.name, uri)
        if key not in self._embedded:
            self._embedded[key] = embed_recording(
                self.model,
                recordings.audio[uri],
                self.pipeline,
                recordings.references.get(uri),
                recordings.uems.get(uri),
                self._activity(recordings, uri),
            )
        return self._embedded[key]

    def on_test_start(self) -> None:
        """Tune the method's parameter on the validation recordings (never on a test set)."""
        datamodule = self.trainer.datamodule
        self.tuning = None
        self._embedded.clear()
        self._activities.clear()
        if not self.pipeline.tune or not datamodule.val_name:
            return
        recordings = datamodule.recordings(datamodule.val_name)
        embedded = {uri: self._embedding(recordings, uri) for uri in recordings.uris}
        activities = {uri: self._activity(recordings, uri) for uri in recordings.uris}
        chosen, der = tune_pipeline(
            embedded, recordings.references, recordings.uems, self.pipeline, activities
        )
        for key, value in chosen.items():
            setattr(self.pipeline, key, value)
        self.tuning = {"set": recordings.name, **chosen, f"der_{self.pipeline.tune_setup}": der}

    def hypothesis(self, recordings: RecordingSet, uri: str) -> Annotation:
        return diarize_embedded(
            self._embedding(recordings, uri),
            uri,
            self._config_for(recordings, uri),
            eend=self._activity(recordings, uri),
        )

    def restore_tuning(self, metrics: dict[str, Any]) -> None:
        """The pipeline's parameters as its test tuned them (``metrics.json``)."""
        tuned = (metrics.get("pipeline") or {}).get("tuned_on") or {}
        names = {f.name for f in dataclasses.fields(PipelineConfig)}
        for key, value in tuned.items():
            if key in names:
                setattr(self.pipeline, key, value)

    def diarize_file(
        self,
        path: str | Path,
        uri: str,
        num_speakers: int | None = None,
        min_speakers: int | None = None,
        max_speakers: int | None = None,
    ) -> Annotation:
        """The turns of one recording without a reference (the pipeline's count settings
        replaced by those given)."""
        self._no_oracle(self.pipeline.speech_activity)
        given = dict(
            num_speakers=num_speakers, min_speakers=min_speakers, max_speakers=max_speakers
        )
        config = dataclasses.replace(
            self.pipeline, oracle_count=False, **{k: v for k, v in given.items() if v is not None}
        )
        eend = self._eend_activity(path)
        embedded = embed_recording(self.model, path, config, None, None, eend)
        return diarize_embedded(embedded, uri, config, eend=eend)

    def decoding_summary(self) -> dict[str, Any]:
        return {"pipeline": {**dataclasses.asdict(self.pipeline), "tuned_on": self.tuning}}

    def report(self, out_dir: Path, extra: dict[str, Any]) -> dict[str, Any]:
        self._embedded.clear()
        self._activities.clear()
        return super().report(out_dir, extra)
