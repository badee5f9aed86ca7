"""The Python API: ``sonolab.load(<run folder or checkpoint>)`` gives a trained run's inference
object, the family's own (verification: ``embed`` / ``score``; diarization: ``diarize``; tagging:
``tag``), as the run's task declares it (``Task.inference``).

>>> import sonolab
>>> model = sonolab.load("logs/train/runs/<run id>")        # doctest: +SKIP
>>> model.score("a.wav", "b.wav")                            # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path

from .checkpoints import checkpoint_for_run, load_trained_task
from .config import task_class
from .inference.base import InferenceModel
from .run import _run_config
from .utils.errors import DataFormatError, IncompatibleConfigError
from .utils.targets import declared_class


def run_folder(source: str | Path) -> tuple[Path, str | None]:
    """The training run folder of ``source`` and the checkpoint it names: a run folder (its
    recorded checkpoint: None), or a checkpoint file inside one (``<run>/checkpoints/x.ckpt``)."""
    source = Path(source)
    if source.is_dir():
        return source, None
    if source.is_file() and source.parent.name == "checkpoints":
        return source.parent.parent, str(source)
    raise DataFormatError(
        source,
        "a training run folder (logs/train/runs/<run id>) or a checkpoint inside one "
        "(<run>/checkpoints/<name>.ckpt)",
        found="no such folder" if not source.exists() else "a file outside a run's checkpoints/",
    )


def load(source: str | Path, device: str = "auto", ckpt_path: str | None = None) -> InferenceModel:
    """The inference object of a trained run.

    Args:
        source: a training run folder, or a checkpoint file inside one.
        device: ``auto`` (the first GPU when there is one, else the CPU), ``cpu``, ``cuda:1``, ...
        ckpt_path: with a run folder, which checkpoint: None / ``best`` (the one its metrics.json
            records), ``last``, or a file.
    """
    run_dir, named = run_folder(source)
    cls = task_class(_run_config(run_dir))
    if cls.inference is None:
        raise IncompatibleConfigError(
            f"{run_dir} is a {cls.__name__} run, whose family declares no inference object"
        )
    engine = declared_class(cls.inference, InferenceModel, f"{cls.__name__}.inference")
    path, _ = checkpoint_for_run(run_dir, named or ckpt_path)
    task = load_trained_task(run_dir, cls, engine.__name__, str(path))
    return engine(task, run_dir, path, device)
