"""What a reader or datamodule left out on purpose, counted by reason and reported.

The project's rule for bad or unusable input is: an error naming the file, or, where a config
key chooses it, a skip that is counted here, logged, and written to the run's ``metrics.json``
(``skipped``). Nothing is dropped without passing through one of these.
"""

from __future__ import annotations

import logging
from collections import Counter


class SkipLog:
    """Counts of skipped items per reason, with the first few examples of each."""

    def __init__(self, max_examples: int = 5):
        self.max_examples = max_examples
        self.counts: Counter[str] = Counter()
        self.examples: dict[str, list[str]] = {}

    def add(self, reason: str, example: str, count: int = 1) -> None:
        """Record ``count`` items skipped for ``reason``; ``example`` names one (a path,
        file:line)."""
        self.counts[reason] += count
        shown = self.examples.setdefault(reason, [])
        if len(shown) < self.max_examples:
            shown.append(example)

    def update(self, other: SkipLog) -> None:
        """Add another log's counts and examples to this one."""
        for reason, count in other.counts.items():
            self.counts[reason] += count
            shown = self.examples.setdefault(reason, [])
            shown.extend(other.examples.get(reason, [])[: max(0, self.max_examples - len(shown))])

    def __bool__(self) -> bool:
        return bool(self.counts)

    def as_dict(self) -> dict[str, dict]:
        """``{reason: {"count": n, "examples": [...]}}`` for metrics.json."""
        return {
            r: {"count": int(n), "examples": list(self.examples.get(r, []))}
            for r, n in sorted(self.counts.items())
        }

    def report(self, logger: logging.Logger, context: str, level: int = logging.WARNING) -> None:
        """One log line per reason, e.g. ``training tree: 3 x hidden entry ignored (e.g.
        ./.git)``."""
        for reason, entry in self.as_dict().items():
            logger.log(
                level,
                "%s: %d x %s (e.g. %s)",
                context,
                entry["count"],
                reason,
                ", ".join(entry["examples"]),
            )
