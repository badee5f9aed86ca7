"""What ``train.py`` and ``evaluate.py`` do once Hydra has composed the config.

Nothing here branches on the task family: the datamodule reports what the task needs
(``datamodule.info``), the task builds its heads from it, and reports itself.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import lightning as L
import torch
from hydra.errors import InstantiationException
from hydra.utils import get_class, instantiate
from lightning.pytorch.callbacks import ModelCheckpoint, ProgressBar
from omegaconf import DictConfig, ListConfig, OmegaConf, open_dict

from .callbacks import EpochSeed
from .checkpoints import (
    average_checkpoints,
    check_checkpoint_family,
    check_task_state,
    checkpoint_for_run,
    epoch_checkpoints,
    load_checkpoint,
    load_task_state,
    resumed_epoch,
)
from .config import check_compatibility, chosen, task_class
from .data.base import AudioDataModule
from .data.info import DataInfo
from .quiet import quiet_startup
from .report.record import recorded_run
from .stopping import stop_on_signals
from .tasks.base import Task
from .utils.allocator import retain_freed_memory
from .utils.errors import ConfigValueError, DataFormatError, IncompatibleConfigError
from .utils.io import from_cwd
from .utils.targets import declared_class
from .utils.threads import follow_usable_cores

log = logging.getLogger(__name__)


OWN_ERRORS = (DataFormatError, ConfigValueError, IncompatibleConfigError)


def _instantiate(cfg: DictConfig, **kwargs) -> Any:
    """``hydra.utils.instantiate`` that lets sonolab's own errors through as they were raised.

    Hydra wraps any exception from a constructor in an InstantiationException whose message is
    the repr of the original under a line about the target; ours already name the key or file.
    """
    try:
        return instantiate(cfg, **kwargs)
    except InstantiationException as err:
        cause = err.__cause__
        while isinstance(cause, InstantiationException):
            cause = cause.__cause__
        if isinstance(cause, OWN_ERRORS):
            raise cause from None
        raise


def _instantiate_all(group: DictConfig | None) -> list:
    """Instantiate every ``_target_`` entry of a dict-of-configs group (loggers, callbacks)."""
    if not group:
        return []
    return [
        _instantiate(c) for c in group.values() if isinstance(c, DictConfig) and "_target_" in c
    ]


def build_datamodule(cfg: DictConfig) -> AudioDataModule:
    """The configured datamodule, given the waveform augmentation when it declares that it takes
    one (``takes_augment``); a non-empty ``augment`` for one that does not is refused."""
    data_cls = declared_class(cfg.data._target_, AudioDataModule, "data._target_")
    augment = _instantiate(cfg.augment) if cfg.get("augment") else None
    if not data_cls.takes_augment:
        if augment:
            raise IncompatibleConfigError(
                f"data={chosen('data')} ({data_cls.__name__}) takes no waveform augmentation: "
                f"{data_cls.no_augment_reason}; use augment=none"
            )
        return _instantiate(cfg.data, _recursive_=False)
    return _instantiate(cfg.data, augment=augment, _recursive_=False)


def build_task(cfg: DictConfig, data_info: DataInfo | dict) -> Task:
    """Model, features and loss joined in the configured task (``data_info``: the datamodule's
    ``info``, or its dict from a checkpoint)."""
    task_class(cfg)  # a target that is no Task is named before anything is built
    factory = _instantiate(
        cfg.task,
        model=_instantiate(cfg.model),
        features=_instantiate(cfg.features),
        loss=_instantiate(cfg.loss),
        _recursive_=False,
        _partial_=True,
        optimizer=_instantiate(cfg.task.optimizer),
    )
    # called here rather than by Hydra so the typed data info reaches the task as it is (Hydra
    # would turn a dataclass argument into a config node)
    return factory(data_info=data_info)


def _trainer_settings(cfg: DictConfig) -> DictConfig:
    """The trainer config with the combinations Lightning would reject mid-start-up made to work or
    named.

    * SyncBatchNorm exists for GPUs only: on CPU processes (``trainer=ddp trainer.accelerator=cpu``)
      it is turned off with a warning; per-process BatchNorm is what WeSpeaker uses anyway.
    * ``devices=-1`` ("all GPUs") means nothing for CPU processes: say which key to set.
    """
    trainer_cfg = cfg.trainer.copy()
    if trainer_cfg.get("accelerator") == "cpu":
        if trainer_cfg.get("sync_batchnorm"):
            log.warning(
                "trainer.sync_batchnorm=true needs GPUs; turned off for trainer.accelerator=cpu "
                "(each process normalises its own batch)"
            )
            trainer_cfg.sync_batchnorm = False
        devices = trainer_cfg.get("devices", 1)
        if isinstance(devices, int) and devices < 1:
            raise ConfigValueError(
                "trainer.devices",
                "the number of CPU processes (e.g. trainer.devices=2) with trainer.accelerator=cpu",
                devices,
            )
    return trainer_cfg


def _resolve_monitor(cfg: DictConfig, validates: bool = True) -> DictConfig | None:
    """The callbacks config with ``monitor: auto`` / ``mode: auto`` replaced by the task's own
    metric. Without validation (``validates=False``) nothing can be monitored: checkpoint callbacks
    keep the last epoch (``monitor: null``) and other monitoring callbacks (early stopping) are
    left out, each with a warning."""
    callbacks = cfg.get("callbacks")
    if not callbacks or "task" not in cfg:
        return callbacks
    callbacks = callbacks.copy()
    metric, mode = task_class(cfg).monitor
    for name in list(callbacks):
        callback = callbacks[name]
        if not isinstance(callback, DictConfig):
            continue
        if callback.get("mode") == "auto":  # also with monitor null: Lightning checks the mode
            callbacks[name].mode = mode
        if callback.get("monitor") is None:
            continue
        if validates:
            if callback.get("monitor") == "auto":
                callbacks[name].monitor = metric
        elif issubclass(get_class(callback._target_), ModelCheckpoint):
            log.warning(
                "no validation data: callbacks.%s keeps the last epoch (monitor=null)", name
            )
            callbacks[name].monitor = None
        else:
            log.warning(
                "no validation data: callbacks.%s (monitor=%s) left out", name, callback.monitor
            )
            with open_dict(callbacks):
                del callbacks[name]
    return callbacks


def build_trainer(cfg: DictConfig, output_dir: str, validates: bool = True) -> L.Trainer:
    """Trainer with the configured loggers and callbacks (if any), writing into the run folder
    (``validates``: whether the datamodule has validation data to monitor)."""
    trainer_cfg = _trainer_settings(cfg)
    callbacks = _instantiate_all(_resolve_monitor(cfg, validates))
    if (
        trainer_cfg.get("enable_progress_bar") is False
    ):  # Lightning refuses a progress-bar callback then
        callbacks = [c for c in callbacks if not isinstance(c, ProgressBar)]
    callbacks.append(
        EpochSeed(int(cfg.get("seed") or 0))
    )  # not a config choice: without it a resumed run diverges
    return _instantiate(
        trainer_cfg,
        logger=_instantiate_all(cfg.get("logger")) or False,
        callbacks=callbacks,
        default_root_dir=output_dir,
    )


def _scalar_metrics(metrics: dict[str, Any]) -> dict[str, float]:
    return {
        k: float(v)
        for k, v in metrics.items()
        if isinstance(v, (int, float, torch.Tensor)) and torch.as_tensor(v).numel() == 1
    }


def _run_relative(path: str | Path | None, run_dir: Path) -> str | None:
    """A checkpoint path relative to its run folder (so the folder can move), absolute when outside
    it."""
    if not path:
        return None
    try:
        return str(Path(path).resolve().relative_to(run_dir.resolve()))
    except ValueError:
        return str(Path(path).resolve())


def _tested_checkpoint(trainer: L.Trainer) -> tuple[str | None, str]:
    """The checkpoint to test after training, and why: the best by the monitored metric, else the
    last."""
    callback = trainer.checkpoint_callback
    if callback is None:
        return None, "no checkpoint callback: the weights in memory"
    if callback.monitor and callback.best_model_path:
        return callback.best_model_path, f"best by {callback.monitor}"
    if callback.last_model_path:
        return callback.last_model_path, "last epoch (no monitored metric)"
    return None, "no checkpoint saved: the weights in memory"


def _resume_checkpoint(cfg: DictConfig) -> Path | None:
    """The checkpoint to resume (or, with train=false, test): ``resume=<run folder>`` or
    ``ckpt_path=<file>``.

    train.py turns ``ckpt_path=last`` into the newest run's last.ckpt and points Hydra at that run
    folder before composing (:mod:`sonolab.resume`); here ``last`` is left only when none exists.
    """
    if cfg.get("resume"):
        path = Path(cfg.resume) / "checkpoints" / "last.ckpt"
        if not path.is_file():
            raise DataFormatError(
                path, "the last.ckpt of the run folder given by resume=", found="no such file"
            )
        return path
    if cfg.get("ckpt_path") == "last":
        raise DataFormatError(
            Path(cfg.paths.log_dir) / cfg.task_name / "runs",
            "a run folder holding checkpoints/last.ckpt (for ckpt_path=last)",
            found="none",
        )
    return Path(cfg.ckpt_path) if cfg.get("ckpt_path") else None


def _initialise(task: L.LightningModule, source: Path) -> Path:
    """Load the weights of a run folder's recorded checkpoint (or of a .ckpt file) into ``task``."""
    path, reason = checkpoint_for_run(source) if source.is_dir() else (source, "given by init_from")
    log.info("initialising from %s (%s)", path, reason)
    checkpoint = load_checkpoint(path)
    check_checkpoint_family(checkpoint, path, type(task))
    load_task_state(task, checkpoint, path)
    return path


def _data_summary(datamodule: AudioDataModule) -> dict[str, Any]:
    """What the datamodule left out (by reason, with examples), for metrics.json."""
    return {"skipped": datamodule.skipped.as_dict()} if datamodule.skipped else {}


def check_no_selection_on_test(cfg: DictConfig, datamodule: AudioDataModule) -> None:
    """Refuse to choose the tested checkpoint on a list that is also tested: a best-by-validation
    checkpoint with a datamodule whose validation data is one of its test sets."""
    checkpoint = (cfg.get("callbacks") or {}).get("model_checkpoint") or {}
    if (
        cfg.get("train", True)
        and checkpoint.get("monitor") is not None
        and datamodule.validation_is_tested()
    ):
        raise IncompatibleConfigError(
            "the validation list is also a test list, so the best checkpoint by validation would "
            f"be chosen on the test: {datamodule.held_out_hint}, or test the last or averaged "
            "weights (callbacks.model_checkpoint.monitor=null, callbacks=weight_averaging)"
        )


def train(cfg: DictConfig, config_dir: str | Path) -> dict[str, Any]:
    """Train, then evaluate the chosen checkpoint on the test lists; writes the run folder's reports
    and, however it ends, its ``run.json`` record (status, error, overrides, resolved config, test
    metrics)."""
    quiet_startup()
    follow_usable_cores()
    with stop_on_signals(), recorded_run(Path(cfg.paths.output_dir), cfg, Path(config_dir)):
        return _train(cfg, config_dir)


def _train(cfg: DictConfig, config_dir: str | Path) -> dict[str, Any]:
    check_compatibility(cfg, config_dir)
    if cfg.get("retain_freed_memory", True):
        retain_freed_memory()
    output_dir = Path(cfg.paths.output_dir)
    resume = _resume_checkpoint(cfg)
    checkpoint = (
        load_checkpoint(resume) if resume else None
    )  # a corrupt file, or another family's, fails before any data is read
    if checkpoint is not None:
        check_checkpoint_family(checkpoint, resume, task_class(cfg))
    L.seed_everything(cfg.seed, workers=True)
    datamodule = build_datamodule(cfg)
    check_no_selection_on_test(cfg, datamodule)
    datamodule.prepare_data()
    datamodule.setup("fit")
    task = build_task(cfg, datamodule.info)
    if checkpoint is not None:
        check_task_state(task, checkpoint, resume)
        datamodule.resume_epoch = resumed_epoch(
            checkpoint
        )  # read by the training samplers (start_at_epoch)
        del checkpoint
    summary: dict[str, Any] = {"tags": OmegaConf.to_container(cfg.get("tags") or [])}
    if cfg.get("init_from"):
        summary["init_from"] = str(_initialise(task, Path(cfg.init_from)))
    trainer = build_trainer(cfg, str(output_dir), validates=datamodule.has_validation())
    if resume:
        summary["resumed_from"] = _run_relative(resume, output_dir)
        log.info("resuming from %s in %s", resume, output_dir)
    start = time.time()
    if cfg.get("train", True):
        trainer.fit(task, datamodule=datamodule, ckpt_path=str(resume) if resume else None)
        summary["train_seconds"] = round(time.time() - start, 1)
        summary["train_metrics"] = _scalar_metrics(trainer.callback_metrics)
        saver = trainer.checkpoint_callback
        if saver is not None and saver.monitor and saver.best_model_score is not None:
            summary["best_validation"] = {saver.monitor: float(saver.best_model_score)}
    if cfg.get("test", True):
        if cfg.get("train", True):
            ckpt, reason = _tested_checkpoint(trainer)
        else:
            ckpt, reason = (
                (str(resume), "given by ckpt_path (train=false)")
                if resume
                else (None, "untrained weights")
            )
        log.info("testing %s (%s)", ckpt or "the weights in memory", reason)
        datamodule.tested_checkpoint = ckpt
        trainer.test(task, datamodule=datamodule, ckpt_path=ckpt, weights_only=False)
        if ckpt is None and not cfg.get("train", True):
            # weights tested as built (a pipeline, a pretrained file): saved, so evaluate.py can
            # score this run again
            ckpt = str(output_dir / "checkpoints" / "tested.ckpt")
            trainer.save_checkpoint(ckpt)
            reason = f"{reason}, saved after the test as checkpoints/tested.ckpt"
        summary["checkpoint"] = _run_relative(ckpt, output_dir)
        summary["checkpoint_reason"] = reason
        summary.update(_data_summary(datamodule))
        if trainer.is_global_zero:
            task.write_report(output_dir, extra=summary)
    summary["output_dir"] = str(output_dir)
    return summary


def _run_config(run_dir: Path) -> DictConfig:
    path = run_dir / ".hydra" / "config.yaml"
    if not path.is_file():
        raise DataFormatError(
            path,
            "the resolved config of a training run folder (run_dir=<logs/train/runs/...>)",
            found="no such file",
        )
    return OmegaConf.load(path)


# evaluate.py's own keys (configs/eval.yaml); any other key=value is an argument of the run's
# datamodule (its evaluate_arguments) or a section of its task (evaluate_sections)
COMMON_EVAL_KEYS = {
    "task_name",
    "run_dir",
    "ckpt_path",
    "average_last",
    "root",
    "num_workers",
    "paths",
    "trainer",
    "hydra",
}


def _plain(value: Any) -> Any:
    return OmegaConf.to_container(value) if isinstance(value, (DictConfig, ListConfig)) else value


def _evaluation_config(train_cfg: DictConfig, cfg: DictConfig) -> DictConfig:
    """The run's config with evaluate.py's arguments applied; an argument this run's datamodule or
    task does not take is an error naming it and those they do take."""
    data_cls = get_class(train_cfg.data._target_)
    sections = task_class(train_cfg).evaluate_sections
    accepted = tuple(data_cls.evaluate_arguments)
    given = {k: cfg[k] for k in cfg if k not in COMMON_EVAL_KEYS and cfg.get(k) is not None}
    for key in sorted(given):
        if key not in accepted and key not in sections:
            raise ConfigValueError(
                key,
                f"an argument of this run's datamodule {data_cls.__name__} "
                f"({', '.join(accepted) or 'none'}) or a section of its task "
                f"{train_cfg.task._target_.rsplit('.', 1)[-1]} ({', '.join(sections) or 'none'})",
                given[key],
            )
    args = {k: _plain(v) for k, v in given.items() if k in accepted}
    data = data_cls.evaluation_config(OmegaConf.to_container(train_cfg.data), args)
    train_cfg.data = OmegaConf.create(data)
    if cfg.get("root") is not None:
        train_cfg.data.root = from_cwd(cfg.root)
    if cfg.get("num_workers") is not None:
        train_cfg.data.num_workers = cfg.num_workers
    for key in sections:
        if given.get(key):
            train_cfg.task[key] = OmegaConf.merge(train_cfg.task.get(key) or {}, given[key])
    return train_cfg


def evaluate(cfg: DictConfig, config_dir: str | Path) -> dict[str, Any]:
    """Test a trained checkpoint on its run's test sets or on those evaluate.py's arguments give
    (the arguments its datamodule declares); writes the task's report (metrics JSON, tables,
    plots) and, however it ends, the evaluation folder's ``run.json`` record."""
    quiet_startup()
    follow_usable_cores()
    with stop_on_signals(), recorded_run(Path(cfg.paths.output_dir), cfg):
        return _evaluate(cfg, config_dir)


def _evaluate(cfg: DictConfig, config_dir: str | Path) -> dict[str, Any]:
    if not cfg.get("run_dir") and cfg.get("ckpt_path") in (None, "best", "last"):
        raise ConfigValueError(
            "run_dir", "a training run folder (or ckpt_path=<file.ckpt>)", cfg.get("run_dir")
        )
    run_dir = Path(cfg.run_dir) if cfg.get("run_dir") else Path(cfg.ckpt_path).parent.parent
    average = int(cfg.get("average_last") or 0)
    if average:  # WeSpeaker's num_avg: the mean weights of the last N epoch checkpoints
        paths = epoch_checkpoints(run_dir)[-average:]
        if len(paths) < average:
            raise DataFormatError(
                run_dir / "checkpoints",
                f"{average} epoch checkpoints (epochNNN.ckpt) to average; "
                "train with callbacks.model_checkpoint.save_top_k=-1 to keep them",
                found=f"{len(paths)}",
            )
        checkpoint = average_checkpoints(paths)
        ckpt_path, reason = (
            paths[-1],
            f"average of {', '.join(p.name for p in paths)} (average_last={average})",
        )
    else:
        ckpt_path, reason = checkpoint_for_run(run_dir, cfg.get("ckpt_path"))
        checkpoint = load_checkpoint(ckpt_path)
    log.info("scoring %s (%s)", ckpt_path, reason)
    train_cfg = _evaluation_config(_run_config(run_dir), cfg)
    check_compatibility(train_cfg, config_dir, command="evaluate")
    check_checkpoint_family(checkpoint, ckpt_path, task_class(train_cfg))
    datamodule = build_datamodule(OmegaConf.merge(train_cfg, {"augment": None}))
    datamodule.prepare_data()
    datamodule.setup("test")
    task = build_task(train_cfg, checkpoint["hyper_parameters"]["data_info"])
    load_task_state(task, checkpoint, ckpt_path)
    del checkpoint
    trainer = build_trainer(
        cfg, cfg.paths.output_dir
    )  # evaluate.py's trainer: no loggers or callbacks
    datamodule.tested_checkpoint = (
        None if average else str(ckpt_path)
    )  # averaged weights: nothing is cached per checkpoint
    trainer.test(task, datamodule=datamodule)
    if not trainer.is_global_zero:  # every rank holds the gathered results; one writes them
        return {}
    extra = {
        "checkpoint": str(ckpt_path),
        "checkpoint_reason": reason,
        "run_dir": str(run_dir),
        **_data_summary(datamodule),
    }
    return task.write_report(Path(cfg.paths.output_dir), extra=extra)
