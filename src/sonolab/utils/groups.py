"""Config groups: a nested ``data.<group>`` block read into a dataclass, unknown keys refused."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, TypeVar

from omegaconf import DictConfig, OmegaConf

from .errors import ConfigValueError

Group = TypeVar("Group")


def config_group(cls: type[Group], value: Any, key: str) -> Group:
    """``cls`` (a dataclass) built from the mapping configured at ``key``: null gives the defaults,
    an instance passes through, and a key the dataclass has no field for is refused naming it and
    the fields there are."""
    if value is None:
        return cls()
    if isinstance(value, cls):
        return value
    if isinstance(value, DictConfig):
        value = OmegaConf.to_container(value, resolve=True)
    names = [f.name for f in dataclasses.fields(cls)]
    if not isinstance(value, Mapping):
        raise ConfigValueError(key, f"a mapping of {', '.join(names)}", value)
    unknown = sorted(set(value) - set(names))
    if unknown:
        raise ConfigValueError(f"{key}.{unknown[0]}", f"a key of {key} ({', '.join(names)})", value)
    return cls(**value)


def moved_keys_error(given: Mapping[str, Any], moved: Mapping[str, str], prefix: str) -> None:
    """Refuse keys of ``given`` that moved (``moved`` maps each old key to its new dotted place
    under ``prefix``), naming where each now lives; any other unexpected key is refused too."""
    for old in sorted(given):
        if old in moved:
            raise ConfigValueError(
                f"{prefix}.{old}", f"{prefix}.{moved[old]} (the key moved there)", given[old]
            )
    if given:
        raise ConfigValueError(f"{prefix}.{sorted(given)[0]}", "no such key", given)


def nest_moved_keys(flat: Mapping[str, Any], moved: Mapping[str, str]) -> dict[str, Any]:
    """``flat`` with each old key of ``moved`` (``{old: "group.new"}``) put at its new place; for
    configs written before the keys were grouped (a saved run's config, say). A key already at its
    new place wins over the old one."""
    out = {k: v for k, v in flat.items() if k not in moved}
    for old, place in moved.items():
        if old not in flat:
            continue
        group, new = place.split(".", 1)
        block = dict(out.get(group) or {})
        block.setdefault(new, flat[old])
        out[group] = block
    return out
