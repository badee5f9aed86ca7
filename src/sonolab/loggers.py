"""Loggers whose packages are optional extras (configs/logger/): built after checking that the
package is installed, so a missing one names the extra instead of failing inside Lightning."""

from __future__ import annotations

from lightning.pytorch.loggers import TensorBoardLogger

from .utils.extras import require


def tensorboard_logger(**kwargs) -> TensorBoardLogger:
    """Lightning's TensorBoardLogger (arguments as its own), once ``tensorboard`` is importable."""
    require("tensorboard", "tensorboard", "logger=tensorboard")
    return TensorBoardLogger(**kwargs)
