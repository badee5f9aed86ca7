"""LightningModules: the only place where model, loss, features and metrics meet."""

from .diarization import DiarizationTask
from .verification import VerificationTask

__all__ = ["DiarizationTask", "VerificationTask"]
