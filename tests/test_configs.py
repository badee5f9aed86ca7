"""Every config group composes and instantiates; incompatible choices fail at start-up with the
valid names."""

from __future__ import annotations

import re

import pytest
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from sonolab.config import check_compatibility
from sonolab.models.base import count_parameters
from sonolab.run import build_datamodule
from sonolab.utils.errors import IncompatibleConfigError

from .conftest import ROOT, compose, tiny_overrides

CONFIGS = ROOT / "configs"
EXPERIMENTS = sorted(p.stem for p in (ROOT / "experiments" / "experiment").glob("*.yaml"))


def _datamodule(cfg):
    """The configured datamodule, without its augmentation corpora (not present at data.root)."""
    return build_datamodule(OmegaConf.merge(cfg, {"augment": None}))


def _options(group: str) -> list[str]:
    return sorted(p.stem for p in (CONFIGS / group).glob("*.yaml"))


@pytest.mark.parametrize(
    "group",
    [
        "data",
        "features",
        "augment",
        "model",
        "loss",
        "task",
        "trainer",
        "logger",
        "callbacks",
        "paths",
        "debug",
    ],
)
def test_every_option_composes(group, tiny_voxceleb, tmp_path):
    for option in _options(group):
        overrides = [f"{group}={option}"] + (
            [] if group == "data" else tiny_overrides(tiny_voxceleb)
        )
        if group == "data" and option == "voxceleb":
            overrides.append("data.root=/nonexistent/voxceleb")
        cfg = compose("train", overrides, tmp_path)
        if group == "debug":  # a debug option is merged into the global config
            assert cfg.trainer.max_epochs >= 1
        elif option == "none" and group in ("features", "loss"):  # for pipelines: no such part
            assert cfg[group] is None
        else:
            assert cfg[group] is not None


def test_instantiate_groups(tiny_voxceleb, tmp_path):
    cfg = compose("train", tiny_overrides(tiny_voxceleb), tmp_path)
    for option in [o for o in _options("features") if o != "none"]:  # (HTS-AT's at 32 kHz)
        rate = ["data.sample_rate=32000"] if option == "htsat_mel" else []
        assert instantiate(
            compose("train", [f"features={option}", *rate], tmp_path).features
        ).output_dim in (23, 40, 64, 80, 128)
    for option in _options("augment"):
        aug = instantiate(
            compose("train", [f"augment={option}", f"data.root={tiny_voxceleb}"], tmp_path).augment
        )
        assert bool(aug) == (option != "none")
    for option in [o for o in _options("loss") if o != "none"]:
        assert callable(instantiate(compose("train", [f"loss={option}"], tmp_path).loss))
    for option in _options("trainer"):
        assert (
            compose("train", [f"trainer={option}"], tmp_path).trainer._target_
            == "lightning.Trainer"
        )
    for option in _options("logger"):
        loggers = compose("train", [f"logger={option}"], tmp_path).logger
        assert all(instantiate(c) is not None for c in loggers.values())
    from sonolab.run import _resolve_monitor

    callbacks = _resolve_monitor(
        compose("train", ["callbacks=default"], tmp_path)
    )  # monitor: auto -> val/eer
    assert (
        callbacks.model_checkpoint.monitor == "val/eer" and callbacks.model_checkpoint.mode == "min"
    )
    assert all(instantiate(c) is not None for c in callbacks.values())
    dm = _datamodule(cfg)
    dm.setup("fit")
    assert dm.num_classes == 8


def _declared(option: str) -> tuple[int, str | None]:
    """The parameter count a model config states, and the features option it was counted with."""
    match = re.search(
        r"# parameters: ([\d,]+)(?: \(with features=(\w+)\))?",
        (CONFIGS / "model" / f"{option}.yaml").read_text(),
    )
    assert match, (
        f"configs/model/{option}.yaml must state its parameter count in a '# parameters: N' comment"
    )
    return int(match.group(1).replace(",", "")), match.group(2)


def _declared_parameters(option: str) -> int:
    return _declared(option)[0]


# verification_run's size is that of the run it loads
@pytest.mark.parametrize("option", [o for o in _options("model") if o != "verification_run"])
def test_model_parameter_count_matches_config_comment(option, tmp_path):
    count, features = _declared(option)
    model = instantiate(
        compose(
            "train", [f"model={option}"] + ([f"features={features}"] if features else []), tmp_path
        ).model
    )
    assert count_parameters(model) == count


def test_published_sizes():
    # ECAPA-TDNN C=512 / C=1024: 6.2 M / 14.7 M parameters with the 1536-wide aggregation layer
    # (Desplanques et al. 2020; WeSpeaker c1024: 14.65 M); a 3C-wide one at C=1024 is 20.8 M, only
    # under its own name.
    assert 6.0e6 < _declared_parameters("ecapa_c512") < 6.4e6
    assert 14.6e6 < _declared_parameters("ecapa_c1024") < 14.7e6
    assert 20.5e6 < _declared_parameters("ecapa_c1024_mfa3c") < 21.0e6
    assert 4.0e6 < _declared_parameters("xvector") < 4.8e6
    assert 4.60e6 < _declared_parameters("xvector_wespeaker") < 4.62e6  # WeSpeaker XVEC: 4.61 M
    # AST-base: ~87 M with its AudioSet head and input (Gong et al. 2021)
    from sonolab.models import AudioSpectrogramTransformer

    ast = AudioSpectrogramTransformer(n_mels=128, frames=1024)
    ast.reset_classifier(527)
    assert 86.0e6 < count_parameters(ast) < 88.0e6
    # HTS-AT: Swin-T encoder + token-semantic head for AudioSet's 527 classes; the paper's ~31 M
    # adds the official code's unused Linear(527, 527) and its STFT / mel matrices (1,361,712 in
    # all, config comment)
    from sonolab.models import HtsAt

    htsat = HtsAt()
    htsat.reset_classifier(527)
    assert (
        count_parameters(htsat) == 29_963_303
        and count_parameters(htsat) + 128 + 278_256 + 1_083_456 == 31_325_143
    )


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_every_experiment_composes_and_is_compatible(experiment, tmp_path):
    cfg = compose("train", [f"experiment={experiment}", "data.root=/any"], tmp_path)
    check_compatibility(cfg, CONFIGS)
    assert (
        "target" in (ROOT / "experiments" / "experiment" / f"{experiment}.yaml").read_text().lower()
    )


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_no_experiment_tests_a_checkpoint_chosen_on_its_test_list(experiment, tmp_path):
    """A best-by-validation checkpoint is allowed only when the validation list is not tested."""
    from sonolab.run import check_no_selection_on_test

    cfg = compose("train", [f"experiment={experiment}", "data.root=/any"], tmp_path)
    datamodule = _datamodule(cfg)
    assert hasattr(datamodule, "validation_is_tested")
    check_no_selection_on_test(cfg, datamodule)


def test_selection_on_a_tested_list_is_refused(tmp_path):
    from sonolab.run import check_no_selection_on_test

    for overrides in (
        ["data=speechocean762_vox"],
        [
            "data=voxceleb",
            "data.root=/any",
            "data.lists.val_holdout=null",
            "data.lists.val_trials=vox1/veri_test2.txt",
        ],
    ):
        cfg = compose("train", overrides, tmp_path)
        with pytest.raises(IncompatibleConfigError, match="validation list is also a test list"):
            check_no_selection_on_test(cfg, _datamodule(cfg))
        cfg.callbacks.model_checkpoint.monitor = None  # testing the last weights chooses nothing
        check_no_selection_on_test(cfg, _datamodule(cfg))


def _reported_metrics(cfg, datamodule) -> set[str]:
    """The flattened test metric keys the experiment's task writes to metrics.json (per family)."""
    family = cfg.task._target_.rsplit(".", 1)[-1]
    if family == "VerificationTask":
        from sonolab.metrics.eer import DetectionCost

        keys = ["eer", "trials", *(DetectionCost(**c).key() for c in cfg.task.dcf)]
        return {f"test/{name}/{k}" for name in datamodule.lists.test_trials for k in keys}
    if family in ("TaggingTask", "SoundEventDetectionTask"):
        keys = ["mAP", "mean_auc", "d_prime"] if datamodule.multi_label else ["accuracy", "top5"]
        if family == "SoundEventDetectionTask":
            keys += ["event_f1_macro", "event_f1_micro", "segment_f1_macro", "segment_f1_micro"]
            if cfg.task.psds_operating_points:
                keys += ["psds1", "psds2"]
        return {f"test/{datamodule.test_name}/{k}" for k in keys}
    assert family in ("DiarizationTask", "ClusteringDiarizationTask"), family
    return {
        f"test/{name}/{system}/{setup}/corpus/der"
        for name in datamodule.test_names
        for system in ("system", "floor")
        for setup in ("collar0", "collar0.25", "collar0.25_nooverlap")
    }


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_every_experiment_declares_what_it_reproduces(experiment, tmp_path):
    """An ``expected`` list whose every entry names a metric the experiment's task reports."""
    cfg = compose("train", [f"experiment={experiment}", "data.root=/any"], tmp_path)
    assert "expected:" in (ROOT / "experiments" / "experiment" / f"{experiment}.yaml").read_text()
    reported = _reported_metrics(cfg, _datamodule(cfg))
    for entry in cfg.expected:
        assert (
            set(entry) <= {"metric", "value", "source", "tolerance"}
            and isinstance(entry.value, (int, float))
            and entry.source
            and (entry.get("tolerance") is None or entry.tolerance > 0)
        )
        assert entry.metric in reported, f"{entry.metric} is not among {sorted(reported)}"


def test_incompatible_loss_is_refused_naming_valid_choices(tmp_path):
    cfg = compose("train", ["loss=pit_bce"], tmp_path)
    with pytest.raises(
        IncompatibleConfigError,
        match=r"loss=pit_bce \(PermutationInvariantBCE\) consumes 'frame_activities' but "
        r"task=verification \(VerificationTask\) trains on embedding; "
        r"valid choices: loss=aam\|am\|ce$",
    ):
        check_compatibility(cfg, CONFIGS)
    # a single-label classifier takes the one label cross-entropy, multi-label data the BCE
    cfg = compose("train", ["task=tagging", "model=cnn6_small", "loss=aam"], tmp_path)
    with pytest.raises(IncompatibleConfigError, match=r"valid choices: loss=bce\|label_ce$"):
        check_compatibility(cfg, CONFIGS)


def test_incompatible_model_output_is_refused(tmp_path):
    cfg = compose("train", [], tmp_path)
    cfg.model._target_ = (
        "sonolab.losses.PermutationInvariantBCE"  # any class without an embedding output
    )
    with pytest.raises(
        IncompatibleConfigError,
        match=r"outputs None .* valid choices: model=.*ecapa_small.*xvector",
    ):
        check_compatibility(cfg, CONFIGS)


def test_normalised_scoring_requires_a_cohort(tmp_path):
    cfg = compose("train", ["task.scoring.as_norm=true"], tmp_path)
    with pytest.raises(IncompatibleConfigError, match="data.cohort.utts_per_speaker"):
        check_compatibility(cfg, CONFIGS)
    check_compatibility(
        compose("train", ["task.scoring.as_norm=true", "data.cohort.utts_per_speaker=2"], tmp_path),
        CONFIGS,
    )


@pytest.mark.parametrize("experiment", EXPERIMENTS)
@pytest.mark.parametrize("validates", [True, False])
def test_every_experiment_resolves_its_monitor_settings(experiment, validates, tmp_path):
    """No ``auto`` left for Lightning to refuse, with or without validation data (a checkpoint
    callback with ``monitor: null`` still has its ``mode`` checked by Lightning)."""
    from sonolab.run import _resolve_monitor

    cfg = compose("train", [f"experiment={experiment}", "data.root=/any"], tmp_path)
    callbacks = _resolve_monitor(cfg, validates) or {}
    for name, callback in callbacks.items():
        if isinstance(callback, DictConfig):
            assert callback.get("mode") != "auto" and callback.get("monitor") != "auto", name
            if not validates:
                assert callback.get("monitor") is None, name
