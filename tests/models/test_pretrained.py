"""Weight adaptation for the spectrogram transformers (sonolab/models/pretrained.py)."""

from __future__ import annotations

import pickle

import pytest
import torch
import torch.nn.functional as F
from timm.models.vision_transformer import VisionTransformer

from sonolab.models import AudioSpectrogramTransformer
from sonolab.models.pretrained import adapt_position_embedding, load_into_ast, to_one_channel
from sonolab.utils.errors import DataFormatError

SMALL = dict(n_mels=32, frames=64, embed_dim=24, depth=2, num_heads=2)


def test_summed_patch_embedding_on_grey_equals_rgb_embedding_on_replicated_grey():
    torch.manual_seed(0)
    rgb = torch.randn(8, 3, 16, 16)
    grey = torch.randn(2, 1, 40, 40)
    expected = F.conv2d(grey.expand(-1, 3, -1, -1), rgb, stride=10)
    assert torch.allclose(
        F.conv2d(grey, to_one_channel(rgb, "sum"), stride=10), expected, rtol=1e-5, atol=1e-4
    )
    assert torch.allclose(to_one_channel(rgb, "mean"), rgb.mean(dim=1, keepdim=True))
    with pytest.raises(ValueError, match="'sum' or 'mean'"):
        to_one_channel(rgb, "max")


def test_position_embeddings_same_grid_unchanged_centre_rows_cut_and_time_stretched():
    rows, cols = torch.meshgrid(torch.arange(24.0), torch.arange(24.0), indexing="ij")
    grid = torch.stack([rows, cols], dim=-1).reshape(1, 576, 2)
    pos = torch.cat([torch.full((1, 2, 2), -1.0), grid], dim=1)  # class + distillation tokens first
    assert adapt_position_embedding(pos, (24, 24), (24, 24), 2) is pos
    cut = adapt_position_embedding(pos, (24, 24), (12, 24), 2)
    assert cut.shape == (1, 2 + 12 * 24, 2) and torch.equal(cut[:, :2], pos[:, :2])
    assert cut[0, 2:, 0].reshape(12, 24)[:, 0].tolist() == list(
        range(6, 18)
    )  # AST keeps the centre frequency rows
    stretched = adapt_position_embedding(pos, (24, 24), (12, 101), 2)[0, 2:].reshape(12, 101, 2)
    assert stretched[:, :, 0].unique().tolist() == [
        float(r) for r in range(6, 18)
    ]  # rows cut, not blended
    assert (
        torch.all(stretched[0, 1:, 1] >= stretched[0, :-1, 1]) and stretched[0, -1, 1] > 22
    )  # time stretched in order


def test_official_ast_key_names_load_with_no_missing_keys_and_the_head_is_reused(tmp_path):
    torch.manual_seed(0)
    source = AudioSpectrogramTransformer(**SMALL)
    source.reset_classifier(7)
    official = {}
    for key, value in source.state_dict().items():
        official[
            "module." + ("mlp_head." + key[5:] if key.startswith("head.") else "v." + key[4:])
        ] = value
    official["module.v.head.weight"] = torch.zeros(
        1000, 24
    )  # DeiT's image heads, present in AST's files
    official["module.v.head_dist.weight"] = torch.zeros(1000, 24)
    path = tmp_path / "audioset_like.pth"
    torch.save(official, path)
    target = AudioSpectrogramTransformer(**SMALL)
    result = load_into_ast(target, path, source_grid=source.grid)
    assert [k for k in result["missing"] if not k.startswith("head.")] == [] and result[
        "unexpected"
    ] == []
    loaded = AudioSpectrogramTransformer(**SMALL, pretrained=str(path), pretrained_grid=source.grid)
    loaded.reset_classifier(7)
    source.eval(), loaded.eval()
    x = torch.randn(2, 64, 32)
    assert torch.allclose(loaded(x)["logits"], source(x)["logits"], atol=1e-5)
    loaded.reset_classifier(3)  # another class set: a fresh head of the right size
    assert loaded(x)["logits"].shape == (2, 3)


def test_imagenet_vit_weights_adapt_to_one_channel_and_the_audio_grid(tmp_path):
    torch.manual_seed(0)
    vit = VisionTransformer(
        img_size=64, patch_size=16, in_chans=3, embed_dim=24, depth=2, num_heads=2, num_classes=10
    )
    path = tmp_path / "vit.pth"
    torch.save({"model": vit.state_dict()}, path)
    model = AudioSpectrogramTransformer(**SMALL, pretrained=str(path))
    state = vit.state_dict()
    assert torch.equal(
        model.vit.patch_embed.proj.weight, state["patch_embed.proj.weight"].sum(1, keepdim=True)
    )
    assert torch.equal(model.vit.dist_token, state["cls_token"]) and torch.equal(
        model.vit.blocks[1].mlp.fc2.weight, state["blocks.1.mlp.fc2.weight"]
    )
    assert model.vit.pos_embed.shape == (1, 2 + 2 * 5, 24)


def test_unreadable_or_foreign_files_are_named(tmp_path):
    with pytest.raises(DataFormatError, match=r"nope.pth: expected a checkpoint file"):
        AudioSpectrogramTransformer(**SMALL, pretrained=str(tmp_path / "nope.pth"))
    evil = tmp_path / "evil.pth"
    evil.write_bytes(pickle.dumps(print))  # not a tensor file: weights_only refuses to unpickle it
    with pytest.raises(
        DataFormatError,
        match=r"evil.pth: expected a PyTorch weights file loadable with weights_only=True",
    ):
        AudioSpectrogramTransformer(**SMALL, pretrained=str(evil))
    partial = tmp_path / "partial.pth"
    torch.save({"v.cls_token": torch.zeros(1, 1, 24)}, partial)
    with pytest.raises(DataFormatError, match=r"expected weights for every encoder parameter"):
        AudioSpectrogramTransformer(**SMALL, pretrained=str(partial))
