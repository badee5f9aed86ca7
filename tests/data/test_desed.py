"""The DESED-layout datamodule on soundscapes of real ESC-10 clips: weak labels train, strong labels
validate and test, the events kept for sound event detection; a weak-label run with a CNN whose
attention pooling gives frame outputs."""

from __future__ import annotations

import pytest
import torch

from sonolab.data.desed import DesedDataModule
from sonolab.data.readers import read_strong_labels, read_weak_labels
from sonolab.run import train
from sonolab.utils.errors import DataFormatError

from ..conftest import ROOT, compose, tagging_overrides


def _soundscape_run(root, model: str = "LogMelCnn") -> list[str]:
    """A tiny ``model`` run on the tiny soundscapes: 16 kHz, the HTS-AT front-end at 10 ms hops."""
    return [
        "data=esc10_soundscapes",
        *tagging_overrides(root, 10.0, model),
        "data.sample_rate=16000",
        "features=htsat_mel",
        "features.f_max=8000",
        "features.hop_length=160",
    ]


def _sed_run(root, out, model_class: str, model: list[str], timelines: int) -> dict:
    """Train one epoch of sound event detection with the tiny ``model_class`` (``model``: its
    overrides) on the tiny soundscapes (small decision grids, 10 PSDS operating points); the test
    set's metrics."""
    import json

    cfg = compose(
        "train",
        [
            *_soundscape_run(root, model_class),
            *model,
            "loss=bce",
            "task=sed",
            "task.decisions={thresholds: [0.3, 0.5], median_frames: [1, 3]}",
            "task.psds_operating_points=10",
            f"task.timelines={timelines}",
            "trainer.max_epochs=1",
            "callbacks.progress_bar=null",
        ],
        out,
    )
    train(cfg, ROOT / "configs")
    return json.loads((out / "metrics.json").read_text())["test"]["eval"]


def test_weak_clips_train_and_strong_clips_are_tested_with_their_events(tiny_soundscapes):
    dm = DesedDataModule(root=str(tiny_soundscapes), sample_rate=16000, num_workers=0, batch_size=4)
    dm.setup()
    info = dm.info
    assert info.multi_label and info.num_classes == len(info.labels) <= 10
    assert info.labels == sorted(info.labels)
    assert [len(dm.parts[p]) for p in ("train", "val", "test")] == [12, 4, 4]
    weak = read_weak_labels(tiny_soundscapes / "metadata/train/weak.tsv")
    first = dm.parts["train"][0]
    assert {info.labels[k] for k in first.label} == set(weak[first.path.name])
    events, _ = read_strong_labels(tiny_soundscapes / "metadata/eval/eval.tsv")
    kept = dm.events["test"]
    assert sum(len(v) for v in kept.values()) == len(events)
    clip = dm.parts["test"][0]
    assert {info.labels[k] for k in clip.label} == {e.label for e in kept[clip.path]}
    batch = next(iter(dm.test_dataloader()))
    assert batch["wave"].shape == (4, 160000) and batch["label"].shape == (4, info.num_classes)
    assert torch.equal(batch["label"].sum(1) > 0, torch.ones(4, dtype=torch.bool))


def test_a_listed_clip_without_audio_is_named(tiny_soundscapes, tmp_path):
    import shutil

    copy = tmp_path / "scapes"
    shutil.copytree(tiny_soundscapes, copy)
    (copy / "audio/eval/eval_00002.wav").unlink()
    dm = DesedDataModule(root=str(copy), sample_rate=16000, require_all_audio=True)
    with pytest.raises(DataFormatError, match="eval_00002.wav"):
        dm.setup()


def test_weak_label_training_with_attention_pooling_runs(tiny_soundscapes, tmp_path):
    cfg = compose(
        "train",
        [
            *_soundscape_run(tiny_soundscapes),
            "model=cnn6_small",
            "model.pooling=attention",
            "loss=bce",
            "task=tagging",
            "task.spec_augment.time_mask=8",
            "debug=fast_dev_run",
            "callbacks=none",
        ],
        tmp_path,
    )
    assert train(cfg, ROOT / "configs")["train_metrics"]["train/loss"] > 0


def test_sound_event_detection_run_scores_events_against_the_whole_clip_baseline(
    tiny_soundscapes, tmp_path
):
    out = tmp_path / "run"
    cnn = ["model=cnn6_small", "model.pooling=attention"]
    tested = _sed_run(tiny_soundscapes, out, "LogMelCnn", cnn, timelines=2)
    for key in ("event_f1_macro", "segment_f1_macro", "mAP"):
        assert 0.0 <= tested[key] <= 100.0, key
    assert tested["decisions"]["from"] == "tuned on the 4 validation clips"
    assert tested["decisions"]["threshold"] in (0.3, 0.5)
    # PSDS of the detections (each scenario's median filter chosen on validation) and of the
    # baseline's single operating point
    for scores in (tested, tested["whole_clip_baseline"]):
        assert 0.0 <= scores["psds1"] <= 1.0 and 0.0 <= scores["psds2"] <= 1.0
    assert set(tested["decisions"]["psds_median_frames"]) == {"psds1", "psds2"}
    assert set(tested["decisions"]["psds_median_frames"].values()) <= {1, 3}
    # the whole-clip baseline finds each clip's classes over its whole length: every reference
    # class is in it, so its segment recall is 100 % and its segment F1 above 0
    assert tested["whole_clip_baseline"]["segment_f1_micro"] > 0.0
    # 10 ms frames (hop 160 at 16 kHz), 16 of them per output frame after four 2 x 2 poolings
    assert tested["frame_seconds"] == pytest.approx(0.16)
    assert "| PSDS1 | PSDS2 |" in (out / "results.md").read_text()
    assert len(list((out / "timelines").glob("eval_*.png"))) == 2


@pytest.mark.slow
def test_htsat_token_semantic_frames_detect_events(tiny_soundscapes, tmp_path):
    """HTS-AT's frame outputs (one per time token of its last stage) through the SED task."""
    out = tmp_path / "run"
    tested = _sed_run(tiny_soundscapes, out, "HtsAt", ["model=htsat_tiny"], timelines=0)
    assert 0.0 <= tested["psds1"] <= 1.0 and 0.0 <= tested["event_f1_macro"] <= 100.0
    # 1001 frames of 10 ms -> HTS-AT's last stage has 32 time tokens over its 1024-frame input
    assert tested["frame_seconds"] == pytest.approx(10.24 / 32, rel=0.05)


def test_sound_event_detection_refuses_a_model_without_frame_outputs(tiny_soundscapes, tmp_path):
    from sonolab.utils.errors import IncompatibleConfigError

    cfg = compose(
        "train",
        [
            *_soundscape_run(tiny_soundscapes),
            "model=cnn6_small",
            "loss=bce",
            "task=sed",
            "debug=fast_dev_run",
        ],
        tmp_path,
    )
    with pytest.raises(IncompatibleConfigError, match="reads frame outputs"):
        train(cfg, ROOT / "configs")
