"""The class a config's ``_target_`` names, checked against the contract it must implement."""

from __future__ import annotations

from typing import TypeVar

from hydra.utils import get_class

from .errors import IncompatibleConfigError

T = TypeVar("T")


def declared_class(target: str, base: type[T], key: str) -> type[T]:
    """The class ``target`` names (import errors as Hydra raises them); an error naming ``key`` when
    it is no subclass of ``base``, the contract shared code reads."""
    cls = get_class(str(target))
    if not (isinstance(cls, type) and issubclass(cls, base)):
        raise IncompatibleConfigError(
            f"{key}={target} is not a subclass of {base.__module__}.{base.__qualname__}"
        )
    return cls


def declared_class_or_none(target: str | None, base: type[T]) -> type[T] | None:
    """:func:`declared_class` for readers of old run folders: None when the class cannot be
    imported any more (code that has since changed) or is no subclass of ``base``."""
    try:
        return declared_class(str(target), base, "_target_")
    except Exception:  # any import failure: the caller falls back to what it can do without
        return None
