#!/usr/bin/env python
"""Evaluate a checkpoint: `python evaluate.py run_dir=logs/train/runs/<time> [trials={name: list}]`.

Writes metrics.json, results.md, det.png and score histograms into its own run folder.
"""

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent
os.environ.setdefault("SONOLAB_ROOT", str(ROOT))

import hydra  # noqa: E402
from omegaconf import DictConfig  # noqa: E402

from sonolab.run import evaluate  # noqa: E402


@hydra.main(version_base="1.3", config_path="configs", config_name="eval")
def main(cfg: DictConfig) -> None:
    """Score the requested trial lists with the checkpoint and print the table."""
    evaluate(cfg, ROOT / "configs")
    print((Path(cfg.paths.output_dir) / "results.md").read_text())
    print(f"report: {cfg.paths.output_dir}")


if __name__ == "__main__":
    main()
