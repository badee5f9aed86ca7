"""The installable package: a wheel built from the checkout, installed with the locked dependencies
in a fresh virtual environment outside the checkout, runs `sonolab train` and `sonolab eval` from
an empty folder (configs, experiments and entry points from the wheel), on each supported Python
found on the machine."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from .conftest import ROOT

pytestmark = pytest.mark.slow

# a small synthetic VoxCeleb set and a short run (the default experiment's data, shrunk)
SMALL = [
    "debug=tiny",
    "data.synth.num_train_speakers=8",
    "data.synth.num_val_speakers=3",
    "data.synth.num_test_speakers=3",
    "data.synth.num_val_trials=16",
    "data.synth.num_test_trials=40",
    "data.synth.min_duration=1.0",
    "data.synth.max_duration=1.6",
    "data.crops.seconds=1.0",
    "trainer.enable_progress_bar=false",
]


def _uv() -> list[str]:
    """The uv that runs these tests (`uv run` names itself in $UV), else one on PATH."""
    found = os.environ.get("UV") or shutil.which("uv")
    if not found:
        pytest.skip("no uv: run the tests through `uv run` (the README's command)")
    return [found]


def _run(args: list[str], cwd: Path, env: dict | None = None, timeout: int = 1200):
    result = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, f"{args}\n{result.stdout[-2000:]}\n{result.stderr[-4000:]}"
    return result


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """The wheel of the checkout, with the locked requirements beside it."""
    out = tmp_path_factory.mktemp("wheel")
    _run([*_uv(), "build", "--wheel", "--out-dir", str(out), str(ROOT)], ROOT)
    _run(
        [
            *_uv(),
            "export",
            "--frozen",
            "--no-dev",
            "--all-extras",
            "--no-emit-project",
            "-o",
            str(out / "requirements.txt"),
        ],
        ROOT,
    )
    return next(out.glob("sonolab-*.whl"))


def test_the_wheel_carries_configs_experiments_and_commands(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "sonolab/configs/train.yaml" in names and "sonolab/configs/eval.yaml" in names
    assert "sonolab/experiments/experiment/synth_eend_eda.yaml" in names
    assert "hydra_plugins/sonolab_searchpath/__init__.py" in names
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    text = zipfile.ZipFile(wheel).read(entry_points).decode()
    assert "sonolab = sonolab.cli:main" in text and "[sonolab.commands]" in text


def _python(version: str) -> str:
    """An interpreter of ``version``: this one, or one found on PATH / pyenv; else a skip."""
    if f"{sys.version_info.major}.{sys.version_info.minor}" == version:
        return sys.executable
    for candidate in (
        shutil.which(f"python{version}"),
        *sorted(Path.home().glob(f".pyenv/versions/{version}.*/bin/python{version}")),
    ):
        if (
            candidate
            and subprocess.run([str(candidate), "-V"], capture_output=True).returncode == 0
        ):
            return str(candidate)
    pytest.skip(f"no Python {version} interpreter on this machine (PATH, ~/.pyenv)")


@pytest.mark.parametrize("version", ["3.11", "3.12"])
def test_installed_wheel_trains_and_evaluates_from_an_empty_folder(version, wheel, tmp_path):
    venv = tmp_path / "venv"
    _run([*_uv(), "venv", "--python", _python(version), str(venv)], tmp_path)
    python = venv / "bin" / "python"
    _run(
        [
            *_uv(),
            "pip",
            "install",
            "--python",
            str(python),
            "-r",
            str(wheel.parent / "requirements.txt"),
            str(wheel),
        ],
        tmp_path,
    )
    work = tmp_path / "empty"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("SONOLAB_ROOT", "VIRTUAL_ENV")}
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    sonolab = str(venv / "bin" / "sonolab")
    # the package imported is the installed copy, not the checkout
    where = _run([str(python), "-c", "import sonolab; print(sonolab.__file__)"], work, env)
    assert str(venv) in where.stdout
    trained = _run([sonolab, "train", *SMALL, "hydra.run.dir=run"], work, env)
    assert "EER" in trained.stdout or "eer" in trained.stdout
    metrics = json.loads((work / "run" / "metrics.json").read_text())
    assert 0 <= metrics["test"]["synth"]["eer"] <= 100
    assert (work / "data" / "synth_voxceleb" / "trials.txt").is_file()  # generated under cwd
    evaluated = _run([sonolab, "eval", "run_dir=run", "hydra.run.dir=eval"], work, env)
    again = json.loads((work / "eval" / "metrics.json").read_text())
    assert again["test"]["synth"]["eer"] == pytest.approx(metrics["test"]["synth"]["eer"])
    assert "report:" in evaluated.stdout
    # the experiments ship too: a recipe composes from the installed package
    recipe = _run([sonolab, "train", "experiment=synth_eend_eda", "--cfg", "job"], work, env)
    assert "EendEda" in recipe.stdout
