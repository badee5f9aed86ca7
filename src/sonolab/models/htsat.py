"""HTS-AT (Chen et al. 2022): a Swin Transformer over the mel spectrogram folded into a square
image, with a token-semantic head giving clip-level and frame-level class scores."""

from __future__ import annotations

import torch
from timm.models.swin_transformer import SwinTransformer, WindowAttention
from torch import nn

from .base import AudioModel


class HtsAt(AudioModel):
    """HTS-AT on timm's Swin Transformer.

    The ``(frames, n_mels)`` spectrogram is stretched in time (bicubic, as HTS-AT) to ``spec_size *
    freq_ratio`` frames, where ``freq_ratio = spec_size / n_mels``, cut into ``freq_ratio``
    consecutive
    time chunks and the chunks stacked along frequency: a ``spec_size`` x ``spec_size`` one-channel
    image (HTS-AT: 1001 frames x 64 bins -> 1024 -> four chunks of 256 frames -> 256 x 256).

    The Swin encoder (patch 4, window 8, four stages) turns it into an ``s x s`` grid of tokens. The
    token-semantic head unfolds the grid back into time order (the rows of each time chunk placed
    side by side), convolves it with a ``(rows per chunk) x 3`` kernel into one score per class and
    time token, and averages those over time: clip logits, plus the per-token ``frame_logits`` (each
    token covers ``frames_per_token`` input frames) for event localisation.

    Args:
        n_mels / frames: the front-end's mel bins and fixed frame count (at most ``spec_size *
        freq_ratio``).
        spec_size: side of the square image (256).
        patch_size / window_size / embed_dim / depths / num_heads / mlp_ratio: the Swin encoder
            (HTS-AT: 4 / 8 / 96 / 2-2-6-2 / 4-8-16-32 / 4).
        drop_rate / attn_drop_rate / drop_path_rate: dropout, attention dropout, stochastic depth
        (0.1).
        pretrained: a weights file to start from (an official HTS-AT checkpoint, or ImageNet Swin
            weights in Microsoft's or timm's key names), adapted by
            :mod:`sonolab.models.pretrained`; read from disk only.
        fused_attention: window attention through ``F.scaled_dot_product_attention`` (timm's
            fused path, the relative position bias and shift mask passed as an additive mask)
            instead of timm's explicit softmax(QK^T)V, which Swin uses unless told otherwise.
    """

    output_type = "logits"
    frame_outputs = True

    def __init__(
        self,
        n_mels: int = 64,
        frames: int = 1001,
        spec_size: int = 256,
        patch_size: int = 4,
        window_size: int = 8,
        embed_dim: int = 96,
        depths: tuple[int, ...] = (2, 2, 6, 2),
        num_heads: tuple[int, ...] = (4, 8, 16, 32),
        mlp_ratio: float = 4.0,
        drop_rate: float = 0.0,
        attn_drop_rate: float = 0.0,
        drop_path_rate: float = 0.1,
        num_classes: int = 0,
        pretrained: str | None = None,
        fused_attention: bool = False,
    ):
        super().__init__()
        if spec_size % n_mels:
            raise ValueError(
                f"spec_size {spec_size} is not a whole number of {n_mels}-bin mel spectrograms"
            )
        self.freq_ratio = spec_size // n_mels
        self.n_mels, self.spec_size = n_mels, spec_size
        self.time_steps = spec_size * self.freq_ratio  # frames the image holds
        if frames > self.time_steps:
            raise ValueError(
                f"{frames} frames do not fit a {spec_size} x {spec_size} image of {n_mels}-bin "
                "chunks "
                f"(at most {self.time_steps}); shorten the clip or enlarge spec_size"
            )
        self.frames = frames
        depths, num_heads = tuple(depths), tuple(num_heads)
        self.swin = SwinTransformer(
            img_size=spec_size,
            patch_size=patch_size,
            in_chans=1,
            num_classes=0,
            embed_dim=embed_dim,
            depths=depths,
            num_heads=num_heads,
            window_size=window_size,
            mlp_ratio=mlp_ratio,
            drop_rate=drop_rate,
            attn_drop_rate=attn_drop_rate,
            drop_path_rate=drop_path_rate,
        )
        for module in self.swin.modules():
            if isinstance(module, WindowAttention):  # timm decides per module, at construction
                module.fused_attn = fused_attention
        self.grid = (
            spec_size // patch_size // 2 ** (len(depths) - 1)
        )  # the last stage's tokens per side
        if self.grid % self.freq_ratio:
            raise ValueError(
                f"the encoder's {self.grid} x {self.grid} output grid does not split into "
                f"{self.freq_ratio} time chunks"
            )
        self.rows_per_chunk = self.grid // self.freq_ratio
        self.num_features = self.swin.num_features
        self.subsampling = self.frames_per_token = frames / (
            self.grid * self.freq_ratio
        )  # input frames per time token
        self.tscam_conv: nn.Conv2d | None = self._head(num_classes) if num_classes else None
        self._pretrained_head: dict[str, torch.Tensor] = {}
        self.pretrained_frontend: dict[str, torch.Tensor] = {}
        if pretrained:
            from .pretrained import load_into_htsat

            loaded = load_into_htsat(self, pretrained)
            self._pretrained_head, self.pretrained_frontend = loaded["head"], loaded["frontend"]

    def _head(self, num_classes: int) -> nn.Conv2d:
        return nn.Conv2d(
            self.num_features, num_classes, kernel_size=(self.rows_per_chunk, 3), padding=(0, 1)
        )

    def reset_classifier(self, num_classes: int) -> None:
        """A token-semantic head for ``num_classes`` (the encoder is kept): the pretrained file's
        when it has as many classes, else a fresh one."""
        self.tscam_conv = self._head(num_classes)
        saved = self._pretrained_head
        if saved and saved.get("weight", torch.empty(0)).shape == self.tscam_conv.weight.shape:
            self.tscam_conv.load_state_dict(saved)

    def to_image(self, features: torch.Tensor) -> torch.Tensor:
        """``(batch, frames, n_mels)`` -> ``(batch, 1, spec_size, spec_size)``: time stretched to
        the image's frames, then chunk k of ``spec_size`` frames placed at mel rows ``k*n_mels ..
        (k+1)*n_mels - 1``."""
        x = features.unsqueeze(1)  # (batch, 1, frames, mels)
        if x.shape[2] < self.time_steps:
            x = nn.functional.interpolate(
                x, (self.time_steps, self.n_mels), mode="bicubic", align_corners=True
            )
        batch = x.shape[0]
        x = x.reshape(batch, 1, self.freq_ratio, self.spec_size, self.n_mels)  # chunks of time
        return x.permute(0, 1, 2, 4, 3).reshape(batch, 1, self.spec_size, self.spec_size)

    def forward(
        self, features: torch.Tensor, frames: torch.Tensor | None = None
    ) -> dict[str, torch.Tensor]:
        """``features`` ``(batch, frames, n_mels)`` -> ``{"logits": (batch, classes),
        "frame_logits": (batch, time tokens, classes)}``."""
        if self.tscam_conv is None:
            raise RuntimeError("HtsAt has no classifier: call reset_classifier(num_classes)")
        tokens = self.swin.forward_features(self.to_image(features))  # (batch, s, s, channels)
        x = tokens.permute(0, 3, 1, 2)  # (batch, channels, s rows, s columns)
        batch, channels = x.shape[:2]
        # rows of chunk k hold time chunk k: put the chunks side by side along time
        x = x.reshape(batch, channels, self.freq_ratio, self.rows_per_chunk, self.grid)
        x = x.permute(0, 1, 3, 2, 4).reshape(
            batch, channels, self.rows_per_chunk, self.freq_ratio * self.grid
        )
        frame_logits = self.tscam_conv(x).flatten(2)  # (batch, classes, time tokens)
        return {"logits": frame_logits.mean(dim=2), "frame_logits": frame_logits.transpose(1, 2)}
