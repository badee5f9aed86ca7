"""LightningModules: the only place where model, loss, features and metrics meet."""

from .verification import VerificationTask

__all__ = ["VerificationTask"]
