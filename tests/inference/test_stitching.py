"""Joining window-local speakers: the cannot-link constraint, the speaker count, and what the
joining alone costs on the real AMI test meetings' turn-taking (an oracle local model)."""

from __future__ import annotations

import numpy as np
import pytest

from sonolab.inference.oracle import embedding_eer, noise_for_eer, stitching_der
from sonolab.inference.stitching import (
    ClusteringConfig,
    WindowSpeakers,
    cluster_window_speakers,
    stitch,
)

from ..conftest import SHARED_DATA

AMI_SETUP = SHARED_DATA / "ami-diarization-setup"


def _window(first: int, active: list[int], vectors: np.ndarray, frames: int = 20) -> WindowSpeakers:
    return WindowSpeakers(first, np.ones((frames, len(active))), vectors[active])


def test_speakers_of_one_window_never_share_a_label():
    vectors = np.eye(3)
    # window 1 holds two local speakers with the same embedding: still two labels
    windows = [_window(0, [0, 1], vectors), _window(10, [0, 0], vectors), _window(20, [2], vectors)]
    labels = cluster_window_speakers(windows, 0.1, ClusteringConfig(min_active_seconds=0.0))
    assert labels[1][0] != labels[1][1]
    assert labels[0][0] in labels[1] and labels[2][0] not in labels[0]


def test_the_count_is_given_or_bounded_and_short_speakers_are_left_out():
    vectors = np.random.default_rng(0).normal(size=(4, 64))  # distinct distances: no merge ties
    windows = [_window(10 * i, [i % 4], vectors) for i in range(8)]
    short = WindowSpeakers(80, np.zeros((20, 1)), vectors[:1])  # never active
    config = ClusteringConfig(threshold=0.5, min_active_seconds=0.5)
    labels = cluster_window_speakers([*windows, short], 0.1, config)
    assert len({int(lab[0]) for lab in labels[:8]}) == 4 and labels[8][0] == -1
    assert len({int(lab[0]) for lab in cluster_window_speakers(windows, 0.1, config, 2)}) == 2
    bounded = ClusteringConfig(threshold=0.5, max_speakers=3, min_active_seconds=0.0)
    assert len({int(lab[0]) for lab in cluster_window_speakers(windows, 0.1, bounded)}) == 3
    probs = stitch(windows, cluster_window_speakers(windows, 0.1, config), 90)
    assert probs.shape == (90, 4) and np.allclose(probs.sum(1), 1.0)  # one speaker per frame


def test_embedding_noise_is_calibrated_to_the_asked_eer():
    noise = noise_for_eer(10.0, 192, speakers=300, draws=2)
    measured = [embedding_eer(noise, 192, np.random.default_rng(s), 300) for s in (7, 8)]
    assert 8.0 < np.mean(measured) < 12.5


def test_joining_by_clustering_on_the_ami_test_meetings():
    """An oracle local model on the 16 AMI test meetings' references, 30 s windows / 15 s hop,
    window-speaker embeddings at a 10 % cosine EER: confusion under 3 % of the speech (joining by
    overlap activity: about 56 %, benchmarks/stitching.py prints both)."""
    if not (AMI_SETUP / "lists" / "test.meetings.txt").is_file():
        pytest.skip(f"real data not present: {AMI_SETUP} (see ../shared/data/README.md)")
    from sonolab.data.readers import read_rttm
    from sonolab.data.readers.rttm import read_uem

    references, uems = {}, {}
    for name in (AMI_SETUP / "lists" / "test.meetings.txt").read_text().split():
        references.update(read_rttm(AMI_SETUP / "only_words" / "rttms" / "test" / f"{name}.rttm"))
        uems.update(read_uem(AMI_SETUP / "uems" / "test" / f"{name}.uem"))
    assert len(references) == 16
    noise = noise_for_eer(10.0, 192, speakers=500, draws=2)
    # 0.95: the threshold benchmarks/stitching.py chooses on the development meetings
    result = stitching_der(references, uems, 30.0, 15.0, noise, threshold=0.95, seed=1)
    assert result["confusion_pct"] < 3.0
    assert max(result["labels"].values()) <= 5  # AMI meetings have 3 to 5 speakers
