"""The synthetic VoxCeleb-format generator: layout, determinism, disjoint speakers, guard rails."""

from __future__ import annotations

import hashlib
from dataclasses import replace

import numpy as np
import pytest

from sonolab.data.readers import read_speaker_list, read_trial_list, scan_speaker_tree
from sonolab.data.synth.__main__ import main as synth_main
from sonolab.data.synth.voice import SpeakerProfile, synthesize_utterance
from sonolab.data.synth.voxceleb import VoxCelebSynthConfig, generate_voxceleb

from ...conftest import TINY_SYNTH


def _digest(root):
    h = hashlib.sha256()
    for p in sorted((root / "wav").rglob("*.wav")):
        h.update(p.relative_to(root).as_posix().encode() + p.read_bytes())
    return h.hexdigest()


def test_layout_lists_and_disjoint_speakers(tiny_voxceleb):
    utts = scan_speaker_tree(tiny_voxceleb / "wav")
    cfg = VoxCelebSynthConfig(**TINY_SYNTH)
    n_spk = cfg.num_train_speakers + cfg.num_val_speakers + cfg.num_test_speakers
    assert len(utts) == n_spk * cfg.sessions_per_speaker * cfg.utterances_per_session
    train = set(read_speaker_list(tiny_voxceleb / "train_speakers.txt"))
    val = read_trial_list(tiny_voxceleb / "val_trials.txt")
    test = read_trial_list(tiny_voxceleb / "trials.txt")
    val_spk = {p.split("/")[0] for t in val for p in (t.enroll, t.test)}
    test_spk = {p.split("/")[0] for t in test for p in (t.enroll, t.test)}
    assert len(train) == cfg.num_train_speakers
    assert not (train & val_spk) and not (train & test_spk) and not (val_spk & test_spk)
    assert sum(t.label for t in test) == len(test) // 2
    for t in test:  # targets cross sessions; labels agree with speaker ids
        same = t.enroll.split("/")[0] == t.test.split("/")[0]
        assert same == bool(t.label)
        if t.label:
            assert t.enroll.split("/")[1] != t.test.split("/")[1]
    assert (tiny_voxceleb / "musan" / "noise").is_dir() and any((tiny_voxceleb / "rirs").iterdir())


def test_cli_is_deterministic_across_worker_counts(tmp_path, tiny_voxceleb):
    small = {
        **TINY_SYNTH,
        "num_train_speakers": 2,
        "num_val_speakers": 2,
        "num_test_speakers": 2,
        "num_val_trials": 8,
        "num_test_trials": 12,
        "augment_corpora": False,
    }
    args = [f"--{k.replace('_', '-')}={v}" for k, v in small.items() if k != "augment_corpora"]
    assert (
        synth_main(
            [
                "voxceleb",
                "--out",
                str(tmp_path / "a"),
                "--workers",
                "1",
                "--no-augment-corpora",
                *args,
            ]
        )
        == 0
    )
    assert (
        synth_main(
            [
                "voxceleb",
                "--out",
                str(tmp_path / "b"),
                "--workers",
                "2",
                "--no-augment-corpora",
                *args,
            ]
        )
        == 0
    )
    assert _digest(tmp_path / "a") == _digest(tmp_path / "b")
    assert (tmp_path / "a" / "trials.txt").read_text() == (
        tmp_path / "b" / "trials.txt"
    ).read_text()
    # Calling again with the same parameters is a no-op; other parameters are refused.
    generate_voxceleb(tmp_path / "a", VoxCelebSynthConfig(**small))
    with pytest.raises(FileExistsError, match="other parameters"):
        generate_voxceleb(tmp_path / "a", replace(VoxCelebSynthConfig(**small), seed=99))


def test_refuses_to_write_into_foreign_folder(tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "thesis.txt").write_text("precious")
    with pytest.raises(FileExistsError, match="not a synthetic dataset"):
        generate_voxceleb(tmp_path / "mine", VoxCelebSynthConfig(**TINY_SYNTH))
    assert (tmp_path / "mine" / "thesis.txt").read_text() == "precious"


def test_speakers_differ_in_pitch_and_formants():
    rng = np.random.default_rng(0)
    profiles = [SpeakerProfile.sample(rng) for _ in range(200)]
    f0 = np.array([p.f0_mean for p in profiles])
    assert f0.min() < 110 and f0.max() > 200  # low and high voices
    assert np.std([p.vtl_factor for p in profiles]) > 0.05
    wave = synthesize_utterance(profiles[0], rng, 1.5)
    assert wave.shape == (24000,) and np.isfinite(wave).all() and np.abs(wave).max() <= 0.5 + 1e-6
