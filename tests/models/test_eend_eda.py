"""EEND-EDA: splicing / subsampling, masking of padded frames, 1..max speakers, and it learns."""

from __future__ import annotations

import pytest
import torch

from sonolab.losses import PermutationInvariantBCE
from sonolab.models import EendEda
from sonolab.models.eend_eda import splice_and_subsample


def test_splicing_centres_each_kept_frame_on_its_neighbours():
    feats = torch.arange(2 * 23 * 3, dtype=torch.float32).reshape(2, 23, 3)
    out = splice_and_subsample(feats, context=2, subsampling=10)
    assert out.shape == (2, 3, 3 * 5)  # frames 0, 10, 20
    for k, t in enumerate((0, 10, 20)):
        expected = torch.cat(
            [feats[0, i] if 0 <= i < 23 else torch.zeros(3) for i in range(t - 2, t + 3)]
        )
        assert torch.equal(out[0, k], expected)


def test_padded_frames_do_not_change_a_recordings_output():
    torch.manual_seed(0)
    model = EendEda(
        input_size=8, d_model=32, num_layers=2, num_heads=4, ff_dim=64, max_speakers=3
    ).eval()
    short = torch.randn(1, 230, 8)
    alone = model(short, torch.tensor([230]))
    batch = torch.cat(
        [torch.cat([short, 100 * torch.randn(1, 170, 8)], dim=1), torch.randn(1, 400, 8)]
    )
    together = model(batch, torch.tensor([230, 400]))
    assert together["frames"].tolist() == [23, 40]
    torch.testing.assert_close(
        together["activities"][0, :23], alone["activities"][0], atol=1e-4, rtol=1e-4
    )
    torch.testing.assert_close(
        together["existence"][0], alone["existence"][0], atol=1e-4, rtol=1e-4
    )


@pytest.mark.parametrize("speakers", [1, 2, 3, 4, 5])
def test_eda_gives_one_attractor_per_speaker_plus_the_end_marker(speakers):
    model = EendEda(input_size=8, d_model=16, num_layers=1, num_heads=2, ff_dim=32, max_speakers=5)
    out = model(torch.randn(2, 120, 8), torch.tensor([120, 90]), num_speakers=speakers)
    assert out["activities"].shape == (2, 12, speakers) and out["existence"].shape == (
        2,
        speakers + 1,
    )
    assert EendEda.count_speakers(torch.tensor([[4.0, 1.0, -2.0, 3.0]])).tolist() == [2]


def test_eend_eda_learns_speaker_activities_with_pit_bce():
    """Two 'speakers' add their own offset to the features while active: the loss must fall well
    below chance, and every parameter gets a gradient."""
    torch.manual_seed(0)
    batch, frames, dim, speakers = 8, 200, 8, 2
    voices = 3 * torch.randn(speakers, dim)
    model = EendEda(
        input_size=dim,
        context=2,
        d_model=32,
        num_layers=2,
        num_heads=4,
        ff_dim=64,
        dropout=0.0,
        max_speakers=3,
    )
    loss_fn = PermutationInvariantBCE()
    optimiser = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for step in range(60):
        active = (
            (torch.rand(batch, frames // 20, speakers) > 0.5).float().repeat_interleave(20, dim=1)
        )
        feats = torch.randn(batch, frames, dim) + active @ voices
        out = model(feats, torch.full((batch,), frames), num_speakers=speakers)
        targets = active[:, ::10]  # the model's 10x subsampled frame rate
        loss = loss_fn(out["activities"], targets, existence_logits=out["existence"])
        optimiser.zero_grad()
        loss.backward()
        if (
            step == 0
        ):  # the EDA decoder is fed zeros by design, so only its input weights see no gradient
            silent = [
                n for n, p in model.named_parameters() if p.grad is None or p.grad.abs().sum() == 0
            ]
            assert silent == ["eda.decoder.weight_ih_l0"], silent
        optimiser.step()
        losses.append(loss.item())
    assert sum(losses[-5:]) / 5 < 0.5 * sum(losses[:5]) / 5, losses


def test_noam_schedule_peaks_at_the_end_of_the_warm_up():
    from sonolab.tasks.schedules import noam

    warmup, d_model = 100, 256
    rates = [noam(step, warmup, d_model) for step in range(400)]
    assert max(range(400), key=rates.__getitem__) == warmup - 1  # t = step + 1 = warmup
    assert rates[warmup - 1] == pytest.approx((d_model * warmup) ** -0.5)
    assert rates[9] == pytest.approx(rates[warmup - 1] * 10 / warmup)  # linear rise
    assert rates[4 * warmup - 1] == pytest.approx(rates[warmup - 1] / 2)  # then 1 / sqrt(t)
