"""The ``sonolab`` command: ``sonolab <command> [inputs] [key=value ...]``.

Commands are plug-ins: each is an entry point of the ``sonolab.commands`` group (the package
declares its own in pyproject.toml; another package may add more), a function taking the
command's arguments and returning an exit status. Its docstring is its help: the first line is the
summary ``sonolab --help`` lists, the rest what ``sonolab <command> --help`` prints (the
Hydra-composed ``train`` and ``eval`` print Hydra's help instead).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from importlib.metadata import entry_points
from inspect import getdoc
from typing import Any

from .stopping import run_stoppable
from .utils.errors import ConfigValueError, DataFormatError, IncompatibleConfigError
from .utils.extras import MissingExtraError

GROUP = "sonolab.commands"
HELP = ("-h", "--help")


def commands() -> dict[str, Any]:
    """``{name: entry point}`` of every installed command, sorted by name."""
    return {ep.name: ep for ep in sorted(entry_points(group=GROUP), key=lambda ep: ep.name)}


def summary(function: Callable) -> str:
    """The first line of a command's docstring."""
    return (getdoc(function) or "").split("\n", 1)[0]


def usage() -> str:
    """What ``sonolab --help`` prints: the commands and their summaries."""
    found = commands()
    width = max((len(name) for name in found), default=0)
    lines = [
        "usage: sonolab <command> [inputs] [key=value ...]   (sonolab <command> --help)",
        "",
        "commands:",
    ]
    lines += [f"  {name:<{width}}  {summary(ep.load())}" for name, ep in found.items()]
    return "\n".join(lines)


def key_values(
    argv: list[str], command: Callable, known: dict[str, Any], positional: str | None = None
) -> tuple[list[str], dict[str, Any]]:
    """A command's arguments: ``key=value`` options (``known``: every key and its default; a
    value ``null`` is None) and, when ``positional`` names them, the other arguments as inputs.
    ``-h`` / ``--help`` prints the command's docstring and exits 0; an unknown key or a stray
    input is an error naming what the command takes."""
    if any(arg in HELP for arg in argv):
        print(getdoc(command))
        raise SystemExit(0)
    inputs, options = [], dict(known)
    for arg in argv:
        key, sep, value = arg.partition("=")
        if sep and key in known:
            options[key] = None if value in ("null", "None") else value
        elif sep and "/" not in key and "." not in key:
            raise ConfigValueError(
                key, f"one of the command's keys ({', '.join(sorted(known))})", arg
            )
        elif positional is None:
            raise ConfigValueError("arguments", "key=value pairs", arg)
        else:
            inputs.append(arg)
    return inputs, options


def main(argv: list[str] | None = None) -> int:
    """Run ``sonolab <command> ...``; returns the exit status."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or argv[0] in (*HELP, "help"):
        print(usage())
        return 0
    found = commands()
    if argv[0] not in found:
        print(
            f"sonolab: unknown command {argv[0]!r}; commands: {', '.join(found)}", file=sys.stderr
        )
        return 2
    command = found[argv[0]].load()
    try:
        return run_stoppable(lambda: command(argv[1:])) or 0
    except (DataFormatError, ConfigValueError, IncompatibleConfigError, MissingExtraError) as err:
        print(f"sonolab {argv[0]}: error: {err}", file=sys.stderr)  # the message says it all
        return 1
