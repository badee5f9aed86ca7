"""Sound event detection metrics: frames to events by hand, event- and segment-based F1 against
hand-counted cases (sed_eval does the counting), and the decisions tuned on validation clips."""

from __future__ import annotations

import numpy as np
import pytest

from sonolab.metrics.sed import Event, frames_to_events, sed_f1, tune_decisions

LABELS = ("cat", "dog")


def test_runs_of_active_frames_become_events_and_the_median_filter_drops_blips():
    p = np.zeros((20, 2))
    p[2:6, 1] = 0.9  # dog, frames 2-5
    p[10, 1] = 0.9  # a one-frame blip
    p[12:18, 0] = 0.7  # cat, frames 12-17 with a one-frame dip at 14
    p[14, 0] = 0.2
    events = frames_to_events(p, 0.1, LABELS, threshold=0.5)
    assert events == [
        Event(pytest.approx(0.2), pytest.approx(0.6), "dog"),
        Event(pytest.approx(1.0), pytest.approx(1.1), "dog"),
        Event(pytest.approx(1.2), pytest.approx(1.4), "cat"),
        Event(pytest.approx(1.5), pytest.approx(1.8), "cat"),
    ]
    filtered = frames_to_events(p, 0.1, LABELS, threshold=0.5, median_frames=3)
    assert filtered == [
        Event(pytest.approx(0.2), pytest.approx(0.6), "dog"),
        Event(pytest.approx(1.2), pytest.approx(1.8), "cat"),
    ]
    # one threshold per class
    assert frames_to_events(p, 0.1, LABELS, threshold=np.array([0.8, 0.5])) == events[:2]


def test_event_and_segment_f1_by_hand():
    reference = {"a.wav": [Event(1.0, 3.0, "dog"), Event(5.0, 7.0, "cat")]}
    estimated = {"a.wav": [Event(1.1, 3.0, "dog"), Event(5.3, 6.9, "cat")]}
    out = sed_f1(reference, estimated, LABELS)
    # dog: onset 0.1 s off (within the 200 ms collar), offset exact: a hit. cat: onset 0.3 s off:
    # a false alarm and a miss. Micro: P = R = 1/2; macro: (1 + 0) / 2
    assert out["event_f1_micro"] == pytest.approx(50.0)
    assert out["event_f1_macro"] == pytest.approx(50.0)
    assert out["per_class_event_f1"] == {"cat": pytest.approx(0.0), "dog": pytest.approx(100.0)}
    # 1 s segments: dog active in [1, 2) and [2, 3) in both, cat in [5, 6) and [6, 7) in both
    assert out["segment_f1_micro"] == pytest.approx(100.0)
    # offset collar: 20 % of a 2 s event is 0.4 s, so an offset 0.3 s early still hits
    late = sed_f1(reference, {"a.wav": [Event(1.0, 2.7, "dog")]}, LABELS)
    assert late["per_class_event_f1"]["dog"] == pytest.approx(100.0)
    # a clip missing from the estimate detected nothing: F1 0, not undefined
    nothing = sed_f1(reference, {}, LABELS)
    assert nothing["event_f1_micro"] == 0.0 and nothing["event_f1_macro"] == 0.0
    # a class missed entirely counts 0 in the macro mean (sed_eval's own average would skip it and
    # report 100 here); a class with neither references nor detections is left out
    only_dog = sed_f1(reference, {"a.wav": [Event(1.0, 3.0, "dog")]}, LABELS)
    assert only_dog["event_f1_macro"] == pytest.approx(50.0)
    assert only_dog["event_f1_micro"] == pytest.approx(100 * 2 * 1 / (2 + 1))
    dog_only_reference = {"a.wav": [Event(1.0, 3.0, "dog")]}
    alone = sed_f1(dog_only_reference, {"a.wav": [Event(1.0, 3.0, "dog")]}, LABELS)
    assert alone["per_class_event_f1"]["cat"] is None and alone["event_f1_macro"] == 100.0


def test_decisions_are_tuned_to_the_best_event_f1_on_the_clips():
    frame = 0.1
    reference = {
        "a.wav": [Event(1.0, 3.0, "dog")],
        "b.wav": [Event(0.5, 1.5, "cat")],
    }
    probabilities = {"a.wav": np.full((50, 2), 0.3), "b.wav": np.full((50, 2), 0.3)}
    probabilities["a.wav"][10:30, 1] = 0.75
    probabilities["b.wav"][5:15, 0] = 0.65
    best = tune_decisions(probabilities, reference, frame, LABELS, thresholds=(0.2, 0.6, 0.8))
    # 0.2 marks everything active, 0.8 nothing: 0.6 finds both events
    assert best["threshold"] == 0.6 and best["event_f1_macro"] == pytest.approx(100.0)
