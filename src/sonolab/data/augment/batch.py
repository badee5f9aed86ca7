"""Augmentation of whole training batches on the device: spectrogram masks (SpecAugment), per-clip
circular shift and gain, and mixup. Tasks apply them inside their training step."""

from __future__ import annotations

import torch
import torchaudio.transforms as T
from torch import nn

from ...utils.errors import ConfigValueError, check_settings


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
        self.masks = nn.ModuleList(masks)

    def forward(self, features: torch.Tensor, mask_value: float = 0.0) -> torch.Tensor:
        """Masked ``features``; masked bins hold ``mask_value``."""
        x = features.transpose(1, 2).unsqueeze(1)  # (batch, 1, mel bins, frames)
        for mask in self.masks:
            x = mask(x, mask_value)
        return x.squeeze(1).transpose(1, 2)


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


MIXUP_DOMAINS = ("waveform", "spectrogram", "masked_spectrogram")
MIXUP_PARTNERS = ("batch", "flipped", "pairs", "dataset")
MIXUP_TARGETS = ("mixed", "dominant", "own")
MIXUP_RULES = {  # task.mixup.<key>: what Mixup accepts (check_settings)
    key: (lambda v, allowed=allowed: v in allowed, " or ".join(allowed))
    for key, allowed in (
        ("domain", MIXUP_DOMAINS),
        ("partners", MIXUP_PARTNERS),
        ("targets", MIXUP_TARGETS),
    )
}


class Mixup(nn.Module):
    """Mixup (Zhang et al. 2018): examples mixed with partner clips, ``lam ~ Beta(alpha, alpha)``
    per mixed example, in the forms of the reference recipes:

    * AST (YuanGongND/ast src/dataloader.py ``__getitem__``): each example mixed with probability
      0.5 (``per_example``) with a clip drawn from the whole training set (``partners: dataset``),
      Beta(10, 10), raw waveforms, mixed targets.
    * HTS-AT (sed_model.py ``training_step``, utils.py ``do_mixup``): every example mixed with the
      batch reversed (``partners: flipped``), Beta(0.5, 0.5), after SpecAugment
      (``domain: masked_spectrogram``), each example keeping its own targets (``targets: own``).
    * PANNs (pytorch_utils.py ``do_mixup``, main.py): example 2i mixed with 2i+1 (``partners:
      pairs``), the batch halving (PANNs loads twice the batch size to keep it), Beta(1, 1), after
      SpecAugment, mixed targets.

    Args:
        prob: the chance that a batch is mixed, or with ``per_example`` that an example is (the
            others keep ``lam = 1``: themselves).
        alpha: Beta(alpha, alpha) weights.
        domain: ``waveform`` | ``spectrogram`` (features before SpecAugment) |
            ``masked_spectrogram`` (after it).
        partners: ``batch`` (a random permutation of the batch) | ``flipped`` | ``pairs`` |
            ``dataset`` (the datamodule loads one random training clip per example).
        targets: ``mixed`` (soft labels with the same ``lam``) | ``dominant`` (the labels of the
            clip with the larger weight) | ``own`` (each example's own labels).
    """

    def __init__(
        self,
        prob: float = 0.5,
        alpha: float = 10.0,
        domain: str = "waveform",
        targets: str = "mixed",
        partners: str = "batch",
        per_example: bool = False,
    ):
        super().__init__()
        check_settings(
            "task.mixup",
            MIXUP_RULES,
            domain=domain,
            partners=partners,
            targets=targets,
        )
        self.prob, self.alpha, self.domain = float(prob), float(alpha), domain
        self.target_mode, self.partners, self.per_example = targets, partners, bool(per_example)

    def _pairing(self, size: int, device: torch.device) -> tuple[torch.Tensor | None, torch.Tensor]:
        """The examples that come out mixed (None: all of them, in order) and their partners'
        positions in the batch."""
        if self.partners == "flipped":
            return None, torch.arange(size - 1, -1, -1, device=device)
        if self.partners == "pairs":
            rows = torch.arange(0, size - size % 2, 2, device=device)
            return rows, rows + 1
        return None, torch.randperm(size, device=device)

    def draw(self, batch: dict) -> dict | None:
        """The partners of one batch (``wave``, ``length``, ``label``; for partners from the batch
        their positions ``perm``, and ``rows``, the examples that come out mixed, when not all do)
        and the weights ``lam``, or None when this batch is not mixed."""
        size = batch["wave"].shape[0]
        device = batch["wave"].device
        if self.partners != "dataset" and size < 2:
            return None
        if not self.per_example and float(torch.rand(())) >= self.prob:
            return None
        if self.partners == "dataset":
            if "partner_wave" not in batch:
                raise RuntimeError(
                    "task.mixup.partners=dataset but the batch has no partner clips: the "
                    "datamodule must be asked for them (TaggingTask.setup does)"
                )
            partner = {k: batch[f"partner_{k}"] for k in ("wave", "length", "label")}
            count = size
        else:
            rows, perm = self._pairing(size, device)
            partner = {"perm": perm, **{k: batch[k][perm] for k in ("wave", "length", "label")}}
            if rows is not None:
                partner["rows"] = rows
            count = perm.numel()
        lam = torch.distributions.Beta(self.alpha, self.alpha).sample((count,))
        if self.per_example:
            lam = torch.where(torch.rand(count) < self.prob, lam, torch.ones(count))
        partner["lam"] = lam.to(device)
        return partner

    @staticmethod
    def mix(x: torch.Tensor, other: torch.Tensor, lam: torch.Tensor) -> torch.Tensor:
        """``lam * x + (1 - lam) * other`` with one weight per example (first axis)."""
        shape = (-1,) + (1,) * (x.dim() - 1)
        return lam.view(shape) * x + (1 - lam.view(shape)) * other

    @staticmethod
    def own(x: torch.Tensor, partner: dict) -> torch.Tensor:
        """The examples of ``x`` that come out mixed (pairs: the even ones)."""
        return x if "rows" not in partner else x[partner["rows"]]

    def inputs(self, x: torch.Tensor, partner: dict, other: torch.Tensor | None = None):
        """``x`` (waveforms or features of the batch) mixed with its partners: ``other`` when
        given (partners from the dataset), else the batch's own rows at ``perm``."""
        if other is None:
            other = x[partner["perm"]]
        return self.mix(self.own(x, partner), other, partner["lam"])

    def lengths(self, length: torch.Tensor, partner: dict, other: torch.Tensor | None = None):
        """Valid lengths of the mixed examples: the longer of the two clips."""
        if other is None:
            other = length[partner["perm"]]
        return torch.maximum(self.own(length, partner), other)

    def targets(
        self, targets: torch.Tensor, partner_targets: torch.Tensor, lam: torch.Tensor
    ) -> torch.Tensor:
        """Targets of the mixed examples (``targets`` already the mixed examples' own; both one-hot
        or multi-hot floats): mixed, the dominant clip's, or their own."""
        if self.target_mode == "mixed":
            return self.mix(targets, partner_targets, lam)
        if self.target_mode == "own":
            return targets
        return torch.where((lam >= 0.5).view(-1, 1), targets, partner_targets)
