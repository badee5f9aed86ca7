"""sonolab: speaker verification, diarization and audio tagging on Lightning + Hydra."""

from . import paths  # noqa: F401  (registers the ${sonolab_root:} resolver the configs use)

__version__ = "0.1.0"
