"""VoxCeleb datamodule on the tiny synthetic tree and on the real speechocean762 slice."""

from __future__ import annotations

import logging
import shutil
from collections import Counter

import numpy as np
import pytest
import torch

from sonolab.data.augment import DEFAULT_SNR, WaveformAugment, reverberate
from sonolab.data.verification import SPEEDS, SpeakerBalancedSampler, VoxCelebDataModule
from sonolab.utils.errors import ConfigValueError, DataFormatError

from ..conftest import voxceleb_datamodule

_dm = voxceleb_datamodule


def test_training_crops_and_eval_sets(tiny_voxceleb):
    dm = _dm(tiny_voxceleb, cohort={"utts_per_speaker": 1})
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
    dm = _dm(tiny_voxceleb, crops={"speed_perturb": True})
    dm.setup("fit")
    assert dm.num_classes == 8 * len(SPEEDS)
    labels = [dm.train_set[i]["label"] for i in range(len(dm.train_set)) for _ in range(3)]
    assert max(labels) >= 8 and all(0 <= lab < 24 for lab in labels)
    assert all(dm.train_set[i]["wave"].shape == (16000,) for i in range(4))


def test_augmentation_changes_crops(tiny_voxceleb):
    for scheme, kinds in (
        ("wespeaker", {"reverb", "noise"}),
        ("kaldi", {"reverb", "noise", "music", "speech"}),
    ):
        aug = WaveformAugment(
            musan_root=str(tiny_voxceleb / "musan"),
            rir_root=str(tiny_voxceleb / "rirs"),
            prob=1.0,
            scheme=scheme,
        )
        assert set(aug.kinds) == kinds
        rng = np.random.default_rng(0)
        wave = torch.randn(16000) * 0.1
        outs = [aug(wave, rng) for _ in range(8)]
        assert all(o.shape == wave.shape and torch.isfinite(o).all() for o in outs)
        assert all(not torch.allclose(o, wave) for o in outs)
        if scheme == "wespeaker":  # peak-normalised output
            assert all(abs(float(o.abs().max()) - 1.0) < 1e-3 for o in outs)
    with pytest.raises(DataFormatError, match="musan_missing: expected a MUSAN folder"):
        WaveformAugment(musan_root=str(tiny_voxceleb / "musan_missing")).scan()


def test_augmentation_corpora_are_scanned_at_setup(tiny_voxceleb, tmp_path):
    """A synthetic set's corpora are written by prepare_data, after the augmentation is built
    (augment=musan_rir from a fresh clone): the datamodule scans them in setup, and a folder still
    missing then is named there, before any training."""
    later = tmp_path / "musan"
    augment = WaveformAugment(musan_root=str(later), rir_root=str(tiny_voxceleb / "rirs"))
    with pytest.raises(DataFormatError, match="musan: expected a MUSAN folder"):
        voxceleb_datamodule(tiny_voxceleb, augment=augment).setup("fit")
    shutil.copytree(tiny_voxceleb / "musan", later)
    datamodule = voxceleb_datamodule(tiny_voxceleb, augment=augment)
    datamodule.setup("fit")
    assert set(augment.kinds) == {"reverb", "noise"}
    assert {n.parent.parent for _, n in augment.all_noises} == {later}


def test_scale_to_snr_gives_the_snr_asked_for():
    from sonolab.data.augment import scale_to_snr

    wave, noise = torch.randn(8000) * 0.3, torch.rand(8000) - 0.5
    for snr in (0.0, 7.5, 20.0):
        scaled = scale_to_snr(wave, noise, snr)
        assert 10 * np.log10(float(wave.pow(2).mean() / scaled.pow(2).mean())) == pytest.approx(
            snr, abs=1e-4
        )
    floored = scale_to_snr(
        wave, noise, 10.0, floor=1e-4
    )  # WeSpeaker's energies: mean square + 1e-4
    expected = (float(wave.pow(2).mean()) + 1e-4) / (float(noise.pow(2).mean()) + 1e-4) / 10
    assert float(floored.pow(2).mean() / noise.pow(2).mean()) == pytest.approx(expected, rel=1e-4)


@pytest.mark.parametrize("rir_length", [4224, 8000, 16000])
def test_reverberate_is_the_convolution_with_the_unit_energy_response(rir_length):
    """Against numpy's direct convolution in float64, at response lengths whose full-convolution
    lengths have large prime factors (where the FFT lengths differ most)."""
    generator = np.random.default_rng(0)
    wave = generator.standard_normal(32240).astype(np.float32)
    rir = (generator.standard_normal(rir_length) * np.exp(-np.arange(rir_length) / 800)).astype(
        np.float32
    )
    out = reverberate(torch.from_numpy(wave), torch.from_numpy(rir))
    expected = np.convolve(wave.astype(np.float64), rir / np.linalg.norm(rir.astype(np.float64)))
    assert out.dtype == torch.float32 and out.shape == (32240,)
    np.testing.assert_allclose(out.numpy(), expected[:32240], atol=2e-5)


@pytest.mark.parametrize("scheme", ["wespeaker", "kaldi"])
def test_augmentation_schemes_draw_as_their_recipes(scheme, tiny_voxceleb, monkeypatch):
    import sonolab.data.augment.waveform as augment

    aug = WaveformAugment(
        musan_root=str(tiny_voxceleb / "musan"),
        rir_root=str(tiny_voxceleb / "rirs"),
        prob=1.0,
        scheme=scheme,
    )
    snrs, segments, reverbs = [], [], []
    real_scale, real_segment, real_reverb = augment.scale_to_snr, aug._segment, aug._reverb
    monkeypatch.setattr(
        augment,
        "scale_to_snr",
        lambda w, n, snr, floor=0.0: snrs.append((snr, floor)) or real_scale(w, n, snr, floor),
    )
    monkeypatch.setattr(
        aug,
        "_segment",
        lambda path, n, rng: segments.append(path.parent.name) or real_segment(path, n, rng),
    )
    monkeypatch.setattr(aug, "_reverb", lambda w, rng: reverbs.append(1) or real_reverb(w, rng))
    rng = np.random.default_rng(1)
    calls = 300
    for _ in range(calls):
        aug(torch.randn(4000) * 0.1, rng)
    if (
        scheme == "wespeaker"
    ):  # reverb or one noise file, half and half; every MUSAN category; ranges
        assert abs(len(reverbs) - calls / 2) < 40 and len(segments) == calls - len(reverbs)
        assert set(segments) == {"noise", "music", "speech"} and all(
            floor == 1e-4 for _, floor in snrs
        )
        ranges = DEFAULT_SNR["wespeaker"]
        assert all(
            min(lo for lo, _ in ranges.values()) <= snr <= max(hi for _, hi in ranges.values())
            for snr, _ in snrs
        )
        assert any(snr > 20 for snr, _ in snrs)  # speech reaches 30 dB
    else:  # four kinds; babble sums 3-7 talkers; SNRs from the discrete sets
        assert abs(len(reverbs) - calls / 4) < 30
        assert segments.count("speech") >= 3 * (calls / 4 - 30)
        assert {snr for snr, _ in snrs} <= {15.0, 10.0, 5.0, 0.0, 8.0, 20.0, 17.0, 13.0}


def test_speaker_balanced_sampler_draws_speakers_uniformly():
    labels = [0] * 90 + [1] * 5 + [2] * 5
    sampler = SpeakerBalancedSampler(labels, seed=0)
    counts = Counter(
        labels[draw.index]
        for epoch in range(20)
        if not sampler.set_epoch(epoch)
        for draw in sampler
    )
    assert len(sampler) == 100
    assert min(counts.values()) / max(counts.values()) > 0.8


def test_missing_trial_audio_is_reported_with_list_and_line(tiny_voxceleb, tmp_path):
    bad = tmp_path / "bad_trials.txt"
    first = (tiny_voxceleb / "trials.txt").read_text().splitlines()[0]
    bad.write_text(first + "\n1 id19999/none/00001.wav id19999/none/00002.wav\n")
    dm = _dm(tiny_voxceleb, lists={"val_trials": str(bad)})
    with pytest.raises(
        DataFormatError, match=r"bad_trials.txt:2: expected an audio file .*id19999/none/00001.wav"
    ):
        dm.setup("fit")


def test_real_speechocean_slice(speechocean_root):
    dm = VoxCelebDataModule(
        root=str(speechocean_root),
        train_speakers="train_speakers.txt",
        lists={"val_trials": "trials.txt", "test_trials": {"speechocean": "trials.txt"}},
        audio={"extensions": ("flac",)},
        batch_size=4,
        num_workers=0,
    )
    dm.setup("fit")
    assert len(dm.speakers) == 100 and len(dm.train_set) == 1200
    ev = dm.eval_sets["speechocean"]
    assert len(ev.labels) == 4650 and int(ev.labels.sum()) == 1650
    assert len(ev.speakers) == 25 and not set(ev.speakers) & set(dm.speakers)
    batch = next(iter(dm.train_dataloader()))
    assert batch["wave"].shape == (4, 32000) and batch["wave"].abs().max() > 0


def test_settings_are_grouped_and_old_or_unknown_keys_are_named(tiny_voxceleb):
    dm = _dm(tiny_voxceleb, crops={"frames": 200}, lists={"eval_max_seconds": 3.0})
    assert dm.crop_samples == 32240 and dm.lists.eval_max_seconds == 3.0
    assert dm.lists.test_trials == {"synth": "trials.txt"}  # the helper's other list keys kept
    with pytest.raises(
        ConfigValueError,
        match=r"data.crop_seconds: expected data.crops.seconds \(the key moved there\), found 1.0",
    ):
        _dm(tiny_voxceleb, crop_seconds=1.0)
    with pytest.raises(
        ConfigValueError,
        match=r"data.crops.second: expected a key of data.crops \(seconds, frames, speed_perturb, "
        r"speaker_balanced\)",
    ):
        _dm(tiny_voxceleb, crops={"second": 1.0})
    with pytest.raises(ConfigValueError, match=r"data.cohort.utts_per_speaker: expected 0"):
        _dm(tiny_voxceleb, cohort={"utts_per_speaker": -2})
    with pytest.raises(ConfigValueError, match=r"data.lists.val_holdout: expected null when"):
        _dm(tiny_voxceleb, lists={"val_holdout": {"speakers": 2}})
    with pytest.raises(ConfigValueError, match=r"data.lists.val_holdout.speaker: expected a key"):
        _dm(tiny_voxceleb, lists={"val_trials": None, "val_holdout": {"speaker": 2}})


def test_trial_lists_with_training_speakers_are_warned_with_counts(tiny_copy, caplog):
    trained = sorted(
        p.relative_to(tiny_copy / "wav").as_posix()
        for p in (tiny_copy / "wav" / "id10000").rglob("*.wav")
    )
    other = sorted(
        p.relative_to(tiny_copy / "wav").as_posix()
        for p in (tiny_copy / "wav" / "id10001").rglob("*.wav")
    )
    (tiny_copy / "seen.txt").write_text(f"1 {trained[0]} {trained[1]}\n0 {trained[0]} {other[0]}\n")
    dm = voxceleb_datamodule(
        tiny_copy, lists={"test_trials": {"synth": "trials.txt", "seen": "seen.txt"}}
    )
    with caplog.at_level(logging.WARNING):
        dm.setup("fit")
    assert (
        "trial list seen (" in caplog.text
        and "2 of its 2 speakers are also training speakers (e.g. id10000, id10001)" in caplog.text
    )
    assert "trial list synth" not in caplog.text


def test_any_file_name_trains_and_is_tested(tiny_copy):
    """A training file named in Latin-1 bytes (not UTF-8) with a space, and a trial file with a
    space (written %20 in the list, as sonolab writes such paths): read, pre-scanned, loaded."""
    import os

    speaker = sorted((tiny_copy / "wav").iterdir())[0]
    train_file = sorted(speaker.rglob("*.wav"))[0]
    latin1 = os.fsencode(train_file.parent) + b"/caf\xe9 1.wav"
    os.rename(os.fsencode(train_file), latin1)
    trials = (tiny_copy / "trials.txt").read_text().splitlines()
    tested = trials[0].split()[1]
    spaced = tested.replace(".wav", " b.wav")
    os.rename(tiny_copy / "wav" / tested, tiny_copy / "wav" / spaced)
    (tiny_copy / "trials.txt").write_text(
        "".join(line.replace(tested, spaced.replace(" ", "%20")) + "\n" for line in trials)
    )
    dm = voxceleb_datamodule(tiny_copy, verify_audio=True)
    dm.setup("fit")
    assert not dm.skipped
    assert os.fsdecode(latin1) in {str(dm.train_set.root / u.path) for u in dm.train_set.utterances}
    assert sum(len(batch["label"]) for batch in dm.train_dataloader()) == len(dm.train_set)
    assert spaced in dm.eval_sets["synth"].utterances
    (loader,) = [ld for ld in dm.test_dataloader() if ld.dataset.name == "synth"]
    assert sum(len(batch["index"]) for batch in loader) == len(dm.eval_sets["synth"].utterances)


def _embeddings(loader, features, model) -> torch.Tensor:
    out = torch.zeros(sum(len(b["index"]) for b in loader), model.embedding_dim)
    with torch.no_grad():
        for batch in loader:
            feats, frames = features(batch["wave"], batch["length"])
            out[batch["index"]] = model(feats, frames)["embedding"]
    return out


def test_batched_evaluation_is_longest_first_and_keeps_the_embeddings(tiny_voxceleb):
    """Evaluation batches (eval_batch_size > 1) come longest first, within the count and the
    padded seconds (eval_batch_seconds); every utterance once; the embeddings equal one-at-a-time
    ones: within 1e-5 for WeSpeaker's x-vector (its convolutions and statistics pooling mask the
    padding), cosine >= 0.999 for the speechbrain lobes (their convolutions pad by reflection at
    the tensor's end, so padded frames reach the last real ones)."""
    from sonolab.features import KaldiFbank
    from sonolab.models import EcapaTdnn, TwoSegmentXVector, XVector

    one = _dm(tiny_voxceleb)
    budget = 6.0
    batched = _dm(tiny_voxceleb, lists={"eval_batch_size": 5, "eval_batch_seconds": budget})
    for dm in (one, batched):
        dm.setup("test")
    single_loader = one.test_dataloader()[-1]
    batched_loader = batched.test_dataloader()[-1]
    batches = list(batched_loader)
    lengths = [int(n) for b in batches for n in b["length"]]
    order = [int(i) for b in batches for i in b["index"]]
    assert lengths == sorted(lengths, reverse=True) and lengths[0] > lengths[-1]
    assert sorted(order) == list(range(len(single_loader.dataset)))
    sizes = [len(b["index"]) for b in batches]
    assert max(sizes) <= 5 and max(sizes) > 1 and min(sizes) < max(sizes)
    for b in batches:  # padded seconds within the budget, unless the batch is one utterance
        padded = b["wave"].numel() / 16000
        assert len(b["index"]) == 1 or padded <= budget, (len(b["index"]), padded)
    torch.manual_seed(0)
    fbank = KaldiFbank(n_mels=40).eval()
    small = dict(input_size=40, channels=32, stats_channels=64, embedding_dim=16)
    models = (
        (TwoSegmentXVector(**small), True),
        (XVector(**small), False),
        (EcapaTdnn(input_size=40, channels=32, mfa_channels=None, embedding_dim=16), False),
    )
    for model, exact in models:
        model.eval()
        plain = _embeddings(single_loader, fbank, model)
        fast = _embeddings(batched_loader, fbank, model)
        if exact:
            torch.testing.assert_close(fast, plain, atol=1e-5, rtol=0)
        else:
            assert torch.nn.functional.cosine_similarity(fast, plain).min() >= 0.999
            assert not torch.equal(fast, plain)  # reflection padding does reach the embedding


def test_evaluate_arguments_set_the_evaluation_batches():
    """evaluate.py's eval_batch_size / eval_batch_seconds land in the run's data.lists."""
    from sonolab.data.verification import VoxCelebDataModule

    data = {"lists": {"eval_batch_size": 1, "eval_batch_seconds": None, "trial_dir": "wav"}}
    out = VoxCelebDataModule.evaluation_config(
        data, {"eval_batch_size": 16, "eval_batch_seconds": 20.0}
    )
    assert out["lists"] == {"eval_batch_size": 16, "eval_batch_seconds": 20.0, "trial_dir": "wav"}


def test_persistent_loader_workers_draw_each_epoch_as_a_single_process(tiny_voxceleb):
    """The training loader keeps its workers across epochs; the crops of every epoch are still
    those of a loader without workers (the epoch reaches them through the sampler's keys). The
    evaluation loaders keep theirs too."""
    crops = {}
    for workers in (0, 1):
        dm = _dm(tiny_voxceleb, num_workers=workers)
        dm.setup("fit")
        loader = dm.train_dataloader()
        assert loader.persistent_workers == (workers > 0)
        epochs = []
        for epoch in (0, 1):
            loader.sampler.set_epoch(epoch)
            epochs.append(torch.cat([batch["wave"] for batch in loader]))
        crops[workers] = epochs
    assert not torch.equal(crops[0][0], crops[0][1])  # a new draw every epoch
    for epoch in (0, 1):
        assert torch.equal(crops[0][epoch], crops[1][epoch])
    # the validation loader keeps its workers too, and gives the same utterances every pass
    val = dm.val_dataloader()
    assert val.persistent_workers
    passes = [torch.cat([batch["wave"].flatten() for batch in val]) for _ in range(2)]
    assert torch.equal(passes[0], passes[1]) and passes[0].numel() > 0
