"""Front-ends that run on the device inside the task: raw audio in, frames x features out."""

from .ast_fbank import AstFbank
from .base import FrontEnd
from .fbank import KaldiFbank
from .htsat_mel import HtsatLogMel

__all__ = ["AstFbank", "FrontEnd", "HtsatLogMel", "KaldiFbank"]
