"""Where the project's own files are: the checkout the package runs from."""

from __future__ import annotations

import os
from pathlib import Path

from omegaconf import OmegaConf


def checkout_root() -> Path | None:
    """The repository folder holding ``configs/`` and ``experiments/`` that this package was
    imported from (``src/sonolab`` two levels down), or None for an installed copy without them."""
    root = Path(__file__).resolve().parents[2]
    return root if (root / "configs" / "train.yaml").is_file() else None


def project_root() -> str:
    """The folder that ``data/`` and ``logs/`` go under: ``SONOLAB_ROOT`` when set, else the
    checkout, else the current folder."""
    return os.environ.get("SONOLAB_ROOT") or str(checkout_root() or Path.cwd())


def config_dir() -> Path:
    """The ``configs/`` folder the commands compose from: the checkout's, else the one under
    ``SONOLAB_ROOT`` or the current folder."""
    root = checkout_root()
    return (root or Path(project_root())) / "configs"


if not OmegaConf.has_resolver("sonolab_root"):  # configs/paths: ${sonolab_root:}
    OmegaConf.register_new_resolver("sonolab_root", project_root)
