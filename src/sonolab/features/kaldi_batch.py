"""Kaldi-compatible log mel filterbank of a whole padded batch in one pass.

``torchaudio.compliance.kaldi.fbank`` takes one waveform at a time, so a batch costs a Python loop
of small FFTs and matrix products, which on a GPU leaves the device waiting on the host. This
restates its steps (snip-edges framing, dither, DC removal, pre-emphasis, window, power spectrum,
mel banks, log) over ``(batch, frames, window)`` tensors; the mel banks and window functions are
torchaudio's own. Written here because no maintained package batches Kaldi's fbank on torch
tensors (kaldifeat does, as a compiled extension outside this stack). Tested equal to torchaudio's
per-clip output within 1e-4 (``tests/features/test_kaldi_batch.py``).
"""

from __future__ import annotations

import functools

import torch
import torchaudio.compliance.kaldi as kaldi


def runs_batched(batched: bool | None, waveforms: torch.Tensor) -> bool:
    """Whether a front-end computes its fbank in one batched pass: as configured, or (None) on any
    device but the CPU. On the CPU the clip loop is as fast (a batch of 12 clips of 10 s: batched
    0.5-0.9 x the loop's speed on the 2-core machine) and bit-identical to torchaudio, which keeps
    the documented CPU runs' numbers; batched products round differently in the last bit."""
    return waveforms.device.type != "cpu" if batched is None else bool(batched)


def kaldi_frame_count(num_samples: torch.Tensor, window: int, shift: int) -> torch.Tensor:
    """Frames Kaldi produces for ``num_samples`` samples (snip_edges: only whole windows)."""
    return torch.clamp((num_samples - window) // shift + 1, min=0)


@functools.lru_cache(maxsize=16)
def _mel_banks(n_mels: int, padded: int, sample_rate: float, low: float, high: float):
    """torchaudio's Kaldi mel banks with the zero column for the Nyquist bin, ``(n_mels, bins)``."""
    banks, _ = kaldi.get_mel_banks(n_mels, padded, sample_rate, low, high, 100.0, -500.0, 1.0)
    return torch.nn.functional.pad(banks, (0, 1))


def kaldi_fbank_batch(
    waveforms: torch.Tensor,
    lengths: torch.Tensor,
    *,
    sample_rate: float,
    n_mels: int,
    frame_length_ms: float = 25.0,
    frame_shift_ms: float = 10.0,
    window_type: str = "povey",
    dither: float = 0.0,
    preemphasis: float = 0.97,
    low_freq: float = 20.0,
    high_freq: float = 0.0,
    energy_floor: float = 0.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Log mel energies of each waveform of ``(batch, samples)`` over its first ``lengths``
    samples, as ``kaldi.fbank(waveform[:n].unsqueeze(0), ...)`` with the same arguments
    (``use_energy`` off, power spectrum, window rounded up to a power of two): ``(batch,
    max frames, n_mels)`` with zeros past each clip's frames, and the frame counts.

    ``energy_floor`` is accepted for the callers' symmetry with torchaudio; it only matters with
    ``use_energy``, which this never adds."""
    del energy_floor
    window = int(sample_rate * frame_length_ms / 1000)
    shift = int(sample_rate * frame_shift_ms / 1000)
    padded = 1 << (window - 1).bit_length()
    counts = kaldi_frame_count(lengths, window, shift)
    frames_total = int(counts.max()) if counts.numel() else 0
    if frames_total == 0:
        return waveforms.new_zeros(waveforms.shape[0], 0, n_mels), counts
    # (batch, frames, window): frames past a clip's own count read its padding and are zeroed below
    frames = (
        waveforms[:, : (frames_total - 1) * shift + window].unfold(1, window, shift).contiguous()
    )
    if dither != 0.0:
        frames = frames + dither * torch.randn_like(frames)
    frames = frames - frames.mean(dim=-1, keepdim=True)
    if preemphasis != 0.0:
        previous = torch.cat([frames[..., :1], frames[..., :-1]], dim=-1)
        frames = frames - preemphasis * previous
    frames = frames * kaldi._feature_window_function(
        window_type, window, 0.42, frames.device, frames.dtype
    )
    power = torch.fft.rfft(frames, n=padded).abs().pow(2.0)
    banks = _mel_banks(n_mels, padded, float(sample_rate), float(low_freq), float(high_freq))
    banks = banks.to(device=power.device, dtype=power.dtype)
    # one (batch x frames, bins) product against the transposed banks, as torchaudio multiplies:
    # the same kernel gives the same rounding on the CPU
    mel = torch.mm(power.reshape(-1, power.shape[-1]), banks.T).reshape(*power.shape[:2], -1)
    mel = mel.clamp_min(torch.finfo(torch.float).eps).log()
    valid = torch.arange(frames_total, device=mel.device) < counts.to(mel.device)[:, None]
    return mel * valid[..., None], counts
