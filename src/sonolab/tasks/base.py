"""The task contract: what every family's LightningModule shares and what it declares.

A family's task subclasses :class:`Task`, declares what it accepts and reports (class attributes),
and overrides hooks only: the steps, :meth:`Task.prepare_model`, :meth:`Task.build_loss`,
:meth:`Task.report` and, for start-up checks, :meth:`Task.check_config`. Shared code (the runner,
the config checks, the search objective, the reports) reads these declarations and never names a
family, a metric or a family's config key.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, ClassVar

import lightning as L
import torch
from omegaconf import DictConfig
from torch import nn

from ..checkpoints import describe_model
from ..data.info import DataInfo
from ..losses.base import Loss
from ..models.base import AudioModel
from ..utils.errors import ConfigValueError, IncompatibleConfigError
from .schedules import configure_optimization


class Task(L.LightningModule):
    """Model, features and loss joined for one family's training, validation and test.

    Declarations (class attributes):
        model_outputs: the model output types it reads (:attr:`AudioModel.output_type`).
        loss_inputs: the prediction types of the losses it trains with (:class:`Prediction`).
        info_type: the :class:`DataInfo` subclass its data must give.
        monitor: ``(validation metric, min | max)`` that ``monitor: auto`` checkpointing follows.
        metric_directions: ``{pattern: min | max}`` over a logged metric's last part (``error``,
            ``top*``): which way each metric it logs is better.
        headline_metrics: patterns of its ``metrics.json`` test results under ``<set>/``, the
            columns of ablation and fold tables.
        evaluate_sections: ``task.<section>`` blocks that ``evaluate.py section={...}`` overrides.
        inference: ``module.Class`` of the family's inference object, which ``sonolab.load`` builds
            from a trained run (a :class:`~sonolab.inference.base.InferenceModel`); None: the
            family has none.

    Args:
        model: an :class:`AudioModel` whose ``output_type`` is in ``model_outputs``.
        features: waveforms -> features on the device.
        loss: a :class:`Loss` (or a partial of one, completed by :meth:`build_loss`) whose
            ``prediction_type`` is in ``loss_inputs``.
        data_info: the datamodule's ``info`` (or its dict, from a checkpoint), saved in checkpoints.
        optimizer: partial of a ``torch.optim`` optimiser (the parameters are filled in).
        scheduler: the LR schedule (:func:`~sonolab.tasks.schedules.configure_optimization`) or
            null for a constant learning rate.
    """

    model_outputs: ClassVar[tuple[str, ...]] = ()
    loss_inputs: ClassVar[tuple[str, ...]] = ()
    info_type: ClassVar[type[DataInfo]] = DataInfo
    monitor: ClassVar[tuple[str, str]] = ("val/loss", "min")
    metric_directions: ClassVar[Mapping[str, str]] = {"loss": "min"}
    headline_metrics: ClassVar[tuple[str, ...]] = ()
    evaluate_sections: ClassVar[tuple[str, ...]] = ()
    inference: ClassVar[str | None] = None

    def __init__(
        self,
        model: nn.Module,
        features: nn.Module,
        loss: nn.Module | Callable[..., nn.Module],
        data_info: DataInfo | Mapping[str, Any],
        optimizer: Callable[..., torch.optim.Optimizer],
        scheduler: dict | None = None,
    ):
        super().__init__()
        problem = compatibility_problem(type(self), type(model), loss_class(loss))
        if problem:
            raise IncompatibleConfigError(problem)
        info = self.info_type.coerce(data_info, type(self).__name__)
        self.data_info = info
        self.prepare_model(model, features, info)
        # model_info and task_class let a checkpoint loaded into the wrong model or family be
        # named (class, size) before anything is built from it
        self.save_hyperparameters(
            {
                "data_info": info.to_dict(),
                "model_info": describe_model(model),
                "task_class": f"{type(self).__module__}.{type(self).__qualname__}",
            }
        )
        self.model = model
        self.features = features
        self.loss = self.build_loss(loss, model, info)
        self.optimizer_factory = optimizer
        self.scheduler_cfg = dict(scheduler) if scheduler else None
        self.test_results: dict[str, Any] = {}

    # -- hooks ----------------------------------------------------------------------------------
    def prepare_model(self, model: AudioModel, features: nn.Module, info: DataInfo) -> None:
        """Adapt the model (and its front-end) to the data before anything else is built: size a
        classifier head, hand pretrained front-end weights over."""

    def build_loss(
        self, loss: nn.Module | Callable[..., nn.Module], model: nn.Module, info: DataInfo
    ) -> nn.Module:
        """The loss module (a partial is completed here by families whose losses need sizes)."""
        return loss

    @classmethod
    def check_config(cls, cfg: DictConfig, command: str) -> None:
        """Start-up checks of the composed config that need no data (``command``: ``train`` or
        ``evaluate``, whose arguments spell some keys differently); raises
        IncompatibleConfigError."""

    def report(self, out_dir: Path, extra: dict[str, Any]) -> dict[str, Any]:
        """Write metrics.json, results.md and the family's tables / plots of ``test_results``."""
        raise NotImplementedError(f"{type(self).__name__} must define report")

    # -- shared ---------------------------------------------------------------------------------
    def log_train_loss(self, loss: torch.Tensor, batch_size: int) -> None:
        """``train/loss`` per step and per epoch, on the progress bar."""
        self.log(
            "train/loss", loss, prog_bar=True, on_step=True, on_epoch=True, batch_size=batch_size
        )

    def configure_optimizers(self):
        return configure_optimization(self, self.optimizer_factory, self.scheduler_cfg)

    def write_report(self, out_dir: str | Path, extra: dict | None = None) -> dict[str, Any]:
        """The report of the last test run (an error before any test)."""
        if not self.test_results:
            raise RuntimeError("no test results to report: run trainer.test first")
        return self.report(Path(out_dir), dict(extra or {}))

    @classmethod
    def metric_direction(cls, metric: str) -> str:
        """``min`` or ``max`` for a metric this task logs (``val/<name>``,
        ``test/<set>/<name>``)."""
        name = metric.rsplit("/", 1)[-1]
        for pattern, direction in {**Task.metric_directions, **cls.metric_directions}.items():
            if fnmatch.fnmatchcase(name, pattern):
                return direction
        declared = ", ".join(sorted({**Task.metric_directions, **cls.metric_directions}))
        raise ConfigValueError(
            "optimized_metric",
            f"a metric {cls.__name__} declares a direction for ({declared})",
            metric,
        )


def loss_class(loss: Any) -> type:
    """The loss class behind a loss module, class or partial."""
    inner = getattr(loss, "func", loss)  # functools.partial of a loss class
    return inner if isinstance(inner, type) else type(inner)


def model_output(model_cls: type) -> str | None:
    """The output type a model class declares (None for a class that is no AudioModel)."""
    return (
        model_cls.output_type
        if isinstance(model_cls, type) and issubclass(model_cls, AudioModel)
        else None
    )


def loss_input(loss_cls: type) -> str | None:
    """The prediction type a loss class consumes (None for a class that is no Loss)."""
    return (
        loss_cls.prediction_type
        if isinstance(loss_cls, type) and issubclass(loss_cls, Loss)
        else None
    )


def compatibility_problem(task_cls: type[Task], model_cls: type, loss_cls: type) -> str | None:
    """Why ``model_cls`` or ``loss_cls`` cannot serve ``task_cls`` (None when both can)."""
    output = model_output(model_cls)
    if output not in task_cls.model_outputs:
        return (
            f"model {model_cls.__name__} outputs {output!r} but {task_cls.__name__} reads "
            f"{'/'.join(task_cls.model_outputs)}"
        )
    consumed = loss_input(loss_cls)
    if consumed not in task_cls.loss_inputs:
        return (
            f"loss {loss_cls.__name__} consumes {consumed!r} but {task_cls.__name__} trains on "
            f"{'/'.join(task_cls.loss_inputs)}"
        )
    return None
