"""What the project's training samplers share: a draw that is a function of (seed, epoch), whose
items carry the key that seeds their own randomness.

A run is reproducible, and a resumed run continues exactly as one that never stopped, only if
every random choice is a function of the seed and of where the run is, never of process state
(the DataLoader's worker seeds come from the main process's generator, which a resumed process
has in a different state). So training samplers yield :class:`Draw` keys ``(index, epoch,
position)`` and datasets draw crops, augmentation and mixup partners from :func:`draw_rng`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

import numpy as np
from torch.utils.data import Sampler

if TYPE_CHECKING:  # the base module imports this one
    from .base import AudioDataModule


class Draw(NamedTuple):
    """One training draw: the dataset ``index``, and the ``epoch`` and ``position`` in that epoch's
    draw that, with the run's seed, seed the item's randomness (an item drawn twice in one epoch
    gets two different crops)."""

    index: int
    epoch: int
    position: int


def draw_index(key: int | Draw) -> int:
    """The dataset index of ``key`` (a :class:`Draw` or a plain index), for items with no
    randomness."""
    return key.index if isinstance(key, Draw) else int(key)


def draw_rng(key: int | Draw, seed: int) -> tuple[int, np.random.Generator | None]:
    """The dataset index of ``key`` and, for a :class:`Draw`, its generator (seeded by ``seed``,
    epoch and position); a plain index (evaluation, tests) has none."""
    if isinstance(key, Draw):
        return key.index, np.random.default_rng([seed, key.epoch, key.position])
    return draw_index(key), None


class EpochSeededSampler(Sampler[Draw]):
    """A sampler whose draw changes every epoch yet is a function of ``(seed, epoch)``.

    Lightning calls ``set_epoch`` before each epoch, also through the wrapper it puts around a
    custom sampler under DDP (each rank then takes its share of the same draw). Subclasses give the
    epoch's dataset indices in :meth:`order`, drawn with :meth:`rng`; iteration yields them as
    :class:`Draw` keys.
    """

    def __init__(self, seed: int = 0):
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Called by Lightning before each epoch so every epoch draws differently."""
        self.epoch = epoch

    def rng(self) -> np.random.Generator:
        """This epoch's random generator."""
        return np.random.default_rng([self.seed, self.epoch])

    def order(self) -> list[int]:
        """This epoch's dataset indices, in the order they are drawn."""
        raise NotImplementedError

    def __iter__(self):
        epoch = self.epoch
        return iter(
            [Draw(int(index), epoch, position) for position, index in enumerate(self.order())]
        )


class ShuffleSampler(EpochSeededSampler):
    """Every index once per epoch, in an order seeded by (seed, epoch): the training shuffle, in
    place of torch's RandomSampler whose order depends on the process's generator state."""

    def __init__(self, size: int, seed: int = 0):
        super().__init__(seed)
        self.size = size

    def __len__(self) -> int:
        return self.size

    def order(self) -> list[int]:
        """A seeded permutation of the dataset."""
        return self.rng().permutation(self.size).tolist()


def start_at_epoch(sampler: EpochSeededSampler, datamodule: AudioDataModule) -> EpochSeededSampler:
    """Set ``sampler`` to the epoch that ``datamodule``'s trainer is about to run.

    Lightning creates the first epoch's iterator (which draws the order, and whose workers prefetch)
    before it calls ``set_epoch``, and when a schedule asks for ``estimated_stepping_batches`` even
    before it restores a resumed run's loop state; that iterator then serves the first epoch. So the
    epoch comes from the trainer's restored progress or, before the restore, from the
    ``resume_epoch`` that train.py reads from the checkpoint it resumes."""
    epoch = int(datamodule.resume_epoch or 0)
    trainer = datamodule.trainer
    if trainer is not None:
        epoch = max(epoch, int(trainer.fit_loop.epoch_progress.current.processed))
    sampler.set_epoch(epoch)
    return sampler
