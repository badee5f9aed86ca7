"""Neural architectures. Each returns tensors only (never a loss) and declares its
``output_type``."""

from .ast import AudioSpectrogramTransformer
from .cnn import LogMelCnn
from .ecapa import EcapaTdnn
from .eend_eda import EendEda
from .htsat import HtsAt
from .run_embedder import VerificationRunEmbedder
from .xvector import TwoSegmentXVector, XVector

__all__ = [
    "AudioSpectrogramTransformer",
    "EcapaTdnn",
    "EendEda",
    "HtsAt",
    "LogMelCnn",
    "TwoSegmentXVector",
    "VerificationRunEmbedder",
    "XVector",
]
