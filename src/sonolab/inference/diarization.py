"""Diarizing whole recordings of any length with an end-to-end model, in bounded memory.

Scheme (chosen because EEND-EDA attends over its whole input, so memory and time grow with the
square of the input length): the recording is read window by window (``window_seconds``, hop
``hop_seconds``; only one window of audio is in memory), each window is diarized on its own (speaker
count from the attractor existence probabilities, or given), and each window's speakers are linked
to the speakers found so far by their activity in the part that overlaps the earlier windows: the
pairing that maximises the summed product of activities (Hungarian algorithm), accepted when the
normalised agreement exceeds ``link_threshold``; an unlinked speaker becomes a new one. Activities
of a speaker are averaged where windows overlap, then thresholded and median-filtered.

Failure modes: a speaker who is silent in an overlap cannot be linked there, so one who comes back
after a silence longer than the overlap is split into two labels (costing confusion); two speakers
who talk at once through a whole overlap can be swapped. Larger overlaps reduce both, at more cost.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from pyannote.core import Annotation, Segment
from scipy.ndimage import median_filter
from scipy.optimize import linear_sum_assignment

from ..data.audio import audio_duration, load_segment


@dataclass
class DecodingConfig:
    """How activities become turns (every field is a ``task.decoding.*`` config key).

    window_seconds / hop_seconds: inference windows; hop < window gives the overlap used for
    linking.
    threshold: activity probability above which a speaker is active.
    median_frames: median filter length in output frames (odd; 1 = none); EEND uses 11 (1.1 s).
    existence_threshold: attractor existence probability that counts a speaker.
    link_threshold: agreement (0-1) in the overlap above which a window's speaker is an earlier one.
    tune: before testing, pick ``threshold`` and ``median_frames`` from the grids by the DER
        (``tune_setup``) of the validation recordings (the development set only, never a test set).
    """

    window_seconds: float = 30.0
    hop_seconds: float = 15.0
    threshold: float = 0.5
    median_frames: int = 11
    existence_threshold: float = 0.5
    link_threshold: float = 0.3
    tune: bool = True
    threshold_grid: tuple[float, ...] = (0.3, 0.4, 0.5, 0.6, 0.7)
    median_grid: tuple[int, ...] = (1, 5, 11, 21)
    tune_setup: str = "collar0"


def _link(window: np.ndarray, earlier: np.ndarray, threshold: float) -> list[int | None]:
    """For each column of ``window`` (overlap frames x speakers), the matching column of
    ``earlier``, or None."""
    if window.shape[1] == 0 or earlier.shape[1] == 0 or window.shape[0] == 0:
        return [None] * window.shape[1]
    product = window.T @ earlier  # (window speakers, earlier speakers)
    norms = np.sqrt(np.outer((window**2).sum(0), (earlier**2).sum(0))) + 1e-9
    rows, cols = linear_sum_assignment(-product)
    links: list[int | None] = [None] * window.shape[1]
    for r, c in zip(rows, cols):
        if product[r, c] / norms[r, c] > threshold:
            links[r] = int(c)
    return links


@torch.no_grad()
def diarize_recording(
    model: torch.nn.Module,
    features: torch.nn.Module,
    path,
    sample_rate: int,
    config: DecodingConfig,
    num_speakers: int | None = None,
    device: torch.device | str = "cpu",
) -> tuple[np.ndarray, float]:
    """Speaker activity probabilities ``(frames, speakers)`` of a whole recording and the frame step
    (s).

    ``model`` follows the EEND-EDA interface (``subsampling``, ``forward(features, frames,
    num_speakers)`` returning ``activities`` / ``existence`` / ``frames``, ``count_speakers``).
    ``num_speakers`` (oracle) fixes the count in every window; otherwise it is estimated per window.
    """
    step = model.subsampling * features.frame_shift_ms / 1000.0
    duration = audio_duration(path)
    total = int(np.ceil(duration / step))
    hop = max(step, round(config.hop_seconds / step) * step)  # windows start on output frames
    sums = np.zeros((total, 0), dtype=np.float64)
    weight = np.zeros(total, dtype=np.float64)
    start = 0.0
    while True:
        wave = load_segment(path, sample_rate, start, config.window_seconds).to(device)
        length = torch.tensor([wave.numel()], device=device)
        if features.num_frames(length).item() < 1:
            break
        feats, frames = features(wave[None], length)
        out = model(feats, frames, num_speakers=num_speakers)
        count = (
            num_speakers
            if num_speakers is not None
            else int(model.count_speakers(out["existence"], config.existence_threshold)[0])
        )
        probs = (
            torch.sigmoid(out["activities"][0, : int(out["frames"][0]), :count])
            .float()
            .cpu()
            .numpy()
        )
        first = int(round(start / step))
        probs = probs[: total - first]
        span = slice(first, first + probs.shape[0])
        covered = weight[span] > 0
        earlier = sums[span][covered] / weight[span][covered, None]
        links = _link(probs[covered], earlier, config.link_threshold)
        for k, link in enumerate(links):
            if link is None:
                sums = np.concatenate([sums, np.zeros((total, 1))], axis=1)
                link = sums.shape[1] - 1
            sums[span, link] += probs[:, k]
        weight[span] += 1
        if start + config.window_seconds >= duration:
            break
        start += hop
    return sums / np.maximum(weight, 1)[:, None], step


def activities_to_annotation(
    probs: np.ndarray,
    step: float,
    uri: str,
    threshold: float = 0.5,
    median_frames: int = 1,
    labels: list[str] | None = None,
) -> Annotation:
    """Threshold (then median-filter) ``(frames, speakers)`` probabilities into turns; frame ``t``
    covers ``[t * step, (t + 1) * step)``."""
    annotation = Annotation(uri=uri)
    active = probs > threshold
    if median_frames > 1 and active.shape[0]:
        active = median_filter(
            active.astype(np.uint8), size=(median_frames, 1), mode="nearest"
        ).astype(bool)
    for k in range(active.shape[1]):
        edges = np.diff(np.concatenate([[0], active[:, k].astype(np.int8), [0]]))
        for s, e in zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)):
            annotation[Segment(s * step, e * step), len(annotation)] = (
                labels[k] if labels else f"spk{k:02d}"
            )
    return annotation


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
    from ..metrics.der import SETUPS, diarization_error_rates

    setup = tuple(s for s in SETUPS if s.key == config.tune_setup)
    if not setup:
        raise ValueError(
            f"task.decoding.tune_setup must be one of {[s.key for s in SETUPS]}, found "
            f"{config.tune_setup!r}"
        )
    best = (config.threshold, config.median_frames, float("inf"))
    for threshold in config.threshold_grid:
        for median in config.median_grid:
            hypotheses = {
                uri: activities_to_annotation(p, step, uri, threshold, median)
                for uri, (p, step) in probabilities.items()
            }
            der = diarization_error_rates(references, hypotheses, uems, setup)[config.tune_setup][
                "corpus"
            ]["der"]
            if der < best[2]:
                best = (float(threshold), int(median), der)
    return best
