"""Optional dependencies (the package's extras): imported where a feature needs them, with an
error naming the extra that installs them when they are missing."""

from __future__ import annotations

import importlib
from types import ModuleType


class MissingExtraError(ImportError):
    """A feature was asked for whose optional package is not installed; says which extra has it."""

    def __init__(self, module: str, extra: str, feature: str):
        self.extra = extra
        super().__init__(
            f"{feature} needs the optional package {module!r}, which is not installed: "
            f"pip install 'sonolab[{extra}]' (or 'sonolab[all]'); in the checkout the commands "
            "install every extra"
        )


def require(module: str, extra: str, feature: str) -> ModuleType:
    """``module`` imported, or :class:`MissingExtraError` naming ``extra`` and the ``feature``
    that needs it."""
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as err:
        if err.name is not None and module.split(".")[0] != err.name.split(".")[0]:
            raise  # the package is there but one of its own dependencies is not: show that
        raise MissingExtraError(module, extra, feature) from err


# Hydra plugins chosen by a config group option: (group, option) -> (plugin module, extra)
HYDRA_PLUGINS = {
    ("hydra/sweeper", "optuna"): ("hydra_plugins.hydra_optuna_sweeper", "optuna"),
    ("hydra/launcher", "slurm"): ("hydra_plugins.hydra_submitit_launcher", "slurm"),
    ("hydra/launcher", "local"): ("hydra_plugins.hydra_joblib_launcher", "joblib"),
    ("hparams_search", None): ("hydra_plugins.hydra_optuna_sweeper", "optuna"),
}


def check_hydra_plugins(overrides: list[str]) -> None:
    """Before Hydra starts: a sweeper or launcher option on the command line whose plugin is not
    installed is named with its extra (Hydra itself would only say the option does not exist)."""
    for override in overrides:
        key, sep, value = override.lstrip("+~").partition("=")
        if not sep:
            continue
        for (group, option), (module, extra) in HYDRA_PLUGINS.items():
            if key == group and (option is None or value == option) and value not in ("", "null"):
                require(module, extra, f"{key}={value}")
