"""How fast EER / minDCF and cosine scoring are on millions of trials (CPU).

Run: python3 -m uv run --frozen python benchmarks/metrics_scale.py [--trials 5000000]
"""

from __future__ import annotations

import argparse
import time
import tracemalloc

import numpy as np
import torch

from sonolab.inference import score_trials
from sonolab.metrics import verification_metrics


def main() -> None:
    """Time the metrics on synthetic scores and the scoring on random embeddings; print a table row
    each."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--trials", type=int, default=5_000_000)
    parser.add_argument("--utterances", type=int, default=5_000)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    labels = rng.random(args.trials) < 0.5
    scores = rng.normal(size=args.trials) + 2.0 * labels
    scores = np.round(scores, 3)  # many ties, as quantised scores have
    tracemalloc.start()
    start = time.perf_counter()
    metrics = verification_metrics(scores, labels)
    elapsed = time.perf_counter() - start
    peak = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    print(
        f"| EER + minDCF(0.01, 0.05) | {args.trials:,} trials | {elapsed:.2f} s | peak {peak:.0f} "
        f"MiB | EER {metrics['eer']:.3f} % |"
    )

    emb = torch.randn(args.utterances, 192)
    enroll = rng.integers(0, args.utterances, args.trials)
    test = rng.integers(0, args.utterances, args.trials)
    start = time.perf_counter()
    score_trials(emb, enroll, test)
    print(
        f"| cosine scoring | {args.trials:,} trials, {args.utterances:,} utterances | "
        f"{time.perf_counter() - start:.2f} s | | |"
    )


if __name__ == "__main__":
    main()
