"""A trained verification run's front-end and embedding model, as a model of another task (the
clustering diarization pipeline embeds its windows with it)."""

from __future__ import annotations

from pathlib import Path

import torch

from ..utils.io import from_cwd
from .base import AudioModel


class VerificationRunEmbedder(AudioModel):
    """The front-end and embedding model of a trained verification run folder.

    Its weights are the run's (its recorded checkpoint, or ``ckpt_path``: best / last / a file) and
    are saved with the task that holds it, so a run built on it can be scored again.

    Args:
        run_dir: a verification run folder (``logs/train/runs/<id>``).
        ckpt_path: which of its checkpoints (null: the one its metrics.json records).
    """

    output_type = "embedding"

    def __init__(self, run_dir: str | Path, ckpt_path: str | None = None):
        super().__init__()
        from ..inference.embedding import load_verification_task

        task = load_verification_task(from_cwd(run_dir), ckpt_path)
        self.frontend = task.features
        self.encoder = task.model
        self.embedding_dim = int(task.model.embedding_dim)
        self.sample_rate = int(task.data_info.sample_rate)
        self.eval()

    def forward(self, features: torch.Tensor, frames: torch.Tensor) -> dict[str, torch.Tensor]:
        """Front-end features -> ``{"embedding": (batch, embedding_dim)}``."""
        return self.encoder(features, frames)

    def embed(self, wave: torch.Tensor, length: torch.Tensor) -> torch.Tensor:
        """Waveforms ``(batch, samples)`` at :attr:`sample_rate` -> embeddings."""
        features, frames = self.frontend(wave, length)
        return self.encoder(features, frames)["embedding"]
