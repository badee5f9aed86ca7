"""Verification evaluation: utterances embedded one at a time (``data.lists.eval_batch_size: 1``)
against the configured batches (longest first, cut at ``eval_batch_size`` utterances and
``eval_batch_seconds`` padded seconds), with how far the batched embeddings are from the
one-at-a-time ones; on synthetic utterances of 2-30 s and on the shared speechocean762 list."""

from __future__ import annotations

import statistics
import time
from functools import partial

import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from torch.utils.data import DataLoader, Dataset

from sonolab.data.audio import load_audio
from sonolab.data.length_batches import LengthBatches, length_batches
from sonolab.data.readers.voxceleb import read_trial_list
from sonolab.data.verification import collate_padded
from suite.common import ROOT, Row, Settings, interleaved, synchronise

SPEECHOCEAN = ROOT.parent / "shared" / "data" / "speechocean762-vox"
SAMPLE_RATE = 16000


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


def _embedding_rate(features, model, waves, outputs: dict, device: str, loader, key: str) -> float:
    """Utterances / s of embedding ``waves`` through ``loader``; the embeddings go to
    ``outputs[key]``."""
    outputs[key], seconds = _embed_all(features, model, loader, len(waves), device)
    return len(waves) / seconds


def _synthetic(count: int) -> tuple[str, list[torch.Tensor]]:
    generator = torch.Generator().manual_seed(0)
    seconds = torch.empty(count).uniform_(2.0, 30.0, generator=generator)
    waves = [torch.randn(int(s * SAMPLE_RATE), generator=generator) * 0.1 for s in seconds]
    return f"{count} synthetic utterances of 2-30 s", waves


def _speechocean() -> tuple[str, list[torch.Tensor]] | None:
    if not (SPEECHOCEAN / "trials.txt").is_file():
        return None
    trials = read_trial_list(SPEECHOCEAN / "trials.txt")
    paths = sorted({t.enroll for t in trials} | {t.test for t in trials})
    waves = [load_audio(SPEECHOCEAN / "wav" / p, SAMPLE_RATE, True) for p in paths]
    return f"speechocean762 trial list, its {len(paths)} utterances", waves


def _loaders(waves: list[torch.Tensor], batch_size: int, batch_seconds: float | None):
    dataset = _InMemory(waves)
    one = DataLoader(dataset, batch_size=1, collate_fn=collate_padded)
    seconds = [w.numel() / SAMPLE_RATE for w in waves]
    batches = length_batches(seconds, batch_size, batch_seconds)
    grouped = LengthBatches(dataset, batches, collate_padded)
    return one, DataLoader(grouped, batch_size=1, collate_fn=grouped.collate_one)


def evaluation(settings: Settings) -> list[Row]:
    """ECAPA C=128 (the default run's model) and WeSpeaker's x-vector, random weights (padding
    effects and speed do not depend on training), each list embedded one at a time and in the
    batches of ``data=voxceleb``, repeats interleaved."""
    with initialize_config_dir(config_dir=str(ROOT / "configs"), version_base="1.3"):
        lists = compose("train", ["data=voxceleb"]).data.lists  # the VoxCeleb recipes' batches
    batch_size, batch_seconds = lists.eval_batch_size, lists.eval_batch_seconds
    sets = [_synthetic(100 if settings.quick else 2000), _speechocean()]
    repeats = min(settings.repeats, 3)
    rows = []
    for name, waves in (s for s in sets if s is not None):
        one, batched = _loaders(waves, batch_size, batch_seconds)
        audio_seconds = sum(w.numel() for w in waves) / SAMPLE_RATE
        for model_name in ("ecapa_small", "xvector_wespeaker"):
            with initialize_config_dir(config_dir=str(ROOT / "configs"), version_base="1.3"):
                cfg = compose("train", [f"model={model_name}"])
            torch.manual_seed(0)
            features = instantiate(cfg.features).to(settings.device).eval()
            model = instantiate(cfg.model).to(settings.device).eval()
            outputs: dict[str, torch.Tensor] = {}
            embed = partial(_embedding_rate, features, model, waves, outputs, settings.device)
            base, fast = interleaved(
                partial(embed, one, "one"), partial(embed, batched, "fast"), repeats
            )
            cosine = torch.nn.functional.cosine_similarity(outputs["one"], outputs["fast"])
            difference = float((outputs["one"] - outputs["fast"]).abs().max())
            rtf = [len(waves) / r / audio_seconds for r in map(statistics.median, (base, fast))]
            rows.append(
                Row(
                    "evaluation",
                    f"{model_name}: {name} ({repeats} repeat{'s' if repeats > 1 else ''})",
                    "one at a time",
                    f"longest first, <= {batch_size} utterances and <= {batch_seconds} padded s",
                    "utterances/s",
                    base,
                    fast,
                    check=(
                        f"cosine to one-at-a-time min {float(cosine.min()):.6f}, max abs. "
                        f"difference {difference:.1e}; "
                        f"real-time factor {rtf[0]:.4f} -> {rtf[1]:.4f}"
                    ),
                )
            )
    return rows


CASES = {"evaluation": evaluation}
