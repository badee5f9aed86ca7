"""Front-ends: the Kaldi fbank of a batch in one pass against torchaudio clip by clip."""

from __future__ import annotations

import torch

from sonolab.features import AstFbank, KaldiFbank
from suite.common import Row, Settings, interleaved, rate


def _compare(name: str, front_end, batch: int, seconds: float, settings: Settings) -> Row:
    generator = torch.Generator().manual_seed(0)
    samples = int(16000 * seconds)
    waves = (torch.randn(batch, samples, generator=generator) * 0.1).to(settings.device)
    lengths = torch.full((batch,), samples, device=settings.device)
    looped = front_end(batched=False).to(settings.device).eval()
    batched = front_end(batched=True).to(settings.device).eval()
    base, fast = interleaved(
        lambda: rate(lambda: looped(waves, lengths), batch, settings.device),
        lambda: rate(lambda: batched(waves, lengths), batch, settings.device),
        settings.repeats,
    )
    difference = (looped(waves, lengths)[0] - batched(waves, lengths)[0]).abs().max()
    return Row(
        "frontends",
        f"{name}: {batch} clips of {seconds:g} s",
        "torchaudio clip by clip",
        "one batched pass",
        "clips/s",
        base,
        fast,
        check=f"max abs. difference {float(difference):.1e} (tolerance 1e-4)",
    )


def frontends(settings: Settings) -> list[Row]:
    """AST's 128-bin fbank of 10 s clips and the verification fbank of 2 s crops."""
    return [
        _compare(
            "AST fbank (128 bins, 1024 frames)",
            lambda batched: AstFbank(target_frames=1024, mean=-4.27, std=4.57, batched=batched),
            12,
            10.0,
            settings,
        ),
        _compare(
            "verification fbank (80 bins)",
            lambda batched: KaldiFbank(n_mels=80, batched=batched),
            32 if not settings.quick else 16,
            2.0,
            settings,
        ),
    ]


CASES = {"frontends": frontends}
