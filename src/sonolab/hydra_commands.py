"""``sonolab train`` and ``sonolab eval``: the Hydra-composed commands (``train.py`` and
``evaluate.py`` in the checkout are aliases of them)."""

from __future__ import annotations

import sys
from collections.abc import Callable
from importlib.util import find_spec
from pathlib import Path

import hydra
from omegaconf import DictConfig

from .arguments import open_arguments
from .paths import config_dir, project_root
from .resume import resume_arguments
from .utils.extras import check_hydra_plugins


def run_hydra_app(
    config_name: str, task_function: Callable[[DictConfig], object], argv: list[str], command: str
) -> None:
    """Run ``task_function`` as a Hydra app over ``config_name`` (from :func:`config_dir`) with
    ``argv`` as its command line (Hydra reads ``sys.argv``).

    The program named in ``sys.argv`` (and the main module's spec, under ``python -m``) is the
    command's own script (:mod:`sonolab.scripts`): Lightning's DDP launcher starts the extra
    processes by running that program again with ``sys.argv[1:]``, which hold no subcommand.
    """
    check_hydra_plugins(argv)
    app = hydra.main(version_base="1.3", config_path=str(config_dir()), config_name=config_name)(
        task_function
    )
    import __main__

    script = f"sonolab.scripts.{command}"
    saved = sys.argv, getattr(__main__, "__spec__", None)
    sys.argv = [str(Path(find_spec(script).origin)), *argv]
    if saved[1] is not None:
        __main__.__spec__ = find_spec(script)
    try:
        app()
    finally:
        sys.argv = saved[0]
        if saved[1] is not None:
            __main__.__spec__ = saved[1]


def _train(cfg: DictConfig) -> float | None:
    from .run import train
    from .search import objective

    summary = train(cfg, config_dir())
    results = Path(summary["output_dir"]) / "results.md"
    if results.is_file():
        print(f"\n{results.read_text()}\nrun folder: {summary['output_dir']}")
    return objective(cfg, summary) if cfg.get("optimized_metric") else None


def _evaluate(cfg: DictConfig) -> None:
    from .run import evaluate

    evaluate(cfg, config_dir())
    print((Path(cfg.paths.output_dir) / "results.md").read_text())
    print(f"report: {cfg.paths.output_dir}")


def train(argv: list[str]) -> int:
    """Train a model: sonolab train [experiment=NAME] [group=option ...] [key=value ...]

    Composes configs/train.yaml with the overrides (Hydra's syntax: -m for a sweep, --help for the
    config groups), trains, tests the best checkpoint and prints its results table. With no
    arguments: synthetic VoxCeleb-format data (generated once under data/), ECAPA-TDNN +
    AAM-softmax on the CPU, then EER / minDCF on the held-out trials. Run folders go under
    logs/train/runs/ of the checkout, of SONOLAB_ROOT, or of the current folder (an installed
    package); resume=<run folder> continues one in place.
    """
    args = resume_arguments(["sonolab train", *argv], Path(project_root()))[1:]
    run_hydra_app("train", _train, args, "train")
    return 0


def evaluate(argv: list[str]) -> int:
    """Evaluate a trained run: sonolab eval run_dir=<run folder> [argument=value ...]

    Rebuilds the model from the run's saved config, loads its checkpoint and tests it on its own
    test sets or on those the arguments of its datamodule give (other trial lists, recordings=,
    a fold); writes metrics.json, results.md and the task's plots into its own run folder
    (configs/eval.yaml documents the keys; --help shows Hydra's help).
    """
    run_hydra_app("eval", _evaluate, open_arguments(argv, config_dir() / "eval.yaml"), "eval")
    return 0
