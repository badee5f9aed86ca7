"""Diarization error rate, through pyannote.metrics (not re-implemented), in the two usual setups.

* ``collar0``: no collar, overlapped speech scored (DIHARD / AMI "full" scoring);
* ``collar0.25``: 0.25 s forgiven on each side of every reference boundary, overlap scored (the
  EEND / CALLHOME convention). pyannote's ``collar`` argument is the *total* window, so it is 0.5.
* ``collar0.25_nooverlap``: the same collar, overlapped speech not scored (the NIST RT / early
  x-vector clustering convention, for systems that give one speaker at a time).

Each setup also gives the Jaccard error rate (``jer``, pyannote.metrics' JaccardErrorRate: per
file the mean over reference speakers of 1 - their intersection over union with the mapped
hypothesis speaker; corpus: over all reference speakers) and the speaker count of each file
(reference and hypothesis speakers inside the scored regions; corpus: the mean absolute count error
and the share of files counted exactly).

Scoring is restricted to the UEM regions when UEMs are given, with references cropped to them as
pyannote.database does (so the numbers equal ``pyannote-metrics diarization``'s). Corpus DER is the
total error over the total reference speech of all files (what pyannote.metrics accumulates), never
a mean of per-file DERs. The frame-level DER used during validation lives here too.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from pyannote.core import Annotation, Timeline
from pyannote.metrics.diarization import DiarizationErrorRate, JaccardErrorRate
from scipy.optimize import linear_sum_assignment

from ..utils.errors import ConfigValueError, DataFormatError


@dataclass(frozen=True)
class DerSetup:
    """One scoring setup: its key in metrics.json, its label in tables, and pyannote's arguments."""

    key: str
    label: str
    collar_each_side: float
    skip_overlap: bool = False


SETUPS = (
    DerSetup("collar0", "collar 0 s, overlap scored", 0.0),
    DerSetup("collar0.25", "collar 0.25 s each side, overlap scored", 0.25),
    DerSetup("collar0.25_nooverlap", "collar 0.25 s each side, overlap not scored", 0.25, True),
)
COMPONENTS = {
    "false alarm": "false_alarm",
    "missed detection": "missed",
    "confusion": "confusion",
    "total": "speech",
}


def _entry(components: dict) -> dict[str, float]:
    """DER (%) and its parts in seconds (``speech`` = scored reference speech) from pyannote's
    components."""
    out = {ours: float(components[theirs]) for theirs, ours in COMPONENTS.items()}
    errors = out["false_alarm"] + out["missed"] + out["confusion"]
    out["der"] = (
        100.0 * errors / out["speech"]
        if out["speech"] > 0
        else (0.0 if errors == 0 else float("inf"))
    )
    return out


def diarization_error_rates(
    references: dict[str, Annotation],
    hypotheses: dict[str, Annotation],
    uems: dict[str, Timeline] | None = None,
    setups: tuple[DerSetup, ...] = SETUPS,
) -> dict[str, dict]:
    """``{setup key: {"label", "corpus": {...}, "files": {uri: {...}}}}``; each entry has ``der``
    (%),
    ``false_alarm``, ``missed``, ``confusion`` and ``speech`` (seconds).

    Every reference URI is scored; a URI without a hypothesis is scored against an empty one (all
    its speech missed) and listed under ``"no_hypothesis"``. A URI without a UEM when UEMs are
    given, or a hypothesis for a URI without reference, is an error naming it.
    """
    extra = sorted(set(hypotheses) - set(references))
    if extra:
        raise DataFormatError(
            "hypotheses", "a reference for every hypothesis URI", found=", ".join(extra[:5])
        )
    if uems is not None:
        missing = sorted(set(references) - set(uems))
        if missing:
            raise DataFormatError(
                "uem", "a scored region (UEM) for every reference URI", found=", ".join(missing[:5])
            )
    results = {}
    for setup in setups:
        arguments = {"collar": 2 * setup.collar_each_side, "skip_overlap": setup.skip_overlap}
        metric, jaccard = DiarizationErrorRate(**arguments), JaccardErrorRate(**arguments)
        files = {}
        for uri in sorted(references):
            hypothesis = hypotheses.get(uri, Annotation(uri=uri))
            reference, uem = references[uri], None
            if uems is not None:
                # As pyannote.database's protocols do before pyannote-metrics scores (its
                # crop_annotation preprocessor): a turn crossing a UEM edge ends there, so the
                # collar sits at the edge.
                uem = uems[uri]
                reference = reference.crop(uem, mode="intersection")
            files[uri] = _entry(metric(reference, hypothesis, uem=uem, detailed=True))
            files[uri]["jer"] = 100.0 * jaccard(reference, hypothesis, uem=uem)
            scored = hypothesis.crop(uem, mode="intersection") if uem is not None else hypothesis
            files[uri]["speakers"] = len(reference.labels())
            files[uri]["hypothesis_speakers"] = len(scored.labels())
        corpus = _entry({name: metric.accumulated_[name] for name in COMPONENTS})
        corpus["jer"] = 100.0 * abs(jaccard) if files else 0.0
        counted = [abs(f["hypothesis_speakers"] - f["speakers"]) for f in files.values()]
        corpus["count_error"] = float(np.mean(counted)) if counted else 0.0
        corpus["count_exact"] = float(np.mean([c == 0 for c in counted])) if counted else 0.0
        results[setup.key] = {
            "label": setup.label,
            "corpus": corpus,
            "files": files,
            "no_hypothesis": sorted(set(references) - set(hypotheses)),
        }
    return results


def corpus_der(
    references: dict[str, Annotation],
    hypotheses: dict[str, Annotation],
    uems: dict[str, Timeline] | None,
    setup: str,
    key: str = "tune_setup",
) -> float:
    """The corpus DER (%) of one setup (``collar0`` ...), for the tuning loops; an unknown setup is
    a :class:`ConfigValueError` naming the config ``key`` that chose it."""
    chosen = tuple(s for s in SETUPS if s.key == setup)
    if not chosen:
        raise ConfigValueError(key, " | ".join(s.key for s in SETUPS), setup)
    return diarization_error_rates(references, hypotheses, uems, chosen)[setup]["corpus"]["der"]


def frame_error_counts(
    activities: torch.Tensor, targets: torch.Tensor, frame_mask: torch.Tensor
) -> dict[str, float]:
    """Frame-level diarization errors (EEND's validation DER) summed over a batch.

    ``activities`` (thresholded predictions) and ``targets`` are ``(B, T, S)`` 0/1 tensors. Each
    recording's predicted speakers are mapped to reference speakers to maximise agreement
    (Hungarian); per frame, with ``r`` reference and ``h`` predicted speakers and ``c`` correctly
    mapped ones: missed = max(r - h, 0), false alarm = max(h - r, 0), confusion = min(r, h) - c.
    Frame DER = (missed + false alarm + confusion) / sum(r).
    """
    pred = activities.bool() & frame_mask[..., None]
    ref = targets.bool() & frame_mask[..., None]
    totals = {"speech": 0.0, "missed": 0.0, "false_alarm": 0.0, "confusion": 0.0}
    for p, r in zip(pred.cpu().numpy(), ref.cpu().numpy()):
        agreement = p.T.astype(np.int64) @ r.astype(
            np.int64
        )  # (S_pred, S_ref) frames where both are active
        rows, cols = linear_sum_assignment(-agreement)
        correct = np.zeros(p.shape[0], dtype=np.int64)
        for i, j in zip(rows, cols):
            correct += p[:, i] & r[:, j]
        n_ref, n_hyp = r.sum(axis=1), p.sum(axis=1)
        totals["speech"] += float(n_ref.sum())
        totals["missed"] += float(np.maximum(n_ref - n_hyp, 0).sum())
        totals["false_alarm"] += float(np.maximum(n_hyp - n_ref, 0).sum())
        totals["confusion"] += float((np.minimum(n_ref, n_hyp) - correct).sum())
    return totals


def frame_der(counts: dict[str, float]) -> float:
    """Frame DER (%) from summed :func:`frame_error_counts`."""
    errors = counts["missed"] + counts["false_alarm"] + counts["confusion"]
    return 100.0 * errors / counts["speech"] if counts["speech"] > 0 else 0.0
