"""Start-up checks on the composed config: incompatible choices fail before any data is read."""

from __future__ import annotations

from pathlib import Path

from hydra.utils import get_class
from omegaconf import DictConfig, OmegaConf

from .utils.errors import IncompatibleConfigError


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


def check_compatibility(cfg: DictConfig, config_dir: str | Path) -> None:
    """The task must accept the model's output type, the loss's family and the scoring's needs."""
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
            f"model={_choice('model')} ({model_cls.__name__}) outputs {model_out!r} but task={_choice('task')} "
            f"({family}) needs {'/'.join(outputs)}; valid choices: model={'|'.join(valid)}")
    loss_family = getattr(loss_cls, "task_family", None)
    if loss_family != family:
        valid = _options(config_dir, "loss", lambda c: getattr(c, "task_family", None) == family)
        raise IncompatibleConfigError(
            f"loss={_choice('loss')} ({loss_cls.__name__}) is a {loss_family} loss but task={_choice('task')} "
            f"is {family}; valid choices: loss={'|'.join(valid)}")
    scoring = cfg.task.get("scoring") or {}
    if (scoring.get("mean_subtraction") or scoring.get("as_norm")) and not cfg.data.get("cohort_utts_per_speaker"):
        raise IncompatibleConfigError("task.scoring.mean_subtraction / as_norm need a cohort of training embeddings: "
                                      "set data.cohort_utts_per_speaker to a positive number (e.g. 2)")
