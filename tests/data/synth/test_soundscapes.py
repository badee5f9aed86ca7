"""Soundscapes from the real ESC-10 clips in DESED's layout: deterministic, folds kept apart, and
labels where the events' sound is."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from sonolab.data.readers import read_durations, read_strong_labels, read_weak_labels
from sonolab.data.synth.soundscapes import (
    SoundscapeSynthConfig,
    active_region,
    generate_soundscapes,
)

from ...conftest import SHARED_DATA

ESC10 = SHARED_DATA / "esc10"
SMALL = dict(
    source=str(ESC10), train_soundscapes=6, validation_soundscapes=3, eval_soundscapes=3, seed=3
)


def test_active_region_trims_the_silence_around_a_sound():
    sr = 1000
    wave = np.zeros(5 * sr)
    wave[1200:3100] = np.sin(np.arange(1900) * 0.3)
    start, end = active_region(wave, sr, trim_db=30.0)
    assert 1180 <= start <= 1200 and 3100 <= end <= 3120  # 20 ms frames
    assert active_region(np.zeros(100), sr, 30.0) == (0, 100)


@pytest.fixture(scope="module")
def soundscapes(tmp_path_factory):
    if not (ESC10 / "meta" / "esc50.csv").is_file():
        pytest.skip(f"real data not present: {ESC10} (see ../shared/data/README.md)")
    out = tmp_path_factory.mktemp("scapes") / "desed"
    generate_soundscapes(out, SoundscapeSynthConfig(**SMALL))
    return out


def test_layout_is_desed_s_and_the_labels_read_back(soundscapes):
    # ESC-10's ten classes (ESC-50's meta, esc10=True rows)
    classes = {
        line.split(",")[3]
        for line in (ESC10 / "meta" / "esc50.csv").read_text().splitlines()[1:]
        if line.split(",")[4] == "True"
    }
    assert len(classes) == 10
    weak = read_weak_labels(
        soundscapes / "metadata/train/weak.tsv", classes, soundscapes / "audio/train/weak"
    )
    assert len(weak) == 6 and all(1 <= len(v) <= 3 for v in weak.values())
    for part in ("validation", "eval"):
        events, clips = read_strong_labels(
            soundscapes / f"metadata/{part}/{part}.tsv", classes, soundscapes / "audio" / part
        )
        assert len(clips) == 3 and all(0 <= e.onset < e.offset <= 10.0 for e in events)
        durations = read_durations(soundscapes / f"metadata/{part}/{part}_durations.tsv")
        assert set(durations) == set(clips) and set(durations.values()) == {10.0}
        info = sf.info(soundscapes / "audio" / part / clips[0])
        assert info.samplerate == 22050 and info.frames == 220500


def test_each_part_hears_only_its_own_folds(soundscapes):
    for part, folds in (("train", {"1", "2", "3"}), ("validation", {"4"}), ("eval", {"5"})):
        rows = (soundscapes / f"metadata/{part}/{part}_sources.tsv").read_text().splitlines()[1:]
        assert rows and {r.split("\t")[2].split("-")[0] for r in rows} <= folds


def test_labelled_regions_hold_the_events_energy(soundscapes):
    """Inside the labels the soundscape is louder than outside (events are 0-15 dB above the
    background over their active region)."""
    events, clips = read_strong_labels(soundscapes / "metadata/eval/eval.tsv")
    inside_db, outside_db = [], []
    for clip in clips:
        wave, sr = sf.read(soundscapes / "audio/eval" / clip)
        mask = np.zeros(len(wave), dtype=bool)
        for e in (e for e in events if e.filename == clip):
            mask[int(e.onset * sr) : int(e.offset * sr)] = True
        if mask.all():
            continue
        inside_db.append(10 * np.log10(np.mean(wave[mask] ** 2)))
        outside_db.append(10 * np.log10(np.mean(wave[~mask] ** 2)))
    assert inside_db and np.mean(inside_db) > np.mean(outside_db) + 3.0


def test_the_same_seed_makes_the_same_soundscapes(soundscapes, tmp_path):
    again = tmp_path / "again"
    generate_soundscapes(again, SoundscapeSynthConfig(**SMALL))
    for name in ("metadata/eval/eval.tsv", "metadata/train/weak.tsv"):
        assert (again / name).read_text() == (soundscapes / name).read_text()
    assert (again / "audio/eval/eval_00001.wav").read_bytes() == (
        soundscapes / "audio/eval/eval_00001.wav"
    ).read_bytes()
    other = tmp_path / "other"
    generate_soundscapes(other, SoundscapeSynthConfig(**{**SMALL, "seed": 4}))
    assert (other / "metadata/eval/eval.tsv").read_text() != (
        soundscapes / "metadata/eval/eval.tsv"
    ).read_text()
    with pytest.raises(ValueError, match="two different folds"):
        SoundscapeSynthConfig(source=str(ESC10), validation_fold=5, eval_fold=5)
    with pytest.raises(ValueError, match="source must name"):
        SoundscapeSynthConfig()
