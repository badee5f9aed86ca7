"""The ``sonolab`` command: ``sonolab <command> [inputs] [key=value ...]``.

Commands are plug-ins: each is an entry point of the ``sonolab.commands`` group (the package
declares its own in pyproject.toml; another package may add more), a function taking the
command's arguments and returning an exit status. Its docstring is its help: the first line is the
summary ``sonolab --help`` lists, the rest what ``sonolab <command> --help`` prints (the
Hydra-composed ``train`` and ``eval`` print Hydra's help instead).
"""

from __future__ import annotations

import argparse
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


def as_flags(parser: argparse.ArgumentParser, argv: list[str]) -> list[str]:
    """``argv`` with each ``key=value`` naming one of ``parser``'s options (its dest, ``-`` or
    ``_`` alike) written as that option, so that every command takes options as key=value:
    ``out=DIR`` -> ``--out DIR``, ``verify=false`` -> ``--no-verify``. A subcommand's options are
    those of the subparser it names; other arguments (inputs, Hydra overrides) are left as they
    are, and so are ``--flags``."""
    actions = list(parser._actions)
    for action in actions:
        if isinstance(action, argparse._SubParsersAction):
            chosen = next((a for a in argv if a in action.choices), None)
            if chosen is not None:
                actions += action.choices[chosen]._actions
    options = {
        a.dest: a for a in actions if a.option_strings and a.dest not in ("help", argparse.SUPPRESS)
    }
    out = []
    for arg in argv:
        key, sep, value = arg.partition("=")
        action = options.get(key.replace("-", "_")) if sep and not key.startswith("-") else None
        if action is None:
            out.append(arg)
            continue
        on = value.lower() in ("true", "1", "yes")
        if isinstance(action, argparse.BooleanOptionalAction):
            out.append(next(s for s in action.option_strings if s.startswith("--no-") != on))
        elif action.nargs == 0:  # a store_true flag: given when true, its default when false
            out += [max(action.option_strings, key=len)] if on else []
        else:
            flag = max(action.option_strings, key=len)
            out += [flag, *value.split(",")] if action.nargs in ("+", "*") else [flag, value]
    return out


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
