"""Command-line arguments that a family declares, passed through Hydra to the shared commands.

``evaluate.py`` takes, besides its own keys (``configs/eval.yaml``), the arguments of the evaluated
run's datamodule (``evaluate_arguments``) and sections of its task (``evaluate_sections``). Those
belong to the family, so the shared config does not list them; Hydra refuses a key its config lacks
unless it is written ``+key=value``, which :func:`open_arguments` does for the user. Whether the run
takes the argument is checked once the run is known (:func:`sonolab.run.evaluate`), with an error
naming what it does take.
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml

_OVERRIDE = re.compile(r"^(?P<key>[A-Za-z_][\w]*)(?P<rest>[.\w]*)=")


def config_keys(config_file: Path) -> set[str]:
    """Top-level keys of a primary config: its own keys and the groups of its defaults list."""
    content = yaml.safe_load(config_file.read_text()) or {}
    keys = {str(k) for k in content if k != "defaults"}
    for entry in content.get("defaults") or []:
        if isinstance(entry, dict):
            keys.update(str(group).split("/")[0].split("@")[0].lstrip("+~") for group in entry)
    return keys | {"hydra"}


def open_arguments(argv: list[str], config_file: Path) -> list[str]:
    """``argv`` (without the program name) with every ``key=value`` whose top-level key the config
    lacks written as ``+key=value``; flags and ``+`` / ``~`` / ``++`` overrides are left as
    given."""
    known = config_keys(config_file)
    opened = []
    for arg in argv:
        match = _OVERRIDE.match(arg)
        opened.append(f"+{arg}" if match and match.group("key") not in known else arg)
    return opened
