"""Start-up checks on the composed config: incompatible choices fail before any data is read."""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path

from hydra.utils import get_class
from omegaconf import DictConfig, OmegaConf

from .search import metric_direction
from .tasks.base import Task, loss_input, model_output
from .utils.errors import IncompatibleConfigError
from .utils.targets import declared_class

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


def chosen(group: str) -> str:
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


def task_class(cfg: DictConfig) -> type[Task]:
    """The configured task class; an error naming ``task._target_`` when it is no sonolab Task."""
    return declared_class(cfg.task._target_, Task, "task._target_")


def check_compatibility(cfg: DictConfig, config_dir: str | Path, command: str = "train") -> None:
    """Start-up checks before any data is read: the task must accept the model's output type and
    the loss's prediction type (the error lists the options of each group that it accepts), then the
    task's own checks of the config (:meth:`Task.check_config`; ``command`` is ``train`` or
    ``evaluate``, whose arguments spell some keys differently)."""
    config_dir = Path(config_dir)
    task_cls = task_class(cfg)
    model_cls = get_class(cfg.model._target_)
    # a task that trains nothing (a pipeline) takes loss=none
    loss_cls = get_class(cfg.loss._target_) if cfg.get("loss") else type(None)
    if model_output(model_cls) not in task_cls.model_outputs:
        valid = _options(config_dir, "model", lambda c: model_output(c) in task_cls.model_outputs)
        raise IncompatibleConfigError(
            f"model={chosen('model')} ({model_cls.__name__}) outputs {model_output(model_cls)!r} "
            f"but task={chosen('task')} ({task_cls.__name__}) reads "
            f"{'/'.join(task_cls.model_outputs)}; valid choices: model={'|'.join(valid)}"
        )
    if loss_input(loss_cls) not in task_cls.loss_inputs:
        valid = _options(config_dir, "loss", lambda c: loss_input(c) in task_cls.loss_inputs)
        raise IncompatibleConfigError(
            f"loss={chosen('loss')} ({loss_cls.__name__}) consumes {loss_input(loss_cls)!r} but "
            f"task={chosen('task')} ({task_cls.__name__}) trains on "
            f"{'/'.join(task_cls.loss_inputs)}; valid choices: loss={'|'.join(valid)}"
        )
    task_cls.check_config(cfg, command)
