"""Scoring verification trials from utterance embeddings.

Cosine similarity, optionally after subtracting the mean training embedding, optionally
followed by adaptive symmetric score normalisation (AS-norm, Matejka et al. 2017) against a
cohort of training-speaker embeddings. Work is done per unique utterance, then indexed per trial,
so a list of millions of trials over thousands of utterances costs one matrix product.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F


@dataclass
class ScoringConfig:
    """How trials are scored.

    mean_subtraction: subtract the mean cohort embedding (the mean over the embedded training
        utterances) before length normalisation.
    as_norm: adaptive s-norm with the ``as_norm_top_n`` most similar cohort speakers.
    """

    mean_subtraction: bool = False
    as_norm: bool = False
    as_norm_top_n: int = 300

    @property
    def needs_cohort(self) -> bool:
        """Whether training embeddings must be extracted before scoring."""
        return self.mean_subtraction or self.as_norm


def cohort_means(embeddings: torch.Tensor, speakers: list[str]) -> torch.Tensor:
    """One length-normalised mean embedding per cohort speaker (speakers in sorted order)."""
    names = sorted(set(speakers))
    position = {name: i for i, name in enumerate(names)}
    index = torch.tensor([position[s] for s in speakers])
    sums = torch.zeros(len(names), embeddings.shape[1], dtype=embeddings.dtype).index_add_(
        0, index, embeddings
    )
    return F.normalize(sums, dim=1)


def as_norm(
    raw: torch.Tensor,
    enroll_stats: tuple[torch.Tensor, torch.Tensor],
    test_stats: tuple[torch.Tensor, torch.Tensor],
) -> torch.Tensor:
    """Symmetric normalisation of ``raw`` trial scores with (mean, std) of each side's top-N cohort
    scores."""
    (mu_e, sd_e), (mu_t, sd_t) = enroll_stats, test_stats
    return 0.5 * ((raw - mu_e) / sd_e + (raw - mu_t) / sd_t)


def cohort_statistics(
    emb: torch.Tensor, cohort: torch.Tensor, top_n: int, rows: int = 4096
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and standard deviation of each utterance's ``top_n`` highest scores against the cohort,
    computed ``rows`` utterances at a time: Vox1-E's 145 k utterances against 6 k cohort speakers
    would be a 7 GB score matrix at once, and a 4096-row block is 200 MB."""
    mean = torch.empty(emb.shape[0], dtype=emb.dtype)
    std = torch.empty(emb.shape[0], dtype=emb.dtype)
    k = min(top_n, cohort.shape[0])
    for start in range(0, emb.shape[0], rows):
        top = (emb[start : start + rows] @ cohort.T).topk(k, dim=1).values
        mean[start : start + rows] = top.mean(dim=1)
        std[start : start + rows] = top.std(dim=1, unbiased=False).clamp(min=1e-6)
    return mean, std


def score_trials(
    embeddings: torch.Tensor,
    enroll_index: np.ndarray,
    test_index: np.ndarray,
    config: ScoringConfig | None = None,
    cohort: torch.Tensor | None = None,
    cohort_speakers: list[str] | None = None,
    chunk: int = 100_000,
    full_matrix_limit: int = 8192,
    cohort_rows: int = 4096,
) -> np.ndarray:
    """Score trials given the embedding of every unique utterance (rows indexed by the trial
    indices)."""
    config = config or ScoringConfig()
    emb = embeddings.double()
    if config.needs_cohort and (cohort is None or cohort_speakers is None):
        raise ValueError(
            "mean subtraction / AS-norm need cohort embeddings "
            "(set data.cohort.utts_per_speaker > 0)"
        )
    if config.mean_subtraction:
        mean = cohort.double().mean(dim=0, keepdim=True)
        emb = emb - mean
        cohort = cohort.double() - mean
    emb = F.normalize(emb, dim=1)
    enroll = torch.as_tensor(enroll_index)
    test = torch.as_tensor(test_index)
    if emb.shape[0] <= full_matrix_limit:  # all pairs at once (8192^2 doubles = 512 MiB at most)
        scores = (emb @ emb.T)[enroll, test]
    else:  # very many utterances: gather pairs in bounded chunks
        scores = torch.empty(len(enroll), dtype=torch.float64)
        for start in range(0, len(enroll), chunk):
            e, t = enroll[start : start + chunk], test[start : start + chunk]
            scores[start : start + chunk] = (emb[e] * emb[t]).sum(dim=1)
    if config.as_norm:
        speakers = cohort_means(F.normalize(cohort.double(), dim=1), cohort_speakers)
        mu, sd = cohort_statistics(emb, speakers, config.as_norm_top_n, cohort_rows)
        scores = as_norm(scores, (mu[enroll], sd[enroll]), (mu[test], sd[test]))
    return scores.numpy()
