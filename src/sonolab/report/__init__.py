"""Run outputs: metrics JSON, markdown tables and plots."""

from .verification import write_verification_report

__all__ = ["write_verification_report"]
