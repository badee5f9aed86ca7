"""sonolab: speaker verification, diarization and audio tagging on Lightning + Hydra."""

__version__ = "0.1.0"
