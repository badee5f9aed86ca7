"""AudioSet-layout tagging: synthetic generator, segment / JSON listings, multi-hot labels, balanced
sampling, and a tiny multi-label train -> test -> report run (mAP, AUC, d')."""

from __future__ import annotations

import json

import numpy as np
import pytest

from sonolab.data.readers import read_class_labels, read_segments
from sonolab.data.tagging import AudioSetDataModule, BalancedSampler, balanced_weights
from sonolab.run import evaluate
from sonolab.utils.errors import DataFormatError

from ..conftest import ROOT, SHARED_DATA, compose, tagging_overrides, train_run


def test_synthetic_audioset_files_read_with_the_official_readers(tiny_audioset):
    labels = read_class_labels(tiny_audioset / "class_labels_indices.csv")
    clips = read_segments(tiny_audioset / "eval_segments.csv", labels)  # Google's '#' header lines
    assert len(labels) == 4 and len(clips) == 6 and all(1 <= len(c.labels) <= 2 for c in clips)
    content = json.loads((tiny_audioset / "synth.json").read_text())
    assert sum(content["train_label_counts"]) >= 12


def test_datamodule_multi_hot_labels_json_datafile_and_missing_clips(tiny_audioset, tmp_path):
    dm = AudioSetDataModule(root=str(tiny_audioset), num_workers=0, batch_size=3, clip_seconds=2.0)
    dm.setup()
    assert dm.info.multi_label and dm.info.num_classes == 4 and dm.test_name == "eval"
    batch = next(iter(dm.test_dataloader()))
    labels = read_segments(
        tiny_audioset / "eval_segments.csv",
        read_class_labels(tiny_audioset / "class_labels_indices.csv"),
    )
    expected = np.zeros((3, 4))
    for i, clip in enumerate(labels[:3]):
        expected[i, list(clip.labels)] = 1
    assert batch["wave"].shape == (3, 32000) and np.array_equal(batch["label"].numpy(), expected)
    datafile = tmp_path / "eval.json"
    datafile.write_text(
        json.dumps(
            {
                "data": [
                    {
                        "wav": str(tiny_audioset / "audio" / f"{c.source}.wav"),
                        "labels": "/m/synth00,/m/synth03",
                    }
                    for c in labels[:2]
                ]
                + [{"wav": str(tmp_path / "gone.wav"), "labels": "/m/synth01"}]
            }
        )
    )
    dm = AudioSetDataModule(
        root=str(tiny_audioset), test=str(datafile), num_workers=0, clip_seconds=2.0
    )
    dm.setup()
    assert len(dm.parts["test"]) == 2 and dm.parts["test"][0].label == (0, 3)
    assert dm.skipped.as_dict()["clip listed in the metadata without its audio file"]["count"] == 1
    with pytest.raises(
        DataFormatError,
        match=r"eval.json: expected the audio of every clip it lists .*found '1 missing'",
    ):
        AudioSetDataModule(
            root=str(tiny_audioset), test=str(datafile), num_workers=0, require_all_audio=True
        ).setup()


def test_balanced_weights_and_sampler():
    label_sets = [(0,), (0,), (0,), (0, 1), (2,)]
    weights = balanced_weights(label_sets, 3)
    assert np.allclose(weights, [1 / 4, 1 / 4, 1 / 4, 1 / 4 + 1, 1])
    sampler = BalancedSampler(weights, seed=3)
    first = list(sampler)
    assert first == list(sampler) and len(first) == 5
    sampler.set_epoch(1)
    assert list(sampler) != first
    draws = (
        np.concatenate(
            [[d.index for d in BalancedSampler(np.tile(weights, 400), seed=s)] for s in range(5)]
        )
        % 5
    )
    frequency = np.bincount(draws, minlength=5) / draws.size
    assert np.allclose(frequency, weights / weights.sum(), atol=0.01)


@pytest.mark.skipif(
    not (SHARED_DATA / "audioset-metadata").is_dir(),
    reason=f"real data not present: {SHARED_DATA / 'audioset-metadata'}",
)
def test_real_audioset_listings_without_audio_are_counted_missing(tmp_path):
    meta = SHARED_DATA / "audioset-metadata"
    dm = AudioSetDataModule(
        root=str(meta),
        class_labels="metadata/class_labels_indices.csv",
        train="segments/balanced_train_segments.csv",
        test="segments/eval_segments.csv",
        audio_dir=str(tmp_path),
        num_workers=0,
    )
    with pytest.raises(
        DataFormatError,
        match=r"balanced_train_segments.csv: expected train clips with audio, found 'none'",
    ):
        dm.setup()
    assert dm.skipped.counts["clip listed in the metadata without its audio file"] > 20000


def test_tiny_multi_label_run_reports_map_auc_and_d_prime(tiny_audioset, tmp_path):
    out = tmp_path / "run"
    overrides = ["trainer.max_epochs=1", "logger=csv"]
    train_run(
        ["experiment=synth_audioset_ast", *tagging_overrides(tiny_audioset, 2.0), *overrides], out
    )
    metrics = json.loads((out / "metrics.json").read_text())
    result = metrics["test"]["eval"]
    assert (
        0 < result["mAP"] <= 1 and 0 <= result["mean_auc"] <= 1 and len(result["per_class_ap"]) == 4
    )
    assert result["classes_scored"] + result["classes_skipped"] == 4
    assert metrics["checkpoint_reason"].startswith(
        "last"
    )  # no validation listing: nothing chosen on eval
    assert (out / "class_ap_eval.png").stat().st_size > 1000 and "| eval |" in (
        out / "results.md"
    ).read_text()
    eval_dir = tmp_path / "eval"
    evaluate(
        compose("eval", [f"run_dir={out}", "trainer.enable_progress_bar=false"], eval_dir),
        ROOT / "configs",
    )
    assert json.loads((eval_dir / "metrics.json").read_text())["test"]["eval"][
        "mAP"
    ] == pytest.approx(result["mAP"])


@pytest.mark.slow  # two processes each start torch and Lightning: ~1 min on 2 cores
def test_two_process_ddp_training_scores_each_clip_once(tiny_audioset, tmp_path):
    """trainer=ddp on 2 CPU processes (gloo) with 5 validation / test clips: the distributed sampler
    pads rank 1 with a repeat of a clip, and the gathered scores must count it once, so the mAP /
    AUC logged in training and the test metrics equal what one process computes on the same
    checkpoint."""
    import csv

    from ..conftest import run_script

    lines = (tiny_audioset / "eval_segments.csv").read_text().splitlines()
    header = [line for line in lines if line.startswith("#")]
    rows = [line for line in lines if not line.startswith("#")]
    listings = {}
    for name in ("val", "test"):  # the same five clips under two names: a run refuses val == test
        listings[name] = tmp_path / f"{name}_segments.csv"
        listings[name].write_text("\n".join(header + rows[:5]) + "\n")
    run_dir = tmp_path / "ddp"
    result = run_script(
        "train.py",
        [
            "experiment=synth_audioset_ast",
            *tagging_overrides(tiny_audioset, 2.0),
            "trainer.max_epochs=1",
            "logger=csv",
            f"data.val={listings['val']}",
            f"data.test={listings['test']}",
            "trainer=ddp",
            "trainer.accelerator=cpu",
            "trainer.devices=2",
            "trainer.precision=32-true",
            "trainer.sync_batchnorm=false",
            "~callbacks.progress_bar",
            f"hydra.run.dir={run_dir}",
        ],
        tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    logged = [
        row
        for path in sorted((run_dir / "csv").glob("version_*/metrics.csv"))
        for row in csv.DictReader(path.open())
        if row.get("val/mAP")
    ][-1]
    ddp = json.loads((run_dir / "metrics.json").read_text())
    assert ddp["checkpoint_reason"] == "best by val/score" and ddp["test"]["eval"]["clips"] == 5
    one = tmp_path / "one_process"
    result = run_script(
        "evaluate.py",
        [f"run_dir={run_dir}", f"hydra.run.dir={one}", "trainer.enable_progress_bar=false"],
        tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    again = json.loads((one / "metrics.json").read_text())["test"]["eval"]
    assert again["clips"] == 5
    for key in ("mAP", "mean_auc"):
        assert again[key] == pytest.approx(float(logged[f"val/{key}"]), abs=1e-5)
        assert again[key] == pytest.approx(ddp["test"]["eval"][key], abs=1e-6)


def test_an_eval_clip_also_in_the_training_listing_is_a_leak(tiny_audioset, tmp_path):
    train = (tiny_audioset / "balanced_train_segments.csv").read_text().splitlines()
    evaluation = (tiny_audioset / "eval_segments.csv").read_text().splitlines()
    leaked = [line for line in evaluation if line.strip() and not line.startswith(("#", "YTID"))]
    listing = tmp_path / "train_with_eval.csv"
    listing.write_text("\n".join([*train, leaked[0]]) + "\n")
    with pytest.raises(
        DataFormatError,
        match=r"eval_segments.csv: expected test clips that are not in the training listing "
        r".*train_with_eval.csv, found '1 shared clips'",
    ):
        AudioSetDataModule(
            root=str(tiny_audioset), train=str(listing), num_workers=0, clip_seconds=2.0
        ).setup()
