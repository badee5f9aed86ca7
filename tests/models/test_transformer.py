"""The Transformer encoder behind EEND-EDA: the same computation as PyTorch's pre-norm encoder (and
its checkpoints), the EEND reference's post-norm order, and padding that does not leak."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from sonolab.models.transformer import TransformerEncoder


def _inputs():
    torch.manual_seed(0)
    x = torch.randn(3, 50, 64)
    padding = torch.zeros(3, 50, dtype=torch.bool)
    padding[1, 40:] = True
    return x, padding


def test_pre_norm_is_pytorch_s_encoder_and_loads_its_weights():
    x, padding = _inputs()
    layer = nn.TransformerEncoderLayer(64, 4, 128, 0.0, batch_first=True, norm_first=True)
    reference = nn.TransformerEncoder(layer, 2, norm=nn.LayerNorm(64), enable_nested_tensor=False)
    ours = TransformerEncoder(64, 4, 128, 0.0, 2, norm_first=True)
    ours.load_state_dict(reference.state_dict())
    for mode in ("train", "eval"):
        reference.train(mode == "train")
        ours.train(mode == "train")
        with torch.no_grad():
            expected = reference(x, src_key_padding_mask=padding)[~padding]
            torch.testing.assert_close(ours(x, padding)[~padding], expected, atol=1e-5, rtol=1e-5)


def test_post_norm_follows_the_eend_reference_order():
    x, _ = _inputs()
    ours = TransformerEncoder(64, 4, 128, 0.0, 2, norm_first=False).eval()
    e = x  # hitachi-speech/EEND transformer.py:151-166, written out with our parameters
    for layer in ours.layers:
        e = layer.norm1(e)
        q, k, v = F.linear(e, layer.self_attn.in_proj_weight, layer.self_attn.in_proj_bias).chunk(
            3, -1
        )
        heads = [t.view(3, 50, 4, 16).transpose(1, 2) for t in (q, k, v)]
        weights = torch.softmax(heads[0] @ heads[1].transpose(-1, -2) / 4.0, dim=-1)
        attended = (weights @ heads[2]).transpose(1, 2).reshape(3, 50, 64)
        e = e + layer.self_attn.out_proj(attended)
        e = layer.norm2(e)
        e = e + layer.linear2(torch.relu(layer.linear1(e)))
    with torch.no_grad():
        torch.testing.assert_close(ours(x), ours.norm(e), atol=1e-5, rtol=1e-5)


def test_padding_does_not_change_the_valid_frames():
    x, padding = _inputs()
    ours = TransformerEncoder(64, 4, 128, 0.1, 2).eval()
    with torch.no_grad():
        alone = ours(x[1:2, :40])
        batched = ours(x, padding)[1:2, :40]
    torch.testing.assert_close(batched, alone, atol=1e-5, rtol=1e-5)


def test_written_out_attention_gives_the_fused_outputs_with_padding():
    """``fused_attention=False`` (softmax(q k^T) v held whole) against the fused kernels, a padded
    batch included."""
    x, padding = _inputs()
    fused = TransformerEncoder(64, 4, 128, 0.1, 2).eval()
    plain = TransformerEncoder(64, 4, 128, 0.1, 2, fused_attention=False).eval()
    plain.load_state_dict(fused.state_dict())
    assert not any(layer.self_attn.fused for layer in plain.layers)
    with torch.no_grad():
        for mask in (None, padding):
            expected, got = fused(x, mask), plain(x, mask)
            torch.testing.assert_close(got[~padding], expected[~padding], atol=1e-5, rtol=1e-5)
