"""WeSpeaker's two-segment x-vector: TSTP statistics against NumPy, padding ignored, embedding after
seg_2."""

from __future__ import annotations

import numpy as np
import torch

from sonolab.models import TwoSegmentXVector
from sonolab.models.xvector import temporal_statistics


def test_temporal_statistics_match_numpy_and_ignore_padding():
    x = torch.randn(2, 3, 10, dtype=torch.float64)
    stats = temporal_statistics(x, torch.tensor([10, 6]), eps=0.0)
    for row, n in ((0, 10), (1, 6)):
        part = x[row, :, :n].numpy()
        expected = np.concatenate([part.mean(axis=1), part.std(axis=1, ddof=1)])
        assert np.allclose(stats[row].numpy(), expected)
    assert torch.allclose(temporal_statistics(x, eps=0.0)[0], stats[0])


def test_padded_batch_gives_each_utterance_its_own_embedding():
    torch.manual_seed(0)
    model = TwoSegmentXVector(input_size=20, channels=16, stats_channels=24, embedding_dim=8).eval()
    short, long = torch.randn(1, 40, 20), torch.randn(1, 60, 20)
    batch = torch.cat([torch.cat([short, torch.zeros(1, 20, 20)], dim=1), long])
    with torch.no_grad():
        together = model(batch, torch.tensor([40, 60]))["embedding"]
        assert torch.allclose(together[0], model(short)["embedding"][0], atol=1e-5)
        assert torch.allclose(together[1], model(long)["embedding"][0], atol=1e-5)
        pooled = temporal_statistics(torch.nn.Sequential(*model.frame_layers)(long.transpose(1, 2)))
        after_seg_2 = model.seg_2(model.seg_bn_1(torch.relu(model.seg_1(pooled))))
    assert torch.allclose(model(long)["embedding"], after_seg_2) and together.shape == (2, 8)
