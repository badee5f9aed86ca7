"""LightningModules: the only place where model, loss, features and metrics meet."""

from .diarization import DiarizationTask
from .tagging import TaggingTask
from .verification import VerificationTask

__all__ = ["DiarizationTask", "TaggingTask", "VerificationTask"]
