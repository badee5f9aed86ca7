"""Evaluation batches of similar lengths: utterances sorted longest first and cut into batches
whose padded size stays within a budget.

A batch pads its utterances to its longest; sorted, they pad little. A fixed count per batch is a
poor fit for lists of 2 to 30 s: on a CPU, 16 utterances of 2 s run faster together than one by
one, while 16 of 30 s run slower than one by one (the activations leave the caches), so a batch
also stops at a number of padded seconds (docs/benchmarks.md, ``evaluation``).

The batches are items of a :class:`LengthBatches` dataset, loaded with ``batch_size=1``, so that
under DDP Lightning's distributed sampler hands whole batches to the ranks (a custom batch sampler
would not be split).
"""

from __future__ import annotations

import math

from torch.utils.data import Dataset


def length_batches(
    lengths: list[float], max_items: int, max_padded: float | None = None
) -> list[list[int]]:
    """Indices of ``lengths`` from the longest to the shortest (equal lengths in index order), cut
    into batches of at most ``max_items`` whose padded size (items x the batch's longest) is at
    most ``max_padded`` (None: no limit). An item longer than ``max_padded`` makes a batch of its
    own. Longest first, so a batch that does not fit in memory fails at once."""
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    limit = math.inf if max_padded is None else max_padded
    batches: list[list[int]] = []
    for index in order:
        batch = batches[-1] if batches else None
        # the batch's first item is its longest: the padded size is its length x the count
        if batch and len(batch) < max_items and (len(batch) + 1) * lengths[batch[0]] <= limit:
            batch.append(index)
        else:
            batches.append([index])
    return batches


class LengthBatches(Dataset):
    """``dataset``'s items grouped by :func:`length_batches`: item ``k`` is the list of the ``k``-th
    batch's items, which ``collate`` (the wrapped dataset's collate function) turns into one
    batch."""

    def __init__(self, dataset: Dataset, batches: list[list[int]], collate):
        self.dataset = dataset
        self.batches = batches
        self.collate = collate

    def __len__(self) -> int:
        return len(self.batches)

    def __getitem__(self, index: int) -> list:
        return [self.dataset[i] for i in self.batches[index]]

    def collate_one(self, groups: list[list]) -> dict:
        """The DataLoader's collate function (``batch_size=1``): one group, collated."""
        return self.collate([item for group in groups for item in group])
