"""What every family's inference object shares: a trained task on a device, audio inputs given as
files or waveforms, batches, progress, and unreadable files skipped and counted when asked.

``sonolab.load(run)`` builds the family's subclass (the task's ``inference`` declaration); the
subclasses add the family's verbs (``embed`` / ``score``, ``diarize``, ``tag``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch

from ..data.audio import AUDIO_EXTENSIONS, load_audio
from ..data.skips import SkipLog
from ..utils.errors import ConfigValueError, DataFormatError, IncompatibleConfigError
from ..utils.progress import progress

log = logging.getLogger(__name__)

# what an audio input may be: a file, or a mono waveform at the run's sample rate
AudioInput = str | Path | np.ndarray | torch.Tensor
ON_ERROR = ("raise", "skip")


def resolve_device(device: str | torch.device | None) -> torch.device:
    """``auto`` / None: the first GPU when there is one, else the CPU; otherwise as given."""
    if device in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


@dataclass
class LoadedAudio:
    """One input read: its position among the inputs, its key (the path, or ``#<index>`` for a
    waveform) and the mono waveform at the run's sample rate."""

    index: int
    key: str
    wave: torch.Tensor


class InferenceModel:
    """A trained run ready for inference: its task in eval mode on ``device``.

    Attributes:
        run_dir: the training run folder.
        checkpoint: the checkpoint file the weights came from.
        task: the trained :class:`~sonolab.tasks.base.Task`.
        device: where the model runs.
        sample_rate: the rate waveform inputs must have (files are resampled to it).
        skipped: what the last call left out with ``on_error="skip"`` (reason -> count, examples).
    """

    #: a tqdm bar is shown over at least this many inputs (and only on a terminal)
    progress_min_items: ClassVar[int] = 8

    def __init__(self, task, run_dir: str | Path, checkpoint: str | Path, device="auto"):
        self.run_dir = Path(run_dir)
        self.checkpoint = Path(checkpoint)
        self.device = resolve_device(device)
        self.task = task.to(self.device).eval()
        self.sample_rate = int(task.data_info.sample_rate)
        self.skipped = SkipLog()

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(run_dir={str(self.run_dir)!r}, "
            f"checkpoint={self.checkpoint.name!r}, device={str(self.device)!r})"
        )

    # -- inputs ----------------------------------------------------------------------------------
    def read(self, item: AudioInput) -> torch.Tensor:
        """One input as a mono float32 waveform at :attr:`sample_rate`: a file is read (and
        resampled); an array or tensor ``(samples,)`` is taken as already at that rate."""
        if isinstance(item, (str, Path)):
            return load_audio(item, self.sample_rate)
        wave = torch.as_tensor(np.asarray(item) if not torch.is_tensor(item) else item)
        if wave.dim() != 1 or not wave.is_floating_point() or wave.numel() == 0:
            raise ConfigValueError(
                "waveform",
                f"a non-empty 1-D float array of samples at {self.sample_rate} Hz",
                f"shape {tuple(wave.shape)}, dtype {wave.dtype}",
            )
        return wave.float()

    @staticmethod
    def key(item: AudioInput, index: int) -> str:
        """How an input is named in results: its path, or ``#<index>`` for a waveform."""
        return str(item) if isinstance(item, (str, Path)) else f"#{index}"

    def each(
        self, items: Sequence[Any], work: Callable[[Any], Any], on_error: str, desc: str
    ) -> Iterator[tuple[int, str, Any]]:
        """``(index, key, work(item))`` for each input in order, with a progress bar over many.
        With ``on_error="skip"`` an input whose file cannot be read (a ``DataFormatError`` or
        ``OSError`` naming it) is left out and counted in :attr:`skipped`; with ``"raise"`` that
        error stops the call."""
        if on_error not in ON_ERROR:
            raise ConfigValueError("on_error", " or ".join(ON_ERROR), on_error)
        self.skipped = SkipLog()
        for index, item in enumerate(self.progress(items, desc)):
            try:
                result = work(item)
            except (DataFormatError, OSError) as err:
                if on_error == "raise":
                    raise
                self.skipped.add(f"unreadable audio ({type(err).__name__})", f"{item}: {err}")
                continue
            yield index, self.key(item, index), result

    def loaded(
        self, items: Sequence[AudioInput], on_error: str = "raise", desc: str = "reading"
    ) -> Iterator[LoadedAudio]:
        """The inputs read one by one (:meth:`each` over :meth:`read`)."""
        for index, key, wave in self.each(items, self.read, on_error, desc):
            yield LoadedAudio(index, key, wave)

    def progress(self, items: Sequence, desc: str) -> Iterable:
        """``items`` with a progress bar when there are many and stderr is a terminal."""
        return progress(items, desc, min_items=self.progress_min_items)

    def report_skipped(self, context: str) -> None:
        """Log what the last call skipped, one line per reason."""
        self.skipped.report(log, context)


def batches(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    """Consecutive lists of ``size`` items (the last may be shorter)."""
    if size < 1:
        raise ConfigValueError("batch_size", "a positive number", size)
    batch: list[Any] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def audio_inputs(wavs: Path) -> tuple[Path, list[str]]:
    """The audio inputs of an inference command: the folder the keys are relative to and the keys
    (the audio files under a folder, searched recursively, hidden entries ignored; or a list
    file's lines, relative to its folder)."""
    if wavs.is_dir():
        files = sorted(
            p.relative_to(wavs).as_posix()
            for p in wavs.rglob("*")
            if p.is_file()
            and p.suffix.lower().lstrip(".") in AUDIO_EXTENSIONS
            and not any(part.startswith(".") for part in p.relative_to(wavs).parts)
        )
        if not files:
            raise DataFormatError(
                wavs, f"audio files ({', '.join(AUDIO_EXTENSIONS)}) in the folder", found="none"
            )
        return wavs, files
    if not wavs.is_file():
        raise DataFormatError(
            wavs, "a folder of audio files or a list file (wavs=)", found="no such file or folder"
        )
    lines = [
        (n, line.strip()) for n, line in enumerate(wavs.read_text().splitlines(), 1) if line.strip()
    ]
    for n, line in lines:
        if not (wavs.parent / line).is_file():
            raise DataFormatError(
                wavs, f"an existing audio file on every line (line {n})", found=line
            )
    if not lines:
        raise DataFormatError(wavs, "one audio path per line", found="an empty list")
    return wavs.parent, [line for _, line in lines]


# options every inference command takes (sonolab embed / score / diarize / tag), with defaults
COMMAND_OPTIONS = {"run_dir": None, "ckpt_path": None, "device": "auto", "on_error": "skip"}
COMMAND_OPTIONS_HELP = """run_dir       the trained run folder (or a checkpoint inside one)
      ckpt_path     best (the run's recorded checkpoint) | last | a file
      device        auto | cpu | cuda | cuda:1 ...
      on_error      skip (an unreadable file is named and counted) | raise"""


def command_model(args: dict[str, Any], engine: type[InferenceModel], command: str):
    """The inference object of ``run_dir`` for a command that needs an ``engine`` (a run of
    another family is refused, naming it)."""
    from ..api import load  # the API builds on this module

    if not args.get("run_dir"):
        raise ConfigValueError("run_dir", f"a trained run folder for sonolab {command}", None)
    model = load(args["run_dir"], args["device"], args["ckpt_path"])
    if not isinstance(model, engine):
        raise IncompatibleConfigError(
            f"{args['run_dir']} is a {type(model.task).__name__} run: sonolab {command} needs "
            f"one whose inference is {engine.__name__}"
        )
    return model


def command_inputs(
    inputs: list[str], given: str | None, command: str
) -> tuple[Path, dict[str, str]]:
    """The one folder or list file a command reads (given as its input or as ``wavs=``), as
    :func:`audio_inputs`: its root and ``{path: key}`` for each file, the path as the inference
    objects report it (their ``key``) and the key as the command's outputs name the file."""
    sources = ([given] if given else []) + inputs
    if len(sources) != 1:
        raise ConfigValueError(
            "inputs",
            f"one folder or list file of audio for sonolab {command}",
            " ".join(sources) or "none",
        )
    root, keys = audio_inputs(Path(sources[0]))
    return root, {str(root / key): key for key in keys}


def report_counts(model: InferenceModel, done: int, what: str, command: str) -> None:
    """Print how many inputs were processed and how many skipped (logged with examples)."""
    model.report_skipped(f"sonolab {command}")
    print(f"{done} files {what}, {sum(model.skipped.counts.values())} skipped")
