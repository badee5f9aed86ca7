"""The machine-readable record of one run: ``run.json`` in the run folder, written when a run ends
(completed or failed) with its status, the error's last line, the command-line overrides, the
resolved config and the flattened test metrics. ``python -m sonolab.report`` builds tables from
it."""

from __future__ import annotations

import json
import logging
import time
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from lightning.pytorch.utilities import rank_zero_only
from omegaconf import DictConfig, OmegaConf

from ..stopping import StopRequested
from ..utils.io import write_text_atomic
from .summary import write_summary

RECORD = "run.json"
log = logging.getLogger(__name__)


def flatten_metrics(tree: Any, prefix: str = "test") -> dict[str, float]:
    """Numeric leaves of a metrics tree as ``prefix/a/b/c`` keys (lists and strings left out)."""
    if isinstance(tree, dict):
        out: dict[str, float] = {}
        for key, value in tree.items():
            out.update(flatten_metrics(value, f"{prefix}/{key}"))
        return out
    if isinstance(tree, bool) or not isinstance(tree, (int, float)):
        return {}
    return {prefix: float(tree)}


def _overrides(cfg: DictConfig) -> list[str]:
    try:
        return list(cfg.hydra.overrides.task)
    except Exception:  # composed without Hydra's runtime section (tests, the API)
        from hydra.core.hydra_config import HydraConfig

        return list(HydraConfig.get().overrides.task) if HydraConfig.initialized() else []


def _resolved(cfg: DictConfig) -> dict:
    try:
        return OmegaConf.to_container(cfg, resolve=True)
    except Exception:  # an interpolation that only Hydra's job can resolve: keep it as written
        return OmegaConf.to_container(cfg, resolve=False)


def write_record(
    out_dir: Path,
    cfg: DictConfig,
    status: str,
    seconds: float,
    error: str | None = None,
    config_dir: Path | None = None,
    signal_name: str | None = None,
) -> dict:
    """``run.json`` in ``out_dir``: status, error, overrides, resolved config and test metrics, and
    with
    ``config_dir`` (where train.yaml is) the human-readable ``summary.md`` (written by the global
    rank 0 only; other DDP ranks return the record without writing it)."""
    metrics_file = out_dir / "metrics.json"
    metrics = {}
    if metrics_file.is_file():
        try:
            metrics = flatten_metrics(json.loads(metrics_file.read_text()).get("test", {}))
        except ValueError:
            metrics = {}
    record = {
        "status": status,
        "error": error,
        **({"signal": signal_name} if signal_name else {}),
        "seconds": round(seconds, 1),
        "overrides": _overrides(cfg),
        "metrics": metrics,
        "config": {k: v for k, v in _resolved(cfg).items() if k != "hydra"},
    }
    if rank_zero_only.rank == 0:
        out_dir.mkdir(parents=True, exist_ok=True)
        write_text_atomic(out_dir / RECORD, json.dumps(record, indent=2, default=str) + "\n")
        if config_dir is not None:
            write_summary(out_dir, cfg, record, Path(config_dir))
    return record


@contextmanager
def recorded_run(out_dir: Path, cfg: DictConfig, config_dir: Path | None = None) -> Iterator[None]:
    """Write ``run.json`` (and, with ``config_dir``, ``summary.md``) when the block ends:
    ``completed``, or
    ``failed`` with the error's last line and, for a stop by signal, the signal's name (the error
    is raised again)."""
    start = time.time()
    try:
        yield
    except BaseException as err:
        line = (traceback.format_exception_only(type(err), err)[-1]).strip()
        signal_name = err.signal_name if isinstance(err, StopRequested) else None
        try:
            write_record(out_dir, cfg, "failed", time.time() - start, line, config_dir, signal_name)
        except OSError as unwritten:  # a full disk: the run's own error is the one to raise
            log.error("run.json could not be written: %s", unwritten)
        raise
    write_record(out_dir, cfg, "completed", time.time() - start, config_dir=config_dir)
