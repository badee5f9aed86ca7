"""Front-ends that run on the device inside the task: raw audio in, frames x features out."""

from .ast_fbank import AstFbank
from .fbank import KaldiFbank

__all__ = ["AstFbank", "KaldiFbank"]
