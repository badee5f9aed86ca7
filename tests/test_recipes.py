"""The published tagging recipes hold the reference repositories' values: each experiment's keys
against a table written from the reference files (file and line beside each value), so that a config
cannot drift silently. Deviations the experiments keep are named in their YAML headers."""

from __future__ import annotations

import pytest
from omegaconf import OmegaConf

from .conftest import compose

# YuanGongND/ast at egs/audioset/run.sh, egs/esc50/run_esc.sh, src/traintest.py, src/dataloader.py
AST_COMMON = {
    "task.optimizer._target_": "torch.optim.Adam",  # traintest.py:53
    "task.optimizer.weight_decay": 5e-7,  # traintest.py:53
    "task.optimizer.betas": [0.95, 0.999],  # traintest.py:53
    "task.scheduler.type": "multistep",  # traintest.py:62 MultiStepLR stepped per epoch (:227)
    "task.spec_augment.freq_masks": 1,  # dataloader.py:187-195, one mask of each kind
    "task.spec_augment.time_masks": 1,
    "task.spec_augment.fill": "raw_zero",  # dataloader.py:187-202, masks before normalising
    "model.stride": 10,  # run.sh:51-52 fstride=10 tstride=10
    "model.embed_dim": 768,  # AST-base (DeiT-B)
    "model.depth": 12,
}
AST_AUDIOSET = {
    **AST_COMMON,
    "data.batch_size": 12,  # run.sh:53
    "data.sample_rate": 16000,  # README: 16 kHz
    "features.target_frames": 1024,  # run.sh:57 audio_length=1024
    "features.mean": -4.2677393,  # run.sh:55
    "features.std": 4.5689974,  # run.sh:56
    "task.optimizer.lr": None,  # per set below
    "task.spec_augment.freq_mask": 48,  # run.sh:47 freqm=48
    "task.spec_augment.time_mask": 192,  # run.sh:48 timem=192
    "task.mixup.prob": 0.5,  # run.sh:49 mixup=0.5
    "task.mixup.per_example": True,  # dataloader.py:157 random.random() < self.mixup per item
    "task.mixup.alpha": 10.0,  # dataloader.py:124 np.random.beta(10, 10)
    "task.mixup.domain": "waveform",  # dataloader.py:126 mixes the waveforms
    "task.mixup.partners": "dataset",  # dataloader.py:163 random.randint over the dataset
    "task.mixup.targets": "mixed",  # dataloader.py:168-172
    "task.scheduler.warmup_steps": 1000,  # run.sh:62 warmup=True; traintest.py:120-121
    "task.scheduler.warmup_every": 50,  # traintest.py:120 global_step % 50 == 0
    "loss._target_": "sonolab.losses.MultiLabelBCE",  # run.sh:61 loss=BCE
}
RECIPES = {
    "audioset_ast_full": {
        **AST_AUDIOSET,
        "data.train": ["balanced_train_segments.csv", "unbalanced_train_segments.csv"],  # run.sh:39
        "data.balanced": True,  # run.sh:36 bal=bal
        "task.optimizer.lr": 1e-5,  # run.sh:37
        "trainer.max_epochs": 5,  # run.sh:38
        "task.scheduler.decay_start": 2,  # run.sh:40
        "task.scheduler.decay_every": 1,  # run.sh:41
        "task.scheduler.gamma": 0.5,  # run.sh:42
        "callbacks.weight_averaging.first_epoch": 1,  # run.sh:43 wa_start=1
        "callbacks.weight_averaging.last_epoch": 5,  # run.sh:44 wa_end=5
    },
    "audioset_ast_balanced": {
        **AST_AUDIOSET,
        "data.train": "balanced_train_segments.csv",  # run.sh:29 (balanced_train_data)
        "data.balanced": False,  # run.sh:26 bal=none
        "task.optimizer.lr": 5e-5,  # run.sh:27
        "trainer.max_epochs": 25,  # run.sh:28
        "task.scheduler.decay_start": 10,  # run.sh:30
        "task.scheduler.decay_every": 5,  # run.sh:31
        "task.scheduler.gamma": 0.5,  # run.sh:32
        "callbacks.weight_averaging.first_epoch": 6,  # run.sh:33 wa_start=6
        "callbacks.weight_averaging.last_epoch": 25,  # run.sh:34 wa_end=25
    },
    "esc50_ast": {
        **AST_COMMON,
        "data.batch_size": 48,  # run_esc.sh:32
        "data.sample_rate": 16000,
        "features.target_frames": 512,  # run_esc.sh:38 audio_length=512
        "features.mean": -6.6268077,  # run_esc.sh:36
        "features.std": 5.358466,  # run_esc.sh:37
        "task.optimizer.lr": 1e-5,  # run_esc.sh:24 (audiosetpretrain=True)
        "trainer.max_epochs": 25,  # run_esc.sh:31
        "task.spec_augment.freq_mask": 24,  # run_esc.sh:28
        "task.spec_augment.time_mask": 96,  # run_esc.sh:29
        "task.mixup": None,  # run_esc.sh:30 mixup=0
        "task.scheduler.warmup_steps": 0,  # run_esc.sh:43 warmup=False
        "task.scheduler.decay_start": 5,  # run_esc.sh:44
        "task.scheduler.decay_every": 1,  # run_esc.sh:45
        "task.scheduler.gamma": 0.85,  # run_esc.sh:46
        "loss._target_": "sonolab.losses.LabelCrossEntropy",  # run_esc.sh:42 loss=CE
    },
}
# RetroCirce/HTS-Audio-Transformer at config.py, esc_config.py, sed_model.py, main.py,
# model/htsat.py, utils.py, data_generator.py
HTSAT_COMMON = {
    "task.optimizer._target_": "torch.optim.AdamW",  # sed_model.py:233
    "task.optimizer.lr": 1e-3,  # config.py:29, esc_config.py:30
    "task.optimizer.betas": [0.9, 0.999],  # sed_model.py:236
    "task.optimizer.eps": 1e-8,  # sed_model.py:236
    "task.optimizer.weight_decay": 0.05,  # sed_model.py:236
    "task.scheduler.type": "piecewise",  # sed_model.py:240-251 lr_foo
    # lr_rate [0.02, 0.05, 0.1] in warm-up epochs 0-2, then lr_rate[-1 - bisect_left([10, 20, 30],
    # epoch)], then 0.03 (config.py:33-34)
    "task.scheduler.epochs": [0, 1, 2, 3, 11, 21, 31],
    "task.scheduler.multipliers": [0.02, 0.05, 0.1, 0.1, 0.05, 0.02, 0.03],
    "trainer.max_epochs": 100,  # config.py:30, esc_config.py:31
    "trainer.gradient_clip_val": 1.0,  # main.py:343
    "task.spec_augment.time_mask": 64,  # model/htsat.py:461 SpecAugmentation(64, 2, 8, 2)
    "task.spec_augment.time_masks": 2,
    "task.spec_augment.freq_mask": 8,
    "task.spec_augment.freq_masks": 2,
    "task.spec_augment.fill": "zero",  # after bn0 (model/htsat.py:768-771)
    "data.sample_rate": 32000,  # config.py:53
    "data.clip_seconds": 10.0,  # config.py:54
    "features.hop_length": 320,  # config.py:56
    "features.n_mels": 64,  # config.py:57
    "features.f_min": 50.0,  # config.py:58
    "features.f_max": 14000.0,  # config.py:59
    "model.window_size": 8,  # config.py:68
    "model.spec_size": 256,  # config.py:69
    "model.patch_size": 4,  # config.py:70
    "model.num_heads": [4, 8, 16, 32],  # config.py:72
    "model.embed_dim": 96,  # config.py:73
    "model.depths": [2, 2, 6, 2],  # config.py:74
}
RECIPES["audioset_htsat"] = {
    **HTSAT_COMMON,
    "data.batch_size": 128,  # config.py:28 (32 x 4 GPUs)
    "data.balanced": True,  # config.py:13
    "model.pretrained": None,  # config.py:76 swin_pretrain_path = None
    "task.mixup.prob": 1.0,  # sed_model.py:68-69 every AudioSet batch
    "task.mixup.alpha": 0.5,  # sed_model.py:69 get_mix_lambda(0.5, ...); utils.py:77-78
    "task.mixup.domain": "masked_spectrogram",  # model/htsat.py:770-773 after the masks
    "task.mixup.partners": "flipped",  # utils.py:155 torch.flip(x, dims=[0])
    "task.mixup.targets": "own",  # sed_model.py:73-79 the targets are not mixed
    "trainer.sync_batchnorm": True,  # main.py:337
}
RECIPES["esc50_htsat"] = {
    **HTSAT_COMMON,
    "data.batch_size": 64,  # esc_config.py:29
    "data.pad_mode": "repeat",  # data_generator.py:222 np.concatenate((waveform, waveform))
    "task.mixup": None,  # sed_model.py:68-71 mixup on AudioSet only
    "loss._target_": "sonolab.losses.LabelCrossEntropy",  # esc_config.py:15 clip_ce
}
# qiuqiangkong/audioset_tagging_cnn at scripts/4_train.sh, pytorch/main.py, pytorch/models.py
RECIPES["audioset_cnn14"] = {
    "model.channels": [64, 128, 256, 512, 1024, 2048],  # models.py:168-173
    "model.pool_sizes": [2, 2, 2, 2, 2, 1],  # models.py:203-213 (block 6: pool_size=(1, 1))
    "model.kernel_size": 3,  # models.py:31-36 ConvBlock 3 x 3
    "model.double_conv": True,
    "model.block_dropout": 0.2,  # models.py:204
    "model.dropout": 0.5,  # models.py:220
    "model.head_dropout": False,  # models.py:223 fc_audioset reads the un-dropped x
    "model.pooling": "features",  # models.py:215-219 max + mean over time
    "model.init": "panns",  # models.py:10-22 init_layer / init_bn
    "data.sample_rate": 32000,  # utils/config.py:4
    "data.clip_seconds": 10.0,  # utils/config.py:5
    "data.batch_size": 64,  # 4_train.sh:16 batch 32, loaded x 2 for mixup (main.py:150)
    "data.balanced": True,  # 4_train.sh:14
    "features.n_fft": 1024,  # 4_train.sh:7
    "features.hop_length": 320,  # 4_train.sh:8
    "features.n_mels": 64,  # 4_train.sh:9
    "features.f_min": 50.0,  # 4_train.sh:10
    "features.f_max": 14000.0,  # 4_train.sh:11
    "task.optimizer._target_": "torch.optim.Adam",  # main.py:183
    "task.optimizer.lr": 1e-3,  # 4_train.sh:17
    "task.optimizer.betas": [0.9, 0.999],  # main.py:184
    "task.optimizer.eps": 1e-8,  # main.py:184
    "task.optimizer.weight_decay": 0.0,  # main.py:184
    "task.optimizer.amsgrad": True,  # main.py:184
    "task.scheduler": None,  # no schedule in main.py
    "task.spec_augment.time_mask": 64,  # models.py:163-164 SpecAugmentation(64, 2, 8, 2)
    "task.spec_augment.time_masks": 2,
    "task.spec_augment.freq_mask": 8,
    "task.spec_augment.freq_masks": 2,
    "task.mixup.alpha": 1.0,  # main.py:174 Mixup(mixup_alpha=1.)
    "task.mixup.partners": "pairs",  # pytorch_utils.py do_mixup: x[0::2] and x[1::2]
    "task.mixup.domain": "masked_spectrogram",  # models.py:195-201 after spec_augmenter
    "task.mixup.targets": "mixed",  # main.py:283-284 do_mixup on the targets
    "trainer.max_steps": 1000000,  # 4_train.sh:19 early_stop=1000000 iterations
}


def _value(cfg, key: str):
    node = OmegaConf.select(cfg, key, throw_on_missing=False)
    return OmegaConf.to_container(node) if OmegaConf.is_config(node) else node


@pytest.mark.parametrize("experiment", sorted(RECIPES))
def test_recipe_holds_the_reference_values(experiment, tmp_path):
    cfg = compose("train", [f"experiment={experiment}", "data.root=/any"], tmp_path)
    wrong = {
        key: (_value(cfg, key), expected)
        for key, expected in RECIPES[experiment].items()
        if _value(cfg, key)
        != (pytest.approx(expected) if isinstance(expected, float) else expected)
    }
    assert not wrong, f"{experiment}: key: (config, reference) {wrong}"


def test_each_published_recipe_says_what_it_reproduces_from_where(tmp_path):
    for experiment in RECIPES:
        cfg = compose("train", [f"experiment={experiment}", "data.root=/any"], tmp_path)
        (entry,) = cfg.expected
        assert any(repo in entry.source for repo in ("AST", "HTS-AT", "PANNs"))
