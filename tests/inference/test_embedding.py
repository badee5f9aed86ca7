"""Speaker embeddings for diarization: the audio each window-speaker is embedded from, and a
trained verification run used as the embedder of windowed decoding."""

from __future__ import annotations

import numpy as np
import soundfile as sf
import torch

from sonolab.inference.diarization import DecodingConfig, diarize_recording
from sonolab.inference.embedding import SpeakerEmbedder, speaker_audio

from ..tasks.test_diarization import RATE, TONES, _BandEnergies, _ShufflingOracle


def test_each_speaker_is_embedded_from_where_it_talks_alone():
    wave = torch.arange(100, dtype=torch.float32)  # 10 frames of 10 samples (step 0.1 s at 100 Hz)
    activities = np.zeros((10, 3))
    activities[0:6, 0] = 0.9  # speaker 0: frames 0-5, overlapped by speaker 1 in 4-5
    activities[4:6, 1] = 0.9  # speaker 1: only in the overlap
    audio = speaker_audio(wave, activities, 0.1, 100, threshold=0.5, min_seconds=0.2)
    assert audio[0].tolist() == list(range(40))  # frames 0-3, alone
    assert audio[1].tolist() == list(range(40, 60))  # too little alone: the overlap frames
    assert audio[2] is None  # never active
    assert speaker_audio(wave, activities, 0.1, 100, min_seconds=0.5)[1] is None


def test_windowed_decoding_clusters_a_verification_run_s_embeddings(trained_run, tmp_path):
    embedder = SpeakerEmbedder(trained_run)
    assert embedder.sample_rate == 16000 and embedder(torch.zeros(16000)).shape == (embedder.dim,)
    t = np.arange(int(40 * RATE)) / RATE
    wave = np.zeros_like(t, dtype=np.float32)
    for k, (start, end) in enumerate([(0, 12), (14, 26), (28, 40)]):  # one tone after another
        span = (t >= start) & (t < end)
        wave[span] = 0.3 * np.sin(2 * np.pi * TONES[k % 2] * t[span])
    sf.write(tmp_path / "tones.wav", wave, RATE)  # 8 kHz: resampled to the embedder's 16 kHz
    config = DecodingConfig(window_seconds=10, hop_seconds=5)
    config.clustering.min_active_seconds = 1.0
    probs, step = diarize_recording(
        _ShufflingOracle(), _BandEnergies(), tmp_path / "tones.wav", RATE, config, embedder=embedder
    )
    assert probs.shape[0] == 400 and 1 <= probs.shape[1] <= 7
    assert np.all((probs.max(axis=1) > 0.5)[(t[::800] % 14) < 11])  # every tone turn is labelled
