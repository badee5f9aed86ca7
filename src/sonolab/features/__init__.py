"""Front-ends that run on the device inside the task: raw audio in, frames x features out."""

from .fbank import KaldiFbank

__all__ = ["KaldiFbank"]
