"""The benchmark suite's model FLOPs utilisation (``benchmarks/suite/mfu.py``): the models it times
are the published recipes' models, and its FLOP count holds the fused attention of a CPU step."""

import sys
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf, open_dict
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from suite.mfu import CPU_ATTENTION_FLOPS, MODELS  # noqa: E402
from suite.overhead import _compose  # noqa: E402

# the recipe each MFU row names, composed as a user runs it
RECIPES = {
    "ECAPA C=1024 + AAM (vox2_ecapa_c1024_aam)": ("experiment=vox2_ecapa_c1024_aam",),
    "AST-base (audioset_ast_full)": ("experiment=audioset_ast_full", "model.pretrained=null"),
}
NODES = ("model", "features", "augment", "loss", "task", "trainer")


@pytest.mark.parametrize("what", list(MODELS))
def test_mfu_models_are_the_recipes(what, tmp_path):
    """The suite runs the recipes on the synthetic sets: all but the data must be the recipe's as a
    user composes it (the corpora's folders follow the data root)."""

    def settings(overrides: tuple[str, ...]) -> dict:
        cfg = _compose(overrides, "cpu", str(tmp_path))
        with open_dict(cfg):
            for key in [k for k in cfg.augment or {} if k.endswith("_root")]:
                del cfg.augment[key]
        nodes = {n: OmegaConf.to_container(cfg[n], resolve=True) for n in NODES}
        data = {k: cfg.data.get(k) for k in ("batch_size", "crops", "sample_rate", "clip_seconds")}
        return nodes | {"data": OmegaConf.to_container(OmegaConf.create(data), resolve=True)}

    assert settings(MODELS[what].family.overrides) == settings(RECIPES[what])


def _attention(query, key, value, fused: bool) -> int:
    """FLOPs counted for attention forward and backward, fused (SDPA) or written out."""
    query, key, value = (t.clone().requires_grad_() for t in (query, key, value))
    counter = FlopCounterMode(display=False, custom_mapping=CPU_ATTENTION_FLOPS)
    with counter:
        if fused:
            out = torch.nn.functional.scaled_dot_product_attention(query, key, value)
        else:
            weights = (query @ key.transpose(-2, -1) / query.shape[-1] ** 0.5).softmax(-1)
            out = weights @ value
        out.sum().backward()
    return counter.get_total_flops()


def test_cpu_fused_attention_counted_as_written_out():
    """Forward: the two products of attention written out. Backward: the written-out backward's
    four products, plus ``QK^T`` recomputed, as torch counts its CUDA kernels."""
    generator = torch.Generator().manual_seed(0)
    query = torch.randn(2, 3, 7, 8, generator=generator)
    key = torch.randn(2, 3, 5, 8, generator=generator)
    value = torch.randn(2, 3, 5, 8, generator=generator)
    recomputed = 2 * 2 * 3 * 7 * 5 * 8  # QK^T
    assert _attention(query, key, value, fused=True) == (
        _attention(query, key, value, fused=False) + recomputed
    )
