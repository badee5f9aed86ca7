"""Fbank front-end against torchaudio's Kaldi fbank; cosine scoring and AS-norm against hand
computation."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import torchaudio.compliance.kaldi as kaldi

from sonolab.features import KaldiFbank
from sonolab.inference import ScoringConfig, score_trials


def test_fbank_matches_kaldi_and_ignores_padding():
    torch.manual_seed(0)
    a, b = torch.randn(16000) * 0.1, torch.randn(12000) * 0.1
    batch = torch.zeros(2, 16000)
    batch[0], batch[1, :12000] = a, b
    fb = KaldiFbank(n_mels=80).eval()
    feats, frames = fb(batch, torch.tensor([16000, 12000]))
    assert feats.shape == (2, 98, 80) and frames.tolist() == [98, 73]
    ref = kaldi.fbank(
        b[None] * 32768, num_mel_bins=80, dither=0.0, energy_floor=0.0, window_type="hamming"
    )
    ref = ref - ref.mean(0)
    torch.testing.assert_close(feats[1, :73], ref, atol=1e-4, rtol=1e-4)
    assert feats[1, 73:].abs().sum() == 0
    with pytest.raises(ValueError, match="shorter than one"):
        fb(torch.zeros(1, 100), torch.tensor([100]))


def test_cosine_scoring_and_mean_subtraction():
    torch.manual_seed(0)
    emb = torch.randn(5, 8)
    enroll, test = np.array([0, 1, 2]), np.array([3, 4, 0])
    scores = score_trials(emb, enroll, test)
    expected = F.cosine_similarity(emb[enroll], emb[test]).double().numpy()
    np.testing.assert_allclose(scores, expected, atol=1e-6)
    cohort = torch.randn(6, 8) + 2.0
    shifted = score_trials(
        emb, enroll, test, ScoringConfig(mean_subtraction=True), cohort, list("aabbcc")
    )
    centred = emb - cohort.mean(0)
    np.testing.assert_allclose(
        shifted, F.cosine_similarity(centred[enroll], centred[test]).numpy(), atol=1e-6
    )


def test_as_norm_against_hand_computation():
    torch.manual_seed(1)
    emb = torch.randn(4, 6)
    cohort = torch.randn(10, 6)
    speakers = [f"s{i // 2}" for i in range(10)]  # 5 cohort speakers, 2 utterances each
    enroll, test = np.array([0, 1]), np.array([2, 3])
    top_n = 3
    got = score_trials(
        emb, enroll, test, ScoringConfig(as_norm=True, as_norm_top_n=top_n), cohort, speakers
    )
    e = F.normalize(emb.double())
    means = F.normalize(
        torch.stack([F.normalize(cohort.double())[2 * k : 2 * k + 2].sum(0) for k in range(5)])
    )
    out = []
    for i, j in zip(enroll, test):
        raw = float(e[i] @ e[j])
        top_e = torch.sort(e[i] @ means.T, descending=True).values[:top_n]
        top_t = torch.sort(e[j] @ means.T, descending=True).values[:top_n]
        zs = (raw - top_e.mean()) / top_e.std(unbiased=False)
        ts = (raw - top_t.mean()) / top_t.std(unbiased=False)
        out.append(0.5 * float(zs + ts))
    np.testing.assert_allclose(got, out, atol=1e-9)
    in_blocks = score_trials(
        emb,
        enroll,
        test,
        ScoringConfig(as_norm=True, as_norm_top_n=top_n),
        cohort,
        speakers,
        cohort_rows=1,
    )  # cohort statistics one utterance at a time
    np.testing.assert_allclose(in_blocks, out, atol=1e-9)
    with pytest.raises(ValueError, match="cohort"):
        score_trials(emb, enroll, test, ScoringConfig(as_norm=True))


def test_chunked_and_full_matrix_scoring_agree():
    torch.manual_seed(2)
    emb = torch.randn(50, 16)
    rng = np.random.default_rng(0)
    enroll, test = rng.integers(0, 50, 300), rng.integers(0, 50, 300)
    full = score_trials(emb, enroll, test)
    chunked = score_trials(emb, enroll, test, chunk=7, full_matrix_limit=0)
    np.testing.assert_allclose(full, chunked, atol=1e-12)
