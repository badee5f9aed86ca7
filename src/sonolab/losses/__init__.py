"""Training objectives. Each takes the model's outputs and the targets, and declares its ``task_family``."""

from .margin import AdditiveAngularMarginSoftmax, AdditiveMarginSoftmax, MarginWarmup, SoftmaxCrossEntropy
from .pit import PermutationInvariantBCE

__all__ = ["AdditiveAngularMarginSoftmax", "AdditiveMarginSoftmax", "MarginWarmup", "PermutationInvariantBCE",
           "SoftmaxCrossEntropy"]
