"""Where the project's own files are: the checkout the package runs from, or the installed
package's copy of ``configs/`` and ``experiments/``."""

from __future__ import annotations

import os
from pathlib import Path

from omegaconf import OmegaConf

PACKAGE_DIR = Path(__file__).resolve().parent


def checkout_root() -> Path | None:
    """The repository folder holding ``configs/`` and ``experiments/`` that this package was
    imported from (``src/sonolab`` two levels down), or None for an installed copy without them."""
    root = PACKAGE_DIR.parents[1]
    return root if (root / "configs" / "train.yaml").is_file() else None


def config_root() -> Path:
    """The folder holding ``configs/`` and ``experiments/``: the checkout's, else the installed
    package's (the wheel carries both as package data)."""
    return checkout_root() or PACKAGE_DIR


def project_root() -> str:
    """The folder that ``data/`` and ``logs/`` go under: ``SONOLAB_ROOT`` when set, else the
    checkout, else the current folder (an installed package)."""
    return os.environ.get("SONOLAB_ROOT") or str(checkout_root() or Path.cwd())


def config_dir() -> Path:
    """The ``configs/`` folder the commands compose from."""
    return config_root() / "configs"


def experiments_dir() -> Path:
    """The ``experiments/`` folder (the ``experiment`` config group)."""
    return config_root() / "experiments"


if not OmegaConf.has_resolver("sonolab_root"):  # configs/paths: ${sonolab_root:}
    OmegaConf.register_new_resolver("sonolab_root", project_root)
