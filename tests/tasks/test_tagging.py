"""Tagging family: synthetic ESC-50 generator, datamodule (synthetic and the real ESC-10), AST
front-end and model, SpecAugment, and a tiny train -> test -> report run."""

from __future__ import annotations

import csv
import json
import logging
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
import torchaudio.compliance.kaldi as kaldi
from omegaconf import OmegaConf

from sonolab.data.augment import SpecAugment
from sonolab.data.synth.esc50 import Esc50SynthConfig, generate_esc50
from sonolab.data.tagging import Esc50DataModule
from sonolab.features import AstFbank
from sonolab.models import AudioSpectrogramTransformer
from sonolab.models.ast import patch_grid
from sonolab.run import evaluate, train
from sonolab.utils.errors import ConfigValueError, DataFormatError

from ..conftest import ROOT, SHARED_DATA, TINY_ESC50, compose, tagging_overrides, train_run


def test_synthetic_esc50_layout_and_determinism(tiny_esc50, tmp_path):
    rows = list(csv.DictReader((tiny_esc50 / "meta" / "esc50.csv").open()))
    assert len(rows) == 20 and {r["fold"] for r in rows} == {"1", "2", "3", "4", "5"}
    assert set(rows[0]) == {"filename", "fold", "target", "category", "esc10", "src_file", "take"}
    info = sf.info(tiny_esc50 / "audio" / rows[0]["filename"])
    assert info.samplerate == 22050 and info.frames == 22050
    again = tmp_path / "again"
    generate_esc50(again, Esc50SynthConfig(**TINY_ESC50))
    a, _ = sf.read(tiny_esc50 / "audio" / rows[7]["filename"])
    b, _ = sf.read(again / "audio" / rows[7]["filename"])
    assert np.array_equal(a, b)
    levels = [
        20 * np.log10(np.sqrt(np.mean(sf.read(tiny_esc50 / "audio" / r["filename"])[0] ** 2)))
        for r in rows
    ]
    assert (
        np.ptp(levels) > 8
    )  # loudness varies within and across classes: no class is told by its level


@pytest.mark.slow  # writes 400 clips of 5 s (~30 s) and fits 5 logistic regressions
def test_synthetic_classes_are_not_separable_by_mean_log_mel(tmp_path):
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    root = tmp_path / "esc"
    generate_esc50(root, Esc50SynthConfig())
    rows = list(csv.DictReader((root / "meta" / "esc50.csv").open()))
    feats, labels, folds = [], [], []
    for r in rows:
        wave, sr = sf.read(root / "audio" / r["filename"], dtype="float32")
        fb = kaldi.fbank(torch.from_numpy(wave)[None] * 32768, num_mel_bins=64, sample_frequency=sr)
        feats.append(fb.mean(0).numpy())
        labels.append(int(r["target"]))
        folds.append(int(r["fold"]))
    feats, labels, folds = np.array(feats), np.array(labels), np.array(folds)
    accuracy = []
    for fold in range(1, 6):
        train_rows, test_rows = folds != fold, folds == fold
        scaler = StandardScaler().fit(feats[train_rows])
        clf = LogisticRegression(max_iter=2000).fit(
            scaler.transform(feats[train_rows]), labels[train_rows]
        )
        accuracy.append(clf.score(scaler.transform(feats[test_rows]), labels[test_rows]))
    assert 0.2 < np.mean(accuracy) < 0.7  # above chance (0.1), far from perfect


def test_datamodule_folds_missing_clips_and_settings(tiny_esc50, tmp_path):
    dm = Esc50DataModule(
        root=str(tiny_esc50), test_fold=2, val_fold=3, num_workers=0, batch_size=4, clip_seconds=1.0
    )
    dm.setup()
    assert (len(dm.parts["train"]), len(dm.parts["val"]), len(dm.parts["test"])) == (12, 4, 4)
    assert dm.info.num_classes == 4 and not dm.info.multi_label and dm.test_name == "fold2"
    batch = next(iter(dm.test_dataloader()))
    assert batch["wave"].shape == (4, 16000) and batch["index"].tolist() == [0, 1, 2, 3]
    # a row without its audio: counted, or with require_all_audio an error naming it
    copy = tmp_path / "esc"
    import shutil

    shutil.copytree(tiny_esc50, copy)
    first = next(csv.DictReader((copy / "meta" / "esc50.csv").open()))["filename"]
    (copy / "audio" / first).unlink()
    dm = Esc50DataModule(root=str(copy), num_workers=0)
    dm.setup()
    assert dm.skipped.as_dict()["clip listed in the metadata without its audio file"]["count"] == 1
    with pytest.raises(
        DataFormatError,
        match=rf"esc50.csv: expected the audio of every clip it lists .*, "
        rf"found '1 missing'\n  {first}",
    ):
        Esc50DataModule(root=str(copy), num_workers=0, require_all_audio=True).setup()
    with pytest.raises(ConfigValueError, match=r"data.val_fold: expected null or a training fold"):
        Esc50DataModule(root=str(copy), test_fold=2, val_fold=2)


def test_short_and_silent_clips_are_padded_and_finite(tmp_path):
    root = tmp_path / "esc"
    (root / "audio").mkdir(parents=True)
    (root / "meta").mkdir()
    sf.write(
        root / "audio" / "1-1-A-0.wav", np.zeros(8000, dtype=np.float32), 16000
    )  # 0.5 s of silence
    sf.write(
        root / "audio" / "2-2-A-1.wav",
        np.random.default_rng(0).normal(0, 0.1, 16000).astype(np.float32),
        16000,
    )
    (root / "meta" / "esc50.csv").write_text(
        "filename,fold,target,category,esc10,src_file,take\n"
        "1-1-A-0.wav,1,0,a,False,1,A\n2-2-A-1.wav,2,1,b,False,2,A\n"
    )
    dm = Esc50DataModule(root=str(root), test_fold=1, num_workers=0, clip_seconds=1.0)
    dm.setup()
    item = dm.test_dataloader().dataset[0]
    assert item["wave"].shape == (16000,) and item["length"] == 8000
    fbank = AstFbank(target_frames=98, mean=-5.0, std=4.0)
    feats, frames = fbank(item["wave"][None], torch.tensor([item["length"]]))
    assert torch.isfinite(feats).all() and int(frames[0]) == 48


def test_esc10_subset_is_selected_and_reindexed(tiny_esc50):
    """The generated set marks classes 0 and 2 of 4 as ESC-10: they become classes 0 and 1."""
    full = Esc50DataModule(root=str(tiny_esc50), test_fold=1, num_workers=0)
    full.setup()
    dm = Esc50DataModule(root=str(tiny_esc50), esc10=True, test_fold=1, num_workers=0)
    dm.setup()
    assert dm.info.num_classes == 2 and dm.class_names == [
        full.class_names[0],
        full.class_names[2],
    ]
    assert len(dm.parts["train"]) == 8 and sorted({c.label for c in dm.parts["test"]}) == [0, 1]
    kept = {c.path.name for part in dm.parts.values() for c in part}
    assert all(name.endswith(("-A-0.wav", "-A-2.wav")) for name in kept)


@pytest.mark.skipif(
    not (SHARED_DATA / "esc10").is_dir(), reason=f"real data not present: {SHARED_DATA / 'esc10'}"
)
def test_real_esc10_folds_and_ogg_decoding():
    dm = Esc50DataModule(root=str(SHARED_DATA / "esc10"), esc10=True, test_fold=1, num_workers=0)
    dm.setup()
    assert (
        dm.info.num_classes == 10 and len(dm.parts["train"]) == 320 and len(dm.parts["test"]) == 80
    )
    assert sorted({c.label for c in dm.parts["test"]}) == list(range(10))
    item = dm.test_dataloader().dataset[0]
    assert (
        item["wave"].shape == (80000,) and float(item["wave"].abs().max()) > 0
    )  # 44.1 kHz OGG -> 16 kHz


def test_ast_front_end_matches_the_recipe_and_normalises():
    wave = torch.from_numpy(np.random.default_rng(0).normal(0, 0.1, 16000 * 3).astype(np.float32))
    fbank = AstFbank(target_frames=400, mean=-4.0, std=3.0)
    feats, frames = fbank(wave[None], torch.tensor([wave.numel()]))
    reference = kaldi.fbank(
        (wave - wave.mean())[None],
        htk_compat=True,
        sample_frequency=16000,
        use_energy=False,
        window_type="hanning",
        num_mel_bins=128,
        dither=0.0,
        frame_shift=10,
    )
    assert feats.shape == (1, 400, 128) and int(frames[0]) == reference.shape[0] == 298
    assert torch.allclose(feats[0, :298], (reference + 4.0) / 6.0, atol=1e-5)
    assert torch.allclose(
        feats[0, 298:], torch.full((102, 128), 4.0 / 6.0)
    )  # zero padding, normalised
    with pytest.raises(RuntimeError, match="no normalisation statistics"):
        AstFbank()(wave[None])


def test_ast_patch_grid_tokens_and_output():
    assert patch_grid(128, 1024, 16, 10) == (12, 101)  # AST's 1212 patches for AudioSet
    model = AudioSpectrogramTransformer(n_mels=32, frames=64, embed_dim=24, depth=1, num_heads=2)
    model.reset_classifier(5)
    assert model.vit.pos_embed.shape == (
        1,
        2 * 5 + 2,
        24,
    )  # (32-16)//10+1 = 2, (64-16)//10+1 = 5, + cls + dist
    out = model(torch.randn(3, 64, 32))["logits"]
    assert out.shape == (3, 5)
    out.sum().backward()
    assert (
        model.vit.patch_embed.proj.weight.grad is not None
        and model.vit.patch_embed.proj.stride == (10, 10)
    )


def test_ast_written_out_attention_gives_the_fused_outputs():
    """``fused_attention=False`` (timm's written-out attention) against the default fused one."""
    torch.manual_seed(0)
    size = dict(n_mels=32, frames=64, embed_dim=24, depth=2, num_heads=2, num_classes=4)
    fused = AudioSpectrogramTransformer(**size).eval()
    plain = AudioSpectrogramTransformer(**size, fused_attention=False).eval()
    plain.load_state_dict(fused.state_dict())
    switches = [m.fused_attn for m in plain.modules() if hasattr(m, "fused_attn")]
    assert len(switches) == 2 and not any(switches)
    assert all(m.fused_attn for m in fused.modules() if hasattr(m, "fused_attn"))
    feats = torch.randn(3, 64, 32)
    with torch.no_grad():
        torch.testing.assert_close(
            plain(feats)["logits"], fused(feats)["logits"], atol=1e-5, rtol=1e-4
        )


def test_spec_augment_masks_bands_and_frames_in_training_only():
    torch.manual_seed(0)
    feats = torch.ones(4, 200, 64)
    masked = SpecAugment(freq_mask=20, time_mask=50)(feats)
    zero = masked == 0
    assert zero.any() and zero.all(dim=1).any(dim=1).sum() + zero.all(dim=2).any(dim=1).sum() >= 4


def test_tiny_training_run_writes_the_tagging_report(tiny_esc50, tmp_path):
    out = tmp_path / "run"
    overrides = ["trainer.max_epochs=2", "logger=csv", "data.val_fold=4", "data.test_fold=5"]
    summary = train_run(
        ["experiment=synth_esc50_ast", *tagging_overrides(tiny_esc50), *overrides], out
    )
    assert summary["train_metrics"]["train/loss"] > 0
    metrics = json.loads((out / "metrics.json").read_text())
    result = metrics["test"]["fold5"]
    assert result["clips"] == 4 and 0 <= result["accuracy"] <= 100 and len(result["confusion"]) == 4
    assert metrics["checkpoint_reason"] == "best by val/score"
    assert (out / "confusion_fold5.png").stat().st_size > 1000 and "| fold5 | 4 |" in (
        out / "results.md"
    ).read_text()
    # evaluate.py: the same numbers from the run folder, and another fold by test_fold=
    eval_dir = tmp_path / "eval"
    evaluate(
        compose("eval", [f"run_dir={out}", "trainer.enable_progress_bar=false"], eval_dir),
        ROOT / "configs",
    )
    assert json.loads((eval_dir / "metrics.json").read_text())["test"]["fold5"] == result
    other = tmp_path / "eval_fold4"
    evaluate(
        compose(
            "eval", [f"run_dir={out}", "test_fold=4", "trainer.enable_progress_bar=false"], other
        ),
        ROOT / "configs",
    )
    assert json.loads((other / "metrics.json").read_text())["test"]["fold4"]["clips"] == 4
    # a fold the run trained on is no test
    with pytest.raises(
        ConfigValueError,
        match=r"test_fold: expected a fold this run did not train on: 5 \(its test fold\) or 4 "
        r"\(its validation fold\); folds 1, 2, 3 trained it, found 1",
    ):
        evaluate(
            compose("eval", [f"run_dir={out}", "test_fold=1"], tmp_path / "eval_fold1"),
            ROOT / "configs",
        )


@pytest.mark.parametrize("model", ["ast_tiny", "ast_small", "ast_base"])
def test_fast_dev_run_every_ast_size(model, tiny_esc50, tmp_path):
    overrides = [o for o in tagging_overrides(tiny_esc50) if not o.startswith("model.depth")]
    cfg = compose(
        "train",
        [
            "experiment=synth_esc50_ast",
            *overrides,
            f"model={model}",
            "model.depth=2",
            "debug=fast_dev_run",
            "callbacks=none",
        ],
        tmp_path,
    )
    assert train(cfg, ROOT / "configs")["train_metrics"]["train/loss"] > 0


def test_a_multi_label_loss_on_single_label_data_is_refused(tiny_esc50, tmp_path):
    from sonolab.utils.errors import IncompatibleConfigError

    cfg = compose(
        "train",
        ["experiment=synth_esc50_ast", *tagging_overrides(tiny_esc50), "loss=bce"],
        tmp_path,
    )
    with pytest.raises(
        IncompatibleConfigError,
        match=r"single-label: use a single-label \(loss=label_ce\) loss, not MultiLabelBCE",
    ):
        train(cfg, ROOT / "configs")


def test_esc50_generator_command(tmp_path, capsys):
    from sonolab.data.synth.__main__ import main

    assert (
        main(
            [
                "esc50",
                "--out",
                str(tmp_path / "esc"),
                "--num-classes",
                "3",
                "--clips-per-class",
                "5",
                "--seconds",
                "0.5",
                "--sample-rate",
                "16000",
            ]
        )
        == 0
    )
    assert len((tmp_path / "esc" / "meta" / "esc50.csv").read_text().splitlines()) == 16
    with pytest.raises(SystemExit):
        main(["esc50", "--out", str(tmp_path / "bad"), "--num-classes", "99"])
    assert (
        "num_classes must be 2..32" in capsys.readouterr().err and not (tmp_path / "bad").exists()
    )


def test_mixup_mixes_inputs_and_targets_with_the_same_weights():
    from sonolab.data.augment import Mixup

    torch.manual_seed(0)
    mixup = Mixup(prob=1.0, alpha=0.4, targets="mixed")
    x = torch.randn(6, 100)
    labels = torch.arange(6) % 3
    targets = torch.nn.functional.one_hot(labels, 3).float()
    drawn = mixup.draw({"wave": x, "length": torch.full((6,), 100), "label": labels})
    perm, lam = drawn["perm"], drawn["lam"]
    assert torch.equal(drawn["wave"], x[perm]) and torch.equal(drawn["label"], labels[perm])
    mixed = mixup.inputs(x, drawn)
    assert torch.allclose(mixed[2], lam[2] * x[2] + (1 - lam[2]) * x[perm[2]])
    soft = mixup.targets(targets, targets[perm], lam)
    assert torch.allclose(soft.sum(1), torch.ones(6)) and torch.allclose(
        soft[2], lam[2] * targets[2] + (1 - lam[2]) * targets[perm[2]]
    )
    hard = Mixup(prob=1.0, alpha=0.4, targets="dominant").targets(targets, targets[perm], lam)
    dominant = torch.where(lam >= 0.5, torch.arange(6), perm)
    assert torch.equal(hard, targets[dominant])
    own = Mixup(prob=1.0, targets="own").targets(targets, targets[perm], lam)
    assert torch.equal(own, targets)  # HTS-AT: each example keeps its own targets
    assert Mixup(prob=0.0).draw({"wave": x}) is None
    with pytest.raises(ConfigValueError, match="task.mixup.domain: expected waveform or"):
        Mixup(domain="image")
    with pytest.raises(ConfigValueError, match="task.mixup.partners: expected batch or"):
        Mixup(partners="queue")
    with pytest.raises(ConfigValueError, match="task.mixup.targets: expected mixed or"):
        Mixup(targets="soft")
    with pytest.raises(RuntimeError, match="no partner clips"):
        Mixup(prob=1.0, partners="dataset").draw({"wave": x})


def test_mixup_forms_of_ast_htsat_and_panns():
    from sonolab.data.augment import Mixup

    torch.manual_seed(0)
    x = torch.randn(8, 50)
    batch = {"wave": x, "length": torch.arange(8) + 40, "label": torch.arange(8)}
    # HTS-AT's do_mixup: x * lam + flip(x) * (1 - lam), every example
    flipped = Mixup(prob=1.0, alpha=0.5, partners="flipped", targets="own").draw(batch)
    assert torch.equal(flipped["perm"], torch.arange(7, -1, -1))
    lam = flipped["lam"]
    expected = x * lam[:, None] + torch.flip(x, dims=[0]) * (1 - lam[:, None])
    assert torch.allclose(Mixup(partners="flipped").inputs(x, flipped), expected)
    # PANNs' do_mixup: example 2i with 2i + 1, the batch halves
    pairs_mixup = Mixup(prob=1.0, alpha=1.0, partners="pairs")
    pairs = pairs_mixup.draw(batch)
    assert torch.equal(pairs["rows"], torch.tensor([0, 2, 4, 6]))
    mixed = pairs_mixup.inputs(x, pairs)
    lam = pairs["lam"]
    assert mixed.shape == (4, 50)
    assert torch.allclose(mixed[1], lam[1] * x[2] + (1 - lam[1]) * x[3])
    assert torch.equal(pairs_mixup.lengths(batch["length"], pairs), torch.tensor([41, 43, 45, 47]))
    assert torch.equal(Mixup.own(batch["label"], pairs), torch.tensor([0, 2, 4, 6]))
    # AST: each example mixed with probability prob; the others keep lam = 1 (themselves)
    per_example = Mixup(prob=0.5, alpha=10.0, per_example=True)
    draws = torch.cat([per_example.draw(batch)["lam"] for _ in range(200)])
    unmixed = (draws == 1.0).float().mean()
    assert 0.4 < unmixed < 0.6
    kept = draws[draws < 1.0]
    assert abs(float(kept.mean()) - 0.5) < 0.02 and float(kept.std()) < 0.15  # Beta(10, 10)


def test_spec_augment_fill_is_a_raw_zero_for_ast_and_zero_otherwise():
    from sonolab.data.augment import SpecAugment
    from sonolab.features import AstFbank

    fbank = AstFbank(n_mels=16, sample_rate=16000, target_frames=50, mean=-4.2677393, std=4.5689974)
    fill = fbank.normalised_value(0.0)
    assert fill == pytest.approx(4.2677393 / (2 * 4.5689974))  # AST masks the raw fbank with 0
    torch.manual_seed(3)
    masks = SpecAugment(freq_mask=8, time_mask=20, freq_masks=2, time_masks=2)
    feats = torch.full((4, 50, 16), 7.0)
    masked = masks(feats, fill)
    values = masked.unique()
    assert len(values) == 2 and float(values.max()) == 7.0
    assert float(values.min()) == pytest.approx(fill)
    assert (masks(feats) == 0).any()  # the default fill: 0 in the features


def test_repeat_pad_plays_a_short_clip_again():
    from sonolab.data.tagging import fill_clip

    wave = torch.randn(160)
    repeated, length = fill_clip(wave, 320, "repeat")
    # HTS-AT's ESC_Dataset: np.concatenate((waveform, waveform)) for its 10 s input
    assert torch.equal(repeated, torch.cat([wave, wave])) and length == 320
    partial, length = fill_clip(wave, 400, "repeat")
    assert torch.equal(partial[320:], wave[:80]) and length == 400
    padded, length = fill_clip(wave, 320, "zero")
    assert torch.equal(padded[:160], wave) and not padded[160:].any() and length == 160
    cut, length = fill_clip(wave, 100, "repeat")
    assert torch.equal(cut, wave[:100]) and length == 100


def test_shift_gain_rolls_each_clip_by_its_own_amount_and_scales_it():
    from sonolab.data.augment import ShiftGain

    torch.manual_seed(0)
    wave = torch.randn(8, 1000)
    length = torch.full((8,), 600)
    shifted, new_length = ShiftGain(sample_rate=1000, shift_seconds=0.25)(wave, length)
    assert torch.equal(
        new_length, torch.full((8,), 1000)
    )  # rolled padding can be anywhere: all valid
    shifts = []
    for clip, out in zip(
        wave, shifted
    ):  # each row is a circular roll of its clip by at most 250 samples
        matches = [s for s in range(-250, 251) if torch.equal(torch.roll(clip, s), out)]
        assert len(matches) == 1
        shifts.append(matches[0])
    assert len(set(shifts)) > 4  # one amount per clip, not one for the batch
    scaled, same_length = ShiftGain(sample_rate=1000, gain_db=6.0)(wave, length)
    assert torch.equal(same_length, length)
    ratio = scaled / wave  # one factor per clip, within +-6 dB
    assert torch.allclose(ratio, ratio[:, :1].expand_as(ratio), rtol=1e-5)
    assert ((ratio[:, 0] >= 10 ** (-6 / 20) - 1e-6) & (ratio[:, 0] <= 10 ** (6 / 20) + 1e-6)).all()
    assert ratio[:, 0].std() > 0.05
    unchanged, _ = ShiftGain(sample_rate=1000)(wave, length)
    assert torch.equal(unchanged, wave)
    with pytest.raises(ConfigValueError, match="task.shift_gain"):
        ShiftGain(sample_rate=1000, shift_seconds=-1)


def test_dataset_partners_come_from_the_whole_training_set(tiny_esc50):
    dm = Esc50DataModule(root=str(tiny_esc50), clip_seconds=1.0, num_workers=0, batch_size=4)
    dm.setup()
    dm.mixup_partners = True
    torch.manual_seed(0)
    train_set = dm.train_dataloader().dataset
    partners = set()
    for index in range(len(train_set)):
        item = train_set[index]
        found = [
            j
            for j in range(len(train_set))
            if torch.equal(train_set._item(j)["wave"], item["partner_wave"])
        ]
        assert found and train_set._item(found[0])["label"] == item["partner_label"]
        partners.add(found[0])
    assert len(partners) > len(train_set) // 3  # drawn over the set, not one fixed partner
    assert "partner_wave" not in dm.test_dataloader().dataset[0]  # only training clips are mixed
    batch = next(iter(dm.train_dataloader()))
    assert batch["partner_wave"].shape == batch["wave"].shape and batch["partner_label"].shape == (
        4,
    )


def test_persistent_loader_workers_draw_each_epoch_as_a_single_process(tiny_esc50):
    """The training and validation loaders keep their workers across passes; each epoch's
    batches (partners for mixup included) are still those of a loader without workers."""
    drawn = {}
    for workers in (0, 1):
        dm = Esc50DataModule(
            root=str(tiny_esc50), clip_seconds=1.0, num_workers=workers, batch_size=4, val_fold=2
        )
        dm.setup()
        dm.mixup_partners = True
        loader, val = dm.train_dataloader(), dm.val_dataloader()
        assert loader.persistent_workers == val.persistent_workers == (workers > 0)
        drawn[workers] = []
        for epoch in (0, 1):
            loader.sampler.set_epoch(epoch)  # what Lightning does before each epoch
            drawn[workers].append(
                [torch.cat([b["wave"], b["partner_wave"]]) for b in loader]
                + [b["wave"] for b in val]
            )
    for epoch in (0, 1):
        assert len(drawn[0][epoch]) == len(drawn[1][epoch]) > 0
        assert all(torch.equal(a, b) for a, b in zip(drawn[0][epoch], drawn[1][epoch]))
    assert not torch.equal(drawn[0][0][0], drawn[0][1][0])  # a new order every epoch


@pytest.mark.parametrize(
    "mixup",
    [
        # AST: per example, partners from the dataset, raw waveforms, masks of the raw fbank
        "{prob: 0.5, alpha: 10, domain: waveform, partners: dataset, per_example: true}",
        # HTS-AT: flipped batch after the masks, own targets
        "{prob: 1.0, alpha: 0.5, domain: masked_spectrogram, partners: flipped, targets: own}",
        # PANNs: even / odd pairs after the masks (the batch halves)
        "{prob: 1.0, alpha: 1.0, domain: masked_spectrogram, partners: pairs}",
        "{prob: 1.0, alpha: 10, domain: spectrogram, partners: dataset}",
    ],
)
def test_training_with_mixup_runs_in_each_form(mixup, tiny_esc50, tmp_path):
    cfg = compose(
        "train",
        [
            "experiment=synth_esc50_ast",
            *tagging_overrides(tiny_esc50),
            "debug=fast_dev_run",
            "callbacks=none",
            f"task.mixup={mixup}",
            "task.spec_augment.fill=raw_zero",
            "task.shift_gain={shift_seconds: 0.5, gain_db: 6}",
        ],
        tmp_path,
    )
    assert train(cfg, ROOT / "configs")["train_metrics"]["train/loss"] > 0


def _fake_job(folder, overrides, accuracy=None, fold=None, log_line="done"):
    (folder / ".hydra").mkdir(parents=True)
    (folder / ".hydra" / "overrides.yaml").write_text("".join(f"- {o}\n" for o in overrides))
    (folder / ".hydra" / "config.yaml").write_text(
        "task: {_target_: sonolab.tasks.TaggingTask}\n"
        "data: {_target_: sonolab.data.tagging.Esc50DataModule}\n"
    )
    (folder / "train.log").write_text(f"starting\n{log_line}\n")
    if accuracy is not None:
        (folder / "metrics.json").write_text(
            json.dumps({"test": {f"fold{fold}": {"accuracy": accuracy, "clips": 80}}})
        )


def test_fold_summary_gives_mean_and_std_per_configuration_and_lists_failures(tmp_path, capsys):
    from sonolab.report.folds import main, write_fold_summary

    sweep = tmp_path / "sweep"
    values = {"model=htsat_tiny": [90.0, 85.0, 95.0, 80.0, 100.0], "model=ast_tiny": [70.0, 75.0]}
    job = 0
    for config, accuracies in values.items():
        for fold, acc in enumerate(accuracies, start=1):
            _fake_job(
                sweep / str(job),
                ["experiment=esc10_htsat", config, f"data.test_fold={fold}"],
                acc,
                fold,
            )
            job += 1
    _fake_job(
        sweep / str(job),
        ["experiment=esc10_htsat", "model=ast_tiny", "data.test_fold=3"],
        log_line="RuntimeError: out of memory",
    )
    table = write_fold_summary([sweep], sweep)
    rows = {r["config"]: r for r in json.loads((sweep / "folds.json").read_text())["rows"]}
    full = rows["experiment=esc10_htsat model=htsat_tiny"]
    assert full["mean"] == pytest.approx(90.0) and full["std"] == pytest.approx(
        np.std([90, 85, 95, 80, 100], ddof=1)
    )
    assert full["num_folds"] == 5 and full["folds"] == {
        "1": 90.0,
        "2": 85.0,
        "3": 95.0,
        "4": 80.0,
        "5": 100.0,
    }
    partial = rows["experiment=esc10_htsat model=ast_tiny"]
    assert partial["num_folds"] == 2 and partial["failed"][0][1] == "RuntimeError: out of memory"
    assert (
        "| 90.00 | 7.91 | 5 |" in table
        and "| 70.00 | 75.00 | - | - | - | 72.50 | 3.54 | 2 |" in table
    )
    assert "Failed runs:" in (sweep / "folds.md").read_text()
    with pytest.raises(SystemExit):
        main([str(tmp_path / "absent")])
    (tmp_path / "empty").mkdir()
    assert main([str(tmp_path / "empty")]) == 1 and "no fold results" in capsys.readouterr().err


@pytest.mark.slow  # a five-fold sweep in a subprocess (~50 s): the default suite's time
def test_a_test_fold_sweep_writes_the_fold_summary(tiny_esc50, tmp_path):
    """`train.py -m ... data.test_fold=4,5`: two runs at once through the local (joblib) launcher,
    each in its own process, land in one sweep folder, then folds.md in it (Hydra callback). (Each
    process once named the sweep folder after its own start time, so the jobs and the summary went
    to three folders.)"""
    from ..conftest import run_script

    logs = tmp_path / "logs"
    result = run_script(
        "train.py",
        [
            "-m",
            "experiment=synth_esc50_ast",
            *tagging_overrides(tiny_esc50),
            "data.val_fold=null",
            "trainer.max_epochs=1",
            "data.test_fold=4,5",
            f"paths.log_dir={logs}",
            "hydra/launcher=local",
            "hydra.launcher.n_jobs=2",
            "data.cache_audio=true",
        ],
        tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    sweeps = list((logs / "train" / "multiruns").iterdir())
    assert len(sweeps) == 1, sweeps
    sweep = sweeps[0]
    assert {p.name for p in sweep.iterdir() if p.is_dir()} >= {"0", "1"}
    summary = json.loads((sweep / "folds.json").read_text())["rows"]
    assert (
        len(summary) == 1
        and summary[0]["num_folds"] == 2
        and set(summary[0]["folds"]) == {"4", "5"}
    )
    for fold in (4, 5):
        run = next(
            p
            for p in sweep.iterdir()
            if (p / "metrics.json").is_file()
            and f"fold{fold}" in json.loads((p / "metrics.json").read_text())["test"]
        )
        assert (
            summary[0]["folds"][str(fold)]
            == json.loads((run / "metrics.json").read_text())["test"][f"fold{fold}"]["accuracy"]
        )


def test_cached_clips_are_decoded_once(tiny_esc50, monkeypatch):
    import sonolab.data.tagging as tagging

    calls = []
    real = tagging.load_audio
    monkeypatch.setattr(
        tagging, "load_audio", lambda path, rate: calls.append(path) or real(path, rate)
    )
    dm = Esc50DataModule(root=str(tiny_esc50), num_workers=0, batch_size=4, cache_audio=True)
    dm.setup()
    first = [b["wave"] for b in dm.test_dataloader()]
    second = [b["wave"] for b in dm.test_dataloader()]
    assert len(calls) == len(dm.parts["test"]) and all(
        torch.equal(a, b) for a, b in zip(first, second)
    )


def test_statistics_command_stores_them_beside_the_data_and_training_reads_them(
    tiny_esc50, tmp_path, capsys
):
    from sonolab.features.statistics import measure_statistics
    from sonolab.stats import main

    overrides = [
        "experiment=synth_esc50_ast",
        *tagging_overrides(tiny_esc50),
        "task.statistics_clips=6",
    ]
    assert main(overrides) == 0
    printed = json.loads(capsys.readouterr().out)
    stored = Path(printed["file"])
    assert stored.parent == tiny_esc50 / ".sonolab" and printed["clips"] == 6
    dm = Esc50DataModule(
        root=str(tiny_esc50), clip_seconds=1.0, num_workers=0, val_fold=4
    )  # the experiment's split
    independent = measure_statistics(
        AstFbank(target_frames=98), dm.statistics_clips(6), batch_size=4
    )
    assert printed["mean"] == pytest.approx(independent["mean"]) and printed[
        "std"
    ] == pytest.approx(independent["std"])
    # a run with null statistics takes the stored ones (here replaced, to see that they are read)
    stored.write_text(json.dumps({"mean": 1.25, "std": 2.5}))
    out = tmp_path / "run"
    cfg = compose(
        "train",
        [
            *overrides,
            "trainer.max_epochs=1",
            "trainer.limit_train_batches=1",
            "test=false",
            "callbacks.progress_bar=null",
        ],
        out,
    )
    train(cfg, ROOT / "configs")
    state = torch.load(out / "checkpoints" / "last.ckpt", weights_only=False)["state_dict"]
    assert float(state["features.mean"]) == 1.25 and float(state["features.std"]) == 2.5
    with pytest.raises(Exception, match="normalises without dataset statistics"):
        main(["experiment=synth_esc50_htsat", *tagging_overrides(tiny_esc50, model="HtsAt")])


def test_log_mel_cnn_shapes_pooling_and_size():
    from sonolab.models import LogMelCnn
    from sonolab.models.base import count_parameters

    cnn10 = LogMelCnn()
    cnn10.reset_classifier(10)
    assert count_parameters(cnn10) == 4_953_930  # the number in configs/model/cnn10.yaml
    model = LogMelCnn(channels=(4, 8), block_dropout=0.0, dropout=0.0).eval()
    model.reset_classifier(3)
    assert model(torch.randn(2, 40, 16))["logits"].shape == (2, 3)
    # clip pooling = mean + max over time of the frequency-averaged maps: a burst in one place or
    # another of an otherwise silent input gives the same logits (translation in time, away from the
    # edges)
    early, late = torch.zeros(1, 64, 16), torch.zeros(1, 64, 16)
    early[0, 8:12], late[0, 40:44] = 5.0, 5.0
    assert torch.allclose(model(early)["logits"], model(late)["logits"], atol=1e-5)
    with pytest.raises(RuntimeError, match="no classifier"):
        LogMelCnn(channels=(4,))(torch.randn(1, 8, 8))


def test_a_recipe_without_validation_monitors_nothing(tiny_esc50, tmp_path, caplog):
    out = tmp_path / "run"
    overrides = [
        "trainer.max_epochs=1",
        "data.val_fold=null",
        "data.test_fold=5",
        "+callbacks.early_stopping._target_=lightning.pytorch.callbacks.EarlyStopping",
        "+callbacks.early_stopping.monitor=val/score",
    ]
    with caplog.at_level(logging.WARNING):
        train_run(["experiment=synth_esc50_ast", *tagging_overrides(tiny_esc50), *overrides], out)
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["checkpoint_reason"] == "last epoch (no monitored metric)"
    assert "best_validation" not in metrics
    assert "no validation data: callbacks.model_checkpoint keeps the last epoch" in caplog.text
    assert (
        "no validation data: callbacks.early_stopping (monitor=val/score) left out" in caplog.text
    )
    assert "val/score" not in caplog.text.replace("(monitor=val/score)", "")


def test_statistics_are_keyed_by_the_clips_content_and_nan_clips_are_skipped(tiny_esc50, tmp_path):
    import shutil

    import soundfile as sf

    root = tmp_path / "esc"
    shutil.copytree(tiny_esc50, root, ignore=shutil.ignore_patterns(".sonolab"))
    settings = dict(root=str(root), clip_seconds=1.0, num_workers=0, val_fold=4)
    before = Esc50DataModule(**settings).statistics_file({"frontend": "x"}, 6)
    dm = Esc50DataModule(**settings)
    dm.setup()
    clip = dm.parts["train"][0].path
    wave, rate = sf.read(clip, dtype="float32")
    sf.write(clip, wave * 0.5, rate, subtype="FLOAT")  # changed in place, same name
    assert Esc50DataModule(**settings).statistics_file({"frontend": "x"}, 6) != before
    # a float clip holding NaN is caught by the pre-scan and left out with on_bad_audio=skip
    wave[100] = np.nan
    sf.write(clip, wave, rate, subtype="FLOAT")
    dm = Esc50DataModule(**settings, verify_audio=True, on_bad_audio="skip")
    dm.setup()
    assert clip not in [c.path for c in dm.parts["train"]]
    (entry,) = dm.skipped.as_dict().values()
    (listing,) = (root / ".sonolab").glob("bad_audio_*.txt")
    assert entry["count"] == 1 and "expected finite samples, found 1 NaN" in listing.read_text()


def test_any_clip_name_is_read_pre_scanned_and_loaded(tiny_esc50, tmp_path):
    """An ESC-50 clip named with a space and a Latin-1 byte (not UTF-8), listed so in the CSV."""
    import os
    import shutil

    root = tmp_path / "esc"
    shutil.copytree(tiny_esc50, root, ignore=shutil.ignore_patterns(".sonolab"))
    meta = root / "meta" / "esc50.csv"
    lines = meta.read_bytes().splitlines()
    old = lines[1].split(b",")[0]
    new = b"caf\xe9 " + old
    os.rename(os.fsencode(root / "audio") + b"/" + old, os.fsencode(root / "audio") + b"/" + new)
    meta.write_bytes(b"\n".join([lines[0], lines[1].replace(old, new), *lines[2:]]) + b"\n")
    dm = Esc50DataModule(root=str(root), clip_seconds=1.0, num_workers=0, verify_audio=True)
    dm.setup()
    clips = [c.path for part in dm.parts.values() for c in part]
    assert not dm.skipped and len(clips) == 20
    assert Path(os.fsdecode(os.fsencode(root / "audio") + b"/" + new)) in clips
    for part in ("train", "test"):
        loader = dm.train_dataloader() if part == "train" else dm.test_dataloader()
        assert sum(len(batch["label"]) for batch in loader) == len(dm.parts[part])


def test_an_official_ast_checkpoint_brings_its_statistics_with_a_warning(
    tiny_esc50, tmp_path, caplog
):
    from hydra.utils import instantiate

    from sonolab.models.pretrained import AST_AUDIOSET_STATISTICS

    overrides = ["experiment=synth_esc50_ast", *tagging_overrides(tiny_esc50)]
    source = instantiate(compose("train", overrides, tmp_path / "probe").model)
    source.reset_classifier(527)
    official = {  # AST's DataParallel key names (module.v.* / module.mlp_head.*)
        "module." + ("mlp_head." + k[5:] if k.startswith("head.") else "v." + k[4:]): v
        for k, v in source.state_dict().items()
    }
    path = tmp_path / "audioset_10_10_0.4593.pth"
    torch.save(official, path)
    out = tmp_path / "run"
    cfg = compose(
        "train",
        [
            *overrides,
            f"model.pretrained={path}",
            f"model.pretrained_grid=[{source.grid[0]},{source.grid[1]}]",
            "trainer.max_epochs=1",
            "trainer.limit_train_batches=1",
            "test=false",
            "callbacks.progress_bar=null",
        ],
        out,
    )
    with caplog.at_level("WARNING", logger="sonolab.tasks.tagging"):
        train(cfg, ROOT / "configs")
    assert "using those model.pretrained was trained with (mean -4.2677393" in caplog.text
    state = torch.load(out / "checkpoints" / "last.ckpt", weights_only=False)["state_dict"]
    assert float(state["features.mean"]) == pytest.approx(AST_AUDIOSET_STATISTICS["mean"])
    assert float(state["features.std"]) == pytest.approx(AST_AUDIOSET_STATISTICS["std"])


def test_multi_label_thresholds_are_tuned_on_validation_and_kept_with_the_checkpoint(
    tiny_audioset, tmp_path
):
    from sonolab.checkpoints import load_trained_task
    from sonolab.tasks import TaggingTask

    out = tmp_path / "run"
    cfg = compose(
        "train",
        [
            "experiment=synth_audioset_ast",
            *tagging_overrides(tiny_audioset, 2.0),
            "data.val=unbalanced_train_segments.csv",  # 4 held-out clips
            "trainer.max_epochs=1",
            "callbacks.progress_bar=null",
        ],
        out,
    )
    train(cfg, ROOT / "configs")
    tested = json.loads((out / "metrics.json").read_text())["test"]["eval"]
    assert tested["thresholds"] == "per class, tuned on validation"
    assert 0.0 <= tested["f1_micro"] <= 100.0 and 0.0 <= tested["f1_macro"] <= 100.0
    assert "F1 micro" in (out / "results.md").read_text()
    saved = torch.load(
        out / json.loads((out / "metrics.json").read_text())["checkpoint"], weights_only=False
    )["decision_thresholds"]
    assert len(saved) == 4 and all(0.0 <= t <= 1.0 for t in saved)
    # the evaluation and inference loaders restore them beside the weights
    (out / ".hydra").mkdir()
    OmegaConf.save(cfg, out / ".hydra" / "config.yaml")  # what train.py's Hydra writes
    task = load_trained_task(out, TaggingTask, "test")
    assert task.decision_thresholds.tolist() == pytest.approx(saved)
