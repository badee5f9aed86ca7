#!/usr/bin/env python
"""Evaluate a checkpoint: `python evaluate.py run_dir=logs/train/runs/<time> [argument=value ...]`.

Besides configs/eval.yaml's keys it takes the arguments the run's datamodule declares (other test
sets) and overrides of the task sections it declares; one the run does not take is an error naming
those it does. Writes metrics.json, results.md and the task's plots into its own
run folder.
"""

import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig

from sonolab.arguments import open_arguments
from sonolab.run import evaluate

ROOT = Path(__file__).resolve().parent


@hydra.main(version_base="1.3", config_path="configs", config_name="eval")
def main(cfg: DictConfig) -> None:
    """Score the requested test sets with the checkpoint and print the table."""
    evaluate(cfg, ROOT / "configs")
    print((Path(cfg.paths.output_dir) / "results.md").read_text())
    print(f"report: {cfg.paths.output_dir}")


if __name__ == "__main__":
    sys.argv = [sys.argv[0], *open_arguments(sys.argv[1:], ROOT / "configs" / "eval.yaml")]
    main()
