"""EpochWeightAveraging: the model ends (and is checkpointed) as the mean of the chosen epochs'
weights."""

from __future__ import annotations

import lightning as L
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from sonolab.callbacks import EpochWeightAveraging
from sonolab.utils.errors import ConfigValueError


class _Regression(L.LightningModule):
    def __init__(self):
        super().__init__()
        self.layer = torch.nn.Linear(3, 1)
        self.validated: list[torch.Tensor] = []

    def training_step(self, batch, batch_idx):
        x, y = batch
        return torch.nn.functional.mse_loss(self.layer(x), y)

    def validation_step(self, batch, batch_idx):
        self.validated.append(self.layer.weight.detach().clone())

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


class _EpochWeights(L.Callback):
    def __init__(self):
        self.weights: list[torch.Tensor] = []

    def on_train_epoch_end(self, trainer, pl_module):
        self.weights.append(pl_module.layer.weight.detach().clone())


def _fit(tmp_path, averaging):
    torch.manual_seed(0)
    x = torch.randn(32, 3)
    data = DataLoader(TensorDataset(x, x @ torch.tensor([[1.0], [-2.0], [0.5]])), batch_size=8)
    model, seen = _Regression(), _EpochWeights()
    saver = L.pytorch.callbacks.ModelCheckpoint(dirpath=tmp_path / "checkpoints", save_last=True)
    trainer = L.Trainer(
        max_epochs=4,
        callbacks=[averaging, seen, saver],
        logger=False,
        enable_progress_bar=False,
        default_root_dir=tmp_path,
        enable_model_summary=False,
        num_sanity_val_steps=0,
    )
    trainer.fit(model, data, data)
    trainer.save_checkpoint(tmp_path / "end.ckpt")
    return model, seen.weights


def test_last_epochs_are_averaged_and_earlier_validation_sees_current_weights(tmp_path):
    model, weights = _fit(tmp_path, EpochWeightAveraging(last_epochs=2))
    expected = (weights[2] + weights[3]) / 2
    assert torch.allclose(model.layer.weight, expected, atol=1e-6)
    assert not torch.allclose(
        weights[2], weights[3]
    )  # training moved: the average is not one epoch's weights
    # validation of epochs 1-2 used the current weights (no average yet), epochs 3 and 4 the average
    # so far
    validated = model.validated[::4]  # four validation batches per epoch
    assert torch.allclose(validated[0], weights[0]) and torch.allclose(validated[1], weights[1])
    assert torch.allclose(validated[2], weights[2]) and torch.allclose(
        validated[3], expected, atol=1e-6
    )
    saved = torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=False)["state_dict"][
        "layer.weight"
    ]
    assert torch.allclose(
        saved, expected, atol=1e-6
    )  # the epoch-4 checkpoint already holds epoch 4 in its average
    saved = torch.load(tmp_path / "end.ckpt", weights_only=False)["state_dict"]["layer.weight"]
    assert torch.allclose(saved, expected, atol=1e-6)


def test_an_epoch_range_and_bad_settings(tmp_path):
    model, weights = _fit(tmp_path, EpochWeightAveraging(first_epoch=1, last_epoch=3))
    assert torch.allclose(model.layer.weight, (weights[0] + weights[1] + weights[2]) / 3, atol=1e-6)
    with pytest.raises(ConfigValueError, match="exactly one of first_epoch and last_epochs"):
        EpochWeightAveraging(first_epoch=2, last_epochs=3)
    with pytest.raises(ConfigValueError, match="epochs count from 1"):
        EpochWeightAveraging(first_epoch=0)
