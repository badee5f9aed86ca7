"""The datamodule contract: every hook the runner and the tasks use, declared once.

A family's datamodules subclass :class:`AudioDataModule`; shared code reads these hooks and nothing
else, so it never has to probe a datamodule for what it can do.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

import lightning as L
from hydra.utils import get_class, get_method

from .info import DataInfo
from .skips import SkipLog

log = logging.getLogger(__name__)

# data.<key>: what every family's datamodules accept for the settings they share
# (sonolab.utils.errors.check_settings); each family adds its own keys
SETTING_RULES = {
    "sample_rate": (lambda v: v > 0, "a positive rate in Hz"),
    "batch_size": (lambda v: v >= 1, "at least 1"),
    "num_workers": (lambda v: v >= 0, "0 or more"),
    "on_bad_audio": (lambda v: v in ("error", "skip"), "error or skip"),
}


class AudioDataModule(L.LightningDataModule):
    """A Lightning datamodule with what sonolab's runner and tasks read from it.

    Class attributes a subclass sets:
        takes_augment: whether it applies the configured waveform augmentation (``augment=``); only
            such datamodules are given one; for the others a non-empty ``augment`` is refused at
            start-up, saying :attr:`no_augment_reason`.
        evaluate_arguments: ``{name: help}`` of the ``evaluate.py name=value`` arguments it takes
            (trial lists, recordings, a fold ...); :meth:`evaluation_config` applies them.
        held_out_hint: how to validate on data that is not tested, for the start-up refusal of a
            best-by-validation checkpoint chosen on a test list.
        fold_key: the ``data.<key>`` that picks the test fold of a cross-validation protocol (its
            test sets are then named ``fold<k>``); fold summaries group a sweep's runs without it.
        synth_generator: ``(config dataclass, generator function)`` import paths of the synthetic
            set written in the datamodule's format when ``synth`` (the dataclass's fields) is set.

    Instance state the runner sets or reads:
        skipped: what was left out, by reason (written to metrics.json).
        resume_epoch: the epoch a resumed run starts at (training samplers start there).
        tested_checkpoint: the checkpoint about to be tested (keys caches of derived data).
    """

    takes_augment: ClassVar[bool] = False
    no_augment_reason: ClassVar[str] = "it has no waveform augmentation"
    evaluate_arguments: ClassVar[Mapping[str, str]] = {}
    held_out_hint: ClassVar[str] = "validate on data that is not tested"
    fold_key: ClassVar[str | None] = None
    synth_generator: ClassVar[tuple[str, str] | None] = None

    def __init__(self) -> None:
        super().__init__()
        self.skipped = SkipLog()
        self.resume_epoch = 0
        self.tested_checkpoint: str | None = None
        self.synth: dict[str, Any] | None = None  # synth_generator's fields (data.synth), or None

    @property
    def synth_target(self) -> Path:
        """Where the synthetic set is written (the data root by default)."""
        return Path(self.root)

    def prepare_data(self) -> None:
        """Write the synthetic set when ``synth`` is configured (a no-op once it is complete)."""
        if self.synth is None or self.synth_generator is None:
            return
        config_class, generator = self.synth_generator
        log.info("synthetic %s data in %s", type(self).__name__, self.synth_target)
        get_method(generator)(self.synth_target, get_class(config_class)(**self.synth))

    @property
    def info(self) -> DataInfo:
        """What the task needs to build its heads (classes, sample rate, ...), saved in
        checkpoints."""
        raise NotImplementedError(f"{type(self).__name__} must define info")

    @property
    def batch_size_per_device(self) -> int:
        """Training examples per step on one device (the linear LR scaling reads it)."""
        return int(self.batch_size)

    def has_validation(self) -> bool:
        """Whether training validates at all (after ``setup("fit")``); without validation nothing
        monitors a validation metric: checkpoints keep the last epoch."""
        return True

    def validation_is_tested(self) -> bool:
        """Whether the validation data is also one of the test sets (then no checkpoint may be
        chosen on it)."""
        return False

    @staticmethod
    def evaluation_config(data: dict[str, Any], args: dict[str, Any]) -> dict[str, Any]:
        """The run's ``data`` config with ``evaluate.py``'s arguments (of
        :attr:`evaluate_arguments`; none may be given) applied; by default each replaces the key of
        the same name. Every evaluation passes through it, so a datamodule whose keys changed can
        also bring a saved run's config up to date here."""
        return {**data, **args}
