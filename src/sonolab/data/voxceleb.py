"""Former name of :mod:`sonolab.data.verification`, kept so that run folders written before the
rename (their ``.hydra/config.yaml`` names ``sonolab.data.voxceleb.VoxCelebDataModule``) still
evaluate."""

from .verification import VoxCelebDataModule

__all__ = ["VoxCelebDataModule"]
