"""The clustering diarization pipeline: speech activity -> sliding windows -> speaker embeddings
-> clustering -> turns (the x-vector + clustering system, and pyannote.audio's backbone).

Each step is a function so a pipeline can be tuned without recomputing the expensive part: the
speech regions and the embeddings of a recording are computed once
(:func:`embed_recording`), and the clustering (:func:`cluster_embeddings`) is re-run for each
candidate threshold on the development recordings.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf
from pyannote.core import Annotation, Segment, Timeline
from scipy.cluster.hierarchy import fcluster, linkage
from scipy.linalg import eigh

from ..data.audio import load_audio
from ..data.speech_activity import silero_regions
from ..metrics.der import corpus_der
from ..utils.errors import ConfigValueError
from .diarization import activities_to_annotation, oracle_speech
from .eend_activity import FrameActivity, assign_overlap

SPEECH_ACTIVITY = ("silero", "oracle", "eend")
METHODS = ("ahc", "spectral")
FRAME_STEP = 0.01  # seconds per output frame (the references' 10 ms resolution)
# Windows shorter than this are not embedded: a few feature frames are less than the embedding
# models' dilated convolutions pad (ECAPA needs more than 4), and hold too little speech to place.
SHORTEST_WINDOW_SECONDS = 0.1


@dataclass
class PipelineConfig:
    """The clustering pipeline's settings (every field is a ``task.pipeline.*`` config key).

    speech_activity: ``silero`` (the silero-vad package's model), ``oracle`` (the reference's
        speech inside the scored regions: oracle-VAD scoring) or ``eend`` (where the EEND-EDA run
        ``eend_run`` finds any speaker).
    eend_run: a trained EEND-EDA run folder, for ``speech_activity=eend`` and ``overlap``.
    overlap: give overlapped speech its second speaker from ``eend_run``'s activities (each EEND
        speaker matched to the cluster it shares most frames with).
    overlap_threshold: the activity probability at which the EEND speakers count as overlapping
        (null: the run's own threshold); tuned from ``overlap_threshold_grid`` with ``tune``.
    vad_threshold / vad_min_speech_seconds / vad_min_silence_seconds: silero-vad's speech
        probability threshold and its shortest speech and silence.
    window_seconds / hop_seconds: the sliding windows embedded inside each speech region (a region
        shorter than a window is one window).
    min_window_seconds: windows shorter than this are not clustered (too little speech to place)
        and take the label of the nearest cluster centroid afterwards.
    method: ``ahc`` (average linkage, cosine distance, stops at ``ahc_threshold``) or ``spectral``
        (row-pruned cosine affinity keeping the ``spectral_pruning`` fraction of each row, speaker
        count by the largest eigengap of the normalised Laplacian, k-means of the eigenvectors).
    num_speakers: a fixed count; else estimated within ``[min_speakers, max_speakers]``.
    oracle_count: each recording's count from its reference (oracle-count scoring).
    tune: before testing, pick the method's own parameter from its grid by DER (``tune_setup``) on
        the validation recordings (development data only, never a test set).
    batch_size: windows embedded per forward pass.
    """

    speech_activity: str = "silero"
    eend_run: str | None = None
    overlap: bool = False
    overlap_threshold: float | None = None
    overlap_threshold_grid: list[float] = field(default_factory=lambda: [0.5, 0.6, 0.7, 0.8, 0.9])
    vad_threshold: float = 0.5
    vad_min_speech_seconds: float = 0.25
    vad_min_silence_seconds: float = 0.1
    window_seconds: float = 1.5
    hop_seconds: float = 0.75
    min_window_seconds: float = 0.5
    method: str = "ahc"
    ahc_threshold: float = 0.5
    spectral_pruning: float = 0.2
    num_speakers: int | None = None
    oracle_count: bool = False
    min_speakers: int = 1
    max_speakers: int = 10
    tune: bool = True
    ahc_threshold_grid: list[float] = field(
        default_factory=lambda: [0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]
    )
    spectral_pruning_grid: list[float] = field(default_factory=lambda: [0.05, 0.1, 0.2, 0.3, 0.5])
    tune_setup: str = "collar0"
    batch_size: int = 32

    def __post_init__(self):
        for key, value, allowed in (
            ("speech_activity", self.speech_activity, SPEECH_ACTIVITY),
            ("method", self.method, METHODS),
        ):
            if value not in allowed:
                raise ConfigValueError(f"task.pipeline.{key}", " | ".join(allowed), value)
        if (self.speech_activity == "eend" or self.overlap) and not self.eend_run:
            raise ConfigValueError(
                "task.pipeline.eend_run",
                "a trained EEND-EDA run folder (speech_activity=eend and overlap=true read it)",
                self.eend_run,
            )
        if not 0 < self.hop_seconds <= self.window_seconds:
            raise ConfigValueError(
                "task.pipeline.hop_seconds",
                f"a hop in (0, window_seconds={self.window_seconds}]",
                self.hop_seconds,
            )
        if not 1 <= self.min_speakers <= self.max_speakers:
            raise ConfigValueError(
                "task.pipeline.min_speakers",
                f"1 <= min_speakers <= max_speakers ({self.max_speakers})",
                self.min_speakers,
            )

    @classmethod
    def from_config(cls, config: dict | None) -> PipelineConfig:
        """The settings of a ``task.pipeline`` block; an unknown key is named."""
        if isinstance(config, DictConfig):
            config = OmegaConf.to_container(config, resolve=True)
        config = dict(config or {})
        known = {f.name for f in fields(cls)}
        for key in config:
            if key not in known:
                raise ConfigValueError(
                    f"task.pipeline.{key}", f"one of {', '.join(sorted(known))}", config[key]
                )
        return cls(**config)

    @property
    def tuned_key(self) -> str:
        """The parameter that tuning chooses: the chosen method's own."""
        return "ahc_threshold" if self.method == "ahc" else "spectral_pruning"

    @property
    def tuned_grid(self) -> list[float]:
        """The candidates of :attr:`tuned_key`."""
        return list(getattr(self, f"{self.tuned_key}_grid"))


# -- speech activity -------------------------------------------------------------------------------
def silero_speech(wave: torch.Tensor, sample_rate: int, config: PipelineConfig) -> Timeline:
    """Speech regions of a waveform by silero-vad (its model ships in the package: no download)."""
    regions = silero_regions(
        wave,
        sample_rate,
        config.vad_threshold,
        config.vad_min_speech_seconds,
        config.vad_min_silence_seconds,
    )
    return Timeline([Segment(s, e) for s, e in regions]).support()


# -- windows and embeddings ------------------------------------------------------------------------
@dataclass
class RecordingEmbeddings:
    """A recording's windows ``(start, end)`` in seconds, their embeddings (unit rows), and its
    length."""

    windows: np.ndarray
    embeddings: np.ndarray
    duration: float


def sliding_windows(speech: Timeline, window: float, hop: float) -> np.ndarray:
    """``(n, 2)`` windows covering each speech region: ``window`` long every ``hop``, the last one
    ending at the region's end; a region shorter than a window is one window."""
    rows = []
    for region in speech:
        if region.duration <= window:
            rows.append((region.start, region.end))
            continue
        starts = np.arange(region.start, region.end - window, hop)
        rows.extend((s, s + window) for s in starts)
        rows.append((region.end - window, region.end))
    return np.asarray(rows, dtype=np.float64).reshape(-1, 2)


@torch.inference_mode()
def embed_windows(embedder, wave: torch.Tensor, windows: np.ndarray, batch_size: int) -> np.ndarray:
    """Unit-length embeddings of the windows of ``wave`` (at ``embedder.sample_rate``); windows of
    one length go through the model together."""
    rate = embedder.sample_rate
    spans = [(int(round(s * rate)), min(int(round(e * rate)), wave.numel())) for s, e in windows]
    out = np.zeros((len(spans), embedder.embedding_dim), dtype=np.float32)
    by_length: dict[int, list[int]] = {}
    for i, (s, e) in enumerate(spans):
        by_length.setdefault(e - s, []).append(i)
    device = next(embedder.parameters()).device
    for length, members in by_length.items():
        for first in range(0, len(members), batch_size):
            chosen = members[first : first + batch_size]
            batch = torch.stack([wave[spans[i][0] : spans[i][0] + length] for i in chosen])
            lengths = torch.full((len(chosen),), length, device=device)
            vectors = embedder.embed(batch.to(device), lengths).float().cpu().numpy()
            out[chosen] = vectors
    norms = np.linalg.norm(out, axis=1, keepdims=True)
    return out / np.maximum(norms, 1e-12)


def embed_recording(
    embedder,
    path,
    config: PipelineConfig,
    reference: Annotation | None = None,
    uem: Timeline | None = None,
    eend: FrameActivity | None = None,
) -> RecordingEmbeddings:
    """A recording's speech regions (by ``config.speech_activity``; ``eend``: the EEND run's
    activities of it), windows and embeddings."""
    wave = load_audio(path, embedder.sample_rate)
    duration = wave.numel() / embedder.sample_rate
    if config.speech_activity == "oracle":
        if reference is None:
            raise ConfigValueError(
                "task.pipeline.speech_activity",
                "silero for recordings without references (oracle needs an RTTM)",
                "oracle",
            )
        speech = oracle_speech(reference, uem)
    elif config.speech_activity == "eend":
        speech = eend.speech()
    else:
        speech = silero_speech(wave, embedder.sample_rate, config)
    # activities on a coarser grid (EEND's 100 ms frames) may run past the audio's end
    speech = speech.crop(Segment(0.0, duration), mode="intersection")
    windows = sliding_windows(speech, config.window_seconds, config.hop_seconds)
    windows[:, 1] = np.minimum(windows[:, 1], duration)
    windows = windows[windows[:, 1] - windows[:, 0] >= SHORTEST_WINDOW_SECONDS]
    embeddings = embed_windows(embedder, wave, windows, config.batch_size)
    return RecordingEmbeddings(windows, embeddings, duration)


# -- clustering ------------------------------------------------------------------------------------
def _bounded(count: int, config: PipelineConfig, items: int) -> int:
    return max(1, min(count, config.max_speakers, items))


def ahc_labels(embeddings: np.ndarray, threshold: float, config: PipelineConfig) -> np.ndarray:
    """Average-linkage clustering on cosine distance (scipy), stopped at ``threshold`` or at the
    given / bounded count."""
    if len(embeddings) < 2:
        return np.zeros(len(embeddings), dtype=int)
    tree = linkage(embeddings, method="average", metric="cosine")
    if config.num_speakers:
        return (
            fcluster(tree, _bounded(config.num_speakers, config, len(embeddings)), "maxclust") - 1
        )
    labels = fcluster(tree, threshold, "distance") - 1
    count = labels.max() + 1
    bounded = min(max(count, config.min_speakers), config.max_speakers, len(embeddings))
    if bounded != count:
        labels = fcluster(tree, bounded, "maxclust") - 1
    return labels


def spectral_labels(embeddings: np.ndarray, pruning: float, config: PipelineConfig) -> np.ndarray:
    """Spectral clustering: cosine affinity, each row keeping its largest ``pruning`` fraction
    (then symmetrised), the count by the largest eigengap of the normalised Laplacian within the
    bounds (or the given count), k-means (scikit-learn) on the row-normalised eigenvectors.

    Written here because no maintained package estimates the count by the eigengap; the pruning
    follows Park et al. 2019 ("Auto-tuning spectral clustering for speaker diarization").
    """
    # imported here: scikit-learn's cluster module adds about half a second to every run's start-up
    from sklearn.cluster import KMeans

    n = len(embeddings)
    if n < 3:
        return np.zeros(n, dtype=int)
    affinity = np.clip(embeddings @ embeddings.T, 0.0, None)
    keep = max(1, int(np.ceil(pruning * n)))
    pruned = np.zeros_like(affinity)
    order = np.argsort(-affinity, axis=1)[:, :keep]
    rows = np.arange(n)[:, None]
    pruned[rows, order] = affinity[rows, order]
    pruned = 0.5 * (pruned + pruned.T)
    degree = pruned.sum(axis=1)
    scale = 1.0 / np.sqrt(np.maximum(degree, 1e-12))
    laplacian = np.eye(n) - scale[:, None] * pruned * scale[None, :]
    values, vectors = eigh(laplacian)
    if config.num_speakers:
        k = _bounded(config.num_speakers, config, n)
    else:
        top = min(config.max_speakers, n - 1)
        gaps = np.diff(values[: top + 1])  # gaps[k-1] = lambda_{k+1} - lambda_k
        low = config.min_speakers
        k = int(np.argmax(gaps[low - 1 : top])) + low if top >= low else low
    if k == 1:
        return np.zeros(n, dtype=int)
    spectral = vectors[:, :k]
    spectral = spectral / np.maximum(np.linalg.norm(spectral, axis=1, keepdims=True), 1e-12)
    return KMeans(n_clusters=k, n_init=10, random_state=0).fit_predict(spectral)


def cluster_embeddings(
    recording: RecordingEmbeddings, config: PipelineConfig, parameter: float | None = None
) -> np.ndarray:
    """A speaker label per window. Windows shorter than ``min_window_seconds`` are left out of the
    clustering and join the cluster whose centroid is nearest (cosine)."""
    n = len(recording.windows)
    if n == 0:
        return np.zeros(0, dtype=int)
    value = getattr(config, config.tuned_key) if parameter is None else parameter
    lengths = recording.windows[:, 1] - recording.windows[:, 0]
    long = lengths >= config.min_window_seconds
    if not long.any():
        long[:] = True
    cluster = ahc_labels if config.method == "ahc" else spectral_labels
    labels = np.zeros(n, dtype=int)
    labels[long] = cluster(recording.embeddings[long], value, config)
    if (~long).any():
        centroids = np.stack(
            [recording.embeddings[long][labels[long] == k].mean(0) for k in range(labels.max() + 1)]
        )
        labels[~long] = np.argmax(recording.embeddings[~long] @ centroids.T, axis=1)
    return labels


def window_activities(recording: RecordingEmbeddings, labels: np.ndarray) -> np.ndarray:
    """``(frames, speakers)`` activities at :data:`FRAME_STEP`: each frame inside a window takes
    the label of the covering window whose centre is nearest (one speaker per frame)."""
    frames = int(np.ceil(recording.duration / FRAME_STEP))
    speakers = int(labels.max()) + 1 if len(labels) else 0
    activities = np.zeros((frames, speakers), dtype=np.float32)
    nearest = np.full(frames, np.inf)
    owner = np.full(frames, -1)
    times = (np.arange(frames) + 0.5) * FRAME_STEP
    for (start, end), label in zip(recording.windows, labels):
        # the frames whose centre lies inside the window
        first = max(int(np.ceil(start / FRAME_STEP - 0.5)), 0)
        last = min(int(np.ceil(end / FRAME_STEP - 0.5)), frames)
        distance = np.abs(times[first:last] - 0.5 * (start + end))
        closer = distance < nearest[first:last]
        nearest[first:last][closer] = distance[closer]
        owner[first:last][closer] = label
    active = owner >= 0
    activities[np.flatnonzero(active), owner[active]] = 1.0
    return activities


def cluster_turns(
    recording: RecordingEmbeddings, uri: str, config: PipelineConfig, parameter: float | None = None
) -> Annotation:
    """One speaker per frame: the windows' clusters (``parameter``: the tuned key's value in place
    of the config's)."""
    labels = cluster_embeddings(recording, config, parameter)
    return activities_to_annotation(window_activities(recording, labels), FRAME_STEP, uri)


def diarize_embedded(
    recording: RecordingEmbeddings,
    uri: str,
    config: PipelineConfig,
    eend: FrameActivity | None = None,
) -> Annotation:
    """The turns of an embedded recording under the config (``eend``: the EEND run's activities,
    for ``config.overlap``)."""
    turns = cluster_turns(recording, uri, config)
    return assign_overlap(turns, eend, config.overlap_threshold) if config.overlap else turns


def tune_pipeline(
    recordings: dict[str, RecordingEmbeddings],
    references: dict[str, Annotation],
    uems: dict[str, Any],
    config: PipelineConfig,
    eend: dict[str, FrameActivity] | None = None,
) -> tuple[dict[str, float], float]:
    """The values of the tuned parameters (:attr:`PipelineConfig.tuned_key`, and with ``overlap``
    the ``overlap_threshold``) from their grids with the lowest corpus DER on these recordings,
    and that DER."""
    overlap_grid = list(config.overlap_threshold_grid) if config.overlap else [None]
    best: tuple[dict[str, float], float] = ({}, float("inf"))
    for value in config.tuned_grid:
        turns = {uri: cluster_turns(r, uri, config, value) for uri, r in recordings.items()}
        for overlap in overlap_grid:
            hypotheses = {
                uri: assign_overlap(t, eend[uri], overlap) if overlap is not None else t
                for uri, t in turns.items()
            }
            der = corpus_der(
                references, hypotheses, uems, config.tune_setup, "task.pipeline.tune_setup"
            )
            if der < best[1]:
                chosen = {config.tuned_key: float(value)}
                if overlap is not None:
                    chosen["overlap_threshold"] = float(overlap)
                best = (chosen, der)
    return best
