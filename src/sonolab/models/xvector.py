"""x-vector TDNN speaker encoder (Snyder et al., 2018) built on speechbrain's lobe."""

from __future__ import annotations

from speechbrain.lobes.models.Xvector import Xvector as SbXvector

from ._speechbrain import SpeechbrainEmbedding


class XVector(SpeechbrainEmbedding):
    """Five TDNN layers, statistics pooling and one embedding layer (512-dim in the paper)."""

    def __init__(
        self,
        input_size: int = 80,
        channels: int = 512,
        stats_channels: int = 1500,
        embedding_dim: int = 512,
        kernel_sizes: tuple[int, ...] = (5, 3, 3, 1, 1),
        dilations: tuple[int, ...] = (1, 2, 3, 1, 1),
    ):
        encoder = SbXvector(
            tdnn_blocks=5,
            tdnn_channels=[channels] * 4 + [stats_channels],
            tdnn_kernel_sizes=list(kernel_sizes),
            tdnn_dilations=list(dilations),
            lin_neurons=embedding_dim,
            in_channels=input_size,
        )
        super().__init__(encoder, embedding_dim)
