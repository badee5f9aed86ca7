"""What a datamodule tells its task: a typed record per family on one base, saved in checkpoints.

A family declares its own subclass beside its datamodules (speaker counts, class names, ...); a task
declares which one it reads (:attr:`sonolab.tasks.base.Task.info_type`). Checkpoints store it as a
plain dict (:meth:`DataInfo.to_dict`), so they load without importing the dataclass.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..utils.errors import IncompatibleConfigError


@dataclass(frozen=True)
class DataInfo:
    """What every family's data gives its task: the audio's sample rate."""

    sample_rate: int

    def to_dict(self) -> dict[str, Any]:
        """The fields as a plain dict (what a checkpoint stores)."""
        return dataclasses.asdict(self)

    @classmethod
    def coerce(cls, info: DataInfo | Mapping[str, Any], owner: str = "the task") -> DataInfo:
        """``info`` as this class: a dict (from a checkpoint) is read field by field; an instance of
        another family's class is refused, naming both."""
        if isinstance(info, cls):
            return info
        if isinstance(info, DataInfo):
            raise IncompatibleConfigError(
                f"{owner} reads {cls.__name__} but the datamodule gives {type(info).__name__}: "
                "choose data= and task= of the same family"
            )
        names = {field.name for field in dataclasses.fields(cls)}
        required = {
            field.name
            for field in dataclasses.fields(cls)
            if field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING
        }
        missing = sorted(required - set(info))
        if missing:
            raise IncompatibleConfigError(
                f"{owner} reads {cls.__name__}, which needs {', '.join(missing)}; the data info "
                f"holds {', '.join(sorted(info)) or 'nothing'}"
            )
        return cls(**{key: value for key, value in info.items() if key in names})
