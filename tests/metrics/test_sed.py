"""Sound event detection metrics: frames to events by hand, event- and segment-based F1 against
hand-counted cases (sed_eval does the counting), and the decisions tuned on validation clips."""

from __future__ import annotations

import numpy as np
import pytest

from sonolab.metrics.sed import (
    Event,
    PsdsScenario,
    frames_to_events,
    psds,
    psds_of_probabilities,
    sed_f1,
    tune_decisions,
    tune_psds_median,
)

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


# PSDS: psds_eval does the counting; the expected values are the PSD-ROC areas worked out by hand
# from the definition (Bilen et al. 2020): per class the best TPR at an effective FP rate up to e,
# eTPR(e) = mean - alpha_st * std over classes; PSDS = its area over [0, max_efpr] / max_efpr.
# Two clips of half an hour each (durations are only the FP-rate denominator): one FP = 1 per hour.
PSDS_REFERENCE = {"a.wav": [Event(1.0, 3.0, "dog")], "b.wav": [Event(0.5, 1.5, "cat")]}
HALF_HOURS = {"a.wav": 1800.0, "b.wav": 1800.0}


def test_psds_of_perfect_detections_and_of_one_false_positive_by_hand():
    assert psds(PSDS_REFERENCE, [PSDS_REFERENCE], HALF_HOURS, LABELS) == {
        "psds1": pytest.approx(1.0),
        "psds2": pytest.approx(1.0),
    }
    # one dog false alarm away from any reference event: dog reaches TPR 1 only at eFPR 1 / h, so
    # eTPR = 0.5 - 0.5 = 0 below it and 1 from it: area 99 of 100 (no cross-trigger in either)
    with_false_alarm = {
        "a.wav": [Event(1.0, 3.0, "dog")],
        "b.wav": [Event(0.5, 1.5, "cat"), Event(5.0, 6.0, "dog")],
    }
    assert psds(PSDS_REFERENCE, [with_false_alarm], HALF_HOURS, LABELS) == {
        "psds1": pytest.approx(0.99),
        "psds2": pytest.approx(0.99),
    }


def test_psds1_refuses_whole_clip_detections_that_psds2_accepts():
    # a dog detection over 10 s holding the 2 s reference: 20 % of it is on the reference, under
    # PSDS1's 0.7 detection tolerance (a false positive, the reference missed) and over PSDS2's 0.1
    whole = {"a.wav": [Event(0.0, 10.0, "dog")], "b.wav": [Event(0.0, 10.0, "cat")]}
    out = psds(PSDS_REFERENCE, [whole], HALF_HOURS, LABELS)
    assert out["psds1"] == pytest.approx(0.0) and out["psds2"] == pytest.approx(1.0)


def test_psds_over_operating_points_and_the_class_instability_weight():
    # op 1 finds the dog only; op 2 finds both with two cat false alarms (cat eFPR 2 / h)
    dog_only = {"a.wav": [Event(1.0, 3.0, "dog")]}
    both = {
        "a.wav": [Event(1.0, 3.0, "dog"), Event(6.0, 7.0, "cat")],
        "b.wav": [Event(0.5, 1.5, "cat"), Event(6.0, 7.0, "cat")],
    }
    scenarios = {
        "stable": PsdsScenario(dtc=0.7, gtc=0.7, cttc=0.3, alpha_ct=0.0, alpha_st=1.0),
        "mean": PsdsScenario(dtc=0.7, gtc=0.7, cttc=0.3, alpha_ct=0.0, alpha_st=0.0),
    }
    out = psds(PSDS_REFERENCE, [dog_only, both], HALF_HOURS, LABELS, scenarios)
    # eFPR in [0, 2): dog 1, cat 0 -> mean 0.5, std 0.5; from 2: both 1
    assert out["stable"] == pytest.approx(98 / 100)
    assert out["mean"] == pytest.approx((2 * 0.5 + 98) / 100)
    # the same operating point twice counts once
    assert psds(PSDS_REFERENCE, [both, both, dog_only], HALF_HOURS, LABELS, scenarios) == out


def test_psds_joins_overlapping_reference_events_of_one_class():
    reference = {
        "a.wav": [Event(1.0, 3.0, "dog"), Event(2.0, 4.0, "dog")],
        "b.wav": [Event(0.5, 1.5, "cat")],
    }
    found = {"a.wav": [Event(1.0, 4.0, "dog")], "b.wav": [Event(0.5, 1.5, "cat")]}
    assert psds(reference, [found], HALF_HOURS, LABELS)["psds1"] == pytest.approx(1.0)


def test_psds_is_over_the_classes_with_reference_events(caplog):
    # a third class without references: its true positive ratio is undefined, so it is left out
    # (with a warning), its false alarm with it; the score is the two-class one
    with_bird = {
        "a.wav": [Event(1.0, 3.0, "dog"), Event(5.0, 6.0, "bird")],
        "b.wav": [Event(0.5, 1.5, "cat")],
    }
    with caplog.at_level("WARNING"):
        out = psds(PSDS_REFERENCE, [with_bird], HALF_HOURS, ("bird", *LABELS))
    assert out == {"psds1": pytest.approx(1.0), "psds2": pytest.approx(1.0)}
    assert "left out: bird" in caplog.text


def test_psds_needs_two_classes():
    # psds_eval's effective FP rate averages cross-triggers over the other classes: none with one
    # class (here one with references), which makes every rate NaN and the score a silent 0
    assert psds({"a.wav": [Event(1.0, 3.0, "dog")]}, [], {"a.wav": 10.0}, LABELS) == {
        "psds1": None,
        "psds2": None,
    }


def test_psds_of_probabilities_and_the_median_filter_tuned_on_it():
    frame = 0.1
    probabilities = {"a.wav": np.zeros((50, 2)), "b.wav": np.zeros((50, 2))}
    probabilities["a.wav"][10:30, 1] = 0.9  # dog 1.0-3.0 s
    probabilities["b.wav"][5:15, 0] = 0.9  # cat 0.5-1.5 s
    clean = psds_of_probabilities(probabilities, PSDS_REFERENCE, HALF_HOURS, frame, LABELS)
    assert clean == {"psds1": pytest.approx(1.0), "psds2": pytest.approx(1.0)}
    # one-frame dog blips at 0.6 in b.wav: a false alarm at every threshold up to 0.6 unless a
    # 3-frame median filter removes them
    probabilities["b.wav"][[30, 40], 1] = 0.6
    blips = psds_of_probabilities(probabilities, PSDS_REFERENCE, HALF_HOURS, frame, LABELS)
    assert blips["psds1"] == pytest.approx(1.0)  # thresholds above 0.6 still find all cleanly
    probabilities["b.wav"][[30, 40], 1] = 0.95
    blips = psds_of_probabilities(probabilities, PSDS_REFERENCE, HALF_HOURS, frame, LABELS)
    assert blips["psds1"] == pytest.approx(0.98)  # two dog false alarms (2 / h) at every threshold
    best = tune_psds_median(
        probabilities, PSDS_REFERENCE, HALF_HOURS, frame, LABELS, median_frames=(1, 3)
    )
    assert best == {
        "psds1": {"median_frames": 3, "psds": pytest.approx(1.0)},
        "psds2": {"median_frames": 3, "psds": pytest.approx(1.0)},
    }
