"""Augmentation of whole training batches on the device: spectrogram masks (SpecAugment), per-clip
circular shift and gain, and mixup. Tasks apply them inside their training step."""

from __future__ import annotations

import torch
import torchaudio.transforms as T
from torch import nn

from ...utils.errors import ConfigValueError


class SpecAugment(nn.Module):
    """Time and frequency masks on ``(batch, frames, mel bins)`` features in training (torchaudio's
    masking, independent masks per example): ``freq_masks`` masks of up to ``freq_mask`` bins and
    ``time_masks`` of up to ``time_mask`` frames. AST on ESC-50: one of 24 bins and one of 96
    frames; HTS-AT: two of 8 bins and two of 64 frames."""

    def __init__(
        self, freq_mask: int = 24, time_mask: int = 96, freq_masks: int = 1, time_masks: int = 1
    ):
        super().__init__()
        masks = [
            T.FrequencyMasking(freq_mask, iid_masks=True)
            for _ in range(freq_masks if freq_mask else 0)
        ]
        masks += [
            T.TimeMasking(time_mask, iid_masks=True) for _ in range(time_masks if time_mask else 0)
        ]
        self.masks = nn.Sequential(*masks)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        x = features.transpose(1, 2).unsqueeze(1)  # (batch, 1, mel bins, frames)
        return self.masks(x).squeeze(1).transpose(1, 2)


class ShiftGain(nn.Module):
    """Training-time augmentation of fixed-length clip waveforms: each clip rolled circularly by a
    uniform shift of at most ``shift_seconds`` either way (an event in a padded clip moves, nothing
    is cut off) and scaled by a uniform gain of at most ``gain_db`` dB either way. Draws come from
    torch's generator, which the run reseeds per epoch, so they are reproducible.

    Written here because the libraries at hand shift with zero fill or on a single clip
    (``torch.roll`` rolls a whole batch by one amount): this rolls each clip of a batch by its own
    amount.
    """

    def __init__(self, sample_rate: int, shift_seconds: float = 0.0, gain_db: float = 0.0):
        super().__init__()
        if shift_seconds < 0 or gain_db < 0:
            raise ConfigValueError(
                "task.shift_gain",
                "shift_seconds and gain_db >= 0",
                {"shift_seconds": shift_seconds, "gain_db": gain_db},
            )
        self.max_shift = int(round(shift_seconds * sample_rate))
        self.gain_db = float(gain_db)

    def forward(
        self, wave: torch.Tensor, length: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(batch, samples)`` waveforms and valid lengths -> augmented waveforms and lengths (a
        rolled clip's padding can land anywhere, so its whole length counts as valid)."""
        batch, samples = wave.shape
        if self.max_shift > 0:
            shift = torch.randint(-self.max_shift, self.max_shift + 1, (batch, 1)).to(wave.device)
            positions = (torch.arange(samples, device=wave.device).unsqueeze(0) - shift) % samples
            wave = torch.gather(wave, 1, positions)
            length = torch.full_like(length, samples)
        if self.gain_db > 0:
            gain_db = (torch.rand(batch, 1) * 2 - 1).to(wave.device) * self.gain_db
            wave = wave * torch.pow(10.0, gain_db / 20.0)
        return wave, length


class Mixup(nn.Module):
    """Mixup (Zhang et al. 2018): with probability ``prob`` a batch is mixed, each example with a
    partner clip, ``lam ~ Beta(alpha, alpha)`` per example.

    domain: ``waveform`` (AST mixes the raw audio) or ``spectrogram`` (the normalised features).
    partners: ``batch`` (another example of the same batch) or ``dataset`` (a clip drawn from the
        whole training set for each example, as AST's dataset does; the datamodule loads it with the
        batch).
    mix_labels: targets mixed with the same ``lam`` (soft labels; AST), or else each example keeps
        the labels of whichever clip dominates its mix.
    """

    def __init__(
        self,
        prob: float = 0.5,
        alpha: float = 10.0,
        domain: str = "waveform",
        mix_labels: bool = True,
        partners: str = "batch",
    ):
        super().__init__()
        if domain not in ("waveform", "spectrogram"):
            raise ConfigValueError("task.mixup.domain", "waveform or spectrogram", domain)
        if partners not in ("batch", "dataset"):
            raise ConfigValueError("task.mixup.partners", "batch or dataset", partners)
        self.prob, self.alpha, self.domain, self.mix_labels, self.partners = (
            prob,
            alpha,
            domain,
            mix_labels,
            partners,
        )

    def draw(self, batch: dict) -> dict | None:
        """The partners of one batch (``wave``, ``length``, ``label`` and, for batch partners, their
        positions ``perm``) and the weights ``lam``, or None when this batch is not mixed."""
        size = batch["wave"].shape[0]
        if (self.partners == "batch" and size < 2) or float(torch.rand(())) >= self.prob:
            return None
        if self.partners == "dataset":
            if "partner_wave" not in batch:
                raise RuntimeError(
                    "task.mixup.partners=dataset but the batch has no partner clips: the "
                    "datamodule "
                    "must be asked for them (TaggingTask.setup does)"
                )
            partner = {k: batch[f"partner_{k}"] for k in ("wave", "length", "label")}
        else:
            perm = torch.randperm(size, device=batch["wave"].device)
            partner = {"perm": perm, **{k: batch[k][perm] for k in ("wave", "length", "label")}}
        partner["lam"] = (
            torch.distributions.Beta(self.alpha, self.alpha)
            .sample((size,))
            .to(batch["wave"].device)
        )
        return partner

    @staticmethod
    def mix(x: torch.Tensor, other: torch.Tensor, lam: torch.Tensor) -> torch.Tensor:
        """``lam * x + (1 - lam) * other`` with one weight per example (first axis)."""
        shape = (-1,) + (1,) * (x.dim() - 1)
        return lam.view(shape) * x + (1 - lam.view(shape)) * other

    def targets(
        self, targets: torch.Tensor, partner_targets: torch.Tensor, lam: torch.Tensor
    ) -> torch.Tensor:
        """Mixed (or dominant-clip) targets; both are one-hot or multi-hot floats."""
        if self.mix_labels:
            return self.mix(targets, partner_targets, lam)
        return torch.where((lam >= 0.5).view(-1, 1), targets, partner_targets)
