"""Losses: margins as defined in the papers, warm-up schedule, PIT, and loss going down."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
import torch.nn.functional as F

from sonolab.losses import (
    AdditiveAngularMarginSoftmax,
    AdditiveMarginSoftmax,
    MarginWarmup,
    PermutationInvariantBCE,
    SoftmaxCrossEntropy,
)


def _manual(loss, emb, labels, target_fn):
    cos = F.normalize(emb) @ F.normalize(loss.weight).T
    logits = cos.clone()
    idx = torch.arange(len(labels))
    logits[idx, labels] = target_fn(cos[idx, labels])
    return F.cross_entropy(loss.scale * logits, labels)


def test_aam_and_am_match_their_definitions():
    torch.manual_seed(0)
    emb, labels = torch.randn(16, 8), torch.randint(0, 5, (16,))
    aam = AdditiveAngularMarginSoftmax(8, 5, scale=30.0, margin=0.3)
    am = AdditiveMarginSoftmax(8, 5, scale=30.0, margin=0.3)
    am.weight.data.copy_(aam.weight.data)
    m = 0.3
    expected_aam = _manual(
        aam,
        emb,
        labels,
        lambda c: torch.where(
            c > math.cos(math.pi - m), torch.cos(torch.acos(c) + m), c - math.sin(math.pi - m) * m
        ),
    )
    assert aam(emb, labels).item() == pytest.approx(expected_aam.item(), rel=1e-5)
    assert am(emb, labels).item() == pytest.approx(
        _manual(am, emb, labels, lambda c: c - m).item(), rel=1e-5
    )
    # Zero margin reduces both to the plain scaled-cosine softmax.
    aam.margin = am.margin = 0.0
    plain = F.cross_entropy(aam.logits(emb), labels)
    assert aam(emb, labels).item() == pytest.approx(plain.item(), rel=1e-5)
    assert am(emb, labels).item() == pytest.approx(plain.item(), rel=1e-5)


def test_margin_cosines_stay_float32_under_autocast():
    """Under bf16 autocast the cosines (and the AAM loss) match float64 to float32 precision."""
    torch.manual_seed(0)
    emb, labels = torch.randn(32, 192), torch.randint(0, 50, (32,))
    aam = AdditiveAngularMarginSoftmax(192, 50, scale=32.0, margin=0.2)
    reference = F.normalize(emb.double()) @ F.normalize(aam.weight.double()).T
    logits = reference.clone()
    rows = torch.arange(len(labels))
    logits[rows, labels] = torch.cos(torch.acos(reference[rows, labels]) + 0.2)
    expected = F.cross_entropy(32.0 * logits, labels)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        cos = aam.cosine(emb)
        loss = aam(emb, labels)
        coarse = F.linear(
            F.normalize(emb), F.normalize(aam.weight)
        )  # what autocast alone would give
    assert cos.dtype == torch.float32 and (cos.double() - reference).abs().max() < 1e-6
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)
    assert (
        coarse.dtype == torch.bfloat16 and (coarse.double() - reference).abs().max() > 1e-4
    )  # the test can fail


def test_margin_warmup_schedule():
    w = MarginWarmup(start_epoch=2, end_epoch=6, initial=0.0, kind="linear")
    assert [w.margin(e, 0.2) for e in (0, 2, 4, 6, 9)] == pytest.approx([0, 0, 0.1, 0.2, 0.2])
    e = MarginWarmup(start_epoch=0, end_epoch=10, kind="exp")
    assert e.margin(5, 0.2) == pytest.approx(0.2 * (1 - 1e-3**0.5))
    loss = AdditiveAngularMarginSoftmax(
        4, 3, margin=0.2, margin_warmup={"start_epoch": 0, "end_epoch": 4, "kind": "linear"}
    )
    assert loss.margin == 0.0
    loss.set_epoch(2.0)
    assert loss.margin == pytest.approx(0.1)
    with pytest.raises(ValueError, match="'exp' or 'linear'"):
        MarginWarmup(kind="cosine")


@pytest.mark.parametrize(
    "cls", [SoftmaxCrossEntropy, AdditiveMarginSoftmax, AdditiveAngularMarginSoftmax]
)
def test_training_on_separable_embeddings_lowers_the_loss(cls):
    torch.manual_seed(0)
    centres = torch.randn(4, 16) * 3
    labels = torch.arange(4).repeat(16)
    emb = centres[labels] + torch.randn(64, 16)
    loss = cls(16, 4)
    opt = torch.optim.SGD(loss.parameters(), lr=0.5)
    first = loss(emb, labels).item()
    for _ in range(50):
        opt.zero_grad()
        value = loss(emb, labels)
        value.backward()
        opt.step()
    assert value.item() < 0.5 * first
    assert (loss.logits(emb).argmax(1) == labels).float().mean() > 0.95


def _brute_force_pit(logits, targets, frame_mask, speaker_counts):
    """Minimum over all permutations of each recording's real speakers, BCE averaged over valid
    cells."""
    per_item = []
    for b, n in enumerate(speaker_counts):
        valid = frame_mask[b]
        best = min(
            F.binary_cross_entropy_with_logits(logits[b, valid, :n], targets[b, valid][:, list(p)])
            for p in itertools.permutations(range(n))
        )
        per_item.append(best)
    return torch.stack(per_item).mean()


def test_pit_bce_picks_the_best_permutation():
    torch.manual_seed(0)
    logits = torch.randn(2, 50, 3)
    targets = (torch.rand(2, 50, 3) > 0.5).float()
    pit = PermutationInvariantBCE()
    brute = _brute_force_pit(logits, targets, torch.ones(2, 50, dtype=torch.bool), [3, 3])
    assert pit(logits, targets).item() == pytest.approx(brute.item(), rel=1e-6)
    assert pit(logits, targets[..., [2, 0, 1]]).item() == pytest.approx(
        pit(logits, targets).item(), rel=1e-6
    )


@pytest.mark.parametrize("max_speakers", [1, 2, 3, 4, 5])
def test_hungarian_pit_equals_brute_force_with_padding_and_masks(max_speakers):
    torch.manual_seed(max_speakers)
    batch, frames = 4, 40
    counts = [max_speakers, max(1, max_speakers - 1), 1, max_speakers]
    lengths = [40, 31, 17, 40]
    logits = torch.randn(batch, frames, max_speakers, requires_grad=True)
    targets = (torch.rand(batch, frames, max_speakers) > 0.6).float()
    frame_mask = torch.arange(frames)[None] < torch.tensor(lengths)[:, None]
    speaker_mask = torch.arange(max_speakers)[None] < torch.tensor(counts)[:, None]
    targets = targets * speaker_mask[:, None, :] * frame_mask[:, :, None]
    loss = PermutationInvariantBCE()(logits, targets, frame_mask, speaker_mask)
    assert loss.item() == pytest.approx(
        _brute_force_pit(logits, targets, frame_mask, counts).item(), rel=1e-5
    )
    loss.backward()
    assert logits.grad.abs().sum() > 0
    # padded frames and padded speakers get no gradient: they are not part of the loss
    assert logits.grad[2, 17:].abs().sum() == 0 and logits.grad[2, :, 1:].abs().sum() == 0


def test_pit_bce_rejects_speaker_masks_with_gaps():
    with pytest.raises(ValueError, match="real speakers first"):
        PermutationInvariantBCE()(
            torch.zeros(1, 5, 3),
            torch.zeros(1, 5, 3),
            speaker_mask=torch.tensor([[True, False, True]]),
        )


def test_existence_loss_labels_the_first_n_attractors():
    from sonolab.losses.pit import existence_loss

    counts = torch.tensor([2, 0])
    logits = torch.tensor([[5.0, 5.0, -5.0, 9.0], [-5.0, 9.0, 9.0, 9.0]])  # beyond n + 1: ignored
    expected_0 = F.binary_cross_entropy_with_logits(logits[0, :3], torch.tensor([1.0, 1.0, 0.0]))
    expected_1 = F.binary_cross_entropy_with_logits(logits[1, :1], torch.tensor([0.0]))
    assert existence_loss(logits, counts).item() == pytest.approx(
        ((expected_0 + expected_1) / 2).item(), rel=1e-6
    )
    pit = PermutationInvariantBCE(existence_weight=0.5)
    acts, targets = torch.zeros(2, 3, 4), torch.zeros(2, 3, 4)
    mask = torch.arange(4)[None] < counts[:, None]
    with_existence = pit(acts, targets, speaker_mask=mask, existence_logits=logits)
    assert with_existence.item() == pytest.approx(
        pit(acts, targets, speaker_mask=mask).item() + 0.5 * existence_loss(logits, counts).item(),
        rel=1e-6,
    )
    with pytest.raises(ValueError, match="cannot hold 2 speakers plus the end marker"):
        existence_loss(logits[:, :2], counts)
