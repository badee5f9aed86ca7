"""An EEND-EDA run's frame activities inside the clustering pipeline: as its speech detector
(frames where any of its speakers talks), and for the second speaker in overlapped speech, where
one label per frame is all that clustering windows can give.

The overlap assignment follows the EEND-as-post-processing idea (Horiguchi et al., "End-to-end
speaker diarization as post-processing", ICASSP 2021) in its simplest form: each EEND speaker is
matched to the cluster it shares the most active frames with (Hungarian), and wherever EEND finds
two or more speakers at once, the matched clusters of all of them are active there.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from pyannote.core import Annotation, Timeline
from scipy.optimize import linear_sum_assignment

from ..checkpoints import load_trained_task
from .diarization import activities_to_annotation, binarize, diarize_recording, frames_touching


@dataclass
class FrameActivity:
    """``(frames, speakers)`` activity probabilities of one recording (frame ``t`` covering
    ``[t * step, (t + 1) * step)``) and how they are made binary."""

    probs: np.ndarray
    step: float
    threshold: float = 0.5
    median_frames: int = 1

    def active(self, threshold: float | None = None) -> np.ndarray:
        """``(frames, speakers)`` bool at ``threshold`` (None: :attr:`threshold`)."""
        chosen = self.threshold if threshold is None else threshold
        return binarize(self.probs, chosen, self.median_frames)

    def speech(self) -> Timeline:
        """Where any speaker is active."""
        speaking = self.active().any(axis=1).astype(np.float32)[:, None]
        return activities_to_annotation(speaking, self.step, "speech").get_timeline().support()


class EendActivity:
    """Activities of a trained EEND-EDA run (``run_dir``), decoded as that run decodes (its
    ``task.decoding``, with the threshold and median filter its test tuned on its development set
    when its metrics.json records them)."""

    def __init__(self, run_dir: str | Path, device: torch.device | str = "cpu"):
        from ..tasks.diarization import DiarizationTask  # tasks import the inference modules

        self.task = load_trained_task(run_dir, DiarizationTask, "speaker activities").to(device)
        self.device = torch.device(device)
        decoding = self.task.decoding
        metrics = Path(run_dir) / "metrics.json"
        if metrics.is_file():
            tuned = json.loads(metrics.read_text(encoding="utf-8")).get("decoding") or {}
            decoding.threshold = float(tuned.get("threshold", decoding.threshold))
            decoding.median_frames = int(tuned.get("median_frames", decoding.median_frames))
        self.decoding = decoding

    def __call__(self, path: str | Path) -> FrameActivity:
        """The recording's activities (its speaker count estimated by the run's model)."""
        probs, step = diarize_recording(
            self.task.model,
            self.task.features,
            path,
            self.task.sample_rate,
            self.decoding,
            device=self.device,
        )
        return FrameActivity(probs, step, self.decoding.threshold, self.decoding.median_frames)


def rasterize(annotation: Annotation, labels: list[str], frames: int, step: float) -> np.ndarray:
    """``(frames, len(labels))`` bool: frames that overlap each label's turns."""
    out = np.zeros((frames, len(labels)), dtype=bool)
    for k, label in enumerate(labels):
        out[:, k] = frames_touching(annotation.label_timeline(label), frames, step)
    return out


def assign_overlap(
    hypothesis: Annotation, eend: FrameActivity, threshold: float | None = None
) -> Annotation:
    """``hypothesis`` (one speaker per frame) with a second (third ...) speaker wherever the EEND
    activities at ``threshold`` (None: the run's) hold two or more: each EEND speaker takes the
    hypothesis label it shares the most frames with, and in those overlapped frames every active
    EEND speaker's label is active. Frames the hypothesis leaves silent stay silent."""
    labels = sorted(hypothesis.labels())
    if not labels or eend.probs.shape[1] < 2:
        return hypothesis
    found = rasterize(hypothesis, labels, eend.probs.shape[0], eend.step)
    shared = eend.active().T.astype(np.int64) @ found.astype(np.int64)  # (EEND speakers, labels)
    rows, cols = linear_sum_assignment(-shared)
    overlap = eend.active(threshold)
    overlapped = overlap.sum(axis=1) >= 2
    added = np.zeros_like(found)
    for k, label in zip(rows, cols):
        if shared[k, label] > 0:
            added[:, label] |= overlapped & overlap[:, k]
    # the hypothesis keeps its own (finer) turns; the additions stay inside its speech
    extra = activities_to_annotation(
        added.astype(np.float32), eend.step, hypothesis.uri, labels=labels
    ).crop(hypothesis.get_timeline().support(), mode="intersection")
    result = hypothesis.copy()
    result.update(extra)
    return result.support()
