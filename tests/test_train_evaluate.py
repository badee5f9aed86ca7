"""End to end: fast_dev_run of every model x loss pair; train -> checkpoint -> evaluate.py
agreement."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from omegaconf import OmegaConf

from sonolab.run import train

from .conftest import ROOT, compose, run_script, tagging_overrides, tiny_overrides

MODELS = ["ecapa_small", "xvector_small", "ecapa_c512", "ecapa_c1024", "xvector"]
LOSSES = ["ce", "am", "aam"]


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("loss", LOSSES)
def test_fast_dev_run_every_model_and_loss(model, loss, tiny_voxceleb, tmp_path):
    cfg = compose(
        "train",
        tiny_overrides(tiny_voxceleb)
        + [f"model={model}", f"loss={loss}", "debug=fast_dev_run", "logger=csv", "callbacks=none"],
        tmp_path,
    )
    summary = train(cfg, ROOT / "configs")
    assert summary["train_metrics"]["train/loss"] > 0


@pytest.mark.slow  # train.py then evaluate.py in subprocesses (~100 s): the default suite's time
def test_train_checkpoint_then_evaluate_gives_the_same_eer(tiny_voxceleb, tmp_path):
    run_dir = tmp_path / "run"
    result = run_script(
        "train.py",
        tiny_overrides(tiny_voxceleb)
        + [
            "trainer.max_epochs=2",
            "trainer.limit_train_batches=4",
            "augment=musan_rir",
            "data.crops.speed_perturb=true",
            "data.cohort.utts_per_speaker=1",
            "task.scoring.as_norm=true",
            "task.scoring.mean_subtraction=true",
            "task.scoring.as_norm_top_n=4",
            f"hydra.run.dir={run_dir}",
            "trainer.enable_progress_bar=false",
            "~callbacks.progress_bar",
        ],
        tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    for name in (
        "metrics.json",
        "results.md",
        "det.png",
        "scores_synth.png",
        ".hydra/config.yaml",
        "checkpoints/last.ckpt",
        "train.log",
    ):
        assert (run_dir / name).exists(), name
    assert list((run_dir / "csv").rglob("metrics.csv"))
    # a quiet start-up: no advertising tips, no deprecation from inside Lightning
    assert "Tip:" not in result.stderr and "LeafSpec" not in result.stderr
    trained = json.loads((run_dir / "metrics.json").read_text())
    # Recorded relative to the run folder (it may move), with the reason it was chosen.
    assert (run_dir / trained["checkpoint"]).is_file() and trained["checkpoint"].startswith(
        "checkpoints/"
    )
    assert trained["checkpoint_reason"] == "best by val/eer"
    cached = list((run_dir / "cohort").glob(Path(trained["checkpoint"]).stem + "_*.pt"))
    assert (
        len(cached) == 1
    )  # the tested checkpoint's cohort embeddings, reused by evaluate.py below

    eval_dir = tmp_path / "eval"
    result = run_script(
        "evaluate.py",
        [f"run_dir={run_dir}", f"hydra.run.dir={eval_dir}", "trainer.enable_progress_bar=false"],
        tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    evaluated = json.loads((eval_dir / "metrics.json").read_text())
    assert "cohort embeddings of this checkpoint read from" in (eval_dir / "eval.log").read_text()
    assert Path(evaluated["checkpoint"]) == run_dir / trained["checkpoint"]
    assert "best by val/eer" in evaluated["checkpoint_reason"]
    for key in ("eer", "min_dcf_0.01", "min_dcf_0.05"):
        assert evaluated["test"]["synth"][key] == pytest.approx(
            trained["test"]["synth"][key], abs=1e-9
        )
    table = (eval_dir / "results.md").read_text()
    assert (eval_dir / "det.png").stat().st_size > 1000 and "| synth | 40 |" in table
    assert "minDCF (p=0.01, Cmiss=1, Cfa=1)" in table
    # Per-trial score file beside the metrics, in the trial list's order; its scores give the
    # reported EER.
    rows = [line.split() for line in (eval_dir / "scores_synth.txt").read_text().splitlines()]
    listed = [line.split() for line in (tiny_voxceleb / "trials.txt").read_text().splitlines()]
    assert [(e, t, y) for e, t, _, y in rows] == [(e, t, y) for y, e, t in listed]
    from sonolab.metrics import verification_metrics

    from_file = verification_metrics(
        np.array([float(r[2]) for r in rows]), np.array([int(r[3]) for r in rows])
    )
    assert from_file["eer"] == pytest.approx(evaluated["test"]["synth"]["eer"], abs=1e-6)

    # Two-process DDP evaluation (CPU, gloo) gathers embeddings from both ranks: same EER, one at
    # a time and in length batches (each rank takes whole batches: the same batches, the same
    # embeddings as in one process).
    batched = ["eval_batch_size=3", "eval_batch_seconds=100"]
    ddp_processes = [
        "trainer=ddp",
        "trainer.accelerator=cpu",
        "trainer.devices=2",
        "trainer.precision=32-true",
        "trainer.sync_batchnorm=false",
    ]
    results = {}
    for name, arguments in {
        "ddp": ddp_processes,
        "ddp_batched": [*ddp_processes, *batched],
        "batched": batched,
    }.items():
        out = tmp_path / f"eval_{name}"
        result = run_script(
            "evaluate.py",
            [
                f"run_dir={run_dir}",
                f"hydra.run.dir={out}",
                "trainer.enable_progress_bar=false",
                *arguments,
            ],
            tmp_path,
        )
        assert result.returncode == 0, result.stderr[-3000:]
        results[name] = json.loads((out / "metrics.json").read_text())["test"]["synth"]
    assert results["ddp"]["eer"] == pytest.approx(trained["test"]["synth"]["eer"], abs=1e-6)
    for key in ("eer", "min_dcf_0.01", "trials"):
        assert results["ddp_batched"][key] == pytest.approx(results["batched"][key], abs=1e-6)

    # The same checkpoint on an explicitly given list (here the validation list).
    other = tmp_path / "eval_val"
    result = run_script(
        "evaluate.py",
        [
            f"run_dir={run_dir}",
            f"hydra.run.dir={other}",
            "trainer.enable_progress_bar=false",
            f"trials={{dev: {tiny_voxceleb / 'val_trials.txt'}}}",
        ],
        tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert json.loads((other / "metrics.json").read_text())["test"]["dev"]["trials"] == 16


def _family(experiment: str) -> str:
    return compose("train", [f"experiment={experiment}", "data.root=/any"]).task._target_.rsplit(
        ".", 1
    )[-1]


@pytest.mark.parametrize(
    "experiment", sorted(p.stem for p in (ROOT / "experiments" / "experiment").glob("*.yaml"))
)
def test_every_experiment_smoke_runs_on_tiny_data(
    experiment, tiny_voxceleb, tiny_esc50, tiny_audioset, trained_run, tmp_path, request
):
    """Each reproduction config trains one batch on tiny synthetic data (data paths and device
    swapped)."""
    common = [
        "debug=fast_dev_run",
        "callbacks=none",
        "data.pin_memory=false",
        "trainer.accelerator=cpu",
        "trainer.precision=32-true",
    ]
    family = _family(experiment)
    if family in ("DiarizationTask", "ClusteringDiarizationTask"):
        from .tasks.test_diarization import ami_overrides, corpus_overrides, diarization_overrides

        if compose("train", [f"experiment={experiment}"], tmp_path).data.get("simulation"):
            overrides = [
                f"experiment={experiment}",
                *diarization_overrides(tiny_voxceleb, tmp_path / "mix"),
                *corpus_overrides(tiny_voxceleb),
                *common,
            ]
            if family == "ClusteringDiarizationTask":  # embeds with the tiny verification run
                overrides = [o for o in overrides if not o.startswith("task.decoding")]
                # nothing to train: its smoke run is the test (one recording under fast_dev_run)
                overrides += [f"embedding_run={trained_run}", "test=true"]
        else:  # data=ami: tiny meetings in the AMI setup's layout
            overrides = [
                f"experiment={experiment}",
                *ami_overrides(tiny_voxceleb, tmp_path / "ami"),
                *common,
            ]
        data = compose("train", overrides, tmp_path).data
        real = [
            Path(spec.lst) if Path(spec.lst).is_absolute() else Path(data.root) / spec.lst
            for spec in data.sets.values()
        ]
        if any(
            not p.is_file() for p in real
        ):  # recording sets of real data (the AMI excerpts) stay real
            pytest.skip(
                f"real data not present: {[str(p) for p in real if not p.is_file()][0]} "
                "(see ../shared/data/README.md)"
            )
    elif family == "SoundEventDetectionTask":  # soundscapes of the real ESC-10 (skips without)
        scapes = request.getfixturevalue("tiny_soundscapes")
        model = compose("train", [f"experiment={experiment}"]).model._target_.rsplit(".", 1)[-1]
        overrides = [
            f"experiment={experiment}",
            *tagging_overrides(scapes, 10.0, model),
            "data.sample_rate=16000",
            "features.f_max=8000",
            "features.hop_length=160",
            *common,
        ]
    elif family == "TaggingTask":
        audioset = (
            "AudioSet"
            in compose("train", [f"experiment={experiment}", "data.root=/any"]).data._target_
        )
        model = compose(
            "train", [f"experiment={experiment}", "data.root=/any"]
        ).model._target_.rsplit(".", 1)[-1]
        overrides = [
            f"experiment={experiment}",
            *(
                tagging_overrides(tiny_audioset, 2.0, model)
                if audioset
                else tagging_overrides(tiny_esc50, model=model)
            ),
            *common,
        ]
    else:
        holdout = compose("train", [f"experiment={experiment}", "data.root=/any"]).data.lists.get(
            "val_holdout"
        )
        validation = (
            ["data.lists.val_holdout.speakers=3", "data.lists.val_holdout.trials=16"]
            if holdout  # held-out speakers
            else ["data.lists.val_trials=val_trials.txt"]
        )
        overrides = [
            f"experiment={experiment}",
            *tiny_overrides(tiny_voxceleb),
            *common,
            "data.train_dir=wav",
            "data.lists.trial_dir=wav",
            "data.train_speakers=train_speakers.txt",
            *validation,
            "~data.lists.test_trials",
            "+data.lists.test_trials={synth: trials.txt}",
            f"augment.musan_root={tiny_voxceleb / 'musan'}",
            f"augment.rir_root={tiny_voxceleb / 'rirs'}",
            "data.batch_size=4",
            "data.audio.extensions=[wav]",
        ]
    cfg = compose("train", overrides, tmp_path)
    if OmegaConf.is_missing(
        cfg, "init_from"
    ):  # a recipe stage that starts from the previous one's run
        cfg.init_from = None
    if "pretrained" in cfg.model and OmegaConf.is_missing(cfg.model, "pretrained"):
        cfg.model.pretrained = (
            None  # a published recipe's weights file: the tiny model starts fresh
        )
    if cfg.get("augment") is not None and "musan_root" not in cfg.augment:
        pytest.fail("experiment's augment config lost its paths")
    summary = train(cfg, ROOT / "configs")
    if cfg.train:
        assert summary["train_metrics"]["train/loss"] > 0
    else:  # a pipeline that trains nothing: it was scored
        assert summary["checkpoint"] == "checkpoints/tested.ckpt"


def test_real_voxceleb_config_on_a_tree_in_its_layout(tiny_voxceleb, tmp_path):
    """`data=voxceleb data.root=...` reads the usual vox2_dev/wav + vox1/wav + O/E/H list layout."""
    import shutil

    root = tmp_path / "voxceleb"
    shutil.copytree(tiny_voxceleb / "wav", root / "vox1" / "wav")
    train_spk = (tiny_voxceleb / "train_speakers.txt").read_text().split()
    for spk in train_spk:
        shutil.copytree(tiny_voxceleb / "wav" / spk, root / "vox2_dev" / "wav" / spk)
    for name in ("veri_test2.txt", "list_test_all2.txt", "list_test_hard2.txt"):
        shutil.copy(tiny_voxceleb / "trials.txt", root / "vox1" / name)
    cfg = compose(
        "train",
        [
            "data=voxceleb",
            f"data.root={root}",
            "data.num_workers=0",
            "data.batch_size=4",
            "data.pin_memory=false",
            "trainer.max_epochs=1",
            "trainer.limit_train_batches=2",
            "data.lists.val_holdout.speakers=2",
            "data.lists.val_holdout.trials=12",
            "callbacks=none",
            "trainer.enable_progress_bar=false",
        ],
        tmp_path,
    )
    summary = train(cfg, ROOT / "configs")
    assert summary["train_metrics"]["train/loss"] > 0
    assert set(json.loads((tmp_path / "metrics.json").read_text())["test"]) == {
        "vox1_O",
        "vox1_E",
        "vox1_H",
    }
