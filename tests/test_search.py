"""Hyper-parameter search and launchers: the Optuna sweeper's direction follows the metric, train.py
hands it the run's best validation value, and the joblib / SLURM launcher configs compose."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from hydra import compose as hydra_compose
from hydra import initialize_config_dir
from omegaconf import OmegaConf

from sonolab.search import metric_direction, objective
from sonolab.utils.errors import ConfigValueError

from .conftest import ROOT, run_script, tiny_overrides


def _hydra(overrides: list[str]):
    with initialize_config_dir(config_dir=str(ROOT / "configs"), version_base="1.3"):
        cfg = hydra_compose(config_name="train", overrides=overrides, return_hydra_config=True)
    return cfg


def test_metric_direction_by_name_and_from_the_task():
    verification, diarization, tagging = (
        f"sonolab.tasks.{name}Task" for name in ("Verification", "Diarization", "Tagging")
    )
    assert metric_direction("val/eer", verification) == "minimize"
    assert metric_direction("val/min_dcf_0.01", verification) == "minimize"
    assert metric_direction("train/loss", verification) == "minimize"
    assert metric_direction("train/acc", verification) == "maximize"
    assert metric_direction("val/der", diarization) == metric_direction("train/loss", diarization)
    assert metric_direction("val/der", diarization) == "minimize"
    assert metric_direction("val/score", tagging) == metric_direction("val/map", tagging)
    assert metric_direction("val/d_prime", tagging) == "maximize"
    with pytest.raises(ConfigValueError, match="a metric VerificationTask declares a direction"):
        metric_direction("val/der", verification)  # the task logs no such metric
    assert metric_direction("auto", "sonolab.tasks.VerificationTask") == "minimize"
    assert metric_direction("auto", "sonolab.tasks.DiarizationTask") == "minimize"
    assert metric_direction("auto", "sonolab.tasks.TaggingTask") == "maximize"


@pytest.mark.parametrize(
    "search, experiment, direction",
    [("verification_optuna", None, "minimize"), ("tagging_optuna", "esc10_cnn6", "maximize")],
)
def test_every_search_composes_with_the_optuna_sweeper(search, experiment, direction):
    cfg = _hydra(
        [
            f"hparams_search={search}",
            *([f"experiment={experiment}"] if experiment else []),
            "data.root=/x",
        ]
    )
    sweeper = cfg.hydra.sweeper
    assert sweeper._target_.endswith("OptunaSweeper") and sweeper.direction == direction
    for key in sweeper.params:  # every searched key exists in the composed run config
        assert OmegaConf.select(cfg, key) is not None, key
    assert cfg.optimized_metric == "auto"


def test_objective_is_the_best_validation_value_and_never_a_test_metric():
    cfg = OmegaConf.create(
        {"optimized_metric": "auto", "task": {"_target_": "sonolab.tasks.VerificationTask"}}
    )
    summary = {
        "best_validation": {"val/eer": 12.5},
        "train_metrics": {"val/eer": 20.0, "train/loss": 3.0},
    }
    assert objective(cfg, summary) == 12.5
    cfg.optimized_metric = "train/loss"
    assert objective(cfg, summary) == 3.0
    cfg.optimized_metric = "test/synth/eer"
    with pytest.raises(ConfigValueError, match="never a test metric"):
        objective(cfg, summary)
    cfg.optimized_metric = "val/map"
    with pytest.raises(ConfigValueError, match=r"a metric this run logged \(train/loss, val/eer\)"):
        objective(cfg, summary)


def test_launcher_configs_compose():
    joblib = _hydra(["hydra/launcher=local"]).hydra.launcher
    assert joblib._target_.endswith("JoblibLauncher") and joblib.n_jobs == 2
    slurm = _hydra(
        [
            "hydra/launcher=slurm",
            "trainer=ddp",
            "trainer.devices=4",
            "trainer.num_nodes=2",
            "hydra.launcher.partition=gpu",
            "hydra.launcher.account=proj",
        ]
    ).hydra.launcher
    assert slurm._target_.endswith("SlurmLauncher")
    assert (slurm.nodes, slurm.gpus_per_node, slurm.tasks_per_node) == (2, 4, 4)
    assert (slurm.partition, slurm.account, slurm.timeout_min) == ("gpu", "proj", 1440)


@pytest.mark.slow  # two tiny trainings: ~30 s
def test_a_two_trial_optuna_search_on_tiny_data(tiny_voxceleb, tmp_path):
    sweep = tmp_path / "search"
    result = run_script(
        "train.py",
        [
            "-m",
            "hparams_search=verification_optuna",
            "hydra.sweeper.n_trials=2",
            "hydra.sweeper.sampler.n_startup_trials=2",
            *tiny_overrides(tiny_voxceleb),
            "trainer.enable_progress_bar=false",
            "~callbacks.progress_bar",
            f"hydra.sweep.dir={sweep}",
        ],
        tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    best = yaml.safe_load((sweep / "optimization_results.yaml").read_text())
    assert best["name"] == "optuna" and set(best["best_params"]) <= {
        "task.optimizer.lr",
        "task.optimizer.weight_decay",
        "loss.margin",
        "loss.scale",
    }
    # The best value is the smallest validation EER of the two trials (the direction is minimize).
    values = []
    for trial in ("0", "1"):
        metrics = Path(sweep / trial / "csv")
        rows = [
            line.split(",") for line in next(metrics.rglob("metrics.csv")).read_text().splitlines()
        ]
        column = rows[0].index("val/eer")
        values.append(min(float(r[column]) for r in rows[1:] if len(r) > column and r[column]))
    assert best["best_value"] == pytest.approx(min(values))
    assert (sweep / "ablation.md").is_file()
