"""Metrics computed from raw predictions: EER / minDCF (verification)."""

from .eer import DetectionCost, compute_eer, compute_min_dcf, error_rates, verification_metrics

__all__ = ["DetectionCost", "compute_eer", "compute_min_dcf", "error_rates", "verification_metrics"]
