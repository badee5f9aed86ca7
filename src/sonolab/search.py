"""What a hyper-parameter search needs from a run: which way its metric is better, and the value a
finished run hands to the sweeper (Hydra's Optuna sweeper minimises or maximises what train.py
returns)."""

from __future__ import annotations

import math
from typing import Any

from hydra.utils import get_class
from omegaconf import DictConfig

from .utils.errors import ConfigValueError

# Metric names (the last part of the logged key) for which lower is better; everything else a task
# reports (accuracy, score, map, auc, d_prime) is higher-is-better.
LOWER_IS_BETTER = ("eer", "dcf", "der", "loss", "error", "miss", "false_alarm", "confusion")


def task_monitor(task_target: str) -> tuple[str, str]:
    """The validation metric a task class follows for checkpoints, and ``min`` or ``max``."""
    return getattr(get_class(task_target), "monitor", ("val/loss", "min"))


def metric_direction(metric: str, task_target: str = "") -> str:
    """``minimize`` or ``maximize`` for ``metric`` (``auto``: the task's validation metric), as
    Optuna
    names them: EER, minDCF, DER and losses are minimised; accuracy, mAP, AUC and d' maximised."""
    if metric == "auto":
        return "minimize" if task_monitor(task_target)[1] == "min" else "maximize"
    name = metric.rsplit("/", 1)[-1].lower()
    return "minimize" if any(part in name for part in LOWER_IS_BETTER) else "maximize"


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
