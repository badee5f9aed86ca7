"""Audio tagging runs as a Python object: the top labels of files or waveforms, with clip scores
for every class and frame scores where the model has them (what ``sonolab.load`` gives for a
tagging run)."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from omegaconf import OmegaConf

from ..data.tagging import fill_clip
from ..utils.io import write_text_atomic
from .base import (
    COMMAND_OPTIONS,
    COMMAND_OPTIONS_HELP,
    AudioInput,
    InferenceModel,
    batches,
    command_inputs,
    command_model,
    report_counts,
)


@dataclass
class Tags:
    """One input's tags.

    Attributes:
        key: the path, or ``#<index>`` for a waveform.
        labels / scores: the ``top_k`` classes, best first, and their scores (probabilities:
            softmax for single-label runs such as ESC-50, sigmoid for multi-label ones such as
            AudioSet).
        clip_scores: ``(classes,)`` scores of every class (the run's label order).
        frame_scores: ``(frames, classes)`` for models with frame-level outputs (HTS-AT), else
            None; frame ``t`` covers ``[t, t + 1) * frame_seconds``.
        frame_seconds: the frames' step in seconds (None without frame scores).
    """

    key: str
    labels: list[str]
    scores: list[float]
    clip_scores: np.ndarray
    frame_scores: np.ndarray | None = None
    frame_seconds: float | None = None


class Tagger(InferenceModel):
    """A trained tagging run: ``tag`` files or waveforms.

    The model was trained on clips of the run's ``data.clip_seconds``; a longer input is cut into
    consecutive windows of that length (the last one ending with the input, overlapping the one
    before), a shorter one is filled as training fills a short clip (zeros or repeats), and a
    class's clip score is its highest over the windows (a sound present anywhere).
    """

    def __init__(self, task, run_dir, checkpoint, device="auto"):
        super().__init__(task, run_dir, checkpoint, device)
        data = OmegaConf.load(Path(run_dir) / ".hydra" / "config.yaml").data
        self.clip_seconds = float(data.clip_seconds)
        self.pad_mode = str(data.get("pad_mode", "zero"))
        self.window = int(round(self.clip_seconds * self.sample_rate))
        self.labels = list(task.data_info.labels)
        self.multi_label = bool(task.data_info.multi_label)

    def _windows(self, wave: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, int]:
        """``(windows, window samples)`` of one waveform, each window's valid samples, and how many
        samples the last window shares with the one before it.

        Consecutive windows of the clip length; a remainder is covered by a last window that ends
        with the input (overlapping the one before), not by a mostly-padded one, whose scores
        would be those of silence. An input shorter than one window is filled as training fills a
        short clip (``data.pad_mode``: zeros, or the input repeated)."""
        n, size = wave.numel(), self.window
        if n <= size:
            padded, valid = fill_clip(wave, size, self.pad_mode)
            return padded[None], torch.tensor([valid]), 0
        starts = list(range(0, n - size + 1, size))
        overlap = 0
        if starts[-1] + size < n:
            overlap = starts[-1] + size - (n - size)
            starts.append(n - size)
        windows = torch.stack([wave[s : s + size] for s in starts])
        return windows, torch.full((len(starts),), size), overlap

    def _scores(self, logits: torch.Tensor) -> torch.Tensor:
        return logits.sigmoid() if self.multi_label else logits.softmax(dim=-1)

    @torch.inference_mode()
    def tag(
        self,
        items: AudioInput | Sequence[AudioInput],
        top_k: int = 5,
        batch_size: int = 8,
        on_error: str = "raise",
    ) -> list[Tags] | Tags:
        """Tags of each input (a single input: its :class:`Tags`); ``batch_size`` windows go
        through the model at once; ``on_error="skip"`` leaves unreadable files out (counted in
        :attr:`skipped`)."""
        single = isinstance(items, (str, Path, np.ndarray, torch.Tensor))
        results = []
        for audio in self.loaded([items] if single else list(items), on_error, "tag"):
            windows, lengths, overlap = self._windows(audio.wave)
            clip, frames = [], []
            for rows in batches(range(len(windows)), batch_size):
                feats, frame_count = self.task.features(
                    windows[rows].to(self.device), lengths[rows].to(self.device)
                )
                out = self.task.model(feats, frame_count)
                clip.append(self._scores(out["logits"].float()).cpu())
                if "frame_logits" in out:
                    frames.append(self._scores(out["frame_logits"].float()).cpu())
            scores = torch.cat(clip).amax(dim=0).numpy()
            best = np.argsort(-scores, kind="stable")[:top_k]
            frame_scores = frame_seconds = None
            if frames:
                per_window = torch.cat(frames)  # (windows, frames, classes)
                frame_seconds = self.clip_seconds / per_window.shape[1]
                # the last window's frames that the one before already covered are left out
                shared = int(round(overlap / self.window * per_window.shape[1]))
                joined = torch.cat([per_window[:-1].flatten(0, 1), per_window[-1, shared:]])
                valid = int(np.ceil(audio.wave.numel() / self.sample_rate / frame_seconds))
                frame_scores = joined[:valid].numpy()  # not a short input's padding
            results.append(
                Tags(
                    audio.key,
                    [self.labels[i] for i in best],
                    [float(scores[i]) for i in best],
                    scores,
                    frame_scores,
                    frame_seconds,
                )
            )
        return results[0] if single else results


def tag_command(argv: list[str]) -> int:
    """Tag audio clips: sonolab tag <folder|list> run_dir=<tagging run>

    Writes <out>/tags.csv (file, rank, label, score: the top_k labels of each file) and
    <out>/tags.json (the same with every class's clip score, and frame scores for models that
    have them when frames=true). Options (key=value):
      {common}
      out           where to write (default ./tags)
      top_k         labels per file (default 5)
      batch_size    clip windows per batch (default 8)
      frames        true: frame scores in tags.json (HTS-AT)
    """
    from ..cli import key_values  # the command line builds on the inference objects

    inputs, args = key_values(
        argv,
        tag_command,
        {
            **COMMAND_OPTIONS,
            "wavs": None,
            "out": "tags",
            "top_k": "5",
            "batch_size": "8",
            "frames": "false",
        },
        positional="audio",
    )
    tagger = command_model(args, Tagger, "tag")
    _, files = command_inputs(inputs, args["wavs"], "tag")
    tags = tagger.tag(list(files), int(args["top_k"]), int(args["batch_size"]), args["on_error"])
    out = Path(args["out"])
    out.mkdir(parents=True, exist_ok=True)
    table = io.StringIO()
    writer = csv.writer(table, lineterminator="\n")
    writer.writerow(["file", "rank", "label", "score"])
    for t in tags:
        for rank, (label, score) in enumerate(zip(t.labels, t.scores), 1):
            writer.writerow([files[t.key], rank, label, f"{score:.6f}"])
    write_text_atomic(out / "tags.csv", table.getvalue())
    frames = args["frames"].lower() == "true"
    listing = [
        {
            "file": files[t.key],
            "labels": t.labels,
            "scores": t.scores,
            "clip_scores": dict(zip(tagger.labels, t.clip_scores.round(6).tolist())),
            **(
                {"frame_seconds": t.frame_seconds, "frame_scores": t.frame_scores.tolist()}
                if frames and t.frame_scores is not None
                else {}
            ),
        }
        for t in tags
    ]
    write_text_atomic(out / "tags.json", json.dumps(listing, indent=1))
    print(out / "tags.csv")
    report_counts(tagger, len(tags), "tagged", "tag")
    return 0


tag_command.__doc__ = tag_command.__doc__.format(common=COMMAND_OPTIONS_HELP)
