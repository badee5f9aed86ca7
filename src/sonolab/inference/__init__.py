"""Inference utilities: trial scoring (cosine, mean subtraction, AS-norm)."""

from .scoring import ScoringConfig, as_norm, cohort_means, score_trials

__all__ = ["ScoringConfig", "as_norm", "cohort_means", "score_trials"]
