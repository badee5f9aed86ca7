"""Clip packs (python -m sonolab.data.pack): the same clips out of HDF5 and tar shards as out of the
files, portability to a folder without audio, missing clips counted, mismatches and damage named."""

from __future__ import annotations

import json
import shutil
import tarfile

import pytest
import torch

from sonolab.data.pack import main as pack_main
from sonolab.data.pack import pack_clips
from sonolab.data.tagging import AudioSetDataModule, Esc50DataModule
from sonolab.utils.errors import DataFormatError

from ..conftest import tagging_overrides


def _audioset(root, **kwargs) -> AudioSetDataModule:
    return AudioSetDataModule(
        root=str(root), num_workers=0, batch_size=3, clip_seconds=2.0, **kwargs
    )


@pytest.mark.parametrize("fmt", ["hdf5", "tar"])
def test_packed_clips_equal_the_decoded_files(fmt, tiny_audioset, tmp_path):
    files = _audioset(tiny_audioset)
    manifest = pack_clips(files, tmp_path / "pack", fmt, shard_clips=5)
    assert len(manifest["shards"]) == 4 and manifest["parts"] == {
        "train": 12,
        "val": 0,
        "test": 6,
    }  # 18 clips / 5
    packed = _audioset(tiny_audioset, packed=str(tmp_path / "pack"))
    packed.setup()
    for part in ("train", "test"):
        a, b = files._dataset(files.parts[part]), packed._dataset(packed.parts[part])
        for i in range(len(a)):
            x, y = a[i], b[i]
            assert (
                torch.equal(x["wave"], y["wave"]) and x["length"] == y["length"] == 32000
            )  # 16-bit source: lossless
            assert torch.equal(x["label"], y["label"])
    if fmt == "tar":  # WebDataset layout: <id>.npy + <id>.json per clip
        with tarfile.open(tmp_path / "pack" / "shard-00000.tar") as tar:
            names = tar.getnames()
            meta = json.load(tar.extractfile(names[1]))
        assert (
            names[:2] == ["00000000.npy", "00000000.json"] and meta["key"] == "audio/syn0000000.wav"
        )


def test_pack_serves_metadata_without_audio_and_counts_clips_it_lacks(tiny_audioset, tmp_path):
    pack_clips(_audioset(tiny_audioset), tmp_path / "pack", "hdf5", shard_clips=100)
    meta = tmp_path / "elsewhere"  # the metadata copied to another machine; no audio there
    meta.mkdir()
    for name in ("class_labels_indices.csv", "balanced_train_segments.csv", "eval_segments.csv"):
        shutil.copy(tiny_audioset / name, meta / name)
    with (meta / "eval_segments.csv").open("a") as f:
        f.write('notpacked01, 0.000, 2.000, "/m/synth00"\n')
    dm = _audioset(meta, packed=str(tmp_path / "pack"))
    dm.setup()
    assert len(dm.parts["train"]) == 12 and len(dm.parts["test"]) == 6
    assert (
        sum(dm.skipped.counts.values()) == 1
        and float(next(iter(dm.test_dataloader()))["wave"].abs().max()) > 0
    )
    with pytest.raises(
        DataFormatError, match=r"eval_segments.csv.*every clip it lists in the pack"
    ):
        _audioset(meta, packed=str(tmp_path / "pack"), require_all_audio=True).setup()


def test_pack_is_reused_refused_checked_and_damage_named(tiny_esc50, tmp_path):
    esc50 = Esc50DataModule(
        root=str(tiny_esc50), sample_rate=16000, clip_seconds=1.0, num_workers=0
    )
    first = pack_clips(esc50, tmp_path / "pack", "tar", shard_clips=8)
    assert (
        pack_clips(esc50, tmp_path / "pack", "tar", shard_clips=8) == first
    )  # same parameters: reused
    with pytest.raises(FileExistsError, match="clip pack made with other parameters"):
        pack_clips(esc50, tmp_path / "pack", "hdf5", shard_clips=8)
    with pytest.raises(
        DataFormatError, match=r"pack.json: expected clips packed with data.sample_rate=32000"
    ):
        Esc50DataModule(
            root=str(tiny_esc50), sample_rate=32000, clip_seconds=1.0, packed=str(tmp_path / "pack")
        ).setup()
    with pytest.raises(DataFormatError, match=r"pack.json: expected a clip pack"):
        Esc50DataModule(root=str(tiny_esc50), packed=str(tmp_path)).setup()
    shard = tmp_path / "pack" / first["shards"][0]
    shard.write_bytes(shard.read_bytes()[:2000])  # truncated inside the first shard
    packed = Esc50DataModule(
        root=str(tiny_esc50),
        sample_rate=16000,
        clip_seconds=1.0,
        packed=str(tmp_path / "pack"),
        num_workers=0,
    )
    packed.setup()
    damaged = [c for c in packed.parts["train"] if first["index"][f"audio/{c.path.name}"][0] == 0]
    with pytest.raises(DataFormatError, match=r"shard-00000.tar: expected the packed clip audio/"):
        for i in range(len(packed.parts["train"])):
            if packed.parts["train"][i] in damaged[1:]:
                packed._dataset(packed.parts["train"])[i]


def test_pack_command_and_a_training_run_from_the_pack(
    tiny_audioset, tmp_path, capsys, monkeypatch
):
    from sonolab.run import train

    from ..conftest import ROOT, compose

    monkeypatch.chdir(ROOT)
    overrides = ["experiment=synth_audioset_ast", *tagging_overrides(tiny_audioset, 2.0)]
    assert (
        pack_main(
            [*overrides, "--out", str(tmp_path / "pack"), "--workers", "0", "--shard-clips", "7"]
        )
        == 0
    )
    printed = json.loads(capsys.readouterr().out)
    assert (
        printed["shards"] == ["shard-00000.tar", "shard-00001.tar", "shard-00002.tar"]
        and printed["parameters"]["clips"] == 18
    )
    cfg = compose(
        "train",
        [
            *overrides,
            f"data.packed={tmp_path / 'pack'}",
            "trainer.max_epochs=1",
            "callbacks=none",
            "logger=csv",
            "trainer.accelerator=cpu",
        ],
        tmp_path / "run",
    )
    train(cfg, ROOT / "configs")
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert 0 < metrics["test"]["eval"]["mAP"] <= 1 and not metrics.get("skipped")
