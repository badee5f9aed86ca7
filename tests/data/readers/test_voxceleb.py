"""Readers and audio I/O: the happy path and every bad input naming the file, line and
expectation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from sonolab.data.audio import load_audio
from sonolab.data.readers import (
    check_trial_audio,
    read_speaker_list,
    read_trial_list,
    scan_speaker_tree,
)
from sonolab.utils.errors import DataFormatError


def _wav(path: Path, seconds: float = 0.5, rate: int = 16000) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(
        path, np.random.default_rng(0).normal(0, 0.1, int(seconds * rate)).astype(np.float32), rate
    )
    return path


@pytest.fixture
def tree(tmp_path) -> Path:
    for spk in ("id10001", "id10002"):
        for sess in ("abc", "def"):
            for utt in ("00001", "00002"):
                _wav(tmp_path / "wav" / spk / sess / f"{utt}.wav")
    return tmp_path


def test_scan_tree_and_filter_speakers(tree):
    utts = scan_speaker_tree(tree / "wav")
    assert len(utts) == 8
    assert (
        utts[0].path == "id10001/abc/00001.wav"
        and utts[0].speaker == "id10001"
        and utts[0].session == "abc"
    )
    assert {u.speaker for u in scan_speaker_tree(tree / "wav", speakers=["id10002"])} == {"id10002"}


def test_tree_not_in_voxceleb_layout(tmp_path):
    _wav(tmp_path / "flat" / "a.wav")
    with pytest.raises(
        DataFormatError, match=r"flat: expected the VoxCeleb layout .* found 'audio at a.wav'"
    ):
        scan_speaker_tree(tmp_path / "flat")
    _wav(tmp_path / "nosession" / "id1" / "a.wav")
    with pytest.raises(
        DataFormatError,
        match=r"nosession/id1/a.wav: expected the VoxCeleb layout.*no session folder",
    ):
        scan_speaker_tree(tmp_path / "nosession")
    with pytest.raises(DataFormatError, match="no such folder"):
        scan_speaker_tree(tmp_path / "missing")


def test_listed_speaker_without_folder(tree):
    with pytest.raises(DataFormatError, match=r"id19999 \(no folder\)"):
        scan_speaker_tree(tree / "wav", speakers=["id10001", "id19999"])


def test_trial_list_parses_and_reports_bad_lines(tmp_path):
    good = tmp_path / "trials.txt"
    good.write_text("1 a/b/1.wav a/c/2.wav\n\n0 a/b/1.wav d/e/3.wav\n")
    trials = read_trial_list(good)
    assert [(t.label, t.line) for t in trials] == [(1, 1), (0, 3)]
    bad = tmp_path / "bad.txt"
    bad.write_text("1 a/b/1.wav a/c/2.wav\n2 a b\n")
    with pytest.raises(
        DataFormatError,
        match=r"bad.txt:2: expected '<1\|0> <enroll path> <test path>', found '2 a b'",
    ):
        read_trial_list(bad)
    short = tmp_path / "short.txt"
    short.write_text("1 a/b/1.wav\n")
    with pytest.raises(DataFormatError, match=r"short.txt:1:"):
        read_trial_list(short)
    (tmp_path / "empty.txt").write_text("\n")
    with pytest.raises(DataFormatError, match="at least one trial"):
        read_trial_list(tmp_path / "empty.txt")


def test_trial_naming_missing_file(tree):
    lst = tree / "trials.txt"
    lst.write_text(
        "1 id10001/abc/00001.wav id10001/def/00001.wav\n0 id10001/abc/00001.wav "
        "id10002/zzz/00009.wav\n"
    )
    with pytest.raises(
        DataFormatError,
        match=r"trials.txt:2: expected an audio file .*id10002/zzz/00009.wav, found 'missing file'",
    ):
        check_trial_audio(read_trial_list(lst), tree / "wav", lst)


def test_speaker_list(tmp_path):
    p = tmp_path / "spk.txt"
    p.write_text("id1 # comment\n\nid2\n")
    assert read_speaker_list(p) == ["id1", "id2"]
    p.write_text("id1\nid1\n")
    with pytest.raises(DataFormatError, match=r"spk.txt:2: expected each speaker id listed once"):
        read_speaker_list(p)
    p.write_text("id1 id2\n")
    with pytest.raises(DataFormatError, match=r"spk.txt:1: expected one speaker id per line"):
        read_speaker_list(p)


def test_empty_truncated_and_non_audio_files(tmp_path):
    empty = tmp_path / "empty.wav"
    sf.write(empty, np.zeros(0, dtype=np.float32), 16000)
    with pytest.raises(DataFormatError, match=r"empty.wav: expected non-empty audio"):
        load_audio(empty, 16000)
    zero_bytes = tmp_path / "zero.wav"
    zero_bytes.write_bytes(b"")
    with pytest.raises(DataFormatError, match=r"zero.wav: expected audio readable by libsndfile"):
        load_audio(zero_bytes, 16000)
    text = tmp_path / "notes.wav"
    text.write_text("this is not audio")
    with pytest.raises(DataFormatError, match=r"notes.wav: expected audio readable by libsndfile"):
        load_audio(text, 16000)
    full = _wav(tmp_path / "full.wav", 0.5)
    truncated = tmp_path / "truncated.wav"
    truncated.write_bytes(
        full.read_bytes()[:44]
    )  # header only: it promises samples that are not there
    with pytest.raises(DataFormatError, match=r"truncated.wav: expected"):
        load_audio(truncated, 16000)
    with pytest.raises(
        DataFormatError, match=r"nowhere.wav: expected an audio file, found 'missing file'"
    ):
        load_audio(tmp_path / "nowhere.wav", 16000)


def test_wrong_sample_rate_is_resampled_or_rejected(tmp_path):
    path = _wav(tmp_path / "8k.wav", seconds=1.0, rate=8000)
    wave = load_audio(path, 16000, resample=True)
    assert wave.shape == (16000,)
    with pytest.raises(
        DataFormatError,
        match=r"8k.wav: expected audio at 16000 Hz \(or set resample=true\), found '8000 Hz'",
    ):
        load_audio(path, 16000, resample=False)


def test_partial_read_and_stereo(tmp_path):
    path = tmp_path / "stereo.flac"
    data = np.stack([np.linspace(-0.5, 0.5, 16000), np.zeros(16000)], axis=1).astype(np.float32)
    sf.write(path, data, 16000)
    wave = load_audio(path, 16000, start=100, num_frames=50)
    assert wave.shape == (50,)
    np.testing.assert_allclose(
        wave.numpy(), data[100:150].mean(axis=1), atol=1e-4
    )  # channels averaged
    np.testing.assert_allclose(
        load_audio(path, 16000, start=100, num_frames=50, channel=0).numpy(),
        data[100:150, 0],
        atol=1e-4,
    )


def test_binary_trial_list_is_reported(tmp_path):
    p = tmp_path / "trials.bin"
    p.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(
        DataFormatError, match=r"trials.bin: expected a trial list file .* as UTF-8 text"
    ):
        read_trial_list(p)
