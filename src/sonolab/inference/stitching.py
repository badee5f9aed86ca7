"""Joining window-local speakers into the speakers of a whole recording.

A model that diarizes a window at a time labels its speakers locally: speaker 0 of one window need
not be speaker 0 of the next. Every window-speaker gets an embedding (an EDA attractor, or a speaker
embedding of the audio where that speaker talks), the embeddings of all windows are clustered
together, and each window's speakers are then given distinct clusters (a cannot-link constraint:
two speakers of one window are two people). This is the EEND-vector-clustering scheme (Kinoshita
et al., 2021) and pyannote.audio 3's: agglomerative clustering of the embeddings of active
window-speakers, then per window the assignment to cluster centroids that maximises the summed
cosine similarity (Hungarian algorithm), so the constraint holds without a constrained clustering.

:func:`link_by_overlap` is the former scheme (a window's speakers matched to earlier ones by their
activity where the windows overlap), kept only so that the benchmark can print both on one input:
a speaker silent through an overlap gets a new label there.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np
from scipy.cluster.hierarchy import fcluster, linkage
from scipy.optimize import linear_sum_assignment


@dataclass
class WindowSpeakers:
    """One window's local diarization.

    first: the window's first output frame in the recording.
    activities: ``(frames, local speakers)`` activity probabilities.
    embeddings: ``(local speakers, dim)``, one row per local speaker (NaN rows: none could be
        computed, e.g. a speaker without enough speech).
    """

    first: int
    activities: np.ndarray
    embeddings: np.ndarray


@dataclass
class ClusteringConfig:
    """How window-speakers are clustered (``task.decoding.clustering.*``).

    threshold: average-linkage cosine distance below which clusters are merged (used when the
        speaker count is not given; tune it on development data).
    min_speakers / max_speakers: bounds on the estimated count (null: none).
    min_active_seconds: window-speakers active (probability above ``activity_threshold``) for less
        than this are left out of the clustering and of the output (too little speech to identify).
    activity_threshold: the probability above which a frame counts as active for that rule.
    """

    threshold: float = 0.7
    min_speakers: int = 1
    max_speakers: int | None = None
    min_active_seconds: float = 0.5
    activity_threshold: float = 0.5


def _normalise(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


def _cluster_count(tree: np.ndarray, count: int) -> np.ndarray:
    return fcluster(tree, t=count, criterion="maxclust") - 1


def cluster_window_speakers(
    windows: list[WindowSpeakers],
    step: float,
    config: ClusteringConfig,
    num_speakers: int | None = None,
) -> list[np.ndarray]:
    """Per window, the recording-level speaker of each local speaker (-1: left out).

    ``step`` is the seconds per output frame; ``num_speakers`` (oracle) fixes the count, otherwise
    it is the number of clusters at ``config.threshold``, kept within the configured bounds and
    never below the most speakers one window holds (they are that many people).
    """
    keys, vectors = [], []
    for w, window in enumerate(windows):
        active = (window.activities > config.activity_threshold).sum(0) * step
        for k in range(window.activities.shape[1]):
            vector = window.embeddings[k]
            if active[k] >= config.min_active_seconds and np.all(np.isfinite(vector)):
                keys.append((w, k))
                vectors.append(vector)
    labels = [np.full(window.activities.shape[1], -1) for window in windows]
    if not vectors:
        return labels
    points = _normalise(np.asarray(vectors, dtype=np.float64))
    if len(points) == 1:
        clusters = np.zeros(1, dtype=int)
    else:
        tree = linkage(points, method="average", metric="cosine")
        if num_speakers is not None:
            clusters = _cluster_count(tree, num_speakers)
        else:
            clusters = fcluster(tree, t=config.threshold, criterion="distance") - 1
            found = len(set(clusters))
            per_window = max(Counter(w for w, _ in keys).values())
            fewest = max(config.min_speakers, per_window)
            if found < fewest:
                clusters = _cluster_count(tree, fewest)
            elif config.max_speakers is not None and found > config.max_speakers:
                clusters = _cluster_count(tree, config.max_speakers)
    count = int(clusters.max()) + 1
    centroids = _normalise(np.stack([points[clusters == c].mean(0) for c in range(count)]))
    by_window: dict[int, list[int]] = {}
    for i, (w, _) in enumerate(keys):
        by_window.setdefault(w, []).append(i)
    for w, rows in by_window.items():
        similarity = points[rows] @ centroids.T  # (window's active speakers, clusters)
        assigned, chosen = linear_sum_assignment(-similarity)
        for r, c in zip(assigned, chosen):
            labels[w][keys[rows[r]][1]] = int(c)
        # More active speakers in the window than clusters: the rest join their nearest cluster
        # (the constraint cannot hold when the count is fixed below what the window shows).
        for r in sorted(set(range(len(rows))) - set(assigned.tolist())):
            labels[w][keys[rows[r]][1]] = int(similarity[r].argmax())
    return labels


def stitch(windows: list[WindowSpeakers], labels: list[np.ndarray], total: int) -> np.ndarray:
    """Recording activities ``(total frames, speakers)``: each window's speakers placed in their
    recording-level columns (the larger where two share one) and averaged over the windows that
    cover a frame (a window in which a speaker is silent counts as silence)."""
    count = max((int(lab.max()) + 1 for lab in labels if lab.size), default=0)
    sums = np.zeros((total, count), dtype=np.float64)
    weight = np.zeros(total, dtype=np.float64)
    for window, lab in zip(windows, labels):
        probs = window.activities[: total - window.first]
        span = slice(window.first, window.first + probs.shape[0])
        placed = np.zeros((probs.shape[0], count))
        for k, c in enumerate(lab):
            if c >= 0:
                placed[:, c] = np.maximum(placed[:, c], probs[:, k])
        sums[span] += placed
        weight[span] += 1
    return sums / np.maximum(weight, 1)[:, None]


def link_by_overlap(windows: list[WindowSpeakers], total: int, threshold: float) -> np.ndarray:
    """The former scheme, for comparison only: each window's speakers matched to those found so far
    by their activity in the frames earlier windows cover (Hungarian algorithm on the summed
    activity products, accepted above ``threshold`` normalised agreement); unmatched ones are
    new."""
    sums = np.zeros((total, 0), dtype=np.float64)
    weight = np.zeros(total, dtype=np.float64)
    for window in windows:
        probs = window.activities[: total - window.first]
        span = slice(window.first, window.first + probs.shape[0])
        covered = weight[span] > 0
        earlier = sums[span][covered] / weight[span][covered, None]
        current = probs[covered]
        links: list[int | None] = [None] * probs.shape[1]
        if current.shape[0] and current.shape[1] and earlier.shape[1]:
            product = current.T @ earlier
            norms = np.sqrt(np.outer((current**2).sum(0), (earlier**2).sum(0))) + 1e-9
            for r, c in zip(*linear_sum_assignment(-product)):
                if product[r, c] / norms[r, c] > threshold:
                    links[r] = int(c)
        for k, link in enumerate(links):
            if link is None:
                sums = np.concatenate([sums, np.zeros((total, 1))], axis=1)
                link = sums.shape[1] - 1
            sums[span, link] += probs[:, k]
        weight[span] += 1
    return sums / np.maximum(weight, 1)[:, None]
