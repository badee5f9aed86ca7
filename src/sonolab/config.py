"""Start-up checks on the composed config: incompatible choices fail before any data is read."""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path

from hydra.utils import get_class
from omegaconf import DictConfig, OmegaConf

from .search import metric_direction
from .utils.errors import IncompatibleConfigError

_RUN_ID: str | None = None


def run_id() -> str:
    """This process's run-folder name: ``YYYY-mm-dd_HH-MM-SS.mmm_<6 hex>``, the same on every call.

    Hydra's ``${now:...}`` alone gives two runs started in the same second one folder, so one
    run's config, metrics and checkpoints overwrite the other's. The random suffix makes the name
    unique; computing it once per process keeps the run dir, the sweep dir and every later
    resolution of them in agreement (Lightning's DDP workers are given the resolved folder).
    Names still sort by start time.
    """
    global _RUN_ID
    if _RUN_ID is None:
        now = datetime.now()
        _RUN_ID = f"{now:%Y-%m-%d_%H-%M-%S}.{now.microsecond // 1000:03d}_{os.urandom(3).hex()}"
    return _RUN_ID


if not OmegaConf.has_resolver("run_id"):
    # cached: Hydra copies a sweep's resolver cache into every job's config, so jobs that a launcher
    # runs in other processes (joblib, submitit) resolve the parent's sweep folder instead of naming
    # their own
    OmegaConf.register_new_resolver("run_id", run_id, use_cache=True)
if not OmegaConf.has_resolver(
    "metric_direction"
):  # hparams_search configs: the sweeper's direction
    OmegaConf.register_new_resolver("metric_direction", metric_direction)


def _choice(group: str) -> str:
    """The option picked for ``group`` (``model=ecapa_small``), or the group name outside Hydra."""
    try:
        from hydra.core.hydra_config import HydraConfig

        return str(HydraConfig.get().runtime.choices.get(group, group))
    except ValueError:  # not running under @hydra.main
        return group


def _options(config_dir: Path, group: str, accept) -> list[str]:
    """Options of a config group whose ``_target_`` class passes ``accept``."""
    names = []
    for file in sorted((config_dir / group).glob("*.yaml")):
        target = OmegaConf.load(file).get("_target_")
        if target:
            try:
                if accept(get_class(target)):
                    names.append(file.stem)
            except (ImportError, AttributeError):
                continue
    return names


def check_compatibility(
    cfg: DictConfig, config_dir: str | Path, cohort_key: str = "data.cohort_utts_per_speaker"
) -> None:
    """The task must accept the model's output type, the loss's family and the scoring's needs.

    ``cohort_key`` is how the calling command spells the cohort setting in its hint (evaluate.py
    takes ``cohort_utts_per_speaker=`` at its top level).
    """
    config_dir = Path(config_dir)
    task_cls = get_class(cfg.task._target_)
    model_cls = get_class(cfg.model._target_)
    loss_cls = get_class(cfg.loss._target_)
    outputs = tuple(getattr(task_cls, "model_outputs", ()))
    family = getattr(task_cls, "family", None)
    model_out = getattr(model_cls, "output_type", None)
    if model_out not in outputs:
        valid = _options(config_dir, "model", lambda c: getattr(c, "output_type", None) in outputs)
        raise IncompatibleConfigError(
            f"model={_choice('model')} ({model_cls.__name__}) outputs {model_out!r} but "
            f"task={_choice('task')} "
            f"({family}) needs {'/'.join(outputs)}; valid choices: model={'|'.join(valid)}"
        )
    loss_family = getattr(loss_cls, "task_family", None)
    if loss_family != family:
        valid = _options(config_dir, "loss", lambda c: getattr(c, "task_family", None) == family)
        raise IncompatibleConfigError(
            f"loss={_choice('loss')} ({loss_cls.__name__}) is a {loss_family} loss but "
            f"task={_choice('task')} "
            f"is {family}; valid choices: loss={'|'.join(valid)}"
        )
    scoring = cfg.task.get("scoring") or {}
    if (scoring.get("mean_subtraction") or scoring.get("as_norm")) and not cfg.data.get(
        "cohort_utts_per_speaker"
    ):
        raise IncompatibleConfigError(
            "task.scoring.mean_subtraction / as_norm need a cohort of training embeddings: "
            f"set {cohort_key} to a positive number (e.g. {cohort_key}=2)"
        )
