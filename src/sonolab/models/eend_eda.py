"""EEND-EDA: end-to-end neural diarization with encoder-decoder attractors (Horiguchi et al.,
2020/2022).

Features ``(batch, frames, dim)`` at 100 frames/s -> context splicing (+-``context`` frames) and
subsampling by ``subsampling`` (10 -> 10 output frames/s) -> linear projection -> Transformer
encoder (self-attention without positional encoding; pre-norm blocks by default, post-norm as in the
EEND reference with ``norm_first=false``; attention through ``scaled_dot_product_attention``, so a
whole recording fits in memory) -> frame embeddings. The EDA: an LSTM encodes the frame embeddings
in a shuffled order, an LSTM decoder fed zeros from the encoder's final state emits attractors, and
a linear layer gives each attractor's existence logit. Activities are the sigmoid of frame-embedding
x attractor products; the model returns their logits. Written here because no maintained library
ships EEND-EDA as a module (pyannote.audio's and NeMo's diarization models are other architectures).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

from .base import AudioModel
from .transformer import TransformerEncoder


def splice_and_subsample(features: torch.Tensor, context: int, subsampling: int) -> torch.Tensor:
    """Stack each kept frame with its ``context`` neighbours on both sides (zeros past the edges)
    and keep every ``subsampling``-th frame: ``(B, T, D) -> (B, ceil(T / subsampling), D * (2 *
    context + 1))``."""
    padded = nn.functional.pad(features, (0, 0, context, context))
    windows = padded.unfold(
        1, 2 * context + 1, subsampling
    )  # (B, T', D, 2c + 1), centred on frames 0, s, 2s, ...
    return windows.transpose(2, 3).reshape(features.shape[0], windows.shape[1], -1)


class EncoderDecoderAttractors(nn.Module):
    """Attractors and their existence logits from frame embeddings (the EDA of EEND-EDA)."""

    def __init__(self, dim: int):
        super().__init__()
        self.encoder = nn.LSTM(dim, dim, batch_first=True)
        self.decoder = nn.LSTM(dim, dim, batch_first=True)
        self.existence = nn.Linear(dim, 1)

    def forward(
        self,
        embeddings: torch.Tensor,
        lengths: torch.Tensor,
        count: int,
        shuffle: bool = True,
        seed: int | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``count`` attractors ``(B, count, dim)`` and existence logits ``(B, count)``.

        With ``shuffle`` each recording's valid frames are encoded in a random order (the
        attractors should not depend on the order of turns); a ``seed`` fixes each recording's
        order on its own, so its output does not depend on the rest of the batch.
        """
        batch, frames, dim = embeddings.shape
        device = embeddings.device
        if torch.compiler.is_exporting() and not shuffle:
            # sonolab export: one unpadded recording in its own order (the packing below is
            # built from the data's lengths, which an exported graph cannot hold)
            _, state = self.encoder(embeddings)
            attractors, _ = self.decoder(embeddings.new_zeros(batch, count, dim), state)
            return attractors, self.existence(attractors).squeeze(-1)

        def valid_order(n: int) -> torch.Tensor:
            if not shuffle:
                return torch.arange(n)
            return torch.randperm(
                n, generator=None if seed is None else torch.Generator().manual_seed(seed)
            )

        order = torch.stack(
            [
                torch.cat([valid_order(n).to(device), torch.arange(n, frames, device=device)])
                for n in lengths.tolist()
            ]
        )
        ordered = embeddings.gather(1, order[..., None].expand(-1, -1, dim))
        packed = pack_padded_sequence(
            ordered, lengths.clamp(min=1).cpu(), batch_first=True, enforce_sorted=False
        )
        _, state = self.encoder(packed)
        attractors, _ = self.decoder(embeddings.new_zeros(batch, count, dim), state)
        return attractors, self.existence(attractors).squeeze(-1)


class EendEda(AudioModel):
    """EEND-EDA returning activity logits, attractor-existence logits and output frame counts.

    Args:
        input_size: feature dimension per input frame.
        context: frames spliced on each side before subsampling (EEND: 7).
        subsampling: input frames per output frame (EEND: 10, giving 100 ms frames).
        d_model: embedding size of the encoder and of the attractors (EEND-EDA: 256).
        num_layers, num_heads, ff_dim, dropout: Transformer encoder (EEND-EDA: 4, 4, 2048, 0.1).
        max_speakers: attractors decoded at inference when the speaker count is not given.
        shuffle_inference: shuffle frames before the EDA at inference too (with a fixed seed, so
            the output is reproducible); training always shuffles.
        norm_first: layer norm before each encoder sublayer (pre-norm); false: the EEND
            reference's encoder (hitachi-speech/EEND ``eend/chainer_backend/transformer.py``),
            which normalises the stream before each sublayer and adds the sublayer's output to the
            normalised tensor (post-norm; see :class:`~sonolab.models.transformer.EncoderLayer`).
        fused_attention: attention through ``F.scaled_dot_product_attention`` (a long recording
            fits in one pass); False: written out, the same outputs (to measure the fused kernels).

    ``forward(features, frames, num_speakers)`` returns a dict of tensors:
    ``activities`` ``(B, T', S)`` logits for ``S = num_speakers`` (or ``max_speakers``),
    ``existence`` ``(B, S + 1)`` logits (the last attractor should not exist), ``attractors``
    ``(B, S, d_model)`` (each speaker's vector, for joining speakers across windows), ``frames``
    ``(B,)``.
    """

    output_type = "activities"

    def __init__(
        self,
        input_size: int = 23,
        context: int = 7,
        subsampling: int = 10,
        d_model: int = 256,
        num_layers: int = 4,
        num_heads: int = 4,
        ff_dim: int = 2048,
        dropout: float = 0.1,
        max_speakers: int = 4,
        shuffle_inference: bool = True,
        norm_first: bool = True,
        fused_attention: bool = True,
    ):
        super().__init__()
        self.context = context
        self.subsampling = subsampling
        self.max_speakers = max_speakers
        self.shuffle_inference = shuffle_inference
        # The reference feeds the projection straight to the first layer's norm (its lnorm_in is
        # defined but unused, transformer.py:130/149); pre-norm blocks need the norm here.
        self.input = nn.Sequential(
            nn.Linear(input_size * (2 * context + 1), d_model),
            nn.LayerNorm(d_model) if norm_first else nn.Identity(),
        )
        self.encoder = TransformerEncoder(
            d_model, num_heads, ff_dim, dropout, num_layers, norm_first, fused_attention
        )
        self.eda = EncoderDecoderAttractors(d_model)

    def prepare_export(self) -> None:
        """Exported without the inference shuffle (the graph holds no random permutation)."""
        self.shuffle_inference = False

    def output_frames(self, frames: torch.Tensor) -> torch.Tensor:
        """Output frames for ``frames`` input frames."""
        return (frames + self.subsampling - 1) // self.subsampling

    def embed(
        self, features: torch.Tensor, frames: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Frame embeddings ``(B, T', d_model)`` and their valid counts."""
        x = self.input(splice_and_subsample(features, self.context, self.subsampling))
        lengths = self.output_frames(frames).clamp(max=x.shape[1])
        padding = torch.arange(x.shape[1], device=x.device)[None] >= lengths[:, None]
        return self.encoder(x, padding), lengths

    def forward(
        self, features: torch.Tensor, frames: torch.Tensor, num_speakers: int | None = None
    ) -> dict:
        embeddings, lengths = self.embed(features, frames)
        speakers = self.max_speakers if num_speakers is None else int(num_speakers)
        shuffle = self.training or self.shuffle_inference
        seed = None if self.training else 0  # inference is reproducible
        attractors, existence = self.eda(embeddings, lengths, speakers + 1, shuffle, seed)
        activities = embeddings @ attractors[:, :speakers].transpose(1, 2)
        return {
            "activities": activities,
            "existence": existence,
            "attractors": attractors[:, :speakers],
            "frames": lengths,
        }

    @staticmethod
    def count_speakers(existence: torch.Tensor, threshold: float = 0.5) -> torch.Tensor:
        """Speakers per recording: attractors before the first one whose existence probability is
        below ``threshold``."""
        exists = torch.sigmoid(existence) >= threshold
        return exists.int().cumprod(dim=1).sum(dim=1)
