"""The batched Kaldi fbank against torchaudio's, clip by clip (the plain path): the function, and
both front-ends that use it, on clips of mixed lengths in one padded batch."""

from __future__ import annotations

import pytest
import torch
import torchaudio.compliance.kaldi as kaldi

from sonolab.features import AstFbank, KaldiFbank
from sonolab.features.kaldi_batch import kaldi_fbank_batch, runs_batched

TOLERANCE = 1e-4  # log mel energies; float32 products in a different order


def _batch(seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    lengths = torch.tensor([16000, 15999, 7000, 401, 399, 12345])
    waves = torch.randn(len(lengths), 16000, generator=generator) * 0.1
    waves += 0.05  # a DC offset, which each frame (and AST's clip mean) removes
    return waves * (torch.arange(16000) < lengths[:, None]), lengths


@pytest.mark.parametrize(
    ("window_type", "scale", "n_mels"),
    [("povey", 1.0, 23), ("hamming", 32768.0, 80), ("hanning", 1.0, 128)],
)
def test_batched_fbank_equals_torchaudio_clip_by_clip(window_type, scale, n_mels):
    waves, lengths = _batch()
    feats, counts = kaldi_fbank_batch(
        waves * scale, lengths, sample_rate=16000, n_mels=n_mels, window_type=window_type
    )
    assert feats.shape == (6, int(counts.max()), n_mels)
    assert int(counts[4]) == 0 and not feats[4].any()  # 399 samples: no whole 400-sample window
    for i, n in enumerate(lengths.tolist()):
        if n < 400:
            continue  # torchaudio refuses a clip shorter than its window
        reference = kaldi.fbank(
            (waves[i, :n] * scale).unsqueeze(0),
            sample_frequency=16000,
            num_mel_bins=n_mels,
            window_type=window_type,
            dither=0.0,
        )
        assert int(counts[i]) == reference.shape[0]
        torch.testing.assert_close(feats[i, : counts[i]], reference, atol=TOLERANCE, rtol=0)
        assert not feats[i, counts[i] :].any()


def test_the_front_ends_batched_equal_their_clip_loops():
    waves, lengths = _batch()
    keep = lengths >= 400  # KaldiFbank refuses a clip shorter than one frame
    waves, lengths = waves[keep], lengths[keep]
    for make in (
        lambda batched: KaldiFbank(n_mels=80, batched=batched).eval(),
        lambda batched: AstFbank(target_frames=90, mean=-4.0, std=3.0, batched=batched),
    ):
        batched, batched_frames = make(True)(waves, lengths)
        looped, looped_frames = make(False)(waves, lengths)
        assert torch.equal(batched_frames, looped_frames)
        torch.testing.assert_close(batched, looped, atol=TOLERANCE, rtol=0)


def test_batched_runs_off_the_cpu_unless_configured():
    cpu = torch.zeros(1, 10)
    assert not runs_batched(None, cpu) and runs_batched(True, cpu)
    assert not runs_batched(False, torch.zeros(1, 10, device="meta"))
    assert runs_batched(None, torch.zeros(1, 10, device="meta"))
