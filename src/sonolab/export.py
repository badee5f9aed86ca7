"""``sonolab export``: a trained run's model as ONNX or a ``torch.export`` program, checked against
PyTorch on random audio of two lengths.

The exported graph is the model alone: one recording's front-end features ``(1, frames, dim)``
and its valid frame count ``feature_frames`` ``(1,)`` in, the model's named outputs out
(``embedding``; ``logits`` and maybe ``frame_logits``; ``activities``, ``existence``,
``attractors``, ``frames``). The front-end stays outside, as in WeSpeaker's runtime:
torchaudio's Kaldi filterbank, which the fbank front-ends use, cannot be exported (its frame count
is computed in Python, so ``torch.export`` fixes the audio length, and ONNX has no
``hamming_window``). ``export.json`` records the run's front-end config so the features can be
computed the same way. The time axis is dynamic wherever ``torch.export`` finds the model allows
it (``export.json`` says so; AST's and HTS-AT's front-ends pad every clip to one length anyway).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import OmegaConf
from torch import nn

from .cli import key_values
from .utils.errors import ConfigValueError
from .utils.extras import require
from .utils.io import write_text_atomic

log = logging.getLogger(__name__)

FORMATS = {"onnx": "model.onnx", "torch_export": "model.pt2"}
TOLERANCE = 1e-4  # largest absolute difference accepted between the export and PyTorch


class ModelOutputs(nn.Module):
    """The run's model with its dict of outputs as a tuple (what exporters take), in a fixed order
    given by a first call."""

    def __init__(self, model: nn.Module, names: list[str]):
        super().__init__()
        self.model = model
        self.names = names

    def forward(
        self, features: torch.Tensor, feature_frames: torch.Tensor
    ) -> tuple[torch.Tensor, ...]:
        out = self.model(features, feature_frames)
        return tuple(out[name] for name in self.names)


def example_inputs(
    task, seconds: float, seed: int, batch: int = 1
) -> tuple[torch.Tensor, torch.Tensor]:
    """Front-end features and frame counts of ``batch`` random waveforms of ``seconds`` (the run's
    front-end in eval mode: what the exported model is fed in use)."""
    generator = torch.Generator().manual_seed(seed)
    samples = int(seconds * task.data_info.sample_rate)
    wave = 0.1 * torch.randn(batch, samples, generator=generator)
    with torch.no_grad():
        features, frames = task.features(wave, torch.full((batch,), samples))
    return features.float(), frames.long()


# the time axis dynamic where the model allows it, fixed where it does not;
# one recording per call: the batch axis stays 1 (masks of padded batches are built with the
# example's batch size in some models' graphs, which onnxruntime then refuses for other sizes)
DYNAMIC = {"features": {1: torch.export.Dim.AUTO}, "feature_frames": {}}


def time_axis_is_dynamic(program) -> bool:
    """Whether an exported program's feature input has a symbolic time axis."""
    features = next(
        n for n in program.graph.nodes if n.op == "placeholder" and n.name == "features"
    )
    return not isinstance(features.meta["val"].shape[1], int)


def save_export(wrapper: ModelOutputs, example, fmt: str, path: Path) -> bool:
    """Write the export; returns whether its time axis is dynamic."""
    program = torch.export.export(wrapper, example, dynamic_shapes=DYNAMIC, strict=False)
    if fmt == "torch_export":
        torch.export.save(program, path)
    else:
        require("onnxscript", "onnx", "sonolab export format=onnx")
        torch.onnx.export(
            program,
            input_names=["features", "feature_frames"],
            output_names=wrapper.names,
            dynamo=True,
            verbose=False,
        ).save(str(path))
    return time_axis_is_dynamic(program)


def run_export(path: Path, fmt: str, inputs: tuple[torch.Tensor, torch.Tensor]) -> list[np.ndarray]:
    """The saved export's outputs for ``inputs`` (onnxruntime for ONNX)."""
    if fmt == "torch_export":
        with torch.no_grad():
            return [o.numpy() for o in torch.export.load(path).module()(*inputs)]
    ort = require("onnxruntime", "onnx", "checking an ONNX export")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = [i.name for i in session.get_inputs()]
    return session.run(None, {n: t.numpy() for n, t in zip(names, inputs)})


def parity(
    wrapper: ModelOutputs, path: Path, fmt: str, task, seconds: tuple[float, ...]
) -> list[dict[str, Any]]:
    """The largest absolute difference per output between the export and PyTorch, for random
    audio of each length in ``seconds``."""
    rows = []
    for k, length in enumerate(seconds):
        inputs = example_inputs(task, length, seed=k + 1)
        with torch.no_grad():
            expected = [o.numpy() for o in wrapper(*inputs)]
        found = run_export(path, fmt, inputs)
        rows.append(
            {
                "seconds": length,
                "feature_frames": int(inputs[0].shape[1]),
                "max_abs_difference": {
                    name: float(np.abs(np.asarray(f, dtype=np.float64) - e).max())
                    for name, f, e in zip(wrapper.names, found, expected)
                },
            }
        )
    return rows


def export_run(
    run_dir: str | Path,
    fmt: str = "onnx",
    out: str | Path | None = None,
    ckpt_path: str | None = None,
    seconds: tuple[float, float] = (3.0, 5.5),
) -> dict[str, Any]:
    """Export a run's model, check it, write ``export.json``; returns that record."""
    from .api import load

    if fmt not in FORMATS:
        raise ConfigValueError("format", " or ".join(FORMATS), fmt)
    engine = load(run_dir, "cpu", ckpt_path)
    task = engine.task.cpu().eval()
    task.model.prepare_export()
    example = example_inputs(task, seconds[0], seed=0)
    with torch.no_grad():
        names = [k for k, v in task.model(*example).items() if torch.is_tensor(v)]
    wrapper = ModelOutputs(task.model, names).eval()
    folder = Path(out or engine.run_dir / "export" / fmt)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / FORMATS[fmt]
    dynamic_time = save_export(wrapper, example, fmt, path)
    checks = parity(wrapper, path, fmt, task, seconds)
    worst = max(max(r["max_abs_difference"].values()) for r in checks)
    run_cfg = OmegaConf.load(engine.run_dir / ".hydra" / "config.yaml")
    record = {
        "run_dir": str(engine.run_dir),
        "checkpoint": str(engine.checkpoint),
        "format": fmt,
        "file": path.name,
        "inputs": {
            "features": "(1, frames, dim) float32: the front-end below, in eval mode",
            "feature_frames": "(1,) int64: the valid frames",
        },
        "outputs": names,
        "dynamic_time": dynamic_time,
        "fixed_frames": None if dynamic_time else int(example[0].shape[1]),
        "sample_rate": int(task.data_info.sample_rate),
        "frontend": OmegaConf.to_container(run_cfg.features, resolve=True),
        "parity": checks,
        "max_abs_difference": worst,
        "tolerance": TOLERANCE,
    }
    write_text_atomic(folder / "export.json", json.dumps(record, indent=2) + "\n")
    if worst > TOLERANCE:
        raise ConfigValueError(
            "export", f"outputs within {TOLERANCE} of PyTorch's ({folder / 'export.json'})", worst
        )
    return record


def command(argv: list[str]) -> int:
    """Export a run's model: sonolab export run_dir=<run> [format=onnx|torch_export] [out=DIR]

    Writes model.onnx (or model.pt2, a torch.export program) and export.json under out (default
    <run_dir>/export/<format>/). The graph is the model alone: one recording's front-end
    features (1, frames, dim) and its valid frame count feature_frames (1,) in, the model's named
    outputs out; export.json records the run's front-end config (computed outside the graph, as
    in WeSpeaker's runtime). EEND-EDA is exported without its inference shuffle. The export is
    checked against PyTorch on random audio of two lengths (3 s, 5.5 s): the largest difference
    is printed, and above 1e-4 it is an
    error. Options (key=value):
      run_dir       the trained run folder (or a checkpoint inside one)
      ckpt_path     best (the run's recorded checkpoint) | last | a file
      format        onnx (extra [onnx]: onnx, onnxscript, onnxruntime) | torch_export
      out           where to write
    """
    known = {"run_dir": None, "ckpt_path": None, "format": "onnx", "out": None}
    _, args = key_values(argv, command, known)
    if not args["run_dir"]:
        raise ConfigValueError("run_dir", "a trained run folder for sonolab export", None)
    record = export_run(args["run_dir"], args["format"], args["out"], args["ckpt_path"])
    folder = Path(args["out"] or Path(record["run_dir"]) / "export" / args["format"])
    print(folder / record["file"])
    time_axis = "dynamic" if record["dynamic_time"] else f"fixed at {record['fixed_frames']}"
    print(
        f"outputs {', '.join(record['outputs'])}; time axis {time_axis}; largest difference from "
        f"PyTorch {record['max_abs_difference']:.2e} (3 s and 5.5 s of random audio)"
    )
    return 0
