"""Recording-session channels: equalisation, reverberation and additive noise at a random SNR.

A session (one "video" in VoxCeleb terms) fixes a microphone/room/background; every utterance
recorded in it goes through the same channel, so that a same-speaker trial across sessions has
to be decided despite a channel change, as in the real benchmark.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import signal


def colored_noise(rng: np.random.Generator, n: int, exponent: float) -> np.ndarray:
    """Gaussian noise with a 1/f**exponent power spectrum (0 white, 1 pink, 2 brown), unit std."""
    spec = np.fft.rfft(rng.normal(0, 1, n))
    f = np.fft.rfftfreq(n)
    f[0] = f[1] if n > 1 else 1.0
    noise = np.fft.irfft(spec / f ** (exponent / 2.0), n)
    return noise / (np.std(noise) + 1e-12)


def synthetic_rir(
    rng: np.random.Generator, rt60: float, drr_db: float, sample_rate: int = 16000
) -> np.ndarray:
    """Room impulse response: direct path, sparse early reflections and an exponential tail."""
    n = max(16, int(rt60 * sample_rate))
    t = np.arange(n) / sample_rate
    tail = rng.normal(0, 1, n) * np.exp(-6.9 * t / rt60)
    tail[: int(0.003 * sample_rate)] = 0.0
    for _ in range(6):  # early reflections within 3-40 ms
        idx = int(rng.uniform(0.003, 0.04) * sample_rate)
        if idx < n:
            tail[idx] += rng.uniform(-1, 1) * 3.0
    tail_energy = np.sum(tail**2)
    tail *= np.sqrt(10 ** (-drr_db / 10.0) / (tail_energy + 1e-12))
    rir = tail
    rir[0] = 1.0
    return rir / np.sqrt(np.sum(rir**2))


@dataclass(frozen=True)
class SessionChannel:
    """One recording session's microphone response, room and background."""

    eq_gain: np.ndarray  # gain per rfft bin of N_EQ points
    rir: np.ndarray | None
    snr_db: float
    noise_exponent: float
    hum_hz: float | None
    level_db: float

    N_EQ = 1024

    @staticmethod
    def sample(rng: np.random.Generator, sample_rate: int = 16000) -> SessionChannel:
        """Draw a random but plausible channel."""
        freqs = np.fft.rfftfreq(SessionChannel.N_EQ, 1.0 / sample_rate)
        gain_db = np.zeros_like(freqs)
        for _ in range(2):  # peaking bands
            centre = np.exp(rng.uniform(np.log(200), np.log(6000)))
            width = rng.uniform(0.3, 1.2)  # octaves
            gain_db += rng.uniform(-5, 5) * np.exp(
                -0.5 * (np.log2((freqs + 1) / centre) / width) ** 2
            )
        lowpass = rng.choice([4000.0, 6000.0, 7600.0], p=[0.15, 0.35, 0.5])
        highpass = rng.uniform(50, 200)
        gain = (
            10 ** (gain_db / 20)
            / np.sqrt(1 + (freqs / lowpass) ** 16)
            / np.sqrt(1 + (highpass / (freqs + 1)) ** 8)
        )
        rir = None
        if rng.random() < 0.4:
            rir = synthetic_rir(
                rng, rt60=rng.uniform(0.1, 0.5), drr_db=rng.uniform(3, 15), sample_rate=sample_rate
            )
        return SessionChannel(
            eq_gain=gain,
            rir=rir,
            snr_db=float(rng.uniform(10, 35)),
            noise_exponent=float(rng.uniform(0, 2)),
            hum_hz=float(rng.choice([50.0, 60.0])) if rng.random() < 0.25 else None,
            level_db=float(rng.uniform(-32, -18)),
        )

    def apply(
        self, speech: np.ndarray, rng: np.random.Generator, sample_rate: int = 16000
    ) -> np.ndarray:
        """Pass `speech` through the session's channel (utterance-level SNR jitter of +-3 dB)."""
        x = speech.astype(np.float64)
        if self.rir is not None:
            x = signal.fftconvolve(x, self.rir)[: len(x)]
        eq = np.fft.irfft(self.eq_gain)  # zero-phase FIR, centred
        eq = np.roll(eq, len(eq) // 2) * np.hanning(len(eq))
        x = signal.fftconvolve(x, eq, mode="same")
        speech_power = np.mean(x**2) + 1e-12
        noise = colored_noise(rng, len(x), self.noise_exponent)
        if self.hum_hz is not None:
            t = np.arange(len(x)) / sample_rate
            noise += sum(
                np.sin(2 * np.pi * self.hum_hz * h * t + rng.uniform(0, 6.3)) / h for h in (1, 2, 3)
            )
            noise /= np.std(noise) + 1e-12
        snr = self.snr_db + rng.uniform(-3, 3)
        x = x + noise * np.sqrt(speech_power / 10 ** (snr / 10))
        x *= 10 ** (self.level_db / 20) / (np.sqrt(np.mean(x**2)) + 1e-12)
        return np.clip(x, -1.0, 1.0).astype(np.float32)
