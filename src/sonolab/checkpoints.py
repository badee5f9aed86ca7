"""Checkpoint files: atomic saving, loading with errors that say what the file is, and which one a
run means.

Shared by every task family: train.py (resume), evaluate.py (scoring a run) and Lightning itself
(through :class:`AtomicCheckpointIO`, configured in ``configs/trainer/default.yaml``).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import pickle
import re
import zipfile
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.plugins.io import TorchCheckpointIO
from torch import nn

from .models.base import count_parameters
from .utils.errors import DataFormatError, IncompatibleConfigError
from .utils.io import atomic_file

log = logging.getLogger(__name__)

EXPECTED = "a checkpoint written by sonolab's train.py (Lightning, with hyper_parameters.data_info)"


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning checkpoint I/O that never leaves a half-written file at the final path.

    Lightning writes through an fsspec transaction whose temporary file may sit on another
    filesystem (then the final move is a copy that a kill can cut short). Here the checkpoint is
    written to a hidden temporary file in the same folder, flushed to disk, and renamed over the
    target, which is atomic on POSIX filesystems: a reader sees the old file or the new one.
    Loading goes through :func:`load_checkpoint`, so a corrupt file is named in plain words.
    """

    def save_checkpoint(
        self, checkpoint: dict[str, Any], path, storage_options: Any | None = None
    ) -> None:
        """Write ``checkpoint`` to ``path`` atomically (remote filesystems: Lightning's own way)."""
        if storage_options is not None or "://" in str(path):
            return super().save_checkpoint(checkpoint, path, storage_options)
        with atomic_file(path, "wb") as out:
            torch.save(checkpoint, out)

    def load_checkpoint(
        self, path, map_location=lambda storage, loc: storage, weights_only: bool | None = None
    ):
        """Load through :func:`load_checkpoint` (clear errors for missing, empty or corrupt
        files)."""
        if "://" in str(path):
            return super().load_checkpoint(path, map_location, weights_only)
        return load_checkpoint(path, map_location=map_location, weights_only=bool(weights_only))


def load_checkpoint(
    path: str | Path,
    map_location: Any = "cpu",
    weights_only: bool = False,
    require_lightning: bool = True,
) -> dict[str, Any]:
    """The checkpoint dict in ``path``; DataFormatError naming the file and what it is otherwise.

    Catches what torch.load would raise raw: a missing or empty file, a truncated zip archive, an
    unpickling error, a file that is not a checkpoint at all, and (with ``require_lightning``) a
    plain ``state_dict`` or another framework's checkpoint where sonolab's is expected.
    """
    path = Path(path)
    if not path.is_file():
        raise DataFormatError(path, EXPECTED, found="no such file")
    size = path.stat().st_size
    if size == 0:
        raise DataFormatError(path, EXPECTED, found="an empty file (0 bytes)")
    try:
        checkpoint = torch.load(path, map_location=map_location, weights_only=weights_only)
    except (
        RuntimeError,
        EOFError,
        pickle.UnpicklingError,
        zipfile.BadZipFile,
        ValueError,
        AttributeError,
        ModuleNotFoundError,
    ) as err:
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        with path.open("rb") as head:
            zipped = head.read(2) == b"PK"  # torch.save's format is a zip archive
        if zipped and not zipfile.is_zipfile(path):
            reason = f"a truncated zip archive ({size} bytes): {reason}"
        raise DataFormatError(
            path,
            EXPECTED,
            found=f"a file torch.load cannot read ({reason}); "
            "it may be truncated by an interrupted copy or save",
        ) from err
    if not require_lightning:
        return checkpoint
    if not isinstance(checkpoint, dict):
        raise DataFormatError(path, EXPECTED, found=f"a pickled {type(checkpoint).__name__}")
    if "state_dict" not in checkpoint:
        tensors = [k for k, v in checkpoint.items() if isinstance(v, torch.Tensor)]
        found = (
            f"a plain state_dict of {len(tensors)} tensors (e.g. {tensors[0]!r}); load such "
            "weights into the "
            "model yourself"
            if tensors and len(tensors) == len(checkpoint)
            else f"a dict with keys {sorted(map(str, checkpoint))[:8]}"
        )
        raise DataFormatError(path, EXPECTED, found=found)
    if "data_info" not in (checkpoint.get("hyper_parameters") or {}):
        raise DataFormatError(
            path,
            EXPECTED,
            found="a Lightning checkpoint without hyper_parameters.data_info "
            "(not saved by a sonolab task)",
        )
    return checkpoint


def resumed_epoch(checkpoint: dict[str, Any]) -> int:
    """The training epoch a Lightning checkpoint resumes into (0-based): the epochs whose training
    steps it holds, as Lightning's fit loop counts them (``epoch_progress.current.processed``)."""
    try:
        return int(checkpoint["loops"]["fit_loop"]["epoch_progress"]["current"]["processed"])
    except (KeyError, TypeError):
        return int(checkpoint.get("epoch", -1)) + 1


def describe_model(model: nn.Module) -> dict[str, Any]:
    """What a checkpoint records of its model so a mismatch can be named: class and parameter
    count."""
    return {
        "class": f"{type(model).__module__}.{type(model).__qualname__}",
        "parameters": count_parameters(model),
    }


def _model_summary(info: dict[str, Any]) -> str:
    return f"{info['class'].rsplit('.', 1)[-1]} ({info['parameters']:,} parameters)"


def check_checkpoint_family(checkpoint: dict[str, Any], path: str | Path, task_cls: type) -> None:
    """DataFormatError naming ``path`` when it was saved by another family's task than
    ``task_cls`` (the config's), read from what the checkpoint records (its task class, or for
    older files its data info and model) before anything is built from it."""
    hparams = checkpoint.get("hyper_parameters") or {}
    recorded = str(hparams.get("task_class") or "")
    info = hparams.get("data_info") or {}
    if recorded:
        fits = recorded.rsplit(".", 1)[-1] == task_cls.__name__
        saved_by = f"a {recorded.rsplit('.', 1)[-1]} run"
    else:  # saved before the task class was recorded: its data info must hold what ours reads
        # and nothing another family's does
        fields = dataclasses.fields(task_cls.info_type)
        needed = {
            f.name
            for f in fields
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        }
        fits = needed <= set(info) <= {f.name for f in fields}
        saved_by = "a run of another family"
    if fits:
        return
    model = hparams.get("model_info")
    raise DataFormatError(
        path,
        f"a checkpoint of a {task_cls.__name__} run (the task this config builds)",
        found=f"a checkpoint of {saved_by}"
        + (f" with {_model_summary(model)}" if model else "")
        + f" and data info {{{', '.join(sorted(info))}}}",
        hint="give a run folder or checkpoint of this family, or the experiment= / task= of "
        "the run that saved it",
    )


def check_task_state(task: nn.Module, checkpoint: dict[str, Any], path: str | Path) -> None:
    """DataFormatError naming ``path`` when its weights do not fit ``task`` (see
    :func:`state_mismatch`)."""
    problem = state_mismatch(task, checkpoint)
    if problem:
        raise DataFormatError(
            path,
            "weights of the model the config builds",
            found=problem,
            hint="the model= and model.* options must be those of the run that saved it",
        )


def load_task_state(task: nn.Module, checkpoint: dict[str, Any], path: str | Path) -> None:
    """Load the checkpoint's weights into ``task``; a model of another class or size is named, not
    dumped."""
    check_task_state(task, checkpoint, path)
    task.load_state_dict(checkpoint["state_dict"])
    if isinstance(task, L.LightningModule):  # what a task keeps beside its weights (its hook)
        task.on_load_checkpoint(checkpoint)


def state_mismatch(task: nn.Module, checkpoint: dict[str, Any]) -> str | None:
    """Why ``checkpoint`` does not fit ``task`` (model recorded vs built, a few differing keys), or
    None."""
    ours = task.state_dict()
    theirs = checkpoint["state_dict"]
    missing = [k for k in ours if k not in theirs]
    unexpected = [k for k in theirs if k not in ours]
    shapes = [
        f"{k}: {tuple(theirs[k].shape)} in the file, {tuple(ours[k].shape)} in the model"
        for k in ours
        if k in theirs and tuple(theirs[k].shape) != tuple(ours[k].shape)
    ]
    if not (missing or unexpected or shapes):
        return None
    recorded = (checkpoint.get("hyper_parameters") or {}).get("model_info")
    built = getattr(task, "model", None)
    parts = []
    if recorded and built is not None:
        parts.append(
            f"the file holds {_model_summary(recorded)} but the config builds "
            f"{_model_summary(describe_model(built))}"
        )
    parts.append(
        f"{len(missing)} missing, {len(unexpected)} unexpected and {len(shapes)} differently "
        "shaped tensors"
    )
    if shapes:
        parts.append("e.g. " + shapes[0])
    elif missing or unexpected:
        parts.append(
            "e.g. " + (f"missing {missing[0]}" if missing else f"unexpected {unexpected[0]}")
        )
    return "; ".join(parts)


def checkpoint_for_run(run_dir: str | Path, choice: str | None = None) -> tuple[Path, str]:
    """The checkpoint of a training run folder to score, and why it is that one.

    ``choice``: None or ``best`` = the checkpoint recorded in the run's metrics.json (the best by
    the monitored metric, or the last epoch when nothing was monitored); ``last`` = its
    ``checkpoints/last.ckpt``; anything else is a path. A recorded path is looked up relative to
    the run folder (older runs recorded absolute paths: those are matched by file name inside the
    run's ``checkpoints/``, so a moved run folder still scores its own best checkpoint). A recorded
    checkpoint that cannot be found is an error: nothing else is scored in its place.
    """
    run_dir = Path(run_dir)
    if choice not in (None, "best", "last"):
        path = Path(choice)
        return path, "given by ckpt_path"
    if choice == "last":
        return (
            run_dir / "checkpoints" / "last.ckpt",
            "ckpt_path=last: the run's checkpoints/last.ckpt",
        )
    metrics = run_dir / "metrics.json"
    recorded = reason = None
    if metrics.is_file():
        try:
            content = json.loads(metrics.read_text())
        except ValueError as err:
            raise DataFormatError(metrics, "the JSON written by train.py", found=str(err)) from err
        recorded = content.get("checkpoint")
        reason = content.get("checkpoint_reason", "recorded in metrics.json")
    if not recorded:
        last = run_dir / "checkpoints" / "last.ckpt"
        if choice == "best" or not last.is_file():
            raise DataFormatError(
                run_dir,
                "a metrics.json recording the run's checkpoint (or ckpt_path=<file>)",
                found="none recorded" + ("" if last.is_file() else " and no checkpoints/last.ckpt"),
            )
        return last, "no checkpoint recorded in metrics.json: the run's checkpoints/last.ckpt"
    recorded_path = Path(recorded)
    candidates = (
        [run_dir / recorded_path]
        if not recorded_path.is_absolute()
        else [run_dir / "checkpoints" / recorded_path.name, recorded_path]
    )
    for candidate in candidates:
        if candidate.is_file():
            return candidate, f"{reason}, from {metrics.name}"
    raise DataFormatError(
        metrics,
        f"the recorded checkpoint {recorded} ({reason}) in {run_dir / 'checkpoints'}",
        found="no such file; give ckpt_path=<file> or ckpt_path=last to score another one",
    )


def epoch_checkpoints(run_dir: str | Path) -> list[Path]:
    """The run's per-epoch checkpoints (``checkpoints/epochNNN.ckpt``) in epoch order."""
    found = []
    for path in (Path(run_dir) / "checkpoints").glob("epoch*.ckpt"):
        match = re.fullmatch(r"epoch(\d+)", path.stem)
        if match:
            found.append((int(match.group(1)), path))
    return [path for _, path in sorted(found)]


def average_checkpoints(paths: list[Path]) -> dict[str, Any]:
    """One checkpoint whose weights are the equal-weight average of ``paths``' (WeSpeaker's
    ``average_model.py``): floating-point tensors averaged, the others (BatchNorm's batch counters)
    taken from the last file, as are the hyper-parameters; a file of another model is named."""
    if not paths:
        raise ValueError("no checkpoints to average")
    total = None
    for path in paths:
        checkpoint = load_checkpoint(path)
        state = checkpoint["state_dict"]
        if total is None:
            total = {k: v.double() if v.is_floating_point() else v for k, v in state.items()}
            continue
        if set(state) != set(total):
            raise DataFormatError(
                path,
                f"the same weights as {paths[0].name} (to average them)",
                found=f"{len(set(state) ^ set(total))} differing keys",
            )
        for key, value in state.items():
            total[key] = total[key] + value.double() if value.is_floating_point() else value
    reference = checkpoint["state_dict"]
    checkpoint["state_dict"] = {
        k: (v / len(paths)).to(reference[k].dtype) if reference[k].is_floating_point() else v
        for k, v in total.items()
    }
    return checkpoint


def load_trained_task(
    run_dir: str | Path, task_class: type, purpose: str, ckpt_path: str | None = None
):
    """The trained task of a run folder (its recorded checkpoint, or ``ckpt_path``: best / last /
    a file), in eval mode; a run whose task is no ``task_class`` is refused, naming ``purpose``."""
    from .config import task_class as config_task_class
    from .run import _run_config, build_task  # run.py imports this module

    run_dir = Path(run_dir)
    path, reason = checkpoint_for_run(run_dir, ckpt_path)
    checkpoint = load_checkpoint(path)
    run_cfg = _run_config(run_dir)
    check_checkpoint_family(checkpoint, path, config_task_class(run_cfg))
    task = build_task(run_cfg, checkpoint["hyper_parameters"]["data_info"])
    if not isinstance(task, task_class):
        raise IncompatibleConfigError(
            f"{run_dir} is a {type(task).__name__} run: {purpose} come from "
            f"{task_class.__name__} runs"
        )
    load_task_state(task, checkpoint, path)
    log.info("%s from %s (%s)", purpose, path, reason)
    return task.eval()
