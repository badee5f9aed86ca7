"""Error types that point the user at the offending file, line and expectation."""

from __future__ import annotations

from pathlib import Path


class DataFormatError(ValueError):
    """A data file (or folder) is not in the format a reader expects.

    The message always names the path, the line when there is one, and what was expected, so a
    researcher can fix a trial list or a corrupt file without reading the loader's code.
    """

    def __init__(
        self,
        path: str | Path,
        expected: str,
        line: int | None = None,
        found: str | None = None,
        hint: str | None = None,
        details: list[str] | None = None,
    ):
        self.path = str(path)
        self.line = line
        self.expected = expected
        self.found = found
        self.details = list(details or [])
        where = f"{self.path}:{line}" if line is not None else self.path
        message = f"{where}: expected {expected}"
        if found is not None:
            message += f", found {found!r}"
        if hint:
            message += f" ({hint})"
        # One line per item when a check reports several (bad files, mismatched URIs).
        message += "".join(f"\n  {d}" for d in self.details)
        super().__init__(message)


class IncompatibleConfigError(ValueError):
    """Two config choices cannot work together (raised at start-up, before any data is read)."""


class ConfigValueError(ValueError):
    """A config key holds a value that cannot work; the message names the key and what it
    accepts."""

    def __init__(self, key: str, expected: str, found: object):
        self.key = key
        super().__init__(f"{key}: expected {expected}, found {found!r}")


def check_settings(prefix: str, rules: dict, **values) -> None:
    """ConfigValueError naming ``<prefix>.<key>`` for the first value its rule refuses.

    ``rules`` maps each key to ``(accept, expected)``: a predicate, and what it accepts in words. A
    value of the wrong type (a predicate raising TypeError) is refused the same way.
    """
    for key, value in values.items():
        accept, expected = rules[key]
        try:
            ok = accept(value)
        except TypeError:
            ok = False
        if not ok:
            raise ConfigValueError(f"{prefix}.{key}", expected, value)
