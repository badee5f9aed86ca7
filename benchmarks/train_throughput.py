"""Training throughput (2 s crops per second) of the verification models, features included.

Run: python3 -m uv run --frozen python benchmarks/train_throughput.py [--device cuda] [--models
ecapa_small ...]
Random audio is enough here: the cost of a step does not depend on what is said.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("SONOLAB_ROOT", str(ROOT))


def measure(
    model_name: str, loss_name: str, batch: int, steps: int, device: str, precision: str
) -> float:
    """Crops per second over ``steps`` optimiser steps after two warm-up steps."""
    with initialize_config_dir(config_dir=str(ROOT / "configs"), version_base="1.3"):
        cfg = compose("train", [f"model={model_name}", f"loss={loss_name}"])
    features = instantiate(cfg.features).to(device).train()
    model = instantiate(cfg.model).to(device).train()
    loss = instantiate(cfg.loss)(embedding_dim=model.embedding_dim, num_classes=1000).to(device)
    opt = torch.optim.Adam(list(model.parameters()) + list(loss.parameters()), lr=1e-3)
    wave = torch.randn(batch, 32000, device=device) * 0.1
    lengths = torch.full((batch,), 32000, device=device)
    labels = torch.randint(0, 1000, (batch,), device=device)
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)

    def step():
        with torch.autocast(
            device_type=device.split(":")[0], dtype=dtype, enabled=dtype is not None
        ):
            feats, frames = features(wave, lengths)
            value = loss(model(feats, frames)["embedding"], labels)
        opt.zero_grad()
        value.backward()
        opt.step()

    for _ in range(2):
        step()
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return batch * steps / (time.perf_counter() - start)


def main() -> None:
    """Print one markdown row per model."""
    parser = argparse.ArgumentParser()
    parser.add_argument(
        "--models", nargs="+", default=["ecapa_small", "xvector_small", "ecapa_c512", "xvector"]
    )
    parser.add_argument("--loss", default="aam")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--precision", default="fp32", choices=["fp32", "bf16", "fp16"])
    args = parser.parse_args()
    print(
        "| model | loss | device | precision | batch | crops/s (2 s) |  torch threads "
        f"{torch.get_num_threads()}",
        file=sys.stderr,
    )
    for name in args.models:
        rate = measure(name, args.loss, args.batch, args.steps, args.device, args.precision)
        print(
            f"| {name} | {args.loss} | {args.device} | {args.precision} | {args.batch} | "
            f"{rate:.1f} |"
        )


if __name__ == "__main__":
    main()
