"""ModelSpeedups: channels-last weights and a compiled forward give the plain model's outputs."""

from __future__ import annotations

import types

import pytest
import torch

from sonolab.callbacks import ModelSpeedups
from sonolab.models import LogMelCnn
from sonolab.utils.errors import ConfigValueError


def _cnn() -> LogMelCnn:
    torch.manual_seed(0)
    return LogMelCnn(channels=[4, 8, 8, 8], num_classes=3).eval()


def _outputs(model, feats) -> torch.Tensor:
    with torch.no_grad():
        return model(feats, torch.full((feats.shape[0],), feats.shape[1]))["logits"]


def test_channels_last_keeps_the_outputs_and_the_state_dict():
    plain, fast = _cnn(), _cnn()
    feats = torch.randn(2, 64, 32)
    ModelSpeedups(channels_last=True).setup(None, types.SimpleNamespace(model=fast), "fit")
    conv = next(p for p in fast.parameters() if p.dim() == 4 and p.shape[1] > 1)
    assert conv.is_contiguous(memory_format=torch.channels_last) and not conv.is_contiguous()
    assert fast.state_dict().keys() == plain.state_dict().keys()
    torch.testing.assert_close(_outputs(fast, feats), _outputs(plain, feats), atol=1e-5, rtol=1e-4)


def test_a_bad_compile_mode_is_named():
    with pytest.raises(ConfigValueError, match="compile_mode"):
        ModelSpeedups(compile=True, compile_mode="fastest")


@pytest.mark.slow
def test_compiled_forward_keeps_the_outputs_and_the_state_dict():
    plain, fast = _cnn(), _cnn()
    feats = torch.randn(2, 64, 32)
    speedups = ModelSpeedups(compile=True)
    module = types.SimpleNamespace(model=fast)
    speedups.setup(None, module, "fit")
    speedups.setup(None, module, "test")  # applied once
    assert fast.state_dict().keys() == plain.state_dict().keys()
    torch.testing.assert_close(_outputs(fast, feats), _outputs(plain, feats), atol=1e-5, rtol=1e-4)
