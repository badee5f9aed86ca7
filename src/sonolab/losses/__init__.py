"""Training objectives. Each takes the model's outputs and the targets, and declares its ``task_family``."""

from .margin import AdditiveAngularMarginSoftmax, AdditiveMarginSoftmax, MarginWarmup, SoftmaxCrossEntropy

__all__ = ["AdditiveAngularMarginSoftmax", "AdditiveMarginSoftmax", "MarginWarmup", "SoftmaxCrossEntropy"]
