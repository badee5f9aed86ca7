"""The synthetic-data generator refuses requests the data cannot give, and a killed generation
leaves nothing behind for the next one."""

from __future__ import annotations

import signal
import time

import numpy as np
import pytest

from sonolab.data.synth.__main__ import main as synth_main
from sonolab.data.synth.voxceleb import (
    VoxCelebSynthConfig,
    check_request,
    generate_voxceleb,
    make_trials,
)

from ...bad_input import script as _script
from ...conftest import TINY_SYNTH


def test_generator_refuses_requests_the_data_cannot_give(tmp_path, capsys):
    too_many = VoxCelebSynthConfig(**{**TINY_SYNTH, "num_test_trials": 400})
    with pytest.raises(
        ValueError, match=r"num_test_trials=400 needs .* 200 target pairs .* give 20 and"
    ):
        generate_voxceleb(tmp_path / "a", too_many)
    one_session = VoxCelebSynthConfig(**{**TINY_SYNTH, "sessions_per_speaker": 1})
    with pytest.raises(
        ValueError, match=r"sessions_per_speaker=1 .* give 0 and .*targets need 2\+ sessions"
    ):
        check_request(one_session)
    assert not (tmp_path / "a").exists() and not list(tmp_path.iterdir())
    with pytest.raises(SystemExit) as stop:
        synth_main(["voxceleb", "--out", str(tmp_path / "b"), "--sessions-per-speaker", "1"])
    assert stop.value.code == 2 and "targets need 2+ sessions" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())
    utts = {
        "s1": [("s1/a/1.wav", "a"), ("s1/b/2.wav", "b")],
        "s2": [("s2/a/1.wav", "a"), ("s2/b/2.wav", "b")],
    }
    trials = make_trials(
        utts, 4, np.random.default_rng(0)
    )  # both target pairs there are, each once, in one order
    assert len({frozenset(t[1:]) for t in trials}) == 4 and sorted(t[0] for t in trials) == [
        0,
        0,
        1,
        1,
    ]
    with pytest.raises(
        ValueError, match=r"6 trials need 3 target pairs .* 2 speakers give 2 and 4"
    ):
        make_trials(utts, 6, np.random.default_rng(0))


def test_a_killed_generator_leaves_no_temporary_folder_for_the_next_run(tmp_path):
    out = tmp_path / "synth"
    proc = _script(
        "sonolab.data.synth",
        [
            "voxceleb",
            "--out",
            str(out),
            "--workers",
            "1",
            "--num-train-speakers",
            "40",
            "--no-augment-corpora",
        ],
        tmp_path,
    )
    deadline = time.time() + 120
    while not list(tmp_path.glob(".synth.*/wav/*")) and time.time() < deadline:
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert list(tmp_path.glob(".synth.*")), "the generator was killed before it wrote anything"
    foreign = tmp_path / ".synth.not-ours"
    foreign.mkdir()
    small = VoxCelebSynthConfig(
        **{
            **TINY_SYNTH,
            "num_train_speakers": 2,
            "num_val_trials": 8,
            "num_test_trials": 12,
            "augment_corpora": False,
        }
    )
    generate_voxceleb(out, small, workers=1)
    assert sorted(p.name for p in tmp_path.glob(".synth.*")) == [
        ".synth.not-ours"
    ]  # ours removed, foreign kept
    assert (out / "synth.json").is_file()
