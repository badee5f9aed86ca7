"""An oracle window-local model: what the stitching of windows costs on its own.

Each window's local result is the reference activity of the speakers present in it (in a shuffled
order, as a model's local labels are arbitrary), and each window-speaker's embedding is that
speaker's direction plus Gaussian noise calibrated to a chosen same / different-speaker cosine EER.
Stitching these windows and scoring against the reference isolates the errors of the joining
scheme (no model error), on real conversations' turn-taking (``benchmarks/stitching.py`` runs it on
the AMI test meetings' references).
"""

from __future__ import annotations

import numpy as np
from pyannote.core import Annotation

from ..metrics.eer import eer_from_rates, error_rates
from .stitching import (
    ClusteringConfig,
    WindowSpeakers,
    cluster_window_speakers,
    link_by_overlap,
    stitch,
)


def reference_activity(reference: Annotation, total: int, step: float) -> tuple[np.ndarray, list]:
    """``(total frames, speakers)`` 0/1 activity of ``reference`` (frame ``t`` is active when a turn
    covers its centre ``(t + 0.5) * step``) and the speaker labels of its columns."""
    speakers = sorted(reference.labels())
    activity = np.zeros((total, len(speakers)), dtype=np.float64)
    for k, speaker in enumerate(speakers):
        for segment in reference.label_timeline(speaker):
            first = max(0, int(np.ceil(segment.start / step - 0.5)))
            last = min(total, int(np.ceil(segment.end / step - 0.5)))
            activity[first:last, k] = 1.0
    return activity, speakers


def noisy_embeddings(directions: np.ndarray, noise: float, rng: np.random.Generator) -> np.ndarray:
    """Unit ``directions`` plus isotropic Gaussian noise of expected norm ``noise``."""
    dim = directions.shape[-1]
    return directions + rng.normal(0.0, noise / np.sqrt(dim), size=directions.shape)


def random_directions(count: int, dim: int, rng: np.random.Generator) -> np.ndarray:
    """``count`` random unit vectors of ``dim`` dimensions."""
    vectors = rng.normal(size=(count, dim))
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def embedding_eer(noise: float, dim: int, rng: np.random.Generator, speakers: int = 1000) -> float:
    """The cosine EER (%) of same / different-speaker pairs of :func:`noisy_embeddings`."""
    directions = random_directions(speakers, dim, rng)
    a = noisy_embeddings(directions, noise, rng)
    b = noisy_embeddings(directions, noise, rng)
    a /= np.linalg.norm(a, axis=1, keepdims=True)
    b /= np.linalg.norm(b, axis=1, keepdims=True)
    scores = a @ b.T
    labels = np.eye(speakers, dtype=bool)
    p_miss, p_fa, _ = error_rates(scores.ravel(), labels.ravel())
    return 100.0 * eer_from_rates(p_miss, p_fa)


def noise_for_eer(
    eer: float, dim: int, seed: int = 0, speakers: int = 1000, draws: int = 3
) -> float:
    """The noise norm at which :func:`embedding_eer`, averaged over ``draws`` draws, is ``eer``
    (%), by bisection (the EER grows with the noise; the same draws at every step)."""
    low, high = 0.0, 10.0
    for _ in range(25):
        middle = (low + high) / 2
        measured = np.mean(
            [
                embedding_eer(middle, dim, np.random.default_rng([seed, d]), speakers)
                for d in range(draws)
            ]
        )
        low, high = (middle, high) if measured < eer else (low, middle)
    return (low + high) / 2


def oracle_windows(
    reference: Annotation,
    total: int,
    step: float,
    window_seconds: float,
    hop_seconds: float,
    noise: float,
    rng: np.random.Generator,
    dim: int = 192,
) -> list[WindowSpeakers]:
    """The windows an oracle local model gives over ``total`` output frames: in each, the speakers
    with reference activity there, shuffled, each with a noisy embedding of its own direction."""
    activity, speakers = reference_activity(reference, total, step)
    directions = random_directions(len(speakers), dim, rng)
    size, hop = int(round(window_seconds / step)), int(round(hop_seconds / step))
    windows = []
    for first in range(0, max(total - size, 0) + hop, hop):
        part = activity[first : first + size]
        present = np.flatnonzero(part.any(axis=0))
        order = rng.permutation(present)
        windows.append(
            WindowSpeakers(
                first=first,
                activities=part[:, order],
                embeddings=noisy_embeddings(directions[order], noise, rng),
            )
        )
        if first + size >= total:
            break
    return windows


def stitching_der(
    references: dict[str, Annotation],
    uems: dict,
    window_seconds: float,
    hop_seconds: float,
    noise: float,
    threshold: float | None,
    seed: int = 0,
    dim: int = 192,
    step: float = 0.1,
    link_threshold: float = 0.3,
) -> dict:
    """Collar-0 corpus DER (overlap scored) of the references' oracle windows joined by clustering
    at ``threshold`` or, with None, by overlap activity (:func:`link_by_overlap` at
    ``link_threshold``); with ``confusion_pct`` (of the speech) and ``labels`` per recording."""
    from ..metrics.der import SETUPS, diarization_error_rates
    from .diarization import activities_to_annotation

    hypotheses = {}
    for i, (uri, reference) in enumerate(sorted(references.items())):
        total = int(np.ceil(uems[uri].extent().end / step))
        rng = np.random.default_rng([seed, i])
        windows = oracle_windows(
            reference, total, step, window_seconds, hop_seconds, noise, rng, dim
        )
        if threshold is None:
            probs = link_by_overlap(windows, total, link_threshold)
        else:
            config = ClusteringConfig(threshold=threshold, min_active_seconds=0.0)
            probs = stitch(windows, cluster_window_speakers(windows, step, config), total)
        hypotheses[uri] = activities_to_annotation(probs, step, uri)
    collar0 = tuple(s for s in SETUPS if s.key == "collar0")
    corpus = diarization_error_rates(references, hypotheses, uems, collar0)["collar0"]["corpus"]
    return {
        **corpus,
        "confusion_pct": 100 * corpus["confusion"] / corpus["speech"],
        "labels": {uri: len(h.labels()) for uri, h in hypotheses.items()},
    }
