"""Sound event detection: frame probabilities to events, and the events scored as DCASE scores them.

The event-based F1 (onset collar 200 ms, offset collar the larger of 200 ms and 20 % of the event's
length) and the segment-based F1 (1 s segments) come from ``sed_eval``, DCASE's reference
implementation (Mesaros et al. 2016). What is ours is turning a model's frame probabilities into
events: a threshold per class, a median filter over time, and each run of active frames an event;
and choosing that threshold and filter on validation clips.
"""

from __future__ import annotations

import itertools
import logging
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy.ndimage import median_filter

log = logging.getLogger(__name__)

EVENT_ONSET_COLLAR = 0.2  # seconds (DCASE task 4)
EVENT_OFFSET_LENGTH_SHARE = 0.2  # offset collar: max(200 ms, 20 % of the reference event)
SEGMENT_SECONDS = 1.0


@dataclass(frozen=True)
class PsdsScenario:
    """A PSDS evaluation scenario: detection and ground-truth intersection criteria (``dtc``,
    ``gtc``), the cross-trigger tolerance criterion (``cttc``), the cross-trigger and class-
    instability weights (``alpha_ct``, ``alpha_st``) and the largest effective false positive rate
    the area runs to (``max_efpr``, per hour)."""

    dtc: float
    gtc: float
    cttc: float
    alpha_ct: float
    alpha_st: float
    max_efpr: float = 100.0


# DCASE task 4's two scenarios as its baseline computes them: DCASE-REPO/DESED_task
# recipes/dcase2022_task4_baseline/local/sed_trainer.py:637-658; cttc 0.3 and max_efpr 100 there are
# the defaults of desed_task/evaluation/evaluation_measures.py:204,207.
PSDS_SCENARIOS = {
    "psds1": PsdsScenario(dtc=0.7, gtc=0.7, cttc=0.3, alpha_ct=0.0, alpha_st=1.0),
    "psds2": PsdsScenario(dtc=0.1, gtc=0.1, cttc=0.3, alpha_ct=0.5, alpha_st=1.0),
}
# Its 50 operating points: thresholds 0.01, 0.03, ..., 0.99 (sed_trainer.py:138-141 with
# n_test_thresholds: 50, recipes/dcase2022_task4_baseline/confs/default.yaml:14).
PSDS_THRESHOLDS = tuple(float(t) for t in np.arange(1 / 100, 1, 1 / 50))


@dataclass(frozen=True)
class Event:
    """A detected or reference event: onset and offset in seconds and its class."""

    onset: float
    offset: float
    label: str


def frames_to_events(
    probabilities: np.ndarray,
    frame_seconds: float,
    labels: Sequence[str],
    threshold: float | np.ndarray = 0.5,
    median_frames: int = 1,
) -> list[Event]:
    """The events of one clip's ``(frames, classes)`` probabilities: frames at or above the class's
    ``threshold`` are active, the activity is median-filtered over ``median_frames`` frames (1:
    none), and each run of active frames is an event from its first frame's start to its last
    frame's end."""
    probabilities = np.asarray(probabilities, dtype=np.float64)
    active = probabilities >= np.broadcast_to(np.asarray(threshold), probabilities.shape[1:])
    if median_frames > 1:
        active = median_filter(active.astype(np.uint8), size=(median_frames, 1), mode="nearest") > 0
    events = []
    for k, label in enumerate(labels):
        padded = np.concatenate([[False], active[:, k], [False]])
        changes = np.flatnonzero(padded[1:] != padded[:-1])
        for start, end in zip(changes[::2], changes[1::2]):
            events.append(Event(start * frame_seconds, end * frame_seconds, label))
    return sorted(events, key=lambda e: (e.onset, e.label))


def _container(clips: Mapping[str, Iterable[Event]]):
    from dcase_util.containers import MetaDataContainer

    return {
        name: MetaDataContainer(
            [
                {"filename": name, "onset": e.onset, "offset": e.offset, "event_label": e.label}
                for e in events
            ]
        )
        for name, events in clips.items()
    }


def sed_f1(
    reference: Mapping[str, Sequence[Event]],
    estimated: Mapping[str, Sequence[Event]],
    labels: Sequence[str],
    segments: bool = True,
) -> dict:
    """Event-based and segment-based F1 (in %) of ``estimated`` against ``reference`` events over
    the clips of ``reference`` (a clip missing from ``estimated`` detected nothing), by
    ``sed_eval`` (its counts; :func:`_f1_from_counts`): ``event_f1_macro`` (the mean over classes,
    DCASE's headline), ``event_f1_micro``, ``segment_f1_macro``, ``segment_f1_micro`` and
    ``per_class_event_f1`` (None for a class with neither references nor detections); without
    ``segments`` the event-based scores only."""
    with warnings.catch_warnings():  # dcase_util imports setuptools' pkg_resources (deprecated)
        warnings.filterwarnings("ignore", message="pkg_resources is deprecated")
        import sed_eval

    event_metrics = sed_eval.sound_event.EventBasedMetrics(
        event_label_list=list(labels),
        t_collar=EVENT_ONSET_COLLAR,
        percentage_of_length=EVENT_OFFSET_LENGTH_SHARE,
    )
    segment_metrics = sed_eval.sound_event.SegmentBasedMetrics(
        event_label_list=list(labels), time_resolution=SEGMENT_SECONDS
    )
    ref = _container(reference)
    est = _container({name: estimated.get(name, []) for name in reference})
    for name in reference:
        event_metrics.evaluate(reference_event_list=ref[name], estimated_event_list=est[name])
        if segments:
            segment_metrics.evaluate(reference_event_list=ref[name], estimated_event_list=est[name])
    with warnings.catch_warnings():  # its class-wise averages (not used) of classes with nothing
        warnings.filterwarnings("ignore", message="Mean of empty slice")
        events = _f1_from_counts(event_metrics.results(), labels)
        scores = {
            "event_f1_macro": events["macro"],
            "event_f1_micro": events["micro"],
            "per_class_event_f1": events["per_class"],
        }
        if segments:
            by_segment = _f1_from_counts(segment_metrics.results(), labels)
            scores.update(
                segment_f1_macro=by_segment["macro"], segment_f1_micro=by_segment["micro"]
            )
    return scores


def _f1_from_counts(results: dict, labels: Sequence[str]) -> dict:
    """Micro and macro F1 (%) from sed_eval's per-class counts: hits = recall x references, F1 =
    2 hits / (references + detections). Written out because sed_eval leaves F1 undefined (NaN) for
    a class with references but no detection and its class-wise average skips NaN, so a class
    missed entirely would raise the macro mean instead of adding a 0; here it counts 0, and only a
    class with neither references nor detections is left out (None)."""
    hits, totals, per_class = 0.0, 0.0, {}
    for label in labels:
        block = results["class_wise"][label]
        references, detections = block["count"]["Nref"], block["count"]["Nsys"]
        hit = float(block["f_measure"]["recall"]) * references if references else 0.0
        hits, totals = hits + hit, totals + references + detections
        per_class[label] = (
            100.0 * 2 * hit / (references + detections) if references + detections else None
        )
    scored = [v for v in per_class.values() if v is not None]
    return {
        "micro": 100.0 * 2 * hits / totals if totals else 0.0,
        "macro": float(np.mean(scored)) if scored else 0.0,
        "per_class": per_class,
    }


def tune_decisions(
    probabilities: Mapping[str, np.ndarray],
    reference: Mapping[str, Sequence[Event]],
    frame_seconds: float,
    labels: Sequence[str],
    thresholds: Sequence[float] = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9),
    median_frames: Sequence[int] = (1, 3, 5, 7, 11),
) -> dict:
    """The threshold (one for all classes) and median filter length with the best event-based
    macro F1 on these (validation) clips, and that F1: ``{threshold, median_frames,
    event_f1_macro}``. Ties go to the first in grid order."""
    best = None
    for threshold, median in itertools.product(thresholds, median_frames):
        estimated = {
            name: frames_to_events(p, frame_seconds, labels, threshold, median)
            for name, p in probabilities.items()
        }
        f1 = sed_f1(reference, estimated, labels, segments=False)["event_f1_macro"]
        if best is None or f1 > best["event_f1_macro"]:
            best = {"threshold": threshold, "median_frames": median, "event_f1_macro": f1}
    log.info(
        "decisions tuned on %d clips: threshold %.2f, median filter %d frames (event F1 %.2f %%)",
        len(probabilities),
        best["threshold"],
        best["median_frames"],
        best["event_f1_macro"],
    )
    return best


def _merged(events: Sequence[Event]) -> list[Event]:
    """``events`` with overlapping or touching events of one class joined into one. psds_eval
    refuses a ground truth with two intersecting events of one class, which soundscapes mixing one
    class twice have; the class is active over their union either way."""
    merged: list[Event] = []
    for event in sorted(events, key=lambda e: (e.label, e.onset)):
        last = merged[-1] if merged else None
        if last is not None and last.label == event.label and event.onset <= last.offset:
            merged[-1] = Event(last.onset, max(last.offset, event.offset), last.label)
        else:
            merged.append(event)
    return merged


def _event_table(clips: Mapping[str, Sequence[Event]]):
    import pandas as pd

    rows = [(name, e.onset, e.offset, e.label) for name, events in clips.items() for e in events]
    table = pd.DataFrame(rows, columns=["filename", "onset", "offset", "event_label"])
    # psds_eval's indices from 1 (DESED_task evaluation_measures.py:222-224, psds_eval issue 3)
    table.index = range(1, len(table) + 1)
    return table


def psds(
    reference: Mapping[str, Sequence[Event]],
    operating_points: Sequence[Mapping[str, Sequence[Event]]],
    durations: Mapping[str, float],
    labels: Sequence[str],
    scenarios: Mapping[str, PsdsScenario] = PSDS_SCENARIOS,
) -> dict[str, float | None]:
    """Each scenario's PSDS (0 to 1) by ``psds_eval`` of a system given as its detections at
    several ``operating_points`` (each ``{clip: events}``; clips of ``reference`` missing there
    detected nothing), over the clips of ``reference`` with their ``durations`` in seconds.
    Operating points that detect the same events count once.

    The classes are those of ``labels`` with reference events here (a warning names the others,
    whose detections are left out): a class's true positive ratio is undefined without references,
    and psds_eval fails on such a class. None with fewer than two such classes: psds_eval averages
    each class's cross-triggers over the other classes, and with none every effective FP rate is
    NaN (it would report 0)."""
    import pandas as pd
    from psds_eval import PSDSEval

    present = {e.label for events in reference.values() for e in events}
    classes = [label for label in labels if label in present]
    if len(classes) < len(labels):
        log.warning(
            "PSDS over the %d classes with reference events; left out: %s",
            len(classes),
            ", ".join(label for label in labels if label not in present),
        )
    if len(classes) < 2:
        return {name: None for name in scenarios}
    ground_truth = _event_table({name: _merged(events) for name, events in reference.items()})
    metadata = pd.DataFrame(
        [(name, float(durations[name])) for name in reference], columns=["filename", "duration"]
    )
    detections = [
        _event_table(
            {name: [e for e in point.get(name, []) if e.label in present] for name in reference}
        )
        for point in operating_points
    ]
    scores = {}
    with warnings.catch_warnings():
        # psds_eval 0.5.3 (2021) on pandas 2.3 / numpy 2.3: fillna(method=) and int() of a
        # one-element array are deprecated (not yet removed), and it warns on every repeated
        # operating point, which low and high thresholds give.
        warnings.filterwarnings("ignore", category=FutureWarning)
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        warnings.filterwarnings("ignore", message="A similar operating point exists")
        # and its NaN rates of a class with no cross-trigger counted, which it then skips
        warnings.filterwarnings("ignore", category=RuntimeWarning)
        for name, scenario in scenarios.items():
            evaluation = PSDSEval(
                dtc_threshold=scenario.dtc,
                gtc_threshold=scenario.gtc,
                cttc_threshold=scenario.cttc,
                ground_truth=ground_truth,
                metadata=metadata,
                class_names=classes,
            )
            for table in detections:
                evaluation.add_operating_point(table)
            scores[name] = float(
                evaluation.psds(
                    alpha_ct=scenario.alpha_ct,
                    alpha_st=scenario.alpha_st,
                    max_efpr=scenario.max_efpr,
                ).value
            )
    return scores


def psds_of_probabilities(
    probabilities: Mapping[str, np.ndarray],
    reference: Mapping[str, Sequence[Event]],
    durations: Mapping[str, float],
    frame_seconds: float,
    labels: Sequence[str],
    median_frames: int = 1,
    thresholds: Sequence[float] = PSDS_THRESHOLDS,
    scenarios: Mapping[str, PsdsScenario] = PSDS_SCENARIOS,
) -> dict[str, float | None]:
    """:func:`psds` of frame probabilities, one operating point per threshold (DCASE's 50 by
    default), each decoded with the same median filter (DCASE task 4's baseline fixes one)."""
    operating_points = [
        {
            name: frames_to_events(p, frame_seconds, labels, threshold, median_frames)
            for name, p in probabilities.items()
        }
        for threshold in thresholds
    ]
    return psds(reference, operating_points, durations, labels, scenarios)


def tune_psds_median(
    probabilities: Mapping[str, np.ndarray],
    reference: Mapping[str, Sequence[Event]],
    durations: Mapping[str, float],
    frame_seconds: float,
    labels: Sequence[str],
    median_frames: Sequence[int] = (1, 3, 5, 7, 11),
    thresholds: Sequence[float] = PSDS_THRESHOLDS,
    scenarios: Mapping[str, PsdsScenario] = PSDS_SCENARIOS,
) -> dict[str, dict]:
    """For each scenario, the median filter length with the best PSDS on these (validation) clips
    and that PSDS: ``{scenario: {median_frames, psds}}``. Ties go to the first in grid order; the
    first length when PSDS is not defined (fewer than two classes)."""
    best: dict[str, dict] = {}
    for median in median_frames:
        values = psds_of_probabilities(
            probabilities,
            reference,
            durations,
            frame_seconds,
            labels,
            median,
            thresholds,
            scenarios,
        )
        for name, value in values.items():
            if name not in best or (value is not None and value > best[name]["psds"]):
                best[name] = {"median_frames": int(median), "psds": value}
    return best
