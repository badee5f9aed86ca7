"""Bad input and misuse, one section per class of issue 9: each feeds the real bad input (a
truncated file, a stereo file with speech on one channel, two runs started together, a BOM'd RTTM, a
killed generator, a moved run folder, ...) and asserts the error names the file / line / key, or
that what was skipped is counted. New readers and datamodules add their cases here.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from omegaconf import OmegaConf

from sonolab.checkpoints import AtomicCheckpointIO, checkpoint_for_run, load_checkpoint
from sonolab.config import run_id
from sonolab.data.audio import audio_problem, load_audio, load_random_crop
from sonolab.data.readers import (
    match_uris,
    read_esc50_meta,
    read_json_datafile,
    read_rttm,
    read_segments,
    read_trial_list,
    read_uem,
    read_uri_list,
    scan_speaker_tree,
)
from sonolab.data.skips import SkipLog
from sonolab.data.synth.__main__ import main as synth_main
from sonolab.data.synth.voxceleb import (
    VoxCelebSynthConfig,
    check_request,
    generate_voxceleb,
    make_trials,
)
from sonolab.data.verification import VoxCelebDataModule, trial_lists_argument
from sonolab.data.verify import cache_file
from sonolab.resume import resume_arguments
from sonolab.run import build_task, build_trainer, evaluate, train
from sonolab.utils.errors import ConfigValueError, DataFormatError, IncompatibleConfigError

from .conftest import ROOT, SHARED_DATA, TINY_SYNTH, compose, tiny_overrides

SR = 16000


def _tone(seconds: float = 1.0, rate: int = SR) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)


def _truncate(path: Path) -> Path:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def _dm(root: Path, **kw) -> VoxCelebDataModule:
    args = dict(
        root=str(root),
        train_speakers="train_speakers.txt",
        val_trials="val_trials.txt",
        test_trials={"synth": "trials.txt"},
        batch_size=4,
        crop_seconds=1.0,
        num_workers=0,
    )
    return VoxCelebDataModule(**{**args, **kw})


def _script(script: str, args: list[str], cwd: Path, **popen) -> subprocess.Popen:
    env = {**os.environ, "SONOLAB_ROOT": str(ROOT), "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        [
            sys.executable,
            *([str(ROOT / script)] if script.endswith(".py") else ["-m", script]),
            *args,
        ],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **popen,
    )


@pytest.fixture
def tiny_copy(tiny_voxceleb, tmp_path) -> Path:
    """A private copy of the tiny dataset that a test may damage."""
    root = tmp_path / "data"
    shutil.copytree(tiny_voxceleb, root, ignore=shutil.ignore_patterns(".sonolab"))
    return root


# 1. Lost runs
# --------------------------------------------------------------------------------------
def test_run_id_is_unique_per_process_and_sorts_by_time():
    first = run_id()
    assert run_id() == first  # every resolution in one process names the same folder
    assert len(first) == len("2026-01-31_12-00-00.123_9f3a1c") and first[:4].isdigit()
    out = subprocess.run(
        [sys.executable, "-c", "from sonolab.config import run_id; print(run_id())"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert out != first


def test_two_runs_started_together_get_their_own_folders(tiny_voxceleb, tmp_path):
    logs = tmp_path / "logs"
    procs = [
        _script(
            "train.py",
            [
                *tiny_overrides(tiny_voxceleb),
                f"paths.log_dir={logs}",
                f"seed={seed}",
                "train=false",
                "test=false",
            ],
            tmp_path,
        )
        for seed in (1, 2)
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err[-2000:]
    runs = sorted((logs / "train" / "runs").iterdir())
    assert len(runs) == 2
    seeds = sorted(OmegaConf.load(r / ".hydra" / "config.yaml").seed for r in runs)
    assert seeds == [1, 2]


# 2. Truncated audio -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "fmt, subtype", [("WAV", "PCM_16"), ("WAV", "FLOAT"), ("FLAC", "PCM_16"), ("OGG", "VORBIS")]
)
def test_truncated_audio_is_an_error_naming_the_file(tmp_path, fmt, subtype):
    path = tmp_path / f"cut.{fmt.lower()}"
    sf.write(path, np.tile(_tone(), 2), SR, format=fmt, subtype=subtype)
    _truncate(path)
    with pytest.raises(
        DataFormatError, match=rf"cut\.{fmt.lower()}: expected .*(truncated|read error)"
    ):
        load_audio(path, SR)
    assert "cut." in audio_problem(path, SR, True)


def test_truncated_wav_fails_even_for_a_crop_from_its_intact_half(tmp_path):
    path = tmp_path / "cut.wav"
    sf.write(path, np.tile(_tone(), 4), SR, subtype="PCM_16")
    _truncate(path)
    with pytest.raises(
        DataFormatError, match=r"cut.wav: expected the 128000 data bytes its header declares"
    ):
        load_random_crop(path, SR, True, 1000, np.random.default_rng(0))


def test_non_finite_samples_are_named(tmp_path):
    data = _tone()
    data[1234] = np.nan
    path = tmp_path / "nan.wav"
    sf.write(path, data, SR, subtype="FLOAT")
    with pytest.raises(
        DataFormatError,
        match=r"nan.wav: expected finite sample values, found 'NaN or infinity at sample 1234'",
    ):
        load_audio(path, SR)


# 3. Stereo ----------------------------------------------------------------------------------------
def test_stereo_is_averaged_by_default_and_a_channel_can_be_picked(tmp_path):
    speech = _tone()
    path = tmp_path / "right_only.wav"
    sf.write(path, np.stack([np.zeros_like(speech), speech], axis=1), SR, subtype="FLOAT")
    np.testing.assert_allclose(
        load_audio(path, SR).numpy(), speech / 2, atol=1e-6
    )  # not the silent left channel
    np.testing.assert_allclose(load_audio(path, SR, channel=1).numpy(), speech, atol=1e-6)
    assert float(load_random_crop(path, SR, True, 800, np.random.default_rng(0)).abs().max()) > 0.1
    with pytest.raises(
        DataFormatError, match=r"right_only.wav: expected a channel 2 .*found '2 channel\(s\)'"
    ):
        load_audio(path, SR, channel=2)


def test_the_datamodule_applies_the_channel_setting(tiny_copy):
    utt = next((tiny_copy / "wav").glob("*/*/*.wav"))
    mono, rate = sf.read(utt, dtype="float32")
    sf.write(utt, np.stack([np.zeros_like(mono), mono], axis=1), rate, subtype="FLOAT")
    rel = str(utt.relative_to(tiny_copy / "wav"))
    for channel, expected in ((None, mono / 2), (1, mono)):
        dm = _dm(tiny_copy, channel=channel)
        dm.setup("test")
        dataset = dm.test_dataloader()[0].dataset
        dataset.paths = [rel]
        np.testing.assert_allclose(dataset[0]["wave"].numpy(), expected, atol=1e-4)
    with pytest.raises(
        ConfigValueError, match=r"data.channel: expected null \(average the channels\)"
    ):
        _dm(tiny_copy, channel=-1)


# 4. Training trees --------------------------------------------------------------------------------
def test_hidden_entries_and_other_extensions_are_ignored_and_counted(tiny_copy):
    wav = tiny_copy / "wav"
    speaker = sorted(p for p in wav.iterdir() if p.is_dir())[0]
    session = next(p for p in speaker.iterdir() if p.is_dir())
    (wav / ".git").mkdir()
    (wav / ".git" / "HEAD").write_text("ref")
    shutil.copy(next(session.glob("*.wav")), session / "._00001.wav")  # macOS resource fork
    (session / "00009.m4a").write_bytes(b"\0" * 100)
    m4a_only = wav / "id19999" / "sessionA"
    m4a_only.mkdir(parents=True)
    (m4a_only / "00001.m4a").write_bytes(b"\0" * 100)
    skips = SkipLog()
    utts = scan_speaker_tree(wav, ("wav",), skips=skips)
    assert ".git" not in {u.speaker for u in utts} and not any("._" in u.path for u in utts)
    counts = skips.as_dict()
    assert counts["hidden file or folder ignored"]["count"] == 2
    assert counts["audio file with an extension not in data.extensions (.m4a)"]["count"] == 2
    assert counts["speaker left out: no file with an extension in data.extensions"]["examples"] == [
        "id19999 (1 .m4a)"
    ]
    with pytest.raises(
        DataFormatError, match=r"id19999 \(only \.m4a files; add the extension to data.extensions"
    ):
        scan_speaker_tree(wav, ("wav",), speakers=[speaker.name, "id19999"])


def test_audio_pre_scan_lists_bad_files_or_skips_and_counts_them(tiny_copy, monkeypatch):
    train_speakers = (tiny_copy / "train_speakers.txt").read_text().split()
    files = sorted((tiny_copy / "wav" / train_speakers[0]).rglob("*.wav"))
    _truncate(files[0])
    sf.write(files[1], _tone(rate=8000), 8000)  # wrong rate, with resampling off
    with pytest.raises(
        DataFormatError,
        match=r"wav: expected audio the loaders can read \(32 files checked for "
        r"train\), found '2 bad files' \(all listed in .*bad_audio_train.txt; "
        r"data.on_bad_audio=skip leaves them out\)",
    ) as err:
        _dm(tiny_copy, verify_audio=True, resample=False).setup("fit")
    assert [d.split(": expected")[0] for d in err.value.details] == [str(files[0]), str(files[1])]
    assert "found '8000 Hz'" in err.value.details[1] and "truncated" in err.value.details[0]
    listing = (
        cache_file(
            tiny_copy, {"sample_rate": SR, "resample": False, "channel": None, "min_seconds": 0.025}
        ).parent
        / "bad_audio_train.txt"
    )
    assert listing.is_file() and len(listing.read_text().splitlines()) == 2
    assert (
        listing.parent == tiny_copy / ".sonolab"
    )  # beside the data, outside the trees that are scanned

    calls = []
    import sonolab.data.verify as verify

    real = verify.audio_problem
    monkeypatch.setattr(
        verify, "audio_problem", lambda *a, **k: calls.append(Path(a[0])) or real(*a, **k)
    )
    dm = _dm(tiny_copy, verify_audio=True, resample=False, on_bad_audio="skip")
    dm.setup("fit")
    assert not [c for c in calls if c.parts[-3] in train_speakers]  # training files: from the cache
    assert len(dm.train_set) == 8 * 4 - 2
    entry = dm.skipped.as_dict()["unreadable training file left out (data.on_bad_audio=skip)"]
    assert entry["count"] == 2 and any(files[0].name in e for e in entry["examples"])
    assert "hidden file or folder ignored" not in dm.skipped.as_dict()
    calls.clear()
    files[2].write_bytes(b"not audio")  # only a changed file is checked again
    dm = _dm(tiny_copy, verify_audio=True, resample=False, on_bad_audio="skip")
    dm.setup("fit")
    assert calls == [files[2]] and len(dm.train_set) == 8 * 4 - 3


def test_skipped_files_reach_metrics_json(tiny_copy, tmp_path):
    bad = sorted((tiny_copy / "wav").rglob("*.wav"))[0]
    bad.write_bytes(b"RIFF")
    out = tmp_path / "run"
    cfg = compose(
        "train",
        tiny_overrides(tiny_copy)
        + [
            "train=false",
            "callbacks=none",
            "logger=csv",
            "data.on_bad_audio=skip",
            "trainer.enable_progress_bar=false",
        ],
        out,
    )
    train(cfg, ROOT / "configs")
    skipped = json.loads((out / "metrics.json").read_text())["skipped"]
    assert any(v["count"] >= 1 for k, v in skipped.items() if "unreadable" in k or "dropped" in k)


# 5. Trial lists -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "content, match",
    [
        (
            "1 a/s/1.wav b/s/2.wav\n0 a/s/3.wav b/s/4.wav\n0 b/s/2.wav a/s/1.wav\n",
            r"t.txt:3: expected one label per pair, but line 1 labels the same pair 1",
        ),
        (
            "1 a/s/1.wav b/s/2.wav\n0 a/s/3.wav b/s/4.wav\n1 a/s/1.wav b/s/2.wav\n",
            r"t.txt:3: expected each pair once \(line 1 has the same pair; "
            r"data.duplicate_trials=drop",
        ),
        ("1 a/s/1.wav a/s/1.wav\n", r"t.txt:1: expected two different files per trial"),
        (
            "1 a/s/1.wav b/s/2.wav\n1 a/s/3.wav b/s/4.wav\n",
            r"t.txt: expected both target \(1\) and non-target \(0\) trials.*found 'only 2 target "
            r"trials'",
        ),
    ],
)
def test_trial_list_contradictions_are_errors_naming_the_lines(tmp_path, content, match):
    path = tmp_path / "t.txt"
    path.write_text(content)
    with pytest.raises(DataFormatError, match=match):
        read_trial_list(path)


def test_duplicate_trials_can_be_dropped_and_counted(tmp_path):
    path = tmp_path / "t.txt"
    path.write_text("1 a/s/1.wav b/s/2.wav\n0 a/s/3.wav b/s/4.wav\n1 b/s/2.wav a/s/1.wav\n")
    skips = SkipLog()
    assert [t.line for t in read_trial_list(path, duplicates="drop", skips=skips)] == [1, 2]
    assert skips.as_dict()["repeated trial dropped (t.txt)"] == {
        "count": 1,
        "examples": [f"{path}:3"],
    }


def test_one_class_list_fails_at_setup_before_any_embedding(tiny_copy):
    (tiny_copy / "trials.txt").write_text(
        "".join(
            line + "\n"
            for line in (tiny_copy / "trials.txt").read_text().splitlines()
            if line.startswith("1")
        )
    )
    with pytest.raises(DataFormatError, match=r"trials.txt: expected both target"):
        _dm(tiny_copy).setup("fit")


def test_utterance_shorter_than_one_frame_is_named_while_embedding(tiny_voxceleb, tmp_path):
    cfg = compose("train", tiny_overrides(tiny_voxceleb), tmp_path)
    task = build_task(cfg, {"num_classes": 8, "sample_rate": SR})
    batch = {
        "wave": torch.zeros(1, 300),
        "length": torch.tensor([300]),
        "index": torch.tensor([0]),
        "set": ["val"],
        "path": ["/data/wav/id1/s/short.wav"],
    }
    with pytest.raises(
        DataFormatError,
        match=r"short.wav: expected audio at least one 25.0 ms analysis frame long, "
        r"found '300 samples'",
    ):
        task._collect(batch)


# 6. Synthetic generator ---------------------------------------------------------------------------
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


# 7. Readers of the other families -----------------------------------------------------------------
def test_rttm_with_byte_order_mark_keeps_its_first_turn(tmp_path):
    path = tmp_path / "bom.rttm"
    path.write_bytes(
        "\ufeffSPEAKER mtg 1 0.00 1.00 <NA> <NA> A <NA> <NA>\n"
        "SPEAKER mtg 1 1.00 2.00 <NA> <NA> B <NA> <NA>\n".encode("utf-8")
    )
    assert read_rttm(path)["mtg"].labels() == ["A", "B"]


@pytest.mark.parametrize(
    "line, match",
    [
        (
            "SPEAKR mtg 1 0.0 1.0 <NA> <NA> A <NA> <NA>",
            r"r.rttm:2: expected an RTTM record type \(SPEAKER, SPKR-INFO",
        ),
        (
            "SPEAKER mtg 1 nan 1.0 <NA> <NA> A <NA> <NA>",
            r"r.rttm:2: expected a finite number for onset, found 'nan'",
        ),
        (
            "SPEAKER mtg 1 0.0 inf <NA> <NA> A <NA> <NA>",
            r"r.rttm:2: expected a finite number for duration, found 'inf'",
        ),
        ("SPEAKER mtg 1 0.0 -1 <NA> <NA> A <NA> <NA>", r"r.rttm:2: expected duration >= 0"),
    ],
)
def test_rttm_bad_records_are_named_by_line(tmp_path, line, match):
    path = tmp_path / "r.rttm"
    path.write_text("SPEAKER mtg 1 0.00 1.00 <NA> <NA> A <NA> <NA>\n" + line + "\n")
    with pytest.raises(DataFormatError, match=match):
        read_rttm(path)


def test_zero_length_turns_are_counted_and_empty_references_are_errors(tmp_path, caplog):
    path = tmp_path / "z.rttm"
    path.write_text(
        "SPEAKER mtg 1 0.00 1.00 <NA> <NA> A <NA> <NA>\nSPEAKER mtg 1 2.00 0.00 <NA> <NA> B <NA> "
        "<NA>\n"
    )
    skips = SkipLog()
    assert read_rttm(path, skips=skips)["mtg"].labels() == ["A"]
    assert skips.as_dict()["zero-duration RTTM turn ignored"] == {
        "count": 1,
        "examples": [f"{path}:2"],
    }
    with caplog.at_level(logging.WARNING):
        read_rttm(path)
    assert "1 x zero-duration RTTM turn ignored" in caplog.text
    for name, reader in (("e.rttm", read_rttm), ("e.uem", read_uem)):
        (tmp_path / name).write_text("\n")
        with pytest.raises(DataFormatError, match=rf"{name}: expected at least one"):
            reader(tmp_path / name)
    (tmp_path / "info.rttm").write_text("SPKR-INFO mtg 1 <NA> <NA> <NA> unknown A <NA> <NA>\n")
    with pytest.raises(DataFormatError, match=r"info.rttm: expected at least one SPEAKER turn"):
        read_rttm(tmp_path / "info.rttm")


def test_tagging_targets_out_of_range_and_header_only_files(tmp_path):
    esc = tmp_path / "esc50.csv"
    esc.write_text("filename,fold,target,category\n1-1-A-0.ogg,1,0,dog\n1-2-A-50.ogg,1,50,x\n")
    with pytest.raises(DataFormatError, match=r"esc50.csv:3: expected target in 0..49, found '50'"):
        read_esc50_meta(esc)
    esc.write_text("filename,fold,target,category\n1-1-A-0.ogg,1,-1,dog\n")
    with pytest.raises(DataFormatError, match=r"esc50.csv:2: expected target in 0..49, found '-1'"):
        read_esc50_meta(esc)
    esc.write_text("filename,fold,target,category\n")
    with pytest.raises(DataFormatError, match=r"esc50.csv: expected at least one clip row"):
        read_esc50_meta(esc)
    from sonolab.data.readers import AudioSetLabel

    labels = [AudioSetLabel(0, "/m/a", "A")]
    seg = tmp_path / "seg.csv"
    seg.write_text("YTID,start_seconds,end_seconds,positive_labels\n")
    with pytest.raises(DataFormatError, match=r"seg.csv: expected at least one segment row"):
        read_segments(seg, labels)
    seg.write_text('YTID,start_seconds,end_seconds,positive_labels\nx,nan,10,"/m/a"\n')
    with pytest.raises(
        DataFormatError, match=r"seg.csv:2: expected a finite number for start_seconds"
    ):
        read_segments(seg, labels)
    data = tmp_path / "d.json"
    data.write_text('{"data": []}')
    with pytest.raises(DataFormatError, match=r"d.json: expected at least one entry"):
        read_json_datafile(data, labels)


def test_uris_missing_from_a_source_are_reported_with_their_look_alikes(tmp_path):
    sources = {
        "list": (tmp_path / "a.lst", {"m1", "trñ00"}),
        "audio": (tmp_path / "audio", {"m1", "trñ00"}),
        "rttm": (tmp_path / "a.rttm", {"m1", "trn00"}),
        "uem": (tmp_path / "a.uem", {"m1", "trn00"}),
    }
    with pytest.raises(
        DataFormatError,
        match=r"a.lst: expected the same recordings in every source .*"
        r"found '2 that are not'\n.*\n  'trñ00' in list, audio but not in "
        r"rttm, uem; rttm has 'trn00'",
    ):
        match_uris(sources)
    skips = SkipLog()
    assert match_uris(sources, skip=True, skips=skips) == {"m1"}
    assert sum(skips.counts.values()) == 2


def test_the_shared_ami_excerpts_mismatch_is_detected():
    root = SHARED_DATA / "ami-excerpts"
    if not (root / "train.lst").is_file():
        pytest.skip(f"real data not present: {root} (see ../shared/data/README.md)")
    sources = {
        "list": (root / "train.lst", set(read_uri_list(root / "train.lst"))),
        "audio": (root / "audio", {p.stem for p in (root / "audio").glob("tr*.flac")}),
        "rttm": (root / "train.rttm", set(read_rttm(root / "train.rttm"))),
        "uem": (root / "train.uem", set(read_uem(root / "train.uem"))),
    }
    with pytest.raises(
        DataFormatError, match=r"'trñ00' in list, audio but not in rttm, uem; rttm has 'trn00'"
    ):
        match_uris(sources)


# 8-11. Run folders, checkpoints, evaluation ------------------------------------------------------
def _evaluate(tmp_path: Path, *overrides: str) -> dict:
    out = tmp_path / f"eval{len(list(tmp_path.glob('eval*')))}"
    cfg = compose("eval", ["trainer.enable_progress_bar=false", *overrides], out)
    evaluate(cfg, ROOT / "configs")
    return json.loads((out / "metrics.json").read_text())


def test_a_moved_run_scores_its_own_best_checkpoint(trained_run, tmp_path, caplog):
    moved = tmp_path / "moved"
    shutil.copytree(trained_run, moved)
    recorded = json.loads((moved / "metrics.json").read_text())
    with caplog.at_level(logging.INFO):
        result = _evaluate(tmp_path, f"run_dir={moved}")
    assert (
        Path(result["checkpoint"])
        == moved / recorded["checkpoint"]
        != moved / "checkpoints" / "last.ckpt"
    )
    assert (
        f"scoring {moved / recorded['checkpoint']} (best by val/eer, from metrics.json)"
        in caplog.text
    )
    # Runs from before this fix recorded absolute paths: matched by name inside the moved folder.
    (moved / "metrics.json").write_text(
        json.dumps(
            {**recorded, "checkpoint": "/gone/checkpoints/" + Path(recorded["checkpoint"]).name}
        )
    )
    assert checkpoint_for_run(moved)[0] == moved / recorded["checkpoint"]
    (moved / recorded["checkpoint"]).unlink()
    with pytest.raises(
        DataFormatError, match=r"metrics.json: expected the recorded checkpoint .*ckpt_path=last"
    ):
        checkpoint_for_run(moved)
    assert checkpoint_for_run(moved, "last") == (
        moved / "checkpoints" / "last.ckpt",
        "ckpt_path=last: the run's checkpoints/last.ckpt",
    )


def test_readme_evaluation_example_loads_only_the_lists_it_scores(
    trained_run, tiny_voxceleb, tmp_path, monkeypatch
):
    # A new trial folder holding only the test list's speakers: the training run's validation list
    # does not resolve there, and must not be read.
    elsewhere = tmp_path / "vox1" / "wav"
    trials = (tiny_voxceleb / "trials.txt").read_text()
    for spk in {line.split()[1].split("/")[0] for line in trials.splitlines()} | {
        line.split()[2].split("/")[0] for line in trials.splitlines()
    }:
        shutil.copytree(tiny_voxceleb / "wav" / spk, elsewhere / spk)
    shutil.copy(tiny_voxceleb / "trials.txt", tmp_path / "vox1" / "my_list.txt")
    monkeypatch.chdir(
        tmp_path
    )  # relative paths on evaluate's command line are relative to the current folder
    result = _evaluate(
        tmp_path, f"run_dir={trained_run}", "trials={O: vox1/my_list.txt}", "trial_dir=vox1/wav"
    )
    assert result["test"]["O"]["trials"] == 40
    assert set(
        _evaluate(
            tmp_path, f"run_dir={trained_run}", "trials=vox1/my_list.txt", "trial_dir=vox1/wav"
        )["test"]
    ) == {"my_list"}
    assert trial_lists_argument(["a/x.txt", "b/y.txt"]) == {
        "x": str(tmp_path / "a/x.txt"),
        "y": str(tmp_path / "b/y.txt"),
    }
    with pytest.raises(ConfigValueError, match=r"trials: expected \{name: trial list file\}"):
        trial_lists_argument(3)
    with pytest.raises(
        IncompatibleConfigError,
        match=r"set cohort_utts_per_speaker to a positive number "
        r"\(e.g. cohort_utts_per_speaker=2\)",
    ):
        _evaluate(tmp_path, f"run_dir={trained_run}", "scoring={as_norm: true}")


def test_bad_checkpoints_are_named_in_plain_words(trained_run, tiny_voxceleb, tmp_path):
    good = trained_run / "checkpoints" / "last.ckpt"
    cases = {"truncated.ckpt": good.read_bytes()[: good.stat().st_size // 2], "empty.ckpt": b""}
    for name, content in cases.items():
        (tmp_path / name).write_bytes(content)
    torch.save({"weight": torch.zeros(3)}, tmp_path / "plain.ckpt")
    expectations = {
        "truncated.ckpt": r"truncated.ckpt: expected a checkpoint written by sonolab's train.py .*"
        r"a truncated zip archive",
        "empty.ckpt": r"empty.ckpt: expected a checkpoint .*found 'an empty file \(0 bytes\)'",
        "plain.ckpt": r"plain.ckpt: expected a checkpoint .*a plain state_dict of 1 tensors",
    }
    for name, match in expectations.items():
        with pytest.raises(DataFormatError, match=match):
            _evaluate(tmp_path, f"run_dir={trained_run}", f"ckpt_path={tmp_path / name}")
    # A checkpoint of another model: named by class and size, not a dump of keys.
    cfg = compose("train", tiny_overrides(tiny_voxceleb) + ["model=xvector_small"], tmp_path)
    other = build_task(cfg, {"num_classes": 8, "sample_rate": SR})
    torch.save(
        {"state_dict": other.state_dict(), "hyper_parameters": dict(other.hparams)},
        tmp_path / "xvec.ckpt",
    )
    with pytest.raises(
        DataFormatError,
        match=r"xvec.ckpt: expected weights of the model the config builds, found "
        r"'the file holds XVector \(365,376 parameters\) but the config builds "
        r"EcapaTdnn \(615,728 parameters\)",
    ):
        _evaluate(tmp_path, f"run_dir={trained_run}", f"ckpt_path={tmp_path / 'xvec.ckpt'}")


def test_settings_that_used_to_fail_deep_inside_a_library(tiny_voxceleb, tmp_path, caplog):
    with pytest.raises(
        ConfigValueError,
        match=r"data.crop_seconds: expected a positive crop length in seconds, found 0",
    ):
        train(
            compose("train", tiny_overrides(tiny_voxceleb) + ["data.crop_seconds=0"], tmp_path),
            ROOT / "configs",
        )
    cfg = compose(
        "train", tiny_overrides(tiny_voxceleb) + ["trainer.enable_progress_bar=false"], tmp_path
    )
    assert build_trainer(cfg, str(tmp_path)).progress_bar_callback is None
    cfg = compose(
        "train",
        tiny_overrides(tiny_voxceleb)
        + [
            "trainer=ddp",
            "trainer.accelerator=cpu",
            "trainer.devices=2",
            "trainer.precision=32-true",
        ],
        tmp_path,
    )
    with caplog.at_level(logging.WARNING):
        trainer = build_trainer(cfg, str(tmp_path))
    assert trainer.num_devices == 2 and "sync_batchnorm=true needs GPUs; turned off" in caplog.text
    cfg.trainer.devices = -1
    with pytest.raises(
        ConfigValueError, match=r"trainer.devices: expected the number of CPU processes"
    ):
        build_trainer(cfg, str(tmp_path))


def test_ckpt_path_last_and_resume_continue_in_the_original_run_folder(
    trained_run, tiny_voxceleb, tmp_path
):
    runs = tmp_path / "logs" / "train" / "runs"
    for name in ("2026-01-01_00-00-00.000_aaaaaa", "2026-01-02_00-00-00.000_bbbbbb"):
        (runs / name / "checkpoints").mkdir(parents=True)
        (runs / name / "checkpoints" / "last.ckpt").write_bytes(b"x")
        (runs / name / ".hydra").mkdir()
        (runs / name / ".hydra" / "config.yaml").write_text("{}")
        time.sleep(0.01)
    argv = resume_arguments(
        ["train.py", "ckpt_path=last", f"paths.log_dir={tmp_path / 'logs'}"], ROOT
    )
    newest = runs / "2026-01-02_00-00-00.000_bbbbbb"
    assert (
        f"ckpt_path='{newest / 'checkpoints' / 'last.ckpt'}'" in argv
        and f"hydra.run.dir='{newest}'" in argv
    )
    assert resume_arguments(["train.py", "ckpt_path=x.ckpt", "train=false"], ROOT) == [
        "train.py",
        "ckpt_path=x.ckpt",
        "train=false",
    ]
    # A real resume: two more epochs continue the trained run in its own folder.
    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    original = (run / ".hydra" / "config.yaml").read_text()
    proc = _script(
        "train.py",
        [
            *tiny_overrides(tiny_voxceleb),
            "trainer.max_epochs=2",
            "trainer.limit_train_batches=2",
            "trainer.enable_progress_bar=false",
            f"resume={run}",
        ],
        tmp_path,
    )
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err[-3000:]
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["resumed_from"] == "checkpoints/last.ckpt" and metrics["checkpoint"].startswith(
        "checkpoints/"
    )
    assert (run / ".hydra" / "config.yaml").read_text() == original
    assert list((run / ".hydra").glob("resumed_*/config.yaml"))
    assert torch.load(run / "checkpoints" / "last.ckpt", weights_only=False)["epoch"] == 1
    with pytest.raises(
        DataFormatError, match=r"runs: expected a run folder holding checkpoints/last.ckpt"
    ):
        train(
            compose("train", tiny_overrides(tiny_voxceleb) + ["ckpt_path=last"], tmp_path),
            ROOT / "configs",
        )


_KILL_DURING_SAVE = """
import sys, torch
from sonolab.checkpoints import AtomicCheckpointIO
io, path = AtomicCheckpointIO(), sys.argv[1]
for i in range(10_000):
    io.save_checkpoint({"step": i, "weights": torch.full((4_000_000,), float(i))}, path)
    print(i, flush=True)
"""


def test_a_kill_during_a_checkpoint_save_never_leaves_a_truncated_file(tmp_path):
    target = tmp_path / "last.ckpt"
    proc = subprocess.Popen(
        [sys.executable, "-c", _KILL_DURING_SAVE, str(target)], stdout=subprocess.PIPE, text=True
    )
    for _ in range(3):  # let a few saves complete, then kill in the middle of the next ones
        proc.stdout.readline()
    time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    saved = load_checkpoint(target, require_lightning=False)
    assert torch.equal(saved["weights"], torch.full((4_000_000,), float(saved["step"])))
    # An error during a save leaves the previous file as it was, and no temporary file.
    io = AtomicCheckpointIO()

    class Unpicklable:
        def __reduce__(self):
            raise RuntimeError("cannot pickle")

    before = sorted(
        tmp_path.iterdir()
    )  # may hold the killed writer's temporary file, never the target's
    with pytest.raises(RuntimeError, match="cannot pickle"):
        io.save_checkpoint({"step": -1, "bad": Unpicklable()}, target)
    assert load_checkpoint(target, require_lightning=False)["step"] == saved["step"]
    assert sorted(tmp_path.iterdir()) == before


# Diarization recording sets
# ------------------------------------------------------------------------
def _recording_set(
    tmp_path: Path, rate: int, channels: int, uris=("m1",), rttm_uris=("m1",)
) -> Path:
    root = tmp_path / "rec"
    (root / "audio").mkdir(parents=True)
    tone = np.tile(_tone(rate=rate), 3)
    for uri in uris:
        data = tone if channels == 1 else np.stack([np.zeros_like(tone), tone], axis=1)
        sf.write(root / "audio" / f"{uri}.wav", data, rate, subtype="FLOAT")
    (root / "set.lst").write_text("".join(u + "\n" for u in uris))
    (root / "set.rttm").write_text(
        "".join(f"SPEAKER {u} 1 0.5 2.0 <NA> <NA> A <NA> <NA>\n" for u in rttm_uris)
    )
    (root / "set.uem").write_text("".join(f"{u} 1 0.0 3.0\n" for u in rttm_uris))
    return root


def test_diarization_chunks_of_other_rates_and_stereo_recordings(tmp_path):
    from sonolab.data.diarization import RecordingChunks, RecordingSet

    root = _recording_set(tmp_path, rate=8000, channels=2)
    recordings = RecordingSet.from_files(
        "set", root, "set.lst", "set.rttm", "set.uem", "audio/{uri}.wav"
    )
    chunk = RecordingChunks(recordings, 3.0, SR, 4, SkipLog())[0]
    assert chunk["wave"].numel() == 3 * SR  # resampled from 8 kHz
    assert float(chunk["wave"].abs().max()) == pytest.approx(
        0.15, abs=0.01
    )  # the two channels averaged
    assert (
        chunk["labels"].shape == (300, 1)
        and chunk["labels"][50:250].all()
        and not chunk["labels"][:50].any()
    )


def test_diarization_uri_without_reference_or_audio_is_named(tmp_path):
    from sonolab.data.diarization import RecordingSet

    root = _recording_set(tmp_path, rate=SR, channels=1, uris=("m1", "m2"), rttm_uris=("m1",))
    with pytest.raises(DataFormatError, match=r"'m2' in list, audio but not in rttm, uem"):
        RecordingSet.from_files("set", root, "set.lst", "set.rttm", "set.uem", "audio/{uri}.wav")
    (root / "audio" / "m1.wav").unlink()
    skips = SkipLog()
    kept = RecordingSet.from_files(
        "set",
        root,
        "set.lst",
        "set.rttm",
        "set.uem",
        "audio/{uri}.wav",
        on_missing="skip",
        skips=skips,
    )
    assert kept.uris == [] and sum(skips.counts.values()) == 2


def test_a_misspelt_simulation_key_is_named(tiny_voxceleb, tmp_path):
    from sonolab.data.diarization import DiarizationDataModule

    dm = DiarizationDataModule(
        root=str(tmp_path),
        simulation={"tree": str(tiny_voxceleb / "wav"), "utterance_per_speaker": [1, 2]},
        num_workers=0,
    )
    with pytest.raises(
        ConfigValueError, match=r"data.simulation.utterance_per_speaker: expected one of \["
    ):
        dm.setup("fit")


def test_recordings_to_diarize_with_clashing_names_or_missing_files_are_named(tmp_path):
    from sonolab.data.diarization import RecordingSet
    from sonolab.data.readers import find_recordings

    root = _recording_set(tmp_path, rate=SR, channels=1, uris=("m1", "m2"), rttm_uris=("m1",))
    (root / "audio" / "sub").mkdir()
    sf.write(root / "audio" / "sub" / "m1.flac", np.zeros(SR, dtype=np.float32), SR)
    with pytest.raises(
        DataFormatError,
        match=r"audio: expected recordings with different file names .*m1.wav and .*m1.flac",
    ):
        find_recordings(root / "audio", ("wav", "flac"))
    listing = tmp_path / "list.txt"
    listing.write_text("audio/m1.wav\naudio/m3.wav\n")
    shutil.copytree(root / "audio", tmp_path / "audio")
    with pytest.raises(
        DataFormatError,
        match=r"list.txt:2: expected an existing audio file on every line, found 'audio/m3.wav'",
    ):
        find_recordings(listing, ("wav",))
    with pytest.raises(DataFormatError, match=r"expected audio files \(wav\), found 'none'"):
        find_recordings(tmp_path / "audio" / "sub", ("wav",))
    # references that miss a recording: named, as for a configured set
    listing.write_text("audio/m1.wav\naudio/m2.wav\n")
    with pytest.raises(DataFormatError, match=r"'m2' in recordings but not in rttm"):
        RecordingSet.from_recordings("set", str(listing), rttm=str(root / "set.rttm"))
    whole = RecordingSet.from_recordings(
        "set", str(listing), rttm=str(root / "set.rttm"), on_missing="skip", skips=SkipLog()
    )
    assert whole.uris == ["m1"] and whole.uems["m1"].extent().duration == pytest.approx(
        sf.info(root / "audio" / "m1.wav").duration
    )


def test_a_truncated_recording_is_found_when_its_set_is_read(tmp_path):
    from sonolab.data.diarization import DiarizationDataModule

    root = _recording_set(tmp_path, rate=SR, channels=1, uris=("m1", "m2"), rttm_uris=("m1", "m2"))
    _truncate(root / "audio" / "m2.wav")
    sets = {
        "dev": {"lst": "set.lst", "rttm": "set.rttm", "uem": "set.uem", "audio": "audio/{uri}.wav"}
    }
    dm = DiarizationDataModule(
        root=str(root), sets=sets, train="dev", val=None, test=["dev"], num_workers=0
    )
    with pytest.raises(
        DataFormatError,
        match=r"recording set dev: expected recordings the loader can read "
        r"\(2 checked\), found '1 bad files'.*\n  .*m2.wav",
    ):
        dm.setup("test")
    dm = DiarizationDataModule(
        root=str(root),
        sets=sets,
        train="dev",
        val=None,
        test=["dev"],
        num_workers=0,
        on_bad_audio="skip",
    )
    dm.setup("test")
    assert dm.recordings("dev").uris == ["m1"]
    assert (
        dm.skipped.as_dict()["unreadable recording left out (data.on_bad_audio=skip)"]["count"] == 1
    )


def test_evaluate_averages_the_last_epoch_checkpoints(trained_run, tmp_path):
    from sonolab.checkpoints import average_checkpoints, epoch_checkpoints

    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    first = epoch_checkpoints(run)[-1]
    later = torch.load(first, map_location="cpu", weights_only=False)
    later["state_dict"] = {
        k: v * 1.02 if v.is_floating_point() else v + 5 for k, v in later["state_dict"].items()
    }
    torch.save(later, run / "checkpoints" / "epoch007.ckpt")
    assert [p.name for p in epoch_checkpoints(run)][-2:] == [first.name, "epoch007.ckpt"]
    averaged = average_checkpoints(epoch_checkpoints(run)[-2:])["state_dict"]
    original = load_checkpoint(first)["state_dict"]
    for key, value in original.items():
        if value.is_floating_point():
            assert torch.allclose(averaged[key], value * 1.01, atol=1e-6)
        else:  # BatchNorm's batch counter: the last file's
            assert torch.equal(averaged[key], later["state_dict"][key])
    result = _evaluate(tmp_path, f"run_dir={run}", "average_last=2")
    assert result["checkpoint_reason"] == f"average of {first.name}, epoch007.ckpt (average_last=2)"
    with pytest.raises(DataFormatError, match=r"5 epoch checkpoints .*save_top_k=-1"):
        _evaluate(tmp_path, f"run_dir={run}", "average_last=5")
