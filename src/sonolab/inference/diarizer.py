"""Diarization runs as a Python object: the turns of any recording as a
``pyannote.core.Annotation`` (what ``sonolab.load`` gives for an EEND-EDA or clustering-pipeline
run)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from pyannote.core import Annotation

from ..data.audio import audio_duration
from ..report.diarization import write_turns
from .base import (
    COMMAND_OPTIONS,
    COMMAND_OPTIONS_HELP,
    InferenceModel,
    command_inputs,
    command_model,
    report_counts,
)


def uri_of(path: str | Path) -> str:
    """A recording's URI: its file name without the extension (as the recording sets name it)."""
    return Path(path).name.rsplit(".", 1)[0]


class Diarizer(InferenceModel):
    """A trained diarization run: ``diarize`` recordings (files).

    Decodes as the run's test did: the threshold and median filter (EEND-EDA) or the clustering
    parameters (pipeline) that it tuned on its validation recordings, read from the run's
    ``metrics.json``.
    """

    def __init__(self, task, run_dir, checkpoint, device="auto"):
        super().__init__(task, run_dir, checkpoint, device)
        metrics = Path(run_dir) / "metrics.json"
        if metrics.is_file():
            task.restore_tuning(json.loads(metrics.read_text()))

    def diarize(
        self,
        path: str | Path,
        num_speakers: int | None = None,
        min_speakers: int | None = None,
        max_speakers: int | None = None,
    ) -> Annotation:
        """The turns of one recording (URI: its file name without extension), speakers labelled
        ``spk00``, ...; ``num_speakers`` fixes the count, ``min_speakers`` / ``max_speakers``
        bound the estimated one."""
        audio_duration(path)  # a file that cannot be opened is named before any model runs
        return self.task.diarize_file(path, uri_of(path), num_speakers, min_speakers, max_speakers)

    def diarize_many(
        self, paths: Sequence[str | Path], on_error: str = "raise", **count
    ) -> dict[str, Annotation]:
        """``{uri: turns}`` of several recordings (``count``: :meth:`diarize`'s speaker-count
        arguments); ``on_error="skip"`` leaves unreadable files out (counted in
        :attr:`skipped`)."""
        turns = self.each(list(paths), lambda p: self.diarize(p, **count), on_error, "diarize")
        return {uri_of(key): annotation for _, key, annotation in turns}


def diarize_command(argv: list[str]) -> int:
    """Diarize recordings: sonolab diarize <folder|list> run_dir=<diarization run>

    Writes <out>/rttm/<uri>.rttm (the URI is the file name without extension) and
    <out>/timelines/<uri>.png for every recording, decoded as the run's test was (its tuned
    threshold / parameters). Options (key=value):
      {common}
      out            where to write (default ./diarization)
      num_speakers   the number of speakers in every recording (null: estimated)
      min_speakers   a lower bound on the estimated count
      max_speakers   an upper bound on the estimated count
    """
    from ..cli import key_values  # the command line builds on the inference objects

    counts = ("num_speakers", "min_speakers", "max_speakers")
    inputs, args = key_values(
        argv,
        diarize_command,
        {**COMMAND_OPTIONS, "wavs": None, "out": "diarization", **dict.fromkeys(counts)},
        positional="audio",
    )
    diarizer = command_model(args, Diarizer, "diarize")
    _, files = command_inputs(inputs, args["wavs"], "diarize")
    turns = diarizer.diarize_many(
        list(files),
        args["on_error"],
        **{k: None if args[k] is None else int(args[k]) for k in counts},
    )
    out = Path(args["out"])
    write_turns(out / "rttm", out / "timelines", turns)
    print(out / "rttm")
    report_counts(diarizer, len(turns), "diarized", "diarize")
    return 0


diarize_command.__doc__ = diarize_command.__doc__.format(common=COMMAND_OPTIONS_HELP)
