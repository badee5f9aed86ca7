"""Sound event detection from weak labels: a tagging model with frame outputs trained on clip
labels, scored on where its events are."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..data.audio import audio_duration
from ..data.desed import DesedDataModule
from ..features.base import FrontEnd
from ..metrics.sed import (
    PSDS_SCENARIOS,
    Event,
    frames_to_events,
    psds,
    psds_of_probabilities,
    sed_f1,
    tune_decisions,
    tune_psds_median,
)
from ..models.base import AudioModel
from ..report.sed import write_sed_report
from ..utils.errors import IncompatibleConfigError
from .gather import gather_by_index
from .tagging import TaggingTask

log = logging.getLogger(__name__)

DEFAULT_DECISIONS = {"threshold": 0.5, "median_frames": 1}


def frame_probabilities(outputs: dict[str, torch.Tensor]) -> torch.Tensor:
    """``(batch, frames, classes)`` event probabilities of a model's ``frame_logits``."""
    return outputs["frame_logits"].float().sigmoid()


class SoundEventDetectionTask(TaggingTask):
    """Trains as :class:`TaggingTask` does (clip logits against the weak labels, the model pooling
    its frames into the clip); validation and test also read the model's ``frame_logits``.

    At the test, the weights being tested choose their decisions (one probability threshold for all
    classes and a median filter length, over ``decisions``' grids) by the best event-based macro F1
    on the validation clips' strong labels, then turn the test clips' frame probabilities into
    events with them and report event-based and segment-based F1 (:mod:`sonolab.metrics.sed`)
    beside the clip metrics. PSDS1 and PSDS2 sweep the threshold over ``psds_operating_points``
    values as DCASE task 4 does, each with the median filter length from the same grid that scores
    best in that scenario on the validation clips. The whole-clip baseline (each clip's reference
    weak tags marked active over the whole clip; one operating point) gets the same scores, which a
    detector must beat to have located anything.

    Args:
        decisions: ``{thresholds: [...], median_frames: [...]}``, the grids searched on validation.
        psds_operating_points: thresholds ``(2 k + 1) / (2 n)`` for PSDS (DCASE: 50); 0: no PSDS.
        timelines: test clips drawn in the report (reference events above the detected ones).
        tagging_args: :class:`TaggingTask`'s.
    """

    headline_metrics = ("psds1", "event_f1_macro", "segment_f1_macro", "mAP")
    metric_directions = {
        **TaggingTask.metric_directions,
        **{name: "max" for name in PSDS_SCENARIOS},
        "event_f1_macro": "max",
        "event_f1_micro": "max",
        "segment_f1_macro": "max",
        "segment_f1_micro": "max",
    }

    def __init__(
        self,
        *args,
        decisions: dict | None = None,
        psds_operating_points: int = 50,
        timelines: int = 8,
        **kwargs,
    ):
        super().__init__(*args, **kwargs)
        grids = dict(decisions or {})
        self.threshold_grid = [float(t) for t in grids.get("thresholds", [0.5])]
        self.median_grid = [int(m) for m in grids.get("median_frames", [1])]
        n = int(psds_operating_points)
        if n < 0:
            raise IncompatibleConfigError(
                f"task.psds_operating_points must be 0 (no PSDS) or more, not {n}"
            )
        self.psds_thresholds = [(2 * k + 1) / (2 * n) for k in range(n)]
        self.timelines = int(timelines)
        self._frames: list[tuple[torch.Tensor, torch.Tensor]] = []
        self.test_events: dict[str, dict] = {}

    def prepare_model(self, model: AudioModel, features: FrontEnd, info) -> None:
        """As :meth:`TaggingTask.prepare_model`, once the model is known to give frame outputs."""
        if not model.frame_outputs:
            raise IncompatibleConfigError(
                f"sound event detection reads frame outputs, which {type(model).__name__} does "
                "not give as configured (a CNN: model.pooling=attention|max|mean; or model=htsat)"
            )
        super().prepare_model(model, features, info)

    def setup(self, stage: str) -> None:
        """The data must carry strong labels (events) for the clips it validates and tests."""
        super().setup(stage)
        if not isinstance(self.trainer.datamodule, DesedDataModule):
            raise IncompatibleConfigError(
                f"sound event detection needs strong labels: data=desed or esc10_soundscapes, not "
                f"{type(self.trainer.datamodule).__name__}"
            )

    # -- collecting: clip logits (as tagging) and frame probabilities ----------------------------
    def _store(self, batch: dict, outputs: dict[str, torch.Tensor]) -> None:
        super()._store(batch, outputs)
        self._frames.append((batch["index"], frame_probabilities(outputs).flatten(1)))

    def _gathered_frames(self, part: str, count: int) -> dict[Path, np.ndarray]:
        """Each clip's ``(frames, classes)`` probabilities, by its path."""
        index = torch.cat([i for i, _ in self._frames]).to(self.device)
        rows = torch.cat([r for _, r in self._frames])
        self._frames = []
        gathered, seen = gather_by_index(self, index, rows, count)
        classes = int(self.data_info.num_classes)
        clips = self.trainer.datamodule.parts[part]
        return {
            clips[i].path: gathered[i].reshape(-1, classes).numpy()
            for i in np.flatnonzero(seen.numpy())
        }

    def _frame_seconds(self) -> float:
        """Seconds per frame output: the front-end's frame shift times the model's input frames
        per output frame."""
        return self.features.frame_shift_ms / 1000.0 * float(self.model.subsampling)

    @staticmethod
    def _reference(events: dict[Path, list], clips) -> dict[str, list[Event]]:
        return {
            str(path): [Event(e.onset, e.offset, e.label) for e in events[path]] for path in clips
        }

    def _durations(self, clips) -> dict[str, float]:
        """Seconds of audio scored in each clip: the file's length up to the clip length the data
        cuts to (PSDS's false positive rates are per hour of audio)."""
        limit = float(self.trainer.datamodule.clip_seconds)
        return {str(path): min(audio_duration(path), limit) for path in clips}

    def on_validation_epoch_end(self) -> None:
        """Clip metrics as tagging (the frames are scored at the test, with the tested weights)."""
        super().on_validation_epoch_end()
        self._frames = []

    def _validation_frames(self) -> dict[str, np.ndarray]:
        """The validation clips' frame probabilities from the weights being tested, by path."""
        datamodule = self.trainer.datamodule
        clips = datamodule.parts["val"]
        probabilities = {}
        for batch in datamodule.val_dataloader():
            out = self.outputs(batch["wave"].to(self.device), batch["length"].to(self.device))
            frames = frame_probabilities(out).cpu().numpy()
            for i, p in zip(batch["index"].tolist(), frames):
                probabilities[str(clips[i].path)] = p
        return probabilities

    def _tuned_decisions(self) -> dict:
        """The decisions chosen on the validation clips with the weights being tested: threshold
        and median filter with the best event-based macro F1, and each PSDS scenario's median
        filter (the defaults when the data has no validation clips)."""
        datamodule = self.trainer.datamodule
        clips = [c.path for c in datamodule.parts["val"]]
        if not clips:
            return {
                **DEFAULT_DECISIONS,
                "psds_median_frames": {name: 1 for name in PSDS_SCENARIOS},
                "from": "defaults (no validation clips)",
            }
        probabilities = self._validation_frames()
        reference = self._reference(datamodule.events["val"], clips)
        best = tune_decisions(
            probabilities,
            reference,
            self._frame_seconds(),
            self.labels,
            self.threshold_grid,
            self.median_grid,
        )
        decisions = {
            "threshold": best["threshold"],
            "median_frames": best["median_frames"],
            "from": f"tuned on the {len(clips)} validation clips",
            "validation_event_f1_macro": best["event_f1_macro"],
        }
        if self.psds_thresholds:
            by_scenario = tune_psds_median(
                probabilities,
                reference,
                self._durations(clips),
                self._frame_seconds(),
                self.labels,
                self.median_grid,
                self.psds_thresholds,
            )
            decisions["psds_median_frames"] = {
                name: b["median_frames"] for name, b in by_scenario.items()
            }
            decisions["validation_psds"] = {name: b["psds"] for name, b in by_scenario.items()}
        return decisions

    def _psds(self, probabilities, reference, whole_clip, decisions) -> tuple[dict, dict]:
        """PSDS1 / PSDS2 of the test clips (each scenario decoded with its own median filter) and
        of the whole-clip baseline (one operating point)."""
        durations = self._durations(reference)
        scores = {}
        for name, median in decisions["psds_median_frames"].items():
            scores[name] = psds_of_probabilities(
                probabilities,
                reference,
                durations,
                self._frame_seconds(),
                self.labels,
                median,
                self.psds_thresholds,
                {name: PSDS_SCENARIOS[name]},
            )[name]
        return scores, psds(reference, [whole_clip], durations, self.labels)

    def on_test_epoch_end(self) -> None:
        """Clip metrics as tagging, then event- and segment-based F1 of the detected events and of
        the whole-clip baseline."""
        count = len(self.trainer.test_dataloaders.dataset)
        super().on_test_epoch_end()
        name = self.trainer.datamodule.test_name
        probabilities = self._gathered_frames("test", count)
        frame_seconds = self._frame_seconds()
        decisions = self._tuned_decisions()
        detected = {
            str(p): frames_to_events(
                v, frame_seconds, self.labels, decisions["threshold"], decisions["median_frames"]
            )
            for p, v in probabilities.items()
        }
        reference = self._reference(self.trainer.datamodule.events["test"], probabilities)
        clip_seconds = float(self.trainer.datamodule.clip_seconds)
        whole_clip = {
            clip: [Event(0.0, clip_seconds, label) for label in sorted({e.label for e in events})]
            for clip, events in reference.items()
        }
        scores = sed_f1(reference, detected, self.labels)
        baseline = sed_f1(reference, whole_clip, self.labels)
        if self.psds_thresholds:
            detected_psds, baseline_psds = self._psds(
                {str(p): v for p, v in probabilities.items()}, reference, whole_clip, decisions
            )
            scores.update(detected_psds)
            baseline.update(baseline_psds)
        self.test_results[name].update(
            {
                **scores,
                "decisions": decisions,
                "frame_seconds": frame_seconds,
                "clip_seconds": clip_seconds,
                "whole_clip_baseline": baseline,
            }
        )
        self.test_events[name] = {"reference": reference, "detected": detected}
        self.log(f"test/{name}/event_f1_macro", scores["event_f1_macro"], sync_dist=False)

    def report(self, out_dir: Path, extra: dict[str, Any]) -> dict[str, Any]:
        """The tagging report with the event scores, per-class event F1 and timelines added."""
        content = super().report(out_dir, extra)
        write_sed_report(Path(out_dir), self.test_results, self.test_events, self.timelines)
        return content
