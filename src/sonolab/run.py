"""What ``train.py`` and ``evaluate.py`` do once Hydra has composed the config.

Nothing here branches on the task family: the datamodule reports what the task needs
(``datamodule.info``), the task builds its heads from it, and reports itself.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

import lightning as L
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from .config import check_compatibility

log = logging.getLogger(__name__)


def _instantiate_all(group: DictConfig | None) -> list:
    """Instantiate every ``_target_`` entry of a dict-of-configs group (loggers, callbacks)."""
    if not group:
        return []
    return [instantiate(c) for c in group.values() if isinstance(c, DictConfig) and "_target_" in c]


def build_datamodule(cfg: DictConfig) -> L.LightningDataModule:
    """The datamodule with the configured waveform augmentation."""
    augment = instantiate(cfg.augment) if cfg.get("augment") else None
    return instantiate(cfg.data, augment=augment, _recursive_=False)


def build_task(cfg: DictConfig, data_info: dict) -> L.LightningModule:
    """Model, features and loss joined in the configured task."""
    return instantiate(cfg.task, model=instantiate(cfg.model), features=instantiate(cfg.features),
                       loss=instantiate(cfg.loss), data_info=data_info, _recursive_=False,
                       optimizer=instantiate(cfg.task.optimizer))


def build_trainer(cfg: DictConfig, output_dir: str) -> L.Trainer:
    """Trainer with the configured loggers and callbacks, writing into the run folder."""
    return instantiate(cfg.trainer, logger=_instantiate_all(cfg.get("logger")) or False,
                       callbacks=_instantiate_all(cfg.get("callbacks")), default_root_dir=output_dir)


def _best_checkpoint(trainer: L.Trainer) -> str | None:
    callback = trainer.checkpoint_callback
    if callback is None:
        return None
    return callback.best_model_path or callback.last_model_path or None


def _scalar_metrics(metrics: dict[str, Any]) -> dict[str, float]:
    return {k: float(v) for k, v in metrics.items() if isinstance(v, (int, float, torch.Tensor)) and torch.as_tensor(v).numel() == 1}


def train(cfg: DictConfig, config_dir: str | Path) -> dict[str, Any]:
    """Train, then evaluate the best checkpoint on the test lists; writes the run folder's reports."""
    check_compatibility(cfg, config_dir)
    output_dir = Path(cfg.paths.output_dir)
    L.seed_everything(cfg.seed, workers=True)
    datamodule = build_datamodule(cfg)
    datamodule.prepare_data()
    datamodule.setup("fit")
    task = build_task(cfg, datamodule.info)
    trainer = build_trainer(cfg, str(output_dir))
    summary: dict[str, Any] = {"tags": OmegaConf.to_container(cfg.get("tags") or [])}
    start = time.time()
    if cfg.get("train", True):
        trainer.fit(task, datamodule=datamodule, ckpt_path=cfg.get("ckpt_path"))
        summary["train_seconds"] = round(time.time() - start, 1)
        summary["train_metrics"] = _scalar_metrics(trainer.callback_metrics)
    if cfg.get("test", True):
        ckpt = _best_checkpoint(trainer) if cfg.get("train", True) else cfg.get("ckpt_path")
        if ckpt is None:
            log.warning("no checkpoint saved: testing the weights in memory")
        trainer.test(task, datamodule=datamodule, ckpt_path=ckpt, weights_only=False)
        summary["checkpoint"] = ckpt
        if trainer.is_global_zero:
            task.write_report(output_dir, extra=summary)
    summary["output_dir"] = str(output_dir)
    return summary


def _run_config(run_dir: Path) -> DictConfig:
    path = run_dir / ".hydra" / "config.yaml"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: expected the resolved config of a training run folder")
    return OmegaConf.load(path)


def _find_checkpoint(run_dir: Path) -> Path:
    """The run's best checkpoint (recorded in its metrics.json), else its last one."""
    metrics = run_dir / "metrics.json"
    if metrics.is_file():
        recorded = json.loads(metrics.read_text()).get("checkpoint")
        if recorded and Path(recorded).is_file():
            return Path(recorded)
    last = run_dir / "checkpoints" / "last.ckpt"
    if last.is_file():
        return last
    found = sorted((run_dir / "checkpoints").glob("*.ckpt"))
    if not found:
        raise FileNotFoundError(f"{run_dir}/checkpoints: expected a .ckpt file")
    return found[-1]


def evaluate(cfg: DictConfig, config_dir: str | Path) -> dict[str, Any]:
    """Score trial lists with a trained checkpoint; writes metrics JSON, table and plots."""
    ckpt_path = Path(cfg.ckpt_path) if cfg.get("ckpt_path") else None
    run_dir = Path(cfg.run_dir) if cfg.get("run_dir") else (ckpt_path.parent.parent if ckpt_path else None)
    if run_dir is None:
        raise ValueError("give run_dir=<training run folder> or ckpt_path=<file.ckpt>")
    ckpt_path = ckpt_path or _find_checkpoint(run_dir)
    train_cfg = _run_config(run_dir)
    if cfg.get("trials"):
        train_cfg.data.test_trials = OmegaConf.to_container(cfg.trials)
    for key in ("trial_dir", "root", "cohort_utts_per_speaker", "num_workers", "eval_max_seconds"):
        if cfg.get(key) is not None:
            train_cfg.data[key] = cfg[key]
    if cfg.get("scoring"):
        train_cfg.task.scoring = OmegaConf.merge(train_cfg.task.get("scoring") or {}, cfg.scoring)
    check_compatibility(train_cfg, config_dir)
    checkpoint = torch.load(ckpt_path, map_location="cpu", weights_only=False)
    datamodule = build_datamodule(OmegaConf.merge(train_cfg, {"augment": None}))
    datamodule.prepare_data()
    datamodule.setup("test")
    task = build_task(train_cfg, checkpoint["hyper_parameters"]["data_info"])
    task.load_state_dict(checkpoint["state_dict"])
    trainer = instantiate(cfg.trainer, logger=False, callbacks=[], default_root_dir=cfg.paths.output_dir)
    trainer.test(task, datamodule=datamodule)
    if not trainer.is_global_zero:  # every rank holds the gathered results; one writes them
        return {}
    return task.write_report(Path(cfg.paths.output_dir), extra={"checkpoint": str(ckpt_path), "run_dir": str(run_dir)})
