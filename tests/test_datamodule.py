"""VoxCeleb datamodule on the tiny synthetic tree and on the real speechocean762 slice."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
import torch

from sonolab.data.augment import WaveformAugment
from sonolab.data.voxceleb import SPEEDS, SpeakerBalancedSampler, VoxCelebDataModule
from sonolab.utils.errors import DataFormatError


def _dm(root, **kw) -> VoxCelebDataModule:
    args = dict(root=str(root), train_speakers="train_speakers.txt", val_trials="val_trials.txt",
                test_trials={"synth": "trials.txt"}, batch_size=4, crop_seconds=1.0, num_workers=0)
    args.update(kw)
    return VoxCelebDataModule(**args)


def test_training_crops_and_eval_sets(tiny_voxceleb):
    dm = _dm(tiny_voxceleb, cohort_utts_per_speaker=1)
    dm.setup("fit")
    batch = next(iter(dm.train_dataloader()))
    assert batch["wave"].shape == (4, 16000) and batch["label"].max() < 8
    test = dm.eval_sets["synth"]
    # Each utterance appears once even though trials reuse it.
    assert len(test.utterances) == len(set(test.utterances)) < 2 * len(test.labels)
    assert len(test.labels) == 40
    val = next(iter(dm.val_dataloader()))
    assert val["wave"].shape[0] == 1 and val["set"] == ["val"]
    loaders = dm.test_dataloader()
    assert [ld.dataset.name for ld in loaders] == ["cohort", "synth"]
    assert len(loaders[0].dataset) == 8 and len(set(dm.cohort_speakers())) == 8


def test_speed_perturbation_triples_the_labels(tiny_voxceleb):
    dm = _dm(tiny_voxceleb, speed_perturb=True)
    dm.setup("fit")
    assert dm.num_classes == 8 * len(SPEEDS)
    labels = [dm.train_set[i]["label"] for i in range(len(dm.train_set)) for _ in range(3)]
    assert max(labels) >= 8 and all(0 <= lab < 24 for lab in labels)
    assert all(dm.train_set[i]["wave"].shape == (16000,) for i in range(4))


def test_augmentation_changes_crops(tiny_voxceleb):
    aug = WaveformAugment(musan_root=str(tiny_voxceleb / "musan"), rir_root=str(tiny_voxceleb / "rirs"), prob=1.0)
    assert set(aug.kinds) == {"reverb", "noise", "music", "speech"}
    rng = np.random.default_rng(0)
    wave = torch.randn(16000) * 0.1
    outs = [aug(wave, rng) for _ in range(8)]
    assert all(o.shape == wave.shape and torch.isfinite(o).all() for o in outs)
    assert all(not torch.allclose(o, wave) for o in outs)
    with pytest.raises(DataFormatError, match="musan_missing: expected a MUSAN folder"):
        WaveformAugment(musan_root=str(tiny_voxceleb / "musan_missing"))


def test_speaker_balanced_sampler_draws_speakers_uniformly():
    labels = [0] * 90 + [1] * 5 + [2] * 5
    sampler = SpeakerBalancedSampler(labels, seed=0)
    counts = Counter(labels[i] for _ in range(20) for i in sampler)
    assert len(sampler) == 100
    assert min(counts.values()) / max(counts.values()) > 0.8


def test_missing_trial_audio_is_reported_with_list_and_line(tiny_voxceleb, tmp_path):
    bad = tmp_path / "bad_trials.txt"
    first = (tiny_voxceleb / "trials.txt").read_text().splitlines()[0]
    bad.write_text(first + "\n1 id19999/none/00001.wav id19999/none/00002.wav\n")
    dm = _dm(tiny_voxceleb, val_trials=str(bad))
    with pytest.raises(DataFormatError, match=r"bad_trials.txt:2: expected an audio file .*id19999/none/00001.wav"):
        dm.setup("fit")


def test_real_speechocean_slice(speechocean_root):
    dm = VoxCelebDataModule(root=str(speechocean_root), train_speakers="train_speakers.txt", val_trials="trials.txt",
                            test_trials={"speechocean": "trials.txt"}, extensions=("flac",), batch_size=4,
                            num_workers=0)
    dm.setup("fit")
    assert len(dm.speakers) == 100 and len(dm.train_set) == 1200
    ev = dm.eval_sets["speechocean"]
    assert len(ev.labels) == 4650 and int(ev.labels.sum()) == 1650
    assert len(ev.speakers) == 25 and not set(ev.speakers) & set(dm.speakers)
    batch = next(iter(dm.train_dataloader()))
    assert batch["wave"].shape == (4, 32000) and batch["wave"].abs().max() > 0
