"""sonolab: speaker verification, diarization and audio tagging on Lightning + Hydra."""

from . import paths  # noqa: F401  (registers the ${sonolab_root:} resolver the configs use)
from .utils import threads  # noqa: F401  (registers ${loader_workers:N})

__version__ = "0.1.0"


def __getattr__(name: str):
    # sonolab.load without importing torch and Lightning on `import sonolab`
    if name == "load":
        from .api import load

        return load
    raise AttributeError(f"module 'sonolab' has no attribute {name!r}")
