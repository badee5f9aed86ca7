"""Diarizing whole recordings of any length with an end-to-end model.

By default a recording is diarized in one pass, as the EEND / EEND-EDA code does: the speakers are
then the model's own across the whole recording. Self-attention makes memory and time grow with
the square of the length (the encoder's attention runs through PyTorch's
``scaled_dot_product_attention``, whose fused kernels keep memory far below the full attention
matrix; docs/benchmarks.md gives the peak memory of a one-hour recording). Where that does not fit,
``window_seconds`` diarizes window by window (hop ``hop_seconds``; one window of audio in memory at
a time) and the window-local speakers are joined into the recording's speakers by clustering their
embeddings across all windows with a cannot-link constraint inside each window
(:mod:`sonolab.inference.stitching`); a speaker's activity is averaged where windows overlap, then
thresholded and median-filtered.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from pyannote.core import Annotation, Segment, Timeline
from scipy.ndimage import median_filter

from ..data.audio import audio_duration, load_segment, resample_audio
from ..utils.errors import ConfigValueError
from .embedding import SpeakerEmbedder, window_embeddings
from .stitching import ClusteringConfig, WindowSpeakers, cluster_window_speakers, stitch

log = logging.getLogger(__name__)

# task.decoding keys of earlier runs' configs: why they are gone
RETIRED_KEYS = {
    "link_threshold": "window speakers are joined by clustering (task.decoding.clustering)",
}


SPEECH_ACTIVITY = ("model", "oracle")


@dataclass
class DecodingConfig:
    """How activities become turns (every field is a ``task.decoding.*`` config key).

    window_seconds: null diarizes each recording in one pass; a length diarizes it window by window
        (for recordings too long for memory) and joins the windows' speakers by clustering.
    hop_seconds: the windows' hop (null: half the window).
    threshold: activity probability above which a speaker is active.
    median_frames: median filter length in output frames (odd; 1 = none); EEND uses 11 (1.1 s).
    existence_threshold: attractor existence probability that counts a speaker.
    max_speakers: attractors decoded when the count is estimated (null: the model's
        ``max_speakers``; the EEND-EDA reference decodes 15, independent of training's count).
    oracle_count: each recording's speaker count from its reference (oracle-count scoring) in
        place of the attractors' existence estimate.
    speech_activity: ``model`` (the activities alone say where speech is) or ``oracle``
        (oracle-VAD scoring: nothing outside the reference's speech inside the UEM, and a speech
        frame where no speaker passes the threshold goes to the most probable one).
    clustering: :class:`~sonolab.inference.stitching.ClusteringConfig` fields (windowed decoding).
    embedding_run: a trained verification run whose embeddings of each window-speaker's own audio
        are clustered (windowed decoding); null clusters the EDA attractors.
    tune: before testing, pick ``threshold`` and ``median_frames`` from the grids by the DER
        (``tune_setup``) of the validation recordings (the development set only, never a test set).
    """

    window_seconds: float | None = None
    hop_seconds: float | None = None
    threshold: float = 0.5
    median_frames: int = 11
    existence_threshold: float = 0.5
    max_speakers: int | None = None
    oracle_count: bool = False
    speech_activity: str = "model"
    clustering: ClusteringConfig = field(default_factory=ClusteringConfig)
    embedding_run: str | None = None
    tune: bool = True
    threshold_grid: tuple[float, ...] = (0.3, 0.4, 0.5, 0.6, 0.7)
    median_grid: tuple[int, ...] = (1, 5, 11, 21)
    tune_setup: str = "collar0"

    def __post_init__(self) -> None:
        if self.speech_activity not in SPEECH_ACTIVITY:
            raise ConfigValueError(
                "task.decoding.speech_activity", f"one of {SPEECH_ACTIVITY}", self.speech_activity
            )
        if not isinstance(self.clustering, ClusteringConfig):
            self.clustering = ClusteringConfig(**(self.clustering or {}))

    @classmethod
    def from_config(cls, decoding: Mapping[str, Any] | None) -> DecodingConfig:
        """From a ``task.decoding`` block; a key that earlier runs saved and that no longer exists
        is dropped with a warning (so a saved run still evaluates)."""
        decoding = dict(decoding or {})
        for key, why in RETIRED_KEYS.items():
            if key in decoding:
                log.warning("task.decoding.%s is no longer used: %s", key, why)
                decoding.pop(key)
        return cls(**decoding)


@torch.no_grad()
def diarize_windows(
    model: torch.nn.Module,
    features: torch.nn.Module,
    path,
    sample_rate: int,
    config: DecodingConfig,
    num_speakers: int | None = None,
    device: torch.device | str = "cpu",
    embedder: SpeakerEmbedder | None = None,
) -> tuple[list[WindowSpeakers], float, int]:
    """Each window's local activities and its speakers' embeddings (one window: the whole
    recording), the seconds per output frame and the recording's output frames. The embeddings are
    the EDA attractors or, with ``embedder`` and several windows, speaker embeddings of each
    speaker's own audio in the window."""
    step = model.subsampling * features.frame_shift_ms / 1000.0
    duration = audio_duration(path)
    total = int(np.ceil(duration / step))
    window = config.window_seconds
    if window is not None and window >= duration:
        window = None
    hop = (
        max(step, round((config.hop_seconds or window / 2) / step) * step) if window else duration
    )  # windows start on output frames
    windows: list[WindowSpeakers] = []
    start = 0.0
    while True:
        wave = load_segment(path, sample_rate, start, window).to(device)
        length = torch.tensor([wave.numel()], device=device)
        if features.num_frames(length).item() < 1:
            break
        feats, frames = features(wave[None], length)
        decoded = num_speakers if num_speakers is not None else config.max_speakers
        out = model(feats, frames, num_speakers=decoded)
        count = (
            num_speakers
            if num_speakers is not None
            else int(model.count_speakers(out["existence"], config.existence_threshold)[0])
        )
        logits = out["activities"][0, : int(out["frames"][0]), :count]
        activities = torch.sigmoid(logits).float().cpu().numpy()
        if embedder is not None and window is not None:
            audio = wave.cpu()
            if embedder.sample_rate != sample_rate:
                audio = resample_audio(audio, sample_rate, embedder.sample_rate)
            rule = config.clustering
            embeddings = window_embeddings(
                embedder, audio, activities, step, rule.activity_threshold, rule.min_active_seconds
            )
        else:
            embeddings = out["attractors"][0, :count].float().cpu().numpy()
        windows.append(
            WindowSpeakers(
                first=int(round(start / step)), activities=activities, embeddings=embeddings
            )
        )
        if window is None or start + window >= duration:
            break
        start += hop
    return windows, step, total


def diarize_recording(
    model: torch.nn.Module,
    features: torch.nn.Module,
    path,
    sample_rate: int,
    config: DecodingConfig,
    num_speakers: int | None = None,
    device: torch.device | str = "cpu",
    embedder: SpeakerEmbedder | None = None,
) -> tuple[np.ndarray, float]:
    """Speaker activity probabilities ``(frames, speakers)`` of a whole recording and the frame step
    (s).

    ``model`` follows the EEND-EDA interface (``subsampling``, ``forward(features, frames,
    num_speakers)`` returning ``activities`` / ``existence`` / ``attractors`` / ``frames``,
    ``count_speakers``). ``num_speakers`` (oracle) fixes the count; otherwise it is estimated (per
    window, then by the clustering). ``embedder``: see :func:`diarize_windows`.
    """
    windows, step, total = diarize_windows(
        model, features, path, sample_rate, config, num_speakers, device, embedder
    )
    if len(windows) == 1:
        labels = [np.arange(windows[0].activities.shape[1])]
    else:
        labels = cluster_window_speakers(windows, step, config.clustering, num_speakers)
    return stitch(windows, labels, total), step


def activities_to_annotation(
    probs: np.ndarray,
    step: float,
    uri: str,
    threshold: float = 0.5,
    median_frames: int = 1,
    labels: list[str] | None = None,
    speech: Timeline | None = None,
) -> Annotation:
    """Threshold (then median-filter) ``(frames, speakers)`` probabilities into turns; frame ``t``
    covers ``[t * step, (t + 1) * step)``.

    With ``speech`` (oracle speech activity) the turns are cut to it, and a frame inside it where
    no speaker is active goes to the speaker of highest probability there.
    """
    annotation = Annotation(uri=uri)
    active = binarize(probs, threshold, median_frames)
    if speech is not None and active.shape[1]:
        inside = frames_touching(speech, active.shape[0], step)
        active &= inside[:, None]
        silent = inside & ~active.any(axis=1)
        active[np.flatnonzero(silent), probs[silent].argmax(axis=1)] = True
    for k in range(active.shape[1]):
        edges = np.diff(np.concatenate([[0], active[:, k].astype(np.int8), [0]]))
        for s, e in zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)):
            annotation[Segment(s * step, e * step), len(annotation)] = (
                labels[k] if labels else f"spk{k:02d}"
            )
    return annotation if speech is None else annotation.crop(speech, mode="intersection")


def binarize(probs: np.ndarray, threshold: float, median_frames: int = 1) -> np.ndarray:
    """``(frames, speakers)`` bool: probabilities above ``threshold``, then median-filtered over
    ``median_frames`` frames per speaker."""
    active = probs > threshold
    if median_frames > 1 and active.shape[0]:
        active = median_filter(
            active.astype(np.uint8), size=(median_frames, 1), mode="nearest"
        ).astype(bool)
    return active


def frames_touching(timeline: Timeline, num_frames: int, step: float) -> np.ndarray:
    """``(num_frames,)`` bool: frames ``[t * step, (t + 1) * step)`` that overlap ``timeline``."""
    inside = np.zeros(num_frames, dtype=bool)
    for segment in timeline:
        first = max(0, int(np.floor(segment.start / step)))
        inside[first : min(num_frames, int(np.ceil(segment.end / step)))] = True
    return inside


def oracle_speech(reference: Annotation, uem: Timeline | None) -> Timeline:
    """The reference's speech (inside the scored regions when a UEM is given)."""
    speech = reference.get_timeline().support()
    return speech.crop(uem, mode="intersection").support() if uem else speech


def one_speaker_baseline(reference: Annotation) -> Annotation:
    """The DER floor every system must beat: all reference speech, labelled as a single speaker."""
    baseline = Annotation(uri=reference.uri)
    for segment in reference.get_timeline().support():
        baseline[segment] = "all"
    return baseline


def tune_decoding(
    probabilities: dict[str, tuple[np.ndarray, float]],
    references: dict[str, Annotation],
    uems: dict,
    config: DecodingConfig,
) -> tuple[float, int, float]:
    """The (threshold, median frames) of the grids with the lowest corpus DER on these recordings,
    and that DER.

    ``probabilities`` are :func:`diarize_recording` outputs: the expensive part is done once, the
    grid only re-thresholds.
    """
    from ..metrics.der import corpus_der

    speech = (
        {uri: oracle_speech(references[uri], uems.get(uri)) for uri in probabilities}
        if config.speech_activity == "oracle"
        else {}
    )
    best = (config.threshold, config.median_frames, float("inf"))
    for threshold in config.threshold_grid:
        for median in config.median_grid:
            hypotheses = {
                uri: activities_to_annotation(
                    p, step, uri, threshold, median, speech=speech.get(uri)
                )
                for uri, (p, step) in probabilities.items()
            }
            der = corpus_der(
                references, hypotheses, uems, config.tune_setup, "task.decoding.tune_setup"
            )
            if der < best[2]:
                best = (float(threshold), int(median), der)
    return best
