#!/usr/bin/env python
"""Train a model: `python train.py [experiment=NAME] [group=option ...] [key=value ...]`.

With no arguments it runs the default experiment: synthetic VoxCeleb-format data (generated once
under data/), ECAPA-TDNN + AAM-softmax on the CPU, then EER / minDCF on the held-out trials.
"""

import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig

from sonolab.resume import resume_arguments
from sonolab.run import train
from sonolab.search import objective

ROOT = Path(__file__).resolve().parent


@hydra.main(version_base="1.3", config_path="configs", config_name="train")
def main(cfg: DictConfig) -> float | None:
    """Compose, instantiate, run; the run folder holds config, checkpoints, metrics and logs. With
    ``optimized_metric`` set (hparams_search=...), returns its value to the sweeper."""
    summary = train(cfg, ROOT / "configs")
    results = Path(summary["output_dir"]) / "results.md"
    if results.is_file():
        print(f"\n{results.read_text()}\nrun folder: {summary['output_dir']}")
    return objective(cfg, summary) if cfg.get("optimized_metric") else None


if __name__ == "__main__":
    sys.argv = resume_arguments(sys.argv, ROOT)  # a resumed run continues in its own folder
    main()
