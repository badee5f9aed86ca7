"""Resuming a training run in its own folder: ``train.py resume=<run>``,
``ckpt_path=<run>/checkpoints/x.ckpt`` or ``ckpt_path=last`` (the newest run that has a
``checkpoints/last.ckpt``).

Hydra creates the run folder before any of our code runs, so the folder must be chosen from the
command line first: :func:`resume_arguments` adds ``hydra.run.dir=<that run>`` and keeps the
original ``.hydra/`` untouched by writing the resumed invocation's config to
``.hydra/resumed_<run id>/``. Checkpoints, metrics.json and train.log then continue in one
place; the CSV logger starts a new ``version_<n>`` beside the old one rather than overwrite it.
"""

from __future__ import annotations

from pathlib import Path

from .config import run_id


def newest_run_with_last_checkpoint(runs_dir: Path) -> Path | None:
    """The run folder under ``runs_dir`` whose ``checkpoints/last.ckpt`` was written most
    recently."""
    if not runs_dir.is_dir():
        return None
    found = [
        (p.stat().st_mtime, p.parent.parent)
        for p in runs_dir.glob("*/checkpoints/last.ckpt")
        if p.is_file()
    ]
    return max(found)[1] if found else None


def _value(args: list[str], key: str) -> str | None:
    for arg in reversed(args):  # the last one wins, as in Hydra
        if arg.startswith(key + "="):
            return arg.split("=", 1)[1].strip("'\"")
    return None


def resume_arguments(argv: list[str], root: Path) -> list[str]:
    """``argv`` with the run folder of a resumed training run given to Hydra (unchanged otherwise).

    Left alone: sweeps (``-m``), an explicit ``hydra.run.dir``, ``train=false`` (testing a
    checkpoint must not overwrite its run's reports) and checkpoints that are not in a run folder.
    """
    args = argv[1:]
    if (
        any(a in ("-m", "--multirun") for a in args)
        or _value(args, "hydra.run.dir") is not None
        or (_value(args, "train") or "").lower() == "false"
    ):
        return argv
    run_dir = None
    ckpt = _value(args, "ckpt_path")
    if _value(args, "resume"):
        run_dir = Path(_value(args, "resume"))
    elif ckpt == "last":
        log_dir = Path(_value(args, "paths.log_dir") or root / "logs")
        run_dir = newest_run_with_last_checkpoint(
            log_dir / (_value(args, "task_name") or "train") / "runs"
        )
        if run_dir is not None:
            args = [a for a in args if not a.startswith("ckpt_path=")]
            args.append(f"ckpt_path='{(run_dir / 'checkpoints' / 'last.ckpt').absolute()}'")
    elif ckpt:
        path = Path(ckpt)
        if (
            path.parent.name == "checkpoints"
            and (path.parent.parent / ".hydra" / "config.yaml").is_file()
        ):
            run_dir = path.parent.parent
    if run_dir is None or not run_dir.is_dir():
        return [argv[0], *args]
    return [
        argv[0],
        *args,
        f"hydra.run.dir='{run_dir.absolute()}'",
        f"hydra.output_subdir=.hydra/resumed_{run_id()}",
    ]
