"""Verification evaluation: utterances embedded one at a time (``data.lists.eval_batch_size: 1``)
against batches of similar lengths (longest first, padded to the batch's longest), with how far
the batched embeddings are from the one-at-a-time ones."""

from __future__ import annotations

import time

import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from torch.utils.data import DataLoader, Dataset

from sonolab.data.samplers import LongestFirstSampler
from sonolab.data.verification import collate_padded
from suite.common import ROOT, Row, Settings, synchronise


class _InMemory(Dataset):
    """Utterances as the evaluation loader gives them, from memory (the decode is not measured)."""

    def __init__(self, waves: list[torch.Tensor]):
        self.waves = waves

    def __len__(self) -> int:
        return len(self.waves)

    def __getitem__(self, index: int) -> dict:
        return {"wave": self.waves[index], "index": index, "set": "bench", "path": str(index)}


def _embed_all(features, model, loader, count: int, device: str) -> tuple[torch.Tensor, float]:
    out = torch.zeros(count, model.embedding_dim)
    synchronise(device)
    start = time.perf_counter()
    with torch.no_grad():
        for batch in loader:
            feats, frames = features(batch["wave"].to(device), batch["length"].to(device))
            out[batch["index"]] = model(feats, frames)["embedding"].float().cpu()
    synchronise(device)
    return out, time.perf_counter() - start


def evaluation(settings: Settings) -> list[Row]:
    """ECAPA C=128 (the default run's model) and WeSpeaker's x-vector, random weights (padding
    effects do not depend on training), on utterances of 2-30 s."""
    count = 100 if settings.quick else 500
    generator = torch.Generator().manual_seed(0)
    seconds = torch.empty(count).uniform_(2.0, 30.0, generator=generator)
    waves = [torch.randn(int(s * 16000), generator=generator) * 0.1 for s in seconds]
    audio_seconds = float(seconds.sum())
    dataset = _InMemory(waves)
    rows = []
    for model_name in ("ecapa_small", "xvector_wespeaker"):
        with initialize_config_dir(config_dir=str(ROOT / "configs"), version_base="1.3"):
            cfg = compose("train", [f"model={model_name}"])
        torch.manual_seed(0)
        features = instantiate(cfg.features).to(settings.device).eval()
        model = instantiate(cfg.model).to(settings.device).eval()
        one = DataLoader(dataset, batch_size=1, collate_fn=collate_padded)
        sorted_batches = DataLoader(
            dataset,
            batch_size=32,
            sampler=LongestFirstSampler([float(s) for s in seconds]),
            collate_fn=collate_padded,
        )
        single, single_time = _embed_all(features, model, one, count, settings.device)
        batched, batched_time = _embed_all(features, model, sorted_batches, count, settings.device)
        cosine = torch.nn.functional.cosine_similarity(single, batched, dim=1)
        rows.append(
            Row(
                "evaluation",
                f"{model_name}: {count} utterances of 2-30 s (one repeat)",
                "one at a time",
                "batches of 32, longest first",
                "utterances/s",
                [count / single_time],
                [count / batched_time],
                check=(
                    f"cosine to one-at-a-time min {float(cosine.min()):.6f}, max abs. difference "
                    f"{float((single - batched).abs().max()):.1e}; real-time factor "
                    f"{single_time / audio_seconds:.4f} -> {batched_time / audio_seconds:.4f}"
                ),
            )
        )
    return rows


CASES = {"evaluation": evaluation}
