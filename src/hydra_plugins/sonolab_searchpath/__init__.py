"""Hydra finds sonolab's experiment configs (the ``experiment`` group) without any setting.

Hydra discovers plugins in the ``hydra_plugins`` namespace package. This one adds the checkout's
``experiments/`` folder to the search path of any app whose primary configs are sonolab's
``configs/`` (the ``sonolab`` command, train.py, evaluate.py, the tests' composition): the
checkout's, read live in an editable install, or the copy an installed wheel carries.
"""

from __future__ import annotations

from pathlib import Path

from hydra.core.config_search_path import ConfigSearchPath
from hydra.plugins.search_path_plugin import SearchPathPlugin

from sonolab.paths import config_dir, experiments_dir


class SonolabSearchPathPlugin(SearchPathPlugin):
    """Appends ``file://<root>/experiments`` when the app composes ``<root>/configs``."""

    def manipulate_search_path(self, search_path: ConfigSearchPath) -> None:
        configs = config_dir()
        # the main path is "file://<dir>" for train.py, a bare directory for Hydra's compose API
        if any(
            Path(element.path.removeprefix("file://")) == configs
            for element in search_path.get_path()
            if element.path and "://" not in element.path.removeprefix("file://")
        ):
            search_path.append(provider="sonolab-experiments", path=f"file://{experiments_dir()}")
