"""Metrics at scale: sonolab's EER and minDCF of millions of trials (one sort, every threshold
between tied scores) against the same numbers through scikit-learn's ROC curve; the tagging metrics
(AP and AUC class by class, through scikit-learn) of an AudioSet-sized evaluation against
scikit-learn's multi-label forms of the same; the
diarization report (three scoring setups, JER, speaker counts) of 10 hours against one
pyannote.metrics DER, and the frame-level DER of validation against pyannote on the same turns."""

from __future__ import annotations

from functools import partial

import numpy as np
import torch
from pyannote.core import Annotation, Segment
from pyannote.metrics.diarization import DiarizationErrorRate
from sklearn.metrics import average_precision_score, roc_auc_score, roc_curve

from sonolab.metrics import verification_metrics
from sonolab.metrics.der import diarization_error_rates, frame_der, frame_error_counts
from sonolab.metrics.tagging import multilabel_metrics
from suite.common import Row, Settings, interleaved, kept_rate


def _sklearn_metrics(scores: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """EER (%) and minDCF at p_target 0.01 / 0.05 from scikit-learn's ROC points."""
    p_fa, p_hit, _ = roc_curve(labels, scores, drop_intermediate=False)
    p_miss = 1.0 - p_hit
    diff = p_miss - p_fa
    k = int(np.flatnonzero(diff <= 0)[0])
    t = diff[k - 1] / (diff[k - 1] - diff[k])
    out = {"eer": 100.0 * float(p_fa[k - 1] + t * (p_fa[k] - p_fa[k - 1]))}
    for p_target in (0.01, 0.05):
        dcf = p_target * p_miss + (1.0 - p_target) * p_fa
        out[f"min_dcf_{p_target}"] = float(dcf.min() / min(p_target, 1.0 - p_target))
    return out


def _verification_row(settings: Settings) -> Row:
    """EER + minDCF (0.01, 0.05) of 5 M trials with quantised (tied) scores."""
    trials = 500_000 if settings.quick else 5_000_000
    rng = np.random.default_rng(0)
    labels = rng.random(trials) < 0.5
    scores = np.round(rng.normal(size=trials) + 2.0 * labels, 3)
    out: dict = {}
    base, fast = interleaved(
        kept_rate(out, "theirs", partial(_sklearn_metrics, scores, labels), trials / 1e6),
        kept_rate(out, "ours", partial(verification_metrics, scores, labels), trials / 1e6),
        settings.repeats,
    )
    ours, theirs = out["ours"], out["theirs"]
    worst = max(abs(ours[k] - theirs[k]) for k in theirs)
    return Row(
        "metrics",
        f"EER + minDCF (0.01, 0.05) of {trials:,} trials, scores rounded to 0.001",
        "scikit-learn roc_curve",
        "sonolab verification_metrics",
        "M trials/s",
        base,
        fast,
        check=f"EER {ours['eer']:.4f} %; max abs. difference to scikit-learn {worst:.1e}",
    )


def _sklearn_multilabel(scores: np.ndarray, targets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """AP and AUC of every class with a positive and a negative by scikit-learn's multi-label
    forms (one call each, ``average=None``)."""
    scored = (targets.sum(0) > 0) & (targets.sum(0) < len(targets))
    truth, ranked = targets[:, scored], scores[:, scored]
    return (
        average_precision_score(truth, ranked, average=None),
        roc_auc_score(truth, ranked, average=None),
    )


def _tagging_row(settings: Settings) -> Row:
    """AP and AUC per class (mAP, mean AUC, d') of 20,000 clips x 527 classes, AudioSet's
    evaluation size, with a skewed label prior as AudioSet's (a few common classes, many rare)."""
    clips, classes = (2_000, 527) if settings.quick else (20_000, 527)
    rng = np.random.default_rng(0)
    prior = np.clip(rng.pareto(1.5, classes) * 0.005, 0.0005, 0.5)
    targets = rng.random((clips, classes)) < prior
    scores = rng.normal(size=(clips, classes)) + 1.5 * targets
    size = clips * classes / 1e6
    out: dict = {}
    base, fast = interleaved(
        kept_rate(out, "theirs", partial(_sklearn_multilabel, scores, targets), size),
        kept_rate(out, "ours", partial(multilabel_metrics, scores, targets), size),
        settings.repeats,
    )
    ours, (ap, auc) = out["ours"], out["theirs"]
    per_class = np.asarray(ours["per_class_ap"])
    worst = float(np.abs(per_class[~np.isnan(per_class)] - ap).max())
    return Row(
        "metrics",
        f"AP and AUC per class (mAP, mean AUC, d') of {clips:,} clips x {classes} classes",
        "scikit-learn's multi-label forms (average=None), one call each",
        "sonolab multilabel_metrics (scikit-learn class by class)",
        "M scores/s",
        base,
        fast,
        check=f"mAP {ours['mAP']:.4f} over {ours['classes_scored']} classes; max abs. AP "
        f"difference {worst:.1e}, mean AUC {abs(ours['mean_auc'] - auc.mean()):.1e}",
    )


FRAME = 0.01  # seconds: validation's frame step after subsampling is 0.1 s; 0.01 s is finer


def _conversations(hours: float, rng: np.random.Generator) -> list[tuple[np.ndarray, np.ndarray]]:
    """Hour-long conversations of 4 speakers as frame activities ``(frames, speakers)``: a
    reference (turns of 1-8 s, gaps and overlaps up to 0.5 s) and a hypothesis (the same turns with
    shifted edges, one in ten given to another speaker, speakers in another order)."""
    frames = int(3600 / FRAME)
    out = []
    for _ in range(max(1, round(hours))):
        reference, hypothesis = np.zeros((frames, 4), bool), np.zeros((frames, 4), bool)
        order, start = rng.permutation(4), 0
        while start < frames:
            length = int(rng.uniform(1.0, 8.0) / FRAME)
            speaker = rng.integers(4)
            reference[start : start + length, speaker] = True
            shift = rng.integers(-30, 31, size=2)
            guess = rng.integers(4) if rng.random() < 0.1 else speaker
            hypothesis[max(0, start + shift[0]) : start + length + shift[1], order[guess]] = True
            start += length + int(rng.uniform(-0.5, 0.5) / FRAME)
        out.append((reference, hypothesis))
    return out


def _annotation(activity: np.ndarray, uri: str) -> Annotation:
    """The turns of frame activities ``(frames, speakers)`` as a pyannote annotation."""
    annotation = Annotation(uri=uri)
    for speaker in range(activity.shape[1]):
        edges = np.flatnonzero(np.diff(np.concatenate([[0], activity[:, speaker], [0]])))
        for on, off in zip(edges[::2], edges[1::2]):
            annotation[Segment(on * FRAME, off * FRAME), len(annotation)] = f"s{speaker}"
    return annotation


def _pyannote_der(references: dict, hypotheses: dict) -> float:
    metric = DiarizationErrorRate(collar=0.0, skip_overlap=False)
    for uri, reference in references.items():
        metric(reference, hypotheses[uri])
    return 100.0 * abs(metric)


def _frame_der(conversations: list[tuple[np.ndarray, np.ndarray]]) -> float:
    totals: dict[str, float] = {}
    for reference, hypothesis in conversations:
        counts = frame_error_counts(
            torch.from_numpy(hypothesis)[None],
            torch.from_numpy(reference)[None],
            torch.ones(1, len(reference), dtype=torch.bool),
        )
        totals = {k: totals.get(k, 0.0) + v for k, v in counts.items()}
    return frame_der(totals)


def _diarization_rows(settings: Settings) -> list[Row]:
    """The report of 10 hours of conversation against pyannote's DER alone; the validation's frame
    DER against pyannote on the same turns."""
    hours = 1.0 if settings.quick else 10.0
    conversations = _conversations(hours, np.random.default_rng(0))
    references = {f"c{i}": _annotation(r, f"c{i}") for i, (r, _) in enumerate(conversations)}
    hypotheses = {f"c{i}": _annotation(h, f"c{i}") for i, (_, h) in enumerate(conversations)}
    out: dict = {}
    pyannote = kept_rate(out, "pyannote", partial(_pyannote_der, references, hypotheses), hours)
    report = partial(diarization_error_rates, references, hypotheses)
    reported_rate = kept_rate(out, "report", report, hours)
    base, reported = interleaved(pyannote, reported_rate, settings.repeats)
    frames_base, frames = interleaved(
        pyannote,
        kept_rate(out, "frames", partial(_frame_der, conversations), hours),
        settings.repeats,
    )
    theirs, by_frames = out["pyannote"], out["frames"]
    ours = out["report"]["collar0"]["corpus"]["der"]
    baseline = "pyannote.metrics DiarizationErrorRate, collar 0, overlap scored"
    what = f"DER of {hours:g} h of 4-speaker conversation"
    return [
        Row(
            "metrics",
            what,
            baseline,
            "sonolab diarization_error_rates (3 setups, JER, speaker counts)",
            "h/s",
            base,
            reported,
            check=f"DER {ours:.4f} %, abs. difference to pyannote {abs(ours - theirs):.1e}",
        ),
        Row(
            "metrics",
            what + f", turns on a {FRAME:g} s grid",
            baseline,
            "sonolab frame_error_counts (validation's frame DER)",
            "h/s",
            frames_base,
            frames,
            check=f"frame DER {by_frames:.4f} %, abs. difference to pyannote "
            f"{abs(by_frames - theirs):.1e}",
        ),
    ]


def metrics(settings: Settings) -> list[Row]:
    """Verification, tagging and diarization metrics at scale."""
    return [_verification_row(settings), _tagging_row(settings), *_diarization_rows(settings)]


CASES = {"metrics": metrics}
