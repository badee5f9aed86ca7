"""Shared fixtures: one tiny synthetic VoxCeleb-format dataset per session, Hydra composition."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("SONOLAB_ROOT", str(ROOT))
SHARED_DATA = ROOT.parent / "shared" / "data"

TINY_SYNTH = dict(
    seed=3,
    num_train_speakers=8,
    num_val_speakers=3,
    num_test_speakers=5,
    sessions_per_speaker=2,
    utterances_per_session=2,
    min_duration=1.0,
    max_duration=1.6,
    num_val_trials=16,
    num_test_trials=40,
    sample_rate=16000,
    augment_corpora=True,
)


@pytest.fixture(scope="session")
def tiny_voxceleb(tmp_path_factory) -> Path:
    """A tiny synthetic dataset (8 training speakers) written once for the whole test session."""
    from sonolab.data.synth.voxceleb import VoxCelebSynthConfig, generate_voxceleb

    out = tmp_path_factory.mktemp("synth") / "tiny_voxceleb"
    return generate_voxceleb(out, VoxCelebSynthConfig(**TINY_SYNTH), workers=1)


TINY_ESC50 = dict(num_classes=4, clips_per_class=5, seconds=1.0, sample_rate=22050, seed=1)


@pytest.fixture(scope="session")
def tiny_esc50(tmp_path_factory) -> Path:
    """A tiny synthetic ESC-50-layout dataset (4 classes x 5 clips of 1 s) written once per
    session."""
    from sonolab.data.synth.esc50 import Esc50SynthConfig, generate_esc50

    out = tmp_path_factory.mktemp("synth") / "tiny_esc50"
    generate_esc50(out, Esc50SynthConfig(**TINY_ESC50))
    return out


TINY_AUDIOSET = dict(
    num_classes=4,
    train_clips=12,
    eval_clips=6,
    unbalanced_clips=4,
    max_labels=2,
    seconds=2.0,
    sample_rate=16000,
    seed=1,
)


@pytest.fixture(scope="session")
def tiny_audioset(tmp_path_factory) -> Path:
    """A tiny synthetic AudioSet-layout dataset (4 classes, 12 balanced + 4 unbalanced training and
    6 eval clips of 2 s) written once per session."""
    from sonolab.data.synth.audioset import AudioSetSynthConfig, generate_audioset

    out = tmp_path_factory.mktemp("synth") / "tiny_audioset"
    generate_audioset(out, AudioSetSynthConfig(**TINY_AUDIOSET))
    return out


# per model class: what makes it tiny, and the front-end's frames in ``seconds`` (10 ms hops)
TINY_TAGGING_MODELS = {
    "AudioSpectrogramTransformer": (["model.depth=1"], lambda seconds: int(seconds * 100) - 2),
    "HtsAt": (["model.depths=[1,1,1,1]"], lambda seconds: int(seconds * 100) + 1),
    "LogMelCnn": (
        ["model.channels=[4,8,8,8]", "model.pool_sizes=null"],
        lambda seconds: int(seconds * 100) + 1,
    ),
}


def tagging_overrides(
    root: Path, seconds: float = 1.0, model: str = "AudioSpectrogramTransformer"
) -> list[str]:
    """Point a tagging experiment at a tiny dataset (ESC-50 or AudioSet layout) with a tiny
    ``model`` (its class name: one-block AST, one block per HTS-AT stage, a narrow CNN) over
    ``seconds`` of features."""
    size, frames = TINY_TAGGING_MODELS[model]
    return [
        f"data.root={root}",
        "data.synth=null",
        "data.num_workers=0",
        "data.batch_size=4",
        f"data.clip_seconds={seconds}",
        *size,
        f"features.target_frames={frames(seconds)}",
        "task.statistics_clips=8",
        "trainer.enable_progress_bar=false",
    ]


def tiny_overrides(root: Path) -> list[str]:
    """Overrides that point the default experiment at the tiny dataset and make it fast."""
    return [
        f"data.root={root}",
        "data.synth=null",
        "data.num_workers=0",
        "data.batch_size=4",
        "data.crops.seconds=1.0",
        "trainer.max_epochs=1",
    ]


def compose(
    config_name: str = "train", overrides: list[str] | None = None, output_dir: Path | None = None
):
    """Compose a config as train.py would (with hydra's runtime fields resolved)."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import open_dict

    from sonolab.arguments import open_arguments

    # as evaluate.py does: the arguments a family declares are passed as +key=value
    overrides = list(overrides or [])
    if config_name == "eval":
        overrides = open_arguments(overrides, ROOT / "configs" / "eval.yaml")
    with initialize_config_dir(config_dir=str(ROOT / "configs"), version_base="1.3"):
        cfg = hydra_compose(config_name=config_name, overrides=overrides, return_hydra_config=True)
        HydraConfig.instance().set_config(cfg)
        with open_dict(cfg):
            cfg.paths.output_dir = str(output_dir or ROOT / "logs" / "tests")
            del cfg["hydra"]
    return cfg


@pytest.fixture
def speechocean_root() -> Path:
    """The real speechocean762 VoxCeleb-layout slice, or a skip saying why it is missing."""
    root = SHARED_DATA / "speechocean762-vox"
    if not (root / "trials.txt").is_file():
        pytest.skip(f"real data not present: {root} (see ../shared/data/README.md)")
    return root


TINY_SOUNDSCAPES = dict(
    train_soundscapes=12, validation_soundscapes=4, eval_soundscapes=4, sample_rate=16000, seed=3
)


@pytest.fixture(scope="session")
def tiny_soundscapes(tmp_path_factory) -> Path:
    """Soundscapes in DESED's layout from the real ESC-10 clips (12 training, 4 validation, 4
    evaluation, 16 kHz), written once per session; a skip saying why when ESC-10 is absent."""
    from sonolab.data.synth.soundscapes import SoundscapeSynthConfig, generate_soundscapes

    esc10 = SHARED_DATA / "esc10"
    if not (esc10 / "meta" / "esc50.csv").is_file():
        pytest.skip(f"real data not present: {esc10} (see ../shared/data/README.md)")
    out = tmp_path_factory.mktemp("synth") / "soundscapes"
    generate_soundscapes(out, SoundscapeSynthConfig(source=str(esc10), **TINY_SOUNDSCAPES))
    return out


@pytest.fixture(scope="session")
def trained_run(tiny_voxceleb, tmp_path_factory) -> Path:
    """A tiny trained verification run folder as train.py leaves it (config, checkpoints,
    metrics.json);
    shared by the session: tests copy it before changing anything in it."""

    run = tmp_path_factory.mktemp("runs") / "run"
    overrides = ["trainer.limit_train_batches=2", "logger=csv", "trainer.enable_progress_bar=false"]
    train_run(tiny_overrides(tiny_voxceleb) + overrides, run)
    return run


def train_run(overrides: list[str], out: Path) -> dict:
    """train.py's work in-process: the composed config saved in ``out/.hydra`` as Hydra leaves it,
    then training and test into ``out``; returns the run's summary."""
    from omegaconf import OmegaConf

    from sonolab.run import train

    cfg = compose("train", overrides, out)
    (out / ".hydra").mkdir(parents=True)
    OmegaConf.save(cfg, out / ".hydra" / "config.yaml")
    return train(cfg, ROOT / "configs")


def run_script(
    script: str, args: list[str], cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    """Run a script of the checkout (train.py, evaluate.py) in a subprocess, as a user would."""
    env = {**(env or os.environ), "SONOLAB_ROOT": str(ROOT), "PYTHONUNBUFFERED": "1"}
    return subprocess.run(
        [sys.executable, str(ROOT / script), *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.fixture
def tiny_copy(tiny_voxceleb, tmp_path) -> Path:
    """A private copy of the tiny dataset that a test may damage."""
    root = tmp_path / "data"
    import shutil

    shutil.copytree(tiny_voxceleb, root, ignore=shutil.ignore_patterns(".sonolab"))
    return root


def voxceleb_datamodule(root: Path, **kw):
    """The VoxCeleb datamodule over a tiny synthetic tree (its lists), small and single-process;
    ``kw`` overrides any argument, and a group's keys (``lists={...}``) one by one."""
    from sonolab.data.verification import VoxCelebDataModule

    args = dict(
        root=str(root),
        train_speakers="train_speakers.txt",
        lists={"val_trials": "val_trials.txt", "test_trials": {"synth": "trials.txt"}},
        crops={"seconds": 1.0},
        batch_size=4,
        num_workers=0,
    )
    for key, value in kw.items():
        grouped = isinstance(value, dict) and isinstance(args.get(key), dict)
        args[key] = {**args[key], **value} if grouped else value
    return VoxCelebDataModule(**args)


@pytest.fixture(scope="session")
def tagging_run(tiny_esc50, tmp_path_factory):
    """A tiny HTS-AT run on the tiny ESC-50 set (HTS-AT has frame-level outputs)."""
    out = tmp_path_factory.mktemp("tagging") / "run"
    overrides = [
        "experiment=synth_esc50_htsat",
        *tagging_overrides(tiny_esc50, model="HtsAt"),
        "model=htsat_tiny",
        "trainer.max_epochs=1",
        "trainer.limit_train_batches=2",
        "logger=csv",
    ]
    train_run(overrides, out)
    return out
