"""Validation on held-out training speakers (command and data.lists.val_holdout) and crops counted
in frames."""

from __future__ import annotations

import pytest
import torch

from sonolab.data.holdout import main as holdout_main
from sonolab.data.readers import read_trial_list
from sonolab.data.verification_settings import frames_to_samples
from sonolab.features import KaldiFbank

from ..conftest import voxceleb_datamodule as _datamodule


def test_holdout_command_writes_disjoint_speakers_and_trials(tiny_voxceleb, tmp_path, capsys):
    out = tmp_path / "lists"
    assert (
        holdout_main(
            [
                "--root",
                str(tiny_voxceleb),
                "--train-dir",
                "wav",
                "--speakers",
                "3",
                "--trials",
                "16",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    remaining = (out / "train_speakers.txt").read_text().split()
    trials = read_trial_list(out / "val_trials.txt")
    held = {t.enroll.split("/")[0] for t in trials} | {t.test.split("/")[0] for t in trials}
    every = {p.name for p in (tiny_voxceleb / "wav").iterdir() if p.is_dir()}
    assert len(held) == 3 and not held & set(remaining) and held | set(remaining) == every
    assert sum(t.label for t in trials) == 8 and len(trials) == 16
    assert all((tiny_voxceleb / "wav" / t.enroll).is_file() for t in trials)
    assert "16 trials over 3 held-out speakers" in capsys.readouterr().out
    with pytest.raises(FileExistsError, match="train_speakers.txt"):
        holdout_main(
            [
                "--root",
                str(tiny_voxceleb),
                "--train-dir",
                "wav",
                "--speakers",
                "3",
                "--out",
                str(out),
            ]
        )


def test_val_holdout_validates_on_speakers_it_takes_out_of_training(tiny_voxceleb):
    full = _datamodule(tiny_voxceleb)
    full.setup("fit")
    holdout = {"val_trials": None, "val_holdout": {"speakers": 3, "trials": 16, "seed": 0}}
    dm = _datamodule(tiny_voxceleb, lists=holdout)
    dm.setup("fit")
    val = dm.eval_sets["val"]
    assert len(dm.speakers) == len(full.speakers) - 3 and set(val.speakers) <= set(full.speakers)
    assert not set(val.speakers) & set(dm.speakers) and len(val.labels) == 16
    assert not dm.validation_is_tested() and ".sonolab" in str(val.list_path)
    again = _datamodule(tiny_voxceleb, lists=holdout)
    again.setup("fit")
    assert (
        again.eval_sets["val"].list_path == val.list_path and again.speakers == dm.speakers
    )  # same seed, same split
    assert next(iter(dm.val_dataloader()))["wave"].abs().max() > 0


def test_crop_in_frames_gives_that_many_fbank_frames(tiny_voxceleb):
    assert frames_to_samples(200, 16000) == 32240  # WeSpeaker's num_frms 200
    dm = _datamodule(tiny_voxceleb, crops={"frames": 100})
    dm.setup("fit")
    wave = dm.train_dataloader().dataset[0]["wave"]
    feats, frames = KaldiFbank(n_mels=80)(wave[None], torch.tensor([wave.numel()]))
    assert wave.numel() == 16240 and feats.shape[1] == int(frames[0]) == 100


def test_cohort_is_drawn_at_random_across_sessions():
    from sonolab.data.cohort import draw_cohort
    from sonolab.data.readers import Utterance

    utts = [
        Utterance(f"s{k}/sess{j}/{i}.wav", f"s{k}", f"sess{j}")
        for k in range(3)
        for j in range(4)
        for i in range(5)
    ]
    chosen = draw_cohort(utts, 4, seed=0)
    for k in range(3):
        mine = [u for u in chosen if u.speaker == f"s{k}"]
        assert (
            len(mine) == 4 and len({u.session for u in mine}) == 4
        )  # one per session before any repeats
    assert draw_cohort(utts, 4, seed=0) == chosen and draw_cohort(utts, 4, seed=1) != chosen
    assert len(draw_cohort(utts, 50, seed=0)) == 60  # more than a speaker has: all of them
    firsts = [u for u in chosen if u.path.endswith("/0.wav")]
    assert len(firsts) < len(chosen)  # not simply the first file of each session


def test_one_session_speakers_give_same_session_targets_and_too_many_trials_are_named():
    from sonolab.data.holdout import hold_out
    from sonolab.data.readers import Utterance
    from sonolab.utils.errors import ConfigValueError

    utts = [Utterance(f"s{k}/read/{i}.flac", f"s{k}", "read") for k in range(6) for i in range(4)]
    held, trials = hold_out(utts, 3, 12, seed=0)
    assert len(held) == 3 and sum(label for label, _, _ in trials) == 6
    assert all(e.split("/")[0] == t.split("/")[0] for label, e, t in trials if label == 1)
    with pytest.raises(
        ConfigValueError, match="holdout trials: expected a number the 3 held-out speakers can give"
    ):
        hold_out(utts, 3, 100, seed=0)  # 3 x 6 same-speaker pairs only
