"""Speaker verification runs as a Python object: embeddings of files or waveforms, and the cosine
score of two (what ``sonolab.load`` gives for a verification run)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from ..data.verification import collate_padded
from ..utils.errors import ConfigValueError
from .base import (
    COMMAND_OPTIONS,
    COMMAND_OPTIONS_HELP,
    AudioInput,
    InferenceModel,
    batches,
    command_model,
)


class SpeakerVerifier(InferenceModel):
    """A trained verification run: ``embed`` files or waveforms, ``score`` two of them.

    Each input is embedded whole, as evaluation embeds trial utterances. With ``batch_size`` 1
    (the default) the embeddings are those evaluation computes; larger batches pad the shorter
    inputs of a batch (inputs are grouped by length first), which models whose convolutions see
    the padding (the speechbrain lobes) turn into slightly different embeddings.
    """

    @property
    def embedding_dim(self) -> int:
        """Length of an embedding."""
        return int(self.task.model.embedding_dim)

    @torch.inference_mode()
    def embed_with_keys(
        self,
        items: Sequence[AudioInput],
        batch_size: int = 1,
        on_error: str = "raise",
        max_seconds: float | None = None,
    ) -> tuple[list[str], np.ndarray]:
        """The keys (paths, or ``#<index>`` for waveforms) of the inputs read and their
        embeddings ``(n, dim)`` in input order; ``max_seconds`` embeds only each input's start;
        ``on_error="skip"`` leaves unreadable files out (counted in :attr:`skipped`)."""
        limit = None if max_seconds is None else int(max_seconds * self.sample_rate)
        loaded = [(a.index, a.key, a.wave[:limit]) for a in self.loaded(items, on_error, "embed")]
        # grouped by length so that a batch pads little; written back in input order
        order = sorted(range(len(loaded)), key=lambda i: loaded[i][2].numel())
        out = np.zeros((len(loaded), self.embedding_dim), dtype=np.float32)
        for rows in batches(order, batch_size):
            batch = collate_padded([{"wave": loaded[r][2]} for r in rows])
            emb = self.task.embed(batch["wave"].to(self.device), batch["length"].to(self.device))
            out[rows] = emb.float().cpu().numpy()
        return [key for _, key, _ in loaded], out

    def embed(self, items: AudioInput | Sequence[AudioInput], batch_size: int = 1) -> np.ndarray:
        """Embeddings ``(n, dim)`` of files or waveforms (``(dim,)`` for a single input); a file
        that cannot be read is an error naming it."""
        single = isinstance(items, (str, Path, np.ndarray, torch.Tensor))
        _, out = self.embed_with_keys([items] if single else list(items), batch_size)
        return out[0] if single else out

    def score(self, a: AudioInput, b: AudioInput) -> float:
        """Cosine similarity of two inputs' embeddings (no score normalisation), in [-1, 1]:
        higher means more likely the same speaker."""
        first, second = torch.from_numpy(self.embed([a, b]))
        return float(torch.nn.functional.cosine_similarity(first, second, dim=0))


def score_command(argv: list[str]) -> int:
    """Score two audio files: sonolab score a.wav b.wav run_dir=<verification run>

    Prints the cosine similarity of their embeddings (each file embedded whole, no score
    normalisation): higher means more likely the same speaker. Options (key=value):
      {common}
    """
    from ..cli import key_values  # the command line builds on the inference objects

    inputs, args = key_values(argv, score_command, dict(COMMAND_OPTIONS), positional="audio")
    if len(inputs) != 2:
        raise ConfigValueError("inputs", "two audio files to score", " ".join(inputs) or "none")
    verifier = command_model(args, SpeakerVerifier, "score")
    print(f"{verifier.score(*inputs):.6f}")
    return 0


score_command.__doc__ = score_command.__doc__.format(common=COMMAND_OPTIONS_HELP)
