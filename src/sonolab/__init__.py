"""sonolab: speaker verification, diarization and audio tagging on Lightning + Hydra."""

import os

# Idle OpenMP threads sleep instead of spinning (read once, when torch loads its OpenMP runtime, so
# it is set before anything imports torch). Spinning threads take the cores a second process on
# the machine needs: an evaluation beside a training run on 2 cores ran 5-8x slower with the
# default (measured in benchmarks/suite/threads.py, see docs/benchmarks.md). OMP_WAIT_POLICY=ACTIVE
# in the environment keeps the spinning.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from . import paths  # noqa: F401  (registers the ${sonolab_root:} resolver the configs use)

__version__ = "0.1.0"


def __getattr__(name: str):
    # sonolab.load without importing torch and Lightning on `import sonolab`
    if name == "load":
        from .api import load

        return load
    raise AttributeError(f"module 'sonolab' has no attribute {name!r}")
