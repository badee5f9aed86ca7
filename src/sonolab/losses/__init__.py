"""Training objectives. Each takes the model's outputs and the targets, and declares the
prediction type it consumes (``prediction_type``, :class:`~sonolab.losses.base.Prediction`)."""

from .margin import (
    AdditiveAngularMarginSoftmax,
    AdditiveMarginSoftmax,
    MarginWarmup,
    SoftmaxCrossEntropy,
)
from .pit import PermutationInvariantBCE
from .tagging import LabelCrossEntropy, MultiLabelBCE

__all__ = [
    "AdditiveAngularMarginSoftmax",
    "AdditiveMarginSoftmax",
    "LabelCrossEntropy",
    "MarginWarmup",
    "MultiLabelBCE",
    "PermutationInvariantBCE",
    "SoftmaxCrossEntropy",
]
