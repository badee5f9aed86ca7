"""Runs, checkpoints and settings fed bad input or misused: two runs started together, a moved
run folder, corrupt checkpoints, a kill during a save, settings that used to fail deep inside a
library; each error names the file or key."""

from __future__ import annotations

import json
import logging
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

from sonolab.checkpoints import AtomicCheckpointIO, checkpoint_for_run, load_checkpoint
from sonolab.config import run_id
from sonolab.data.verification import trial_lists_argument
from sonolab.resume import resume_arguments
from sonolab.run import build_task, build_trainer, evaluate, train
from sonolab.utils.errors import ConfigValueError, DataFormatError, IncompatibleConfigError

from .bad_input import SR
from .bad_input import script as _script
from .conftest import ROOT, compose, tiny_overrides


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


def _evaluate(tmp_path: Path, *overrides: str) -> dict:
    out = tmp_path / f"eval{len(list(tmp_path.glob('eval*')))}"
    cfg = compose("eval", ["trainer.enable_progress_bar=false", *overrides], out)
    evaluate(cfg, ROOT / "configs")
    return json.loads((out / "metrics.json").read_text())


def test_a_run_saved_before_the_data_keys_were_grouped_still_evaluates(
    trained_run, tiny_voxceleb, tmp_path
):
    from omegaconf import OmegaConf

    from sonolab.data.verification_settings import MOVED_KEYS

    old = tmp_path / "old"
    shutil.copytree(trained_run, old)
    saved = OmegaConf.load(old / ".hydra" / "config.yaml")
    data = OmegaConf.to_container(saved.data)
    for key, place in MOVED_KEYS.items():  # back to the flat layout of earlier runs
        group, name = place.split(".")
        data[key] = data[group].pop(name)
    del data["lists"]["eval_batch_seconds"]  # added after the grouping: earlier runs lack it
    for group in ("crops", "lists", "cohort", "audio"):
        assert not data.pop(group)
    saved.data = data
    OmegaConf.save(saved, old / ".hydra" / "config.yaml")
    new = _evaluate(tmp_path, f"run_dir={trained_run}")["test"]
    assert _evaluate(tmp_path, f"run_dir={old}")["test"] == new
    # evaluate.py's arguments land in their groups: the cohort the mean subtraction needs, the list
    normalised = _evaluate(
        tmp_path,
        f"run_dir={old}",
        "cohort_utts_per_speaker=1",
        "scoring={mean_subtraction: true}",
        f"trials=[{tiny_voxceleb / 'trials.txt'}]",
    )["test"]
    assert list(normalised) == ["trials"] and normalised["trials"]["trials"] == 40
    cached = torch.load(next((old / "cohort").glob("*.pt")), weights_only=True)
    assert len(cached["speakers"]) == 8  # one utterance per training speaker


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
    # Another family's checkpoint: named from what it records, before anything is built from it
    # (files saved before the task class was recorded: from their data info).
    cfg = compose("train", ["experiment=synth_esc50_ast", "model.depth=1"], tmp_path)
    info = {"num_classes": 2, "labels": ["a", "b"], "multi_label": False, "sample_rate": SR}
    tagger = build_task(cfg, info)
    hparams = dict(tagger.hparams)
    assert hparams["task_class"] == "sonolab.tasks.tagging.TaggingTask"
    legacy = {k: v for k, v in hparams.items() if k != "task_class"}
    for name, recorded, saved_by in [
        ("tagger.ckpt", hparams, "a TaggingTask run"),
        ("legacy_tagger.ckpt", legacy, "a run of another family"),
    ]:
        torch.save(
            {"state_dict": tagger.state_dict(), "hyper_parameters": recorded}, tmp_path / name
        )
        with pytest.raises(
            DataFormatError,
            match=rf"{name}: expected a checkpoint of a VerificationTask run \(the task this "
            rf"config builds\), found 'a checkpoint of {saved_by} with AudioSpectrogramTransformer "
            r"\([\d,]+ parameters\) and data info "
            r"\{labels, multi_label, num_classes, sample_rate\}",
        ):
            _evaluate(tmp_path, f"run_dir={trained_run}", f"ckpt_path={tmp_path / name}")


def test_settings_that_used_to_fail_deep_inside_a_library(tiny_voxceleb, tmp_path, caplog):
    with pytest.raises(
        ConfigValueError,
        match=r"data.crops.seconds: expected a positive crop length in seconds, found 0",
    ):
        train(
            compose("train", tiny_overrides(tiny_voxceleb) + ["data.crops.seconds=0"], tmp_path),
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


def test_a_full_disk_while_checkpointing_is_named_and_the_previous_file_kept(tmp_path, monkeypatch):
    import errno
    import io

    from sonolab.utils import io as sonolab_io
    from sonolab.utils.io import DiskFullError

    target = tmp_path / "last.ckpt"
    checkpointer = AtomicCheckpointIO()
    checkpointer.save_checkpoint({"step": 1, "w": torch.ones(10)}, target)

    class FullDisk(io.FileIO):
        """Writes fail as on a full filesystem once 1 kB is written (torch's zip writer wraps the
        OSError in a RuntimeError about its stream)."""

        written = 0

        def write(self, data):
            FullDisk.written += len(data)
            if FullDisk.written > 1000:
                raise OSError(errno.ENOSPC, "No space left on device")
            return super().write(data)

    monkeypatch.setattr(sonolab_io.os, "fdopen", lambda fd, mode, **kw: FullDisk(fd, "wb"))
    with pytest.raises(
        DiskFullError, match=r"disk full: no space left to write .*last.ckpt \("
    ) as err:
        checkpointer.save_checkpoint({"step": 2, "w": torch.zeros(100_000)}, target)
    assert err.value.errno == errno.ENOSPC and "MiB free on the filesystem of" in str(err.value)
    monkeypatch.undo()
    assert load_checkpoint(target, require_lightning=False)["step"] == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.ckpt"]
