"""What the project's training samplers share: a draw that is a function of (seed, epoch)."""

from __future__ import annotations

import numpy as np
from torch.utils.data import Sampler


class EpochSeededSampler(Sampler[int]):
    """A sampler whose draw changes every epoch yet is a function of ``(seed, epoch)``.

    Lightning calls ``set_epoch`` before each epoch, also through the wrapper it puts around a
    custom sampler under DDP (each rank then takes its share of the same draw). Subclasses draw
    with :meth:`rng`.
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
