"""A fourth task family defined only under tests/toy_family runs through the shared entry points:
train.py, evaluate.py with an argument of its own, a sweep with its ablation table, and the search
objective's metric direction. Nothing outside its own files names it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sonolab.search import metric_direction

from ..conftest import run_script

HERE = Path(__file__).resolve().parent
TASK = "tests.toy_family.family.ToneTask"


def _overrides(tmp_path: Path) -> list[str]:
    return [
        f"hydra.searchpath=[file://{HERE}/configs]",  # the family's configs: its own folder
        "data=toy_tones",
        f"data.root={tmp_path / 'tones'}",
        "features=fbank23",
        "features.mean_norm=false",  # the pitch is in the band energies the mean holds
        "model=toy_pool",
        "loss=toy_smoothed",
        "task=toy",
        "trainer.max_epochs=4",
        "trainer.enable_progress_bar=false",
        "logger=csv",
        f"paths.log_dir={tmp_path / 'logs'}",
    ]


@pytest.mark.slow  # a run and an evaluation in subprocesses (~70 s): the default suite's time
def test_toy_family_trains_and_evaluates_with_its_own_argument(tmp_path):
    run_dir = tmp_path / "run"
    trained = run_script("train.py", [*_overrides(tmp_path), f"hydra.run.dir={run_dir}"], tmp_path)
    assert trained.returncode == 0, trained.stderr[-3000:]
    metrics = json.loads((run_dir / "metrics.json").read_text())
    result = metrics["test"]["test"]
    assert result["clips"] == 18 and 0.0 <= result["error"] < 50.0  # 3 pitch classes: chance 67 %
    assert json.loads((run_dir / "run.json").read_text())["status"] == "completed"
    assert "| test | 18 |" in (run_dir / "summary.md").read_text()

    search = f"hydra.searchpath=[file://{HERE}/configs]"
    out = tmp_path / "eval"
    evaluated = run_script(
        "evaluate.py",
        [search, f"run_dir={run_dir}", "test_split=val", f"hydra.run.dir={out}"],
        tmp_path,
    )
    assert evaluated.returncode == 0, evaluated.stderr[-3000:]
    assert json.loads((out / "metrics.json").read_text())["test"]["val"]["clips"] == 12

    refused = run_script("evaluate.py", [f"run_dir={run_dir}", "trials=x.txt"], tmp_path)
    assert refused.returncode != 0
    assert (
        "trials: expected an argument of this run's datamodule ToneDataModule (test_split) "
        "or a section of its task ToneTask (none)" in refused.stderr
    )


def test_toy_family_metric_directions_come_from_its_task():
    assert metric_direction("auto", TASK) == "minimize"
    assert metric_direction("val/error", TASK) == "minimize"
    assert metric_direction("test/test/clips", TASK) == "maximize"


@pytest.mark.slow
def test_toy_family_sweep_writes_its_ablation_table(tmp_path):
    sweep = tmp_path / "sweep"
    swept = run_script(
        "train.py",
        ["-m", *_overrides(tmp_path), "seed=1,2", f"hydra.sweep.dir={sweep}"],
        tmp_path,
    )
    assert swept.returncode == 0, swept.stderr[-3000:]
    table = (sweep / "ablation.md").read_text()
    assert "test/error" in table and "| 2 | 0 |" in table, table
