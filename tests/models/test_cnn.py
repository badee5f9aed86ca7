"""PANNs' CNNs: shapes and sizes against PANNs' own parameter table, the forward pass against a
functional re-statement of PANNs' ``Cnn14`` / ``Cnn14_DecisionLevelAtt`` over a state dict in PANNs'
names, the decision-level poolings, initialisation and checkpoint loading."""

from __future__ import annotations

import pytest
import torch
from torch.nn import functional as F

from sonolab.models import LogMelCnn
from sonolab.models.base import count_parameters
from sonolab.models.pretrained import load_foreign_state, load_into_cnn
from sonolab.utils.errors import DataFormatError

CNN14_CHANNELS = (64, 128, 256, 512, 1024, 2048)
CNN14_POOLS = (2, 2, 2, 2, 2, 1)


def panns_state(
    channels: tuple[int, ...],
    classes: int,
    convs: int = 2,
    kernel: int = 3,
    head: str = "clip",
    seed: int = 0,
) -> dict[str, torch.Tensor]:
    """A state dict with the names and shapes of PANNs' pytorch/models.py (Cnn14 lines 139-183,
    ConvBlock 25-50, ConvBlock5x5 71-88, AttBlock 108-123), random values; the fixed STFT / mel
    buffers stand in with one tensor each, as they are dropped anyway."""
    gen = torch.Generator().manual_seed(seed)

    def rand(*shape):
        return torch.randn(*shape, generator=gen) * 0.1

    def bn(prefix, n):
        return {
            f"{prefix}.weight": 1 + rand(n),
            f"{prefix}.bias": rand(n),
            f"{prefix}.running_mean": rand(n),
            f"{prefix}.running_var": 1 + rand(n).abs(),
            f"{prefix}.num_batches_tracked": torch.tensor(7),
        }

    state = {
        "spectrogram_extractor.stft.conv_real.weight": rand(513, 1, 1024),
        "logmel_extractor.melW": rand(513, 64),
        **bn("bn0", 64),
    }
    widths = (1, *channels)
    for n, (a, b) in enumerate(zip(widths[:-1], widths[1:]), 1):
        state[f"conv_block{n}.conv1.weight"] = rand(b, a, kernel, kernel)
        state.update(bn(f"conv_block{n}.bn1", b))
        if convs == 2:
            state[f"conv_block{n}.conv2.weight"] = rand(b, b, kernel, kernel)
            state.update(bn(f"conv_block{n}.bn2", b))
    width = channels[-1]
    state["fc1.weight"], state["fc1.bias"] = rand(width, width), rand(width)
    if head == "attention":
        for name in ("att", "cla"):
            state[f"att_block.{name}.weight"] = rand(classes, width, 1)
            state[f"att_block.{name}.bias"] = rand(classes)
        state.update(bn("att_block.bn_att", classes))
    else:
        state["fc_audioset.weight"], state["fc_audioset.bias"] = rand(classes, width), rand(classes)
    return state


def panns_parameter_count(state: dict[str, torch.Tensor]) -> int:
    """Trainable parameters of a PANNs state dict: all but BatchNorm statistics and the frozen
    extractors (``freeze_parameters=True`` in PANNs)."""
    return sum(
        v.numel()
        for k, v in state.items()
        if not k.endswith(("running_mean", "running_var", "num_batches_tracked"))
        and not k.startswith(("spectrogram_extractor", "logmel_extractor"))
    )


def panns_forward(
    state: dict[str, torch.Tensor], x: torch.Tensor, pools: tuple[int, ...], head: str = "clip"
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """PANNs' eval-mode forward after ``bn0`` (models.py Cnn14.forward lines 203-223;
    Cnn14_DecisionLevelAtt.forward), written with functional ops over PANNs' names: clip
    probabilities and, for the attention head, frame probabilities at the pooled resolution."""

    def bn(t, prefix):
        return F.batch_norm(
            t,
            state[f"{prefix}.running_mean"],
            state[f"{prefix}.running_var"],
            state[f"{prefix}.weight"],
            state[f"{prefix}.bias"],
            training=False,
            eps=1e-5,
        )

    x = x.unsqueeze(1)
    n = 1
    while f"conv_block{n}.conv1.weight" in state:
        for conv in ("1", "2"):
            weight = state.get(f"conv_block{n}.conv{conv}.weight")
            if weight is not None:
                x = F.relu(
                    bn(
                        F.conv2d(x, weight, padding=weight.shape[-1] // 2),
                        f"conv_block{n}.bn{conv}",
                    )
                )
        x = F.avg_pool2d(x, pools[n - 1])
        n += 1
    x = x.mean(dim=3)
    if head == "clip":
        x = x.max(dim=2).values + x.mean(dim=2)
        x = F.relu(F.linear(x, state["fc1.weight"], state["fc1.bias"]))
        return torch.sigmoid(
            F.linear(x, state["fc_audioset.weight"], state["fc_audioset.bias"])
        ), None
    x = F.max_pool1d(x, 3, 1, 1) + F.avg_pool1d(x, 3, 1, 1)
    x = F.relu(F.linear(x.transpose(1, 2), state["fc1.weight"], state["fc1.bias"])).transpose(1, 2)
    att = torch.softmax(
        torch.clamp(
            F.conv1d(x, state["att_block.att.weight"], state["att_block.att.bias"]), -10, 10
        ),
        dim=-1,
    )
    cla = torch.sigmoid(F.conv1d(x, state["att_block.cla.weight"], state["att_block.cla.bias"]))
    return (att * cla).sum(dim=2), cla.transpose(1, 2)


def test_cnn14_has_panns_parameter_count_and_loads_every_panns_tensor(tmp_path):
    state = panns_state(CNN14_CHANNELS, 527)
    assert panns_parameter_count(state) == 80_753_615  # PANNs' Cnn14 (the paper: 80.8 M)
    path = tmp_path / "Cnn14_mAP=0.431.pth"
    torch.save(
        {"model": state}, path
    )  # PANNs' file layout (inference.py reads checkpoint["model"])
    model = LogMelCnn(channels=CNN14_CHANNELS, pool_sizes=CNN14_POOLS, pretrained=str(path))
    model.reset_classifier(527)
    # sonolab's front-end holds bn0's 128 parameters
    assert count_parameters(model) == 80_753_615 - 128
    own = model.state_dict()
    assert torch.equal(own["blocks.5.conv2.weight"], state["conv_block6.conv2.weight"])
    assert torch.equal(own["blocks.0.bn1.running_var"], state["conv_block1.bn1.running_var"])
    assert torch.equal(own["head.weight"], state["fc_audioset.weight"])  # same classes: kept
    assert torch.equal(model.pretrained_frontend["running_mean"], state["bn0.running_mean"])
    model.reset_classifier(10)  # another class set: a fresh head
    assert model.head.weight.shape == (10, 2048)


def test_cnn6_block_is_one_five_by_five_convolution(tmp_path):
    state = panns_state((64, 128, 256, 512), 527, convs=1, kernel=5)
    model = LogMelCnn(double_conv=False, kernel_size=5)
    model.reset_classifier(527)
    assert count_parameters(model) == panns_parameter_count(state) - 128  # PANNs' Cnn6 less bn0
    assert model.blocks[0].conv1.weight.shape == (64, 1, 5, 5) and model.blocks[0].conv2 is None
    torch.save({"model": state}, tmp_path / "cnn6.pth")
    with pytest.raises(DataFormatError, match="model's shape"):  # a 3 x 3 model cannot take it
        LogMelCnn(double_conv=False, pretrained=str(tmp_path / "cnn6.pth"))


def test_forward_matches_panns_clip_head_on_the_undropped_features(tmp_path):
    channels, pools = (4, 8, 8), (2, 2, 1)
    state = panns_state(channels, 5, seed=1)
    torch.save({"model": state}, tmp_path / "small.pth")
    model = LogMelCnn(channels=channels, pool_sizes=pools, pretrained=str(tmp_path / "small.pth"))
    model.reset_classifier(5)
    model.eval()
    x = torch.randn(2, 40, 16)
    expected, _ = panns_forward(state, x, pools)
    out = model(x)
    assert set(out) == {"logits"}
    torch.testing.assert_close(out["logits"].sigmoid(), expected, atol=1e-5, rtol=1e-4)


def test_attention_head_matches_panns_decision_level_att(tmp_path):
    channels, pools = (4, 8, 8), (2, 2, 1)
    state = panns_state(channels, 5, head="attention", seed=2)
    torch.save({"model": state}, tmp_path / "att.pth")
    model = LogMelCnn(
        channels=channels,
        pool_sizes=pools,
        pooling="attention",
        head_dropout=True,
        pretrained=str(tmp_path / "att.pth"),
    )
    model.reset_classifier(5)
    model.eval()
    x = torch.randn(2, 40, 16)
    clip, frames = panns_forward(state, x, pools, head="attention")
    out = model(x)
    assert out["frame_logits"].shape == (2, 10, 5)  # 40 frames / 4: the pooled time axis
    assert model.subsampling == 4
    torch.testing.assert_close(out["frame_logits"].sigmoid(), frames, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(out["logits"].sigmoid(), clip, atol=1e-5, rtol=1e-4)


def test_max_and_mean_pooling_derive_the_clip_from_the_frames():
    torch.manual_seed(0)
    x = torch.randn(3, 32, 8)
    for pooling in ("max", "mean"):
        model = LogMelCnn(channels=(4, 8), pooling=pooling, dropout=0.0, block_dropout=0.0)
        model.reset_classifier(6)
        model.eval()
        out = model(x)
        frames = out["frame_logits"]
        assert frames.shape == (3, 8, 6)
        if pooling == "max":
            torch.testing.assert_close(out["logits"], frames.amax(dim=1))
        else:
            torch.testing.assert_close(
                out["logits"].sigmoid(), frames.sigmoid().mean(dim=1), atol=1e-6, rtol=1e-5
            )
    # the clip-pooling head has no frame outputs
    clip_model = LogMelCnn(channels=(4, 8))
    clip_model.reset_classifier(6)
    assert set(clip_model.eval()(x)) == {"logits"}


def test_attention_clip_score_follows_the_attended_frames():
    model = LogMelCnn(channels=(4,), pooling="attention", dropout=0.0, block_dropout=0.0)
    model.reset_classifier(2)
    model.eval()
    out = model(torch.randn(1, 64, 8))
    frames = out["frame_logits"].sigmoid()
    clip = out["logits"].sigmoid()
    # a convex combination of the frame probabilities, per class
    assert torch.all(clip <= frames.amax(dim=1) + 1e-6)
    assert torch.all(clip >= frames.amin(dim=1) - 1e-6)


def test_panns_initialisation_and_the_pytorch_choice():
    panns = LogMelCnn(channels=(8, 16))
    panns.reset_classifier(4)
    conv = panns.blocks[1].conv1.weight
    fan_in, fan_out = 8 * 9, 16 * 9
    bound = (6 / (fan_in + fan_out)) ** 0.5  # Xavier-uniform
    assert conv.abs().max() <= bound and conv.abs().max() > 0.8 * bound
    assert torch.all(panns.fc1.bias == 0) and torch.all(panns.head.bias == 0)
    default = LogMelCnn(channels=(8, 16), init="pytorch")
    default.reset_classifier(4)
    assert torch.any(default.fc1.bias != 0)  # torch's Linear draws its bias
    with pytest.raises(ValueError, match="init"):
        LogMelCnn(init="he")
    with pytest.raises(ValueError, match="pool_sizes"):
        LogMelCnn(channels=(4, 8), pool_sizes=(2,))
    with pytest.raises(ValueError, match="pooling"):
        LogMelCnn(pooling="sum")


def test_safetensors_files_load_like_torch_files(tmp_path):
    from safetensors.torch import save_file

    state = panns_state((4, 8), 3)
    save_file(state, tmp_path / "cnn.safetensors")
    loaded = load_foreign_state(tmp_path / "cnn.safetensors")
    assert loaded.keys() == state.keys() and torch.equal(loaded["fc1.weight"], state["fc1.weight"])
    model = LogMelCnn(channels=(4, 8))
    load_into_cnn(model, tmp_path / "cnn.safetensors")
    assert torch.equal(model.fc1.weight, state["fc1.weight"])
    (tmp_path / "broken.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(DataFormatError, match="broken.safetensors"):
        load_foreign_state(tmp_path / "broken.safetensors")


def test_a_checkpoint_of_another_depth_is_named(tmp_path):
    torch.save({"model": panns_state((4, 8, 8), 3)}, tmp_path / "deeper.pth")
    with pytest.raises(DataFormatError, match="deeper.pth"):
        LogMelCnn(channels=(4, 8), pretrained=str(tmp_path / "deeper.pth"))


def test_time_and_frequency_pooling_apart_keep_the_frame_rate():
    model = LogMelCnn(channels=(4, 8, 8), pool_sizes=[2, [1, 2], [1, 2]], pooling="max")
    model.reset_classifier(3)
    assert model.subsampling == 2
    assert model.eval()(torch.randn(1, 40, 16))["frame_logits"].shape == (1, 20, 3)
    with pytest.raises(ValueError, match=r"one number or \[time, frequency\]"):
        LogMelCnn(channels=(4,), pool_sizes=[[1, 2, 3]])
