"""Model FLOPs utilisation: the FLOP/s a training step achieves (its FLOPs counted by
``torch.utils.flop_counter.FlopCounterMode``, forward and backward, the optimiser step left out)
against the dense matrix-multiply rate measured in the same run and, on an H100 / H200, against
the GPU's bf16 dense peak.

On a GPU the step runs in bf16 autocast (the recipes' ``trainer.precision: bf16-mixed``) at the
recipes' batch sizes, as configured and compiled; on a CPU in float32 at smaller batches (named in
the row), so the CPU row is the fraction of that CPU's float32 matmul rate.
"""

from __future__ import annotations

import statistics
import tempfile
from dataclasses import dataclass
from functools import partial

import torch
from torch.utils.flop_counter import FlopCounterMode

from sonolab.callbacks import ModelSpeedups
from sonolab.utils.allocator import retain_freed_memory
from suite.common import Row, Settings, interleaved, peak_memory, rate, reset_peak_memory
from suite.overhead import (
    Family,
    _bare_setup,
    _compose,
    _first_batch,
    _tagging_loss,
    _verification_loss,
    bare_step,
)

# bf16 dense tensor-core peak of the SXM parts, from NVIDIA's H100 / H200 datasheets (the
# datasheets' 1,979 TFLOP/s is with 2:4 sparsity)
BF16_DENSE_PEAK = {"H100": 989e12, "H200": 989e12}


@dataclass(frozen=True)
class Model:
    """A published recipe's model at its batch (``gpu_batch``; ``cpu_batch`` on a CPU)."""

    family: Family
    gpu_batch: int
    cpu_batch: int


# the published recipes as their users run them, on the project's synthetic sets in place of
# VoxCeleb and AudioSet (the recipes' models, front-ends, augmentation, batches and loader work)
MODELS = {
    # experiments/experiment/vox2_ecapa_c1024_aam.yaml: batch 128 per GPU, 200-frame crops with
    # speed perturbation, MUSAN + RIR (the synthetic set's corpora)
    "ECAPA C=1024 + AAM (vox2_ecapa_c1024_aam)": Model(
        Family(("experiment=vox2_ecapa_c1024_aam", "data=synth_voxceleb"), _verification_loss),
        gpu_batch=128,
        cpu_batch=16,
    ),
    # experiments/experiment/audioset_ast_full.yaml: batch 12 of 1024 frames, stride 10, mixup
    # (the synthetic clips are 5 s, padded to the recipe's 10), from scratch (no DeiT file here)
    "AST-base (audioset_ast_full)": Model(
        Family(
            ("experiment=audioset_ast_full", "data=synth_audioset", "model.pretrained=null"),
            _tagging_loss,
        ),
        gpu_batch=12,
        cpu_batch=2,
    ),
}


def matmul_rate(device: str, dtype: torch.dtype, size: int, repeats: int = 10) -> float:
    """FLOP/s of a ``size`` x ``size`` matrix product in ``dtype`` (the best of ``repeats``)."""
    a = torch.randn(size, size, device=device, dtype=dtype)
    b = torch.randn(size, size, device=device, dtype=dtype)
    a @ b  # warm-up
    return max(rate(lambda: a @ b, 2 * size**3, device) for _ in range(repeats))


def _attention_flops(query, key, value, *args, **kwargs) -> int:
    """FLOPs of a fused attention forward: the two products ``QK^T`` and ``PV``."""
    batch, heads, queries, depth = query
    return 2 * batch * heads * queries * key[2] * (depth + value[3])


def _attention_backward_flops(grad_out, query, key, value, *args, **kwargs) -> int:
    """FLOPs of its backward: ``QK^T`` again, then the gradients of ``P``, ``V``, ``Q``, ``K``."""
    batch, heads, queries, depth = query
    return 2 * batch * heads * queries * key[2] * (3 * depth + 2 * value[3])


# FlopCounterMode counts the CUDA attention kernels (flash, memory-efficient, cuDNN) but not the
# CPU's fused kernel, which a Transformer's step on a CPU calls (AST-base: a fifth of its FLOPs);
# the same counts as torch's for the CUDA ones
CPU_ATTENTION_FLOPS = {
    torch.ops.aten._scaled_dot_product_flash_attention_for_cpu: _attention_flops,
    torch.ops.aten._scaled_dot_product_flash_attention_for_cpu_backward: _attention_backward_flops,
}


def step_flops(step) -> int:
    """FLOPs of one call of ``step`` (forward and backward; no optimiser update is counted)."""
    counter = FlopCounterMode(display=False, custom_mapping=CPU_ATTENTION_FLOPS)
    with counter:
        step()
    return counter.get_total_flops()


def _repeat(step, times: int) -> None:
    for _ in range(times):
        step()


def _variants(gpu: bool) -> dict[str, ModelSpeedups | None]:
    """The step as configured and, on a GPU, compiled (``callbacks.speedups.compile``): whether
    compilation is what AST-base needs to reach the MFU target decides a GPU default."""
    return {"": None, ", compiled": ModelSpeedups(compile=True)} if gpu else {"": None}


def mfu(settings: Settings) -> list[Row]:
    """Each model's achieved FLOP/s in training against the measured matmul rate."""
    retain_freed_memory()
    gpu = settings.device.startswith("cuda")
    dtype = torch.bfloat16 if gpu else torch.float32
    steps, warmup = (3, 1) if settings.quick else (10, 3)
    matmul_size = 8192 if gpu else 2048
    peak_name = next(
        (k for k in BF16_DENSE_PEAK if gpu and k in torch.cuda.get_device_name(settings.device)),
        None,
    )
    rows = []
    for what, model in MODELS.items():
        batch_size = model.gpu_batch if gpu else model.cpu_batch
        with tempfile.TemporaryDirectory() as out:
            cfg = _compose(
                (*model.family.overrides, f"data.batch_size={batch_size}"), settings.device, out
            )
            first_batch, info = _first_batch(cfg)
            batch_size = int(first_batch["wave"].shape[0])  # the set may hold fewer than asked
            flops = None
            for variant, speedups in _variants(gpu).items():
                task, optimiser, batch = _bare_setup(
                    cfg, info, first_batch, settings.device, speedups
                )
                step = bare_step(
                    task, optimiser, model.family, batch, settings.device, dtype if gpu else None
                )
                reset_peak_memory(settings.device)
                if flops is None:  # counted on the eager step (the compiled one runs the same)
                    flops = step_flops(step)
                for _ in range(warmup):  # the compiled step compiles in the first
                    step()
                matmuls, steps_rates = interleaved(
                    partial(matmul_rate, settings.device, dtype, matmul_size),
                    partial(rate, partial(_repeat, step, steps), flops * steps, settings.device),
                    settings.repeats,
                )
                peak = peak_memory(settings.device)
                del task, optimiser, batch, step
                torch._dynamo.reset()
                check = f"{flops / 1e9:.1f} GFLOP per step (forward + backward)"
                if gpu:
                    check += f"; peak GPU memory {peak / 2**30:.1f} GiB"
                if peak_name:
                    share = statistics.median(steps_rates) / BF16_DENSE_PEAK[peak_name]
                    check += f"; {share:.1%} of the {peak_name} bf16 dense peak"
                precision = "bf16 autocast" if gpu else "float32"
                rows.append(
                    Row(
                        "mfu",
                        f"{what}, batch {batch_size}, {precision}{variant}",
                        f"{matmul_size}x{matmul_size} matmul, {str(dtype).removeprefix('torch.')}",
                        "training step",
                        "TFLOP/s",
                        [r / 1e12 for r in matmuls],
                        [r / 1e12 for r in steps_rates],
                        check=check,
                    )
                )
    return rows


CASES = {"mfu": mfu}
