"""HTS-AT: its 32 kHz front-end against a NumPy reference, the spectrogram-to-image folding, the
token-semantic head's time order, official / ImageNet weights, and training runs."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sonolab.features import HtsatLogMel
from sonolab.models import HtsAt
from sonolab.models.pretrained import load_into_htsat
from sonolab.run import train
from sonolab.utils.errors import ConfigValueError, DataFormatError

from ..conftest import ROOT, compose, tagging_overrides

SMALL = dict(
    n_mels=16,
    frames=100,
    spec_size=64,
    patch_size=4,
    window_size=4,
    embed_dim=8,
    depths=(1, 1, 1),
    num_heads=(1, 2, 4),
    drop_path_rate=0.0,
)


def _reference_log_mel(
    wave: np.ndarray, sr: int, n_fft: int, hop: int, n_mels: int, fmin: float, fmax: float
) -> np.ndarray:
    """Centred, reflect-padded STFT with a periodic Hann window, Slaney-scale mel filters with
    Slaney area
    normalisation (librosa's defaults), 10 log10(max(power, 1e-10)): written from the formulas."""

    def hz_to_mel(f):
        f = np.asarray(f, dtype=np.float64)
        linear = f / (200.0 / 3)
        return np.where(
            f >= 1000.0, 15.0 + np.log(np.maximum(f, 1e-9) / 1000.0) / (np.log(6.4) / 27.0), linear
        )

    def mel_to_hz(m):
        m = np.asarray(m, dtype=np.float64)
        return np.where(
            m >= 15.0, 1000.0 * np.exp((np.log(6.4) / 27.0) * (m - 15.0)), m * 200.0 / 3
        )

    hz = mel_to_hz(np.linspace(hz_to_mel(fmin), hz_to_mel(fmax), n_mels + 2))
    bins = np.linspace(0, sr / 2, n_fft // 2 + 1)
    filters = np.zeros((n_mels, bins.size))
    for m in range(n_mels):
        rising = (bins - hz[m]) / (hz[m + 1] - hz[m])
        falling = (hz[m + 2] - bins) / (hz[m + 2] - hz[m + 1])
        filters[m] = np.maximum(0, np.minimum(rising, falling)) * 2.0 / (hz[m + 2] - hz[m])
    padded = np.pad(wave.astype(np.float64), n_fft // 2, mode="reflect")
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n_fft) / n_fft)
    frames = np.stack(
        [padded[i : i + n_fft] * window for i in range(0, padded.size - n_fft + 1, hop)]
    )
    power = np.abs(np.fft.rfft(frames, axis=1)) ** 2
    return 10 * np.log10(np.maximum(power @ filters.T, 1e-10))


def test_front_end_matches_a_numpy_reference_and_pads_with_silence():
    rng = np.random.default_rng(0)
    wave = (
        rng.normal(0, 0.1, 32000) + 0.3 * np.sin(2 * np.pi * 440 * np.arange(32000) / 32000)
    ).astype(np.float32)
    front = HtsatLogMel(target_frames=151, batch_norm=False).eval()
    log_mel = front.log_mel(torch.from_numpy(wave)[None])[0].numpy()
    # a 1 s clip in a 1.5 s input is the clip followed by 0.5 s of silence (-100 dB), not 0 dB
    # frames
    reference = _reference_log_mel(np.pad(wave, (0, 16000)), 32000, 1024, 320, 64, 50.0, 14000.0)
    assert reference.shape == log_mel.shape == (151, 64)
    assert np.abs(log_mel - reference).max() < 1e-2  # dB, float32 against float64
    assert np.allclose(log_mel[110:], -100.0)
    feats, frames = front(torch.from_numpy(wave)[None], torch.tensor([32000]))
    assert int(frames[0]) == 101 and feats.shape == (1, 151, 64)


def test_front_end_batch_norm_is_over_mel_bins_and_nyquist_is_checked():
    front = HtsatLogMel(target_frames=51).train()
    feats, _ = front(torch.randn(6, 16000) * torch.linspace(0.01, 1, 6)[:, None])
    per_bin = feats.transpose(0, 2).reshape(
        64, -1
    )  # normalised over batch and time, one statistic per bin
    assert torch.allclose(per_bin.mean(dim=1), torch.zeros(64), atol=1e-4)
    assert torch.allclose(per_bin.var(dim=1, unbiased=False), torch.ones(64), atol=1e-2)
    with pytest.raises(ConfigValueError, match="Nyquist frequency of data.sample_rate=16000"):
        HtsatLogMel(sample_rate=16000)


def test_spectrogram_folds_into_the_image_in_time_chunks():
    model = HtsAt(**{**SMALL, "frames": 256})  # 64 / 16 = 4 chunks of 64 frames: no time stretching
    frames = torch.arange(256.0)[:, None].expand(256, 16)
    bins = torch.arange(16.0)[None, :].expand(256, 16)
    image_t = model.to_image(frames[None])[0, 0]
    image_f = model.to_image(bins[None])[0, 0]
    assert image_t.shape == (64, 64)
    for chunk in range(
        4
    ):  # rows chunk*16 .. chunk*16+15 hold frames chunk*64 .. chunk*64+63, bins in order
        assert torch.equal(
            image_t[chunk * 16 : (chunk + 1) * 16], (chunk * 64 + torch.arange(64.0)).expand(16, 64)
        )
        assert torch.equal(image_f[chunk * 16 : (chunk + 1) * 16, 0], torch.arange(16.0))
    stretched = model.to_image(torch.arange(100.0)[:, None].expand(100, 16)[None])[0, 0]
    assert stretched[0, 0] == 0 and torch.isclose(
        stretched[-1, -1], torch.tensor(99.0)
    )  # HTS-AT's bicubic stretch
    with pytest.raises(ValueError, match="257 frames do not fit"):
        HtsAt(**{**SMALL, "frames": 257})


def test_fused_window_attention_gives_the_same_outputs():
    """``fused_attention`` (SDPA with the relative position bias and the shifted windows' mask as
    an additive mask) against timm's explicit attention, shifted windows included."""
    torch.manual_seed(0)
    size = {**SMALL, "depths": (2, 2, 1), "num_classes": 3}  # odd blocks shift their windows
    plain = HtsAt(**size).eval()
    fused = HtsAt(**size, fused_attention=True).eval()
    fused.load_state_dict(plain.state_dict())
    assert [m.fused_attn for m in fused.modules() if hasattr(m, "fused_attn")] != []
    assert not any(m.fused_attn for m in plain.modules() if hasattr(m, "fused_attn"))
    feats = torch.randn(2, SMALL["frames"], SMALL["n_mels"])
    with torch.no_grad():
        expected, got = plain(feats), fused(feats)
    for key in ("logits", "frame_logits"):
        torch.testing.assert_close(got[key], expected[key], atol=1e-5, rtol=1e-4)


def test_token_semantic_head_puts_time_tokens_in_order(monkeypatch):
    model = HtsAt(
        **SMALL
    )  # last stage: 4 x 4 tokens, 4 time chunks of one row each -> 16 time tokens
    model.reset_classifier(2)
    grid, ratio = model.grid, model.freq_ratio
    rows = torch.arange(grid)[:, None].expand(grid, grid)
    cols = torch.arange(grid)[None, :].expand(grid, grid)
    time_index = (
        rows // model.rows_per_chunk
    ) * grid + cols  # token (r, c) covers chunk r // rows_per_chunk
    tokens = torch.zeros(1, grid, grid, model.num_features)
    tokens[0, :, :, 0] = time_index.float()
    monkeypatch.setattr(model.swin, "forward_features", lambda image: tokens)
    with torch.no_grad():
        model.tscam_conv.weight.zero_()
        model.tscam_conv.bias.zero_()
        model.tscam_conv.weight[0, 0, :, 1] = (
            1.0 / model.rows_per_chunk
        )  # class 0 reads channel 0, centre tap
    out = model(torch.zeros(1, 100, 16))
    assert out["frame_logits"].shape == (1, ratio * grid, 2)
    assert torch.allclose(out["frame_logits"][0, :, 0], torch.arange(16.0))
    assert (
        torch.isclose(out["logits"][0, 0], torch.tensor(7.5)) and model.frames_per_token == 100 / 16
    )


def _official_layout(model: HtsAt) -> dict[str, torch.Tensor]:
    """``model``'s weights under HTS-AT's released names: Lightning's ``sed_model.`` prefix,
    Microsoft Swin's downsampling at the end of each stage, bn0, the unused head and the fixed
    extractors."""
    import re

    state = {}
    for key, value in model.swin.state_dict().items():
        key = re.sub(
            r"layers\.(\d+)\.downsample", lambda m: f"layers.{int(m.group(1)) - 1}.downsample", key
        )
        state["sed_model." + key] = value
    for key, value in model.tscam_conv.state_dict().items():
        state["sed_model.tscam_conv." + key] = value
    classes = model.tscam_conv.out_channels
    state.update(
        {
            "sed_model.bn0.weight": torch.full((16,), 2.0),
            "sed_model.bn0.bias": torch.full((16,), 0.5),
            "sed_model.bn0.running_mean": torch.full((16,), -30.0),
            "sed_model.bn0.running_var": torch.full((16,), 9.0),
            "sed_model.bn0.num_batches_tracked": torch.tensor(5),
            "sed_model.head.weight": torch.zeros(classes, classes),
            "sed_model.head.bias": torch.zeros(classes),
            "sed_model.spectrogram_extractor.stft.conv_real.weight": torch.zeros(513, 1, 1024),
            "sed_model.logmel_extractor.melW": torch.zeros(513, 64),
            "sed_model.layers.0.blocks.0.attn.relative_position_index": torch.zeros(
                16, 16, dtype=torch.long
            ),
        }
    )
    return {"state_dict": state, "epoch": 3}


def test_official_htsat_checkpoint_loads_with_no_missing_keys(tmp_path):
    torch.manual_seed(0)
    source = HtsAt(**SMALL)
    source.reset_classifier(5)
    path = tmp_path / "HTSAT_like.ckpt"
    torch.save(_official_layout(source), path)
    loaded = HtsAt(**SMALL, pretrained=str(path))
    loaded.reset_classifier(5)  # same classes: the released token-semantic head is reused
    source.eval(), loaded.eval()
    x = torch.randn(2, 100, 16)
    assert torch.allclose(source(x)["logits"], loaded(x)["logits"], atol=1e-5)
    assert torch.equal(loaded.pretrained_frontend["running_mean"], torch.full((16,), -30.0))
    front = HtsatLogMel(sample_rate=32000, n_mels=16, target_frames=100)
    front.adopt_pretrained(loaded.pretrained_frontend)
    assert torch.equal(front.norm.weight, torch.full((16,), 2.0))
    other = HtsAt(**SMALL, pretrained=str(path))
    other.reset_classifier(3)  # another class set: a fresh head
    assert other.tscam_conv.out_channels == 3


def test_imagenet_swin_weights_average_to_one_channel_and_resize_windows(tmp_path):
    import re

    torch.manual_seed(0)
    image_model = HtsAt(**{**SMALL, "window_size": 2})
    state = {}
    for (
        key,
        value,
    ) in (
        image_model.swin.state_dict().items()
    ):  # Microsoft's release layout, RGB input, 1000-class head
        key = re.sub(
            r"layers\.(\d+)\.downsample", lambda m: f"layers.{int(m.group(1)) - 1}.downsample", key
        )
        state[key] = (
            value.expand(-1, 3, -1, -1).clone() if key == "patch_embed.proj.weight" else value
        )
    state["head.weight"], state["head.bias"] = torch.zeros(1000, 32), torch.zeros(1000)
    path = tmp_path / "swin_imagenet.pth"
    torch.save({"model": state}, path)
    model = HtsAt(**SMALL, pretrained=str(path))  # window 4 here, 2 in the file
    assert torch.allclose(
        model.swin.patch_embed.proj.weight, image_model.swin.patch_embed.proj.weight
    )
    table = model.swin.layers[0].blocks[0].attn.relative_position_bias_table
    assert table.shape == ((2 * 4 - 1) ** 2, 1) and model.pretrained_frontend == {}
    torch.save(
        {"model": {"patch_embed.proj.weight": state["patch_embed.proj.weight"]}},
        tmp_path / "partial.pth",
    )
    with pytest.raises(DataFormatError, match="partial.pth.*missing"):
        load_into_htsat(HtsAt(**SMALL), tmp_path / "partial.pth")


@pytest.mark.parametrize("model", ["htsat_tiny", "htsat"])
def test_fast_dev_run_every_htsat_size(model, tiny_esc50, tmp_path):
    cfg = compose(
        "train",
        [
            "experiment=synth_esc50_htsat",
            *tagging_overrides(tiny_esc50, model="HtsAt"),
            f"model={model}",
            "debug=fast_dev_run",
            "callbacks=none",
        ],
        tmp_path,
    )
    assert cfg.model.embed_dim == (96 if model == "htsat" else 32)
    assert train(cfg, ROOT / "configs")["train_metrics"]["train/loss"] > 0


def test_htsat_multi_label_fast_dev_run(tiny_audioset, tmp_path):
    cfg = compose(
        "train",
        [
            "experiment=synth_audioset_ast",
            *tagging_overrides(tiny_audioset, 2.0, "HtsAt"),
            "features=htsat_mel",
            "model=htsat_tiny",
            "~model.depth",
            "data.sample_rate=32000",
            "task.mixup=null",
            "debug=fast_dev_run",
            "callbacks=none",
        ],
        tmp_path,
    )
    assert cfg.loss._target_.endswith("MultiLabelBCE")
    assert train(cfg, ROOT / "configs")["train_metrics"]["train/loss"] > 0
