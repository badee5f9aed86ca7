"""ECAPA-TDNN speaker encoder (Desplanques et al., 2020) built on speechbrain's lobe."""

from __future__ import annotations

from speechbrain.lobes.models.ECAPA_TDNN import ECAPA_TDNN

from ._speechbrain import SpeechbrainEmbedding


class EcapaTdnn(SpeechbrainEmbedding):
    """ECAPA-TDNN with channel width ``channels`` (C in the paper) and ``mfa_channels`` in the
    multi-layer feature aggregation layer (the last frame layer, before attentive pooling).

    C=512 and C=1024 are the published sizes, both with a 1536-wide aggregation layer (the paper's
    Figure 2 and WeSpeaker's ECAPA_TDNN_GLOB_c512 / c1024: 6.2 M and 14.7 M parameters);
    ``mfa_channels`` null makes it 3C wide (the same at C=512; 20.8 M at C=1024). Small widths
    (64-256) train on a laptop CPU.
    """

    def __init__(
        self,
        input_size: int = 80,
        channels: int = 512,
        mfa_channels: int | None = 1536,
        embedding_dim: int = 192,
        attention_channels: int = 128,
        se_channels: int = 128,
        res2net_scale: int = 8,
        kernel_sizes: tuple[int, ...] = (5, 3, 3, 3, 1),
        dilations: tuple[int, ...] = (1, 2, 3, 4, 1),
        global_context: bool = True,
        dropout: float = 0.0,
    ):
        encoder = ECAPA_TDNN(
            input_size,
            lin_neurons=embedding_dim,
            channels=[channels] * 4 + [mfa_channels or 3 * channels],
            kernel_sizes=list(kernel_sizes),
            dilations=list(dilations),
            attention_channels=attention_channels,
            res2net_scale=res2net_scale,
            se_channels=se_channels,
            global_context=global_context,
            dropout=dropout,
        )
        super().__init__(encoder, embedding_dim)
