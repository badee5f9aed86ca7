"""LightningModules: the only place where model, loss, features and metrics meet."""

from .clustering_diarization import ClusteringDiarizationTask
from .diarization import DiarizationTask
from .sed import SoundEventDetectionTask
from .tagging import TaggingTask
from .verification import VerificationTask

__all__ = [
    "ClusteringDiarizationTask",
    "DiarizationTask",
    "SoundEventDetectionTask",
    "TaggingTask",
    "VerificationTask",
]
