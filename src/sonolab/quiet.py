"""A quiet start-up: what Lightning and PyTorch print at every run that tells a researcher nothing
about the run (advertising tips, a deprecation inside Lightning's own code) is left out."""

from __future__ import annotations

import logging
import warnings

# Lightning's rank-zero messages go through these loggers (the pytorch one replaces the fabric one
# when lightning.pytorch is imported; both are filtered)
RANK_ZERO_LOGGERS = (
    "lightning.pytorch.utilities.rank_zero",
    "lightning.fabric.utilities.rank_zero",
)


class _NoTips(logging.Filter):
    """Drops Lightning's "💡 Tip: ..." lines (installing its cloud products)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("💡 Tip")


_FILTER = _NoTips()


def quiet_startup() -> None:
    """Install the filters (idempotent)."""
    for name in RANK_ZERO_LOGGERS:
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)
    # raised by lightning.pytorch.utilities._pytree on every step with torch 2.11; not ours to fix
    warnings.filterwarnings(
        "ignore",
        message=r"`isinstance\(treespec, LeafSpec\)` is deprecated",
        category=FutureWarning,
    )
