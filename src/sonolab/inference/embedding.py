"""Speaker embeddings from a trained verification run, for the diarization pipelines: one loaded
model that embeds waveforms, and the embedding of each window-speaker from the audio where that
speaker talks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..checkpoints import load_trained_task


def load_verification_task(run_dir: str | Path, ckpt_path: str | None = None):
    """The trained :class:`~sonolab.tasks.verification.VerificationTask` of a run folder (its
    recorded checkpoint, or ``ckpt_path``: best / last / a file), in eval mode; any other family's
    run is refused naming it."""
    from ..tasks.verification import VerificationTask

    return load_trained_task(run_dir, VerificationTask, "speaker embeddings", ckpt_path)


class SpeakerEmbedder:
    """Embeds single waveforms with a verification run's front-end and model (the run's sample
    rate), for code outside a task (windowed EEND-EDA decoding)."""

    def __init__(self, run_dir: str | Path, device: torch.device | str = "cpu"):
        from ..models.run_embedder import VerificationRunEmbedder

        self.model = VerificationRunEmbedder(run_dir).to(device)
        self.device = torch.device(device)
        self.sample_rate = self.model.sample_rate
        self.dim = self.model.embedding_dim

    @torch.inference_mode()
    def __call__(self, wave: torch.Tensor) -> np.ndarray:
        """The embedding ``(dim,)`` of one waveform ``(samples,)`` at :attr:`sample_rate`."""
        wave = wave.to(self.device)[None]
        length = torch.tensor([wave.shape[1]], device=self.device)
        return self.model.embed(wave, length)[0].float().cpu().numpy()


def speaker_audio(
    wave: torch.Tensor,
    activities: np.ndarray,
    step: float,
    sample_rate: int,
    threshold: float = 0.5,
    min_seconds: float = 0.5,
) -> list[torch.Tensor | None]:
    """For each speaker (column of ``activities``, frames of ``step`` seconds over ``wave``) the
    samples of the frames where it alone is active; where that is shorter than ``min_seconds``,
    every frame where it is active (overlap too); None when even that is too short."""
    active = activities > threshold
    alone = active & (active.sum(axis=1, keepdims=True) == 1)
    hop = step * sample_rate
    out: list[torch.Tensor | None] = []
    for k in range(activities.shape[1]):
        chosen = None
        for frames in (alone[:, k], active[:, k]):
            if frames.sum() * step >= min_seconds:
                chosen = frames
                break
        if chosen is None:
            out.append(None)
            continue
        samples = np.zeros(wave.numel(), dtype=bool)
        for t in np.flatnonzero(chosen):
            samples[int(round(t * hop)) : int(round((t + 1) * hop))] = True
        out.append(wave[torch.from_numpy(samples)])
    return out


def window_embeddings(
    embedder: SpeakerEmbedder,
    wave: torch.Tensor,
    activities: np.ndarray,
    step: float,
    threshold: float = 0.5,
    min_seconds: float = 0.5,
) -> np.ndarray:
    """``(speakers, dim)`` embeddings of a window's speakers from their own audio (:func:
    `speaker_audio`); NaN rows for speakers with too little of it."""
    rows = np.full((activities.shape[1], embedder.dim), np.nan, dtype=np.float32)
    for k, audio in enumerate(
        speaker_audio(wave, activities, step, embedder.sample_rate, threshold, min_seconds)
    ):
        if audio is not None:
            rows[k] = embedder(audio)
    return rows
