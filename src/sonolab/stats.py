"""Front-end normalisation statistics of a dataset, measured once and stored beside the data:
``python -m sonolab.stats experiment=<name> [key=value ...]`` (the same overrides as ``train.py``).

AST normalises its fbank as ``(x - mean) / (2 * std)`` with the training set's mean and standard
deviation. This command measures them on the first ``task.statistics_clips`` training clips of the
configured split and writes ``<data root>/.sonolab/statistics_<key>.json`` (the user cache when the
data folder is read-only); a training run with ``features.mean`` / ``features.std`` null reads that
file, and measures and writes it itself when it is absent. Setting ``features.mean`` /
``features.std`` in a
config (AST's AudioSet values) bypasses both.
"""

from __future__ import annotations

import json
import sys

from hydra import compose, initialize_config_dir
from hydra.utils import instantiate

from .data.tagging import ClipDataModule
from .features.statistics import measure_statistics, save_statistics
from .paths import config_dir
from .run import build_datamodule
from .utils.errors import IncompatibleConfigError


def main(argv: list[str] | None = None) -> int:
    """Compose the training config from ``argv`` overrides, measure, store and print the
    statistics."""
    overrides = list(sys.argv[1:] if argv is None else argv)
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        cfg = compose("train", overrides=overrides)
    features = instantiate(cfg.features)
    if features.statistics_settings is None:
        raise IncompatibleConfigError(
            f"features={type(features).__name__} normalises without dataset statistics "
            "(AST's fbank, features=ast_fbank, uses them)"
        )
    datamodule = build_datamodule(cfg)
    if not isinstance(datamodule, ClipDataModule):
        raise IncompatibleConfigError(
            f"data={type(datamodule).__name__} does not store front-end statistics"
        )
    count = int(cfg.task.get("statistics_clips", 500))
    statistics = measure_statistics(features, datamodule.statistics_clips(count))
    path = datamodule.statistics_file(features.statistics_settings, count)
    save_statistics(path, statistics)
    print(json.dumps({**statistics, "file": str(path)}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
