"""sonolab export: each family's model as ONNX (onnxruntime) and as a torch.export program, equal to
PyTorch within 1e-4 on random audio of two lengths (a dynamic time axis where the model has one)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from sonolab.cli import main as sonolab_main
from sonolab.export import TOLERANCE, export_run, run_export

from .conftest import tagging_overrides, train_run
from .tasks.test_diarization import tiny_eend_overrides


def _check(record: dict, outputs: set[str], dynamic: bool, padded: bool = False) -> None:
    """Outputs, time axis, parity; ``padded``: the front-end pads every clip to one length."""
    assert set(record["outputs"]) == outputs and record["dynamic_time"] is dynamic
    assert record["max_abs_difference"] <= TOLERANCE
    lengths = [row["feature_frames"] for row in record["parity"]]
    assert (lengths[0] == lengths[1]) is padded  # two lengths of audio in, as features


@pytest.mark.slow  # two exports (~20 s each): the default suite's time
@pytest.mark.parametrize("fmt", ["onnx", "torch_export"])
def test_a_verification_model_exports_with_a_dynamic_time_axis(fmt, trained_run, tmp_path, capsys):
    out = tmp_path / fmt
    assert sonolab_main(["export", f"run_dir={trained_run}", f"format={fmt}", f"out={out}"]) == 0
    assert "largest difference from PyTorch" in capsys.readouterr().out
    record = json.loads((out / "export.json").read_text())
    _check(record, {"embedding"}, True)
    assert record["frontend"]["_target_"].endswith("KaldiFbank")
    # the saved file runs on its own: a batch of one recording of another length
    features = np.random.default_rng(0).standard_normal((1, 321, 80)).astype(np.float32)
    (embedding,) = run_export(
        out / record["file"], fmt, (torch.from_numpy(features), torch.tensor([321]))
    )
    assert embedding.shape == (1, 192) and np.isfinite(embedding).all()


@pytest.mark.slow
def test_tagging_and_diarization_models_export(tagging_run, tiny_esc50, tiny_voxceleb, tmp_path):
    # HTS-AT (clip and frame logits; its front-end pads every clip to one length)
    htsat = export_run(tagging_run, "onnx", tmp_path / "htsat")
    _check(htsat, {"logits", "frame_logits"}, True, padded=True)
    # AST (its front-end pads or cuts every clip to the positional embeddings' length)
    ast = tmp_path / "ast"
    train_run(
        [
            "experiment=synth_esc50_ast",
            *tagging_overrides(tiny_esc50),
            "trainer.max_epochs=1",
            "trainer.limit_train_batches=2",
        ],
        ast,
    )
    _check(export_run(ast, "onnx", tmp_path / "ast_onnx"), {"logits"}, True, padded=True)
    # a CNN (as a torch.export program)
    cnn = tmp_path / "cnn"
    train_run(
        [
            "experiment=synth_esc50_htsat",
            *tagging_overrides(tiny_esc50, model="LogMelCnn"),
            "model=cnn6_small",
            "trainer.max_epochs=1",
            "trainer.limit_train_batches=2",
        ],
        cnn,
    )
    cnn_export = export_run(cnn, "torch_export", tmp_path / "cnn_export")
    _check(cnn_export, {"logits"}, True, padded=True)
    # EEND-EDA, without its inference shuffle
    eend = tmp_path / "eend"
    train_run(tiny_eend_overrides(tiny_voxceleb, tmp_path / "mix"), eend)
    _check(
        export_run(eend, "onnx", tmp_path / "eend_onnx"),
        {"activities", "existence", "attractors", "frames"},
        True,
    )
