"""What a hyper-parameter search needs from a run: which way its metric is better, and the value a
finished run hands to the sweeper (Hydra's Optuna sweeper minimises or maximises what train.py
returns)."""

from __future__ import annotations

import math
from typing import Any

from omegaconf import DictConfig

from .tasks.base import Task
from .utils.errors import ConfigValueError
from .utils.targets import declared_class


def _task(task_target: str) -> type[Task]:
    return declared_class(task_target, Task, "task._target_")


def task_monitor(task_target: str) -> tuple[str, str]:
    """The validation metric a task class follows for checkpoints, and ``min`` or ``max``."""
    return _task(task_target).monitor


def metric_direction(metric: str, task_target: str) -> str:
    """``minimize`` or ``maximize`` for ``metric`` (``auto``: the task's validation metric), as
    Optuna names them, from the direction the task class declares for it."""
    task = _task(task_target)
    if metric == "auto":
        direction = task.monitor[1]
    else:
        direction = task.metric_direction(metric)
    return "minimize" if direction == "min" else "maximize"


def objective(cfg: DictConfig, summary: dict[str, Any]) -> float:
    """The value of ``cfg.optimized_metric`` for a finished run (``summary`` from
    :func:`sonolab.run.train`): the best epoch's value when it is the metric checkpoints follow,
    else its last logged value. A test
    metric is refused: a search that picks settings by the test list reports an optimistic
    number."""
    metric = str(cfg.optimized_metric)
    if metric == "auto":
        metric = task_monitor(cfg.task._target_)[0]
    if metric.startswith("test/"):
        raise ConfigValueError(
            "optimized_metric",
            "a validation or training metric (val/..., train/...), never a test metric",
            metric,
        )
    best = summary.get("best_validation") or {}
    logged = summary.get("train_metrics") or {}
    value = best.get(metric, logged.get(metric))
    if value is None or not math.isfinite(float(value)):
        known = sorted(set(best) | set(logged))
        raise ConfigValueError(
            "optimized_metric",
            f"a metric this run logged ({', '.join(known) or 'none'})",
            f"{metric} = {value}",
        )
    return float(value)
