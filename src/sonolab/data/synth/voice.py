"""Source-filter synthesis of speaker-specific, phone-like speech.

No library synthesises *parametrised speakers* (F0 range, vocal-tract length, tilt, jitter,
shimmer, breathiness) offline and deterministically, so this is written here with numpy/scipy.
It is a classic formant synthesiser:

* source: a glottal pulse train whose instantaneous F0 follows a prosodic contour (declination,
  pitch accents, drift) with per-period jitter and shimmer, low-passed for spectral tilt, plus
  aspiration noise (breathiness);
* filter: a cascade of formant resonators whose frequencies follow phone targets, scaled by the
  speaker's vocal-tract length and perturbed per speaker and vowel (idiolect), applied frame by
  frame in the STFT domain;
* frication: band-shaped noise for fricatives and stop bursts.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import signal

# Adult male reference formants (Hz), after Peterson & Barney (1952).
VOWELS: dict[str, tuple[float, float, float]] = {
    "i": (270, 2290, 3010),
    "I": (390, 1990, 2550),
    "e": (530, 1840, 2480),
    "ae": (660, 1720, 2410),
    "a": (730, 1090, 2440),
    "o": (570, 840, 2410),
    "U": (440, 1020, 2240),
    "u": (300, 870, 2240),
    "V": (640, 1190, 2390),
    "er": (490, 1350, 1690),
}
# Consonant classes: (kind, parameters). Fricative bands are (low Hz, high Hz, relative level).
CONSONANTS: dict[str, tuple[str, tuple]] = {
    "s": ("fricative", (4500, 7800, 0.5)),
    "sh": ("fricative", (2200, 5500, 0.5)),
    "f": ("fricative", (1200, 7800, 0.15)),
    "h": ("aspirate", ()),
    "m": ("nasal", (250, 1100, 2300)),
    "n": ("nasal", (250, 1700, 2500)),
    "l": ("liquid", (360, 1300, 2800)),
    "p": ("stop", (500, 3000, 0.4)),
    "t": ("stop", (3000, 7000, 0.5)),
    "k": ("stop", (1500, 4000, 0.45)),
}

HOP = 80  # 5 ms at 16 kHz: frame rate of all control tracks
N_FFT = 512


@dataclass(frozen=True)
class SpeakerProfile:
    """The parameters that make one synthetic voice differ from another."""

    f0_mean: float  # Hz
    f0_range_st: float  # std of pitch accents, in semitones
    vtl_factor: float  # formant scaling: >1 = shorter vocal tract (higher formants)
    formant_offsets: np.ndarray  # (n_vowels, 3) multiplicative per-vowel idiolect
    f4: float  # speaker-specific higher formants (Hz)
    f5: float
    bandwidth_scale: float
    tilt_pole: float  # one-pole low-pass coefficient of the glottal source (spectral tilt)
    open_quotient: float
    jitter: float  # relative period perturbation
    shimmer: float  # relative amplitude perturbation
    breathiness: float  # aspiration noise relative to voicing
    rate: float  # syllables per second
    nasal_coupling: float

    @staticmethod
    def sample(rng: np.random.Generator) -> SpeakerProfile:
        """Draw a voice: two broad groups (low / high F0 and vocal-tract length) plus individual
        spread."""
        high = rng.random() < 0.5
        f0_mean = float(np.exp(rng.normal(np.log(205.0 if high else 115.0), 0.14)))
        vtl = float(rng.normal(1.16 if high else 1.0, 0.06))
        return SpeakerProfile(
            f0_mean=f0_mean,
            f0_range_st=float(rng.uniform(1.0, 3.5)),
            vtl_factor=vtl,
            formant_offsets=np.exp(rng.normal(0.0, 0.08, size=(len(VOWELS), 3))),
            f4=float(rng.uniform(3300, 3900) * vtl),
            f5=float(rng.uniform(4300, 5000) * vtl),
            bandwidth_scale=float(rng.uniform(0.8, 1.4)),
            tilt_pole=float(rng.uniform(0.80, 0.97)),
            open_quotient=float(rng.uniform(0.4, 0.75)),
            jitter=float(rng.uniform(0.003, 0.02)),
            shimmer=float(rng.uniform(0.02, 0.08)),
            breathiness=float(rng.uniform(0.02, 0.3)),
            rate=float(rng.uniform(3.5, 6.0)),
            nasal_coupling=float(rng.uniform(0.0, 0.3)),
        )


def _resonance(freqs: np.ndarray, centre: np.ndarray, bandwidth: np.ndarray) -> np.ndarray:
    """Magnitude response of a two-pole resonator, unity at DC; broadcasts frames x bins."""
    half = bandwidth / 2.0
    num = centre**2 + half**2
    den = np.sqrt(((freqs - centre) ** 2 + half**2) * ((freqs + centre) ** 2 + half**2))
    return num / den


def _phone_sequence(
    rng: np.random.Generator, profile: SpeakerProfile, duration: float
) -> list[tuple[str, float]]:
    """CV(C) syllables with word pauses until `duration` seconds are filled."""
    vowels = list(VOWELS)
    consonants = list(CONSONANTS)
    phones: list[tuple[str, float]] = [("sil", rng.uniform(0.05, 0.2))]
    total = phones[0][1]
    syllable = 1.0 / profile.rate
    while total < duration:
        if rng.random() < 0.75:
            c = consonants[rng.integers(len(consonants))]
            phones.append((c, syllable * rng.uniform(0.2, 0.4)))
        phones.append((vowels[rng.integers(len(vowels))], syllable * rng.uniform(0.45, 0.9)))
        if rng.random() < 0.25:
            c = consonants[rng.integers(len(consonants))]
            phones.append((c, syllable * rng.uniform(0.15, 0.3)))
        if rng.random() < 0.2:
            phones.append(("sil", rng.uniform(0.08, 0.3)))
        total = sum(d for _, d in phones)
    return phones


def _smooth(track: np.ndarray, width: int) -> np.ndarray:
    """Moving-average along frames: coarticulation between phone targets."""
    if width <= 1:
        return track
    kernel = np.ones(width) / width
    pad = np.pad(
        track, [(width // 2, width - 1 - width // 2)] + [(0, 0)] * (track.ndim - 1), mode="edge"
    )
    return np.apply_along_axis(lambda x: np.convolve(x, kernel, mode="valid"), 0, pad)


def synthesize_utterance(
    profile: SpeakerProfile, rng: np.random.Generator, duration: float, sample_rate: int = 16000
) -> np.ndarray:
    """Synthesise `duration` seconds of phone-like speech for one speaker (float32, peak ~0.5)."""
    phones = _phone_sequence(rng, profile, duration)
    n_frames = int(sum(d for _, d in phones) * sample_rate / HOP) + 1
    vowel_index = {v: i for i, v in enumerate(VOWELS)}

    # Control tracks per 5 ms frame.
    formants = np.zeros((n_frames, 5))
    bandwidths = np.zeros((n_frames, 5))
    voicing = np.zeros(n_frames)
    amplitude = np.zeros(n_frames)
    frication = np.zeros((n_frames, 3))  # low Hz, high Hz, level
    aspiration = np.zeros(n_frames)
    accent = np.zeros(n_frames)
    base_bw = np.array([80.0, 100.0, 140.0, 200.0, 260.0]) * profile.bandwidth_scale
    neutral = np.array([500.0, 1500.0, 2500.0]) * profile.vtl_factor
    formants[:] = [*neutral, profile.f4, profile.f5]
    bandwidths[:] = base_bw
    start = 0
    for phone, dur in phones:
        stop = min(n_frames, start + max(1, int(dur * sample_rate / HOP)))
        sl = slice(start, stop)
        if phone in VOWELS:
            f = (
                np.array(VOWELS[phone])
                * profile.vtl_factor
                * profile.formant_offsets[vowel_index[phone]]
            )
            formants[sl, :3] = f
            voicing[sl], amplitude[sl] = 1.0, 1.0
            if rng.random() < 0.3:  # pitch accent on this syllable
                accent[sl] = rng.normal(0.0, profile.f0_range_st)
        elif phone != "sil":
            kind, params = CONSONANTS[phone]
            if kind in ("nasal", "liquid"):
                formants[sl, :3] = np.array(params) * profile.vtl_factor
                bandwidths[sl, :3] *= 1.8 if kind == "nasal" else 1.2
                voicing[sl], amplitude[sl] = 1.0, 0.35 if kind == "nasal" else 0.6
            elif kind == "fricative":
                lo, hi, level = params
                frication[sl] = (lo * profile.vtl_factor, min(hi * profile.vtl_factor, 7900), level)
                voicing[sl] = 0.3 if rng.random() < 0.3 else 0.0  # voiced fricative
                amplitude[sl] = 0.3
            elif kind == "aspirate":
                aspiration[sl] = 0.6
                amplitude[sl] = 0.4
            elif kind == "stop":
                lo, hi, level = params
                burst = max(start + 1, stop - max(1, int(0.015 * sample_rate / HOP)))
                frication[burst:stop] = (lo, hi, level)
                amplitude[burst:stop] = 0.5
        start = stop
    formants = _smooth(formants, 7)
    bandwidths = _smooth(bandwidths, 5)
    voicing = _smooth(voicing, 3)
    amplitude = _smooth(amplitude, 5)
    accent = _smooth(accent, 25)

    # Prosody: declination, accents, slow drift; then jitter per glottal period.
    t = np.arange(n_frames) * HOP / sample_rate
    declination = -rng.uniform(1.0, 3.0) * t / max(t[-1], 1e-3)
    drift = _smooth(rng.normal(0, 0.6, n_frames), 60) * 3.0
    semitones = declination + accent + drift
    f0_frames = profile.f0_mean * 2.0 ** (semitones / 12.0)

    n_samples = n_frames * HOP
    f0 = np.interp(np.arange(n_samples) / HOP, np.arange(n_frames), f0_frames)
    phase = np.cumsum(f0 / sample_rate)
    period_starts = np.flatnonzero(np.diff(np.floor(phase)) > 0)
    pulses = np.zeros(n_samples)
    jitter = rng.normal(0, profile.jitter * sample_rate / profile.f0_mean, len(period_starts))
    shimmer = np.clip(1.0 + rng.normal(0, profile.shimmer, len(period_starts)), 0.2, 2.0)
    positions = np.clip(np.round(period_starts + jitter).astype(int), 0, n_samples - 1)
    np.add.at(pulses, positions, shimmer)
    # Glottal flow derivative shape (Rosenberg-like), open phase from the speaker's open quotient.
    open_len = max(4, int(profile.open_quotient * sample_rate / profile.f0_mean))
    n = np.arange(open_len)
    flow = 0.5 * (1 - np.cos(np.pi * n / (open_len * 0.7)))
    flow[int(open_len * 0.7) :] = np.cos(
        np.pi * (n[int(open_len * 0.7) :] - open_len * 0.7) / (open_len * 0.6)
    )
    glottal = np.diff(np.clip(flow, 0, None), prepend=0.0)
    source = signal.fftconvolve(pulses, glottal)[:n_samples]
    source = signal.lfilter([1.0 - profile.tilt_pole], [1.0, -profile.tilt_pole], source)
    source /= np.std(source) + 1e-9
    voicing_samples = np.interp(np.arange(n_samples) / HOP, np.arange(n_frames), voicing)
    noise = rng.normal(0, 1, n_samples)
    excitation = source * voicing_samples + noise * (profile.breathiness * voicing_samples)
    excitation += noise * np.interp(np.arange(n_samples) / HOP, np.arange(n_frames), aspiration)

    # Vocal-tract filter frame by frame in the STFT domain.
    _, _, spec = signal.stft(
        excitation, fs=sample_rate, nperseg=N_FFT, noverlap=N_FFT - HOP, boundary="even"
    )
    freqs = np.fft.rfftfreq(N_FFT, 1.0 / sample_rate)[:, None]  # bins x 1
    frames = min(spec.shape[1], n_frames)
    env = np.ones((len(freqs), frames))
    for k in range(5):
        env *= _resonance(freqs, formants[:frames, k][None, :], bandwidths[:frames, k][None, :])
    if profile.nasal_coupling > 0:  # anti-resonance-like dip around 1 kHz, speaker specific
        env *= (
            1.0
            - profile.nasal_coupling
            * _resonance(
                freqs,
                np.full((1, frames), 1000.0 * profile.vtl_factor),
                np.full((1, frames), 300.0),
            )
            / 4
        )
    voiced_spec = spec[:, :frames] * env
    _, _, fric_spec = signal.stft(
        rng.normal(0, 1, n_samples),
        fs=sample_rate,
        nperseg=N_FFT,
        noverlap=N_FFT - HOP,
        boundary="even",
    )
    lo, hi, level = (frication[:frames, i][None, :] for i in range(3))
    band = 1.0 / (1.0 + np.exp(-(freqs - lo) / 150.0)) / (1.0 + np.exp((freqs - hi) / 300.0))
    total = voiced_spec + fric_spec[:, :frames] * band * level * 4.0
    _, wave = signal.istft(
        total, fs=sample_rate, nperseg=N_FFT, noverlap=N_FFT - HOP, boundary=True
    )
    wave = wave[:n_samples]
    env_samples = np.interp(np.arange(len(wave)) / HOP, np.arange(n_frames), amplitude)
    wave = wave * np.maximum(env_samples, 0.02)
    wave = wave[: int(duration * sample_rate)]
    peak = np.max(np.abs(wave)) + 1e-9
    return (0.5 * wave / peak).astype(np.float32)
