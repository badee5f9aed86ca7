"""Simulated conversations: deterministic, beta controls overlap, the written RTTM equals the frame
targets."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from pyannote.core import Annotation, Segment, Timeline

from sonolab.data.mixtures import (
    MixtureConfig,
    simulator_from_tree,
    speech_regions,
    turns_to_activity,
)
from sonolab.data.readers import read_rttm, read_uem, read_uri_list
from sonolab.data.synth.__main__ import main as synth_main
from sonolab.data.synth.mixtures import write_mixture_set
from sonolab.data.turn_statistics import main as turn_statistics_main
from sonolab.data.turn_statistics import mixture_statistics, reference_activities


def _simulator(root, **config):
    return simulator_from_tree(
        root / "wav",
        MixtureConfig(**config),
        seed=5,
        speakers_file=root / "train_speakers.txt",
        noise_dir=root / "musan" / "noise",
        rir_dir=root / "rirs",
    )


def test_same_seed_and_index_give_the_same_mixture(tiny_voxceleb):
    a, b = (
        _simulator(tiny_voxceleb, reverb_prob=0.5)(3),
        _simulator(tiny_voxceleb, reverb_prob=0.5)(3),
    )
    assert torch.equal(a.wave, b.wave) and a.turns == b.turns and a.speakers == b.speakers
    c = _simulator(tiny_voxceleb, reverb_prob=0.5)(4)
    assert not (c.wave.shape == a.wave.shape and torch.equal(c.wave, a.wave))
    assert len(a.speakers) == 2 and a.uri == "mix000003" and a.wave.abs().max() > 0.01


def test_overlap_falls_as_beta_grows(tiny_voxceleb):
    def overlap(beta):
        sim = _simulator(tiny_voxceleb, speakers={2: 1.0}, beta={2: beta}, snr_db=())
        return mixture_statistics([sim(i).activity() for i in range(16)])["overlap_ratio"]

    small, medium, large = overlap(0.5), overlap(3.0), overlap(12.0)
    assert small > medium > large, (small, medium, large)


def test_speaker_counts_follow_the_configured_distribution(tiny_voxceleb):
    sim = _simulator(tiny_voxceleb, speakers={1: 0.5, 3: 0.5}, beta={1: 2.0, 3: 5.0})
    counts = [len(sim(i).speakers) for i in range(40)]
    assert set(counts) == {1, 3} and 10 < counts.count(1) < 30
    with pytest.raises(ValueError, match=r"up to 9 speakers per mixture; the corpus has 8"):
        _simulator(tiny_voxceleb, speakers={9: 1.0}, beta={9: 2.0})
    with pytest.raises(ValueError, match=r"simulation.beta has no value for \[5\] speakers"):
        MixtureConfig(speakers={5: 1.0})


def test_the_written_rttm_matches_the_frame_targets(tiny_voxceleb, tmp_path):
    sim = _simulator(
        tiny_voxceleb, speakers={1: 0.3, 2: 0.4, 3: 0.3}, beta={1: 2.0, 2: 2.0, 3: 5.0}
    )
    content = write_mixture_set(tmp_path / "set", sim, count=5, subset="dev")
    uris = read_uri_list(tmp_path / "set" / "dev.lst")
    references, uems = (
        read_rttm(tmp_path / "set" / "dev.rttm"),
        read_uem(tmp_path / "set" / "dev.uem"),
    )
    assert uris == [f"mix{i:06d}" for i in range(5)] and set(references) == set(uems) == set(uris)
    for i, uri in enumerate(uris):
        mixture = sim(i)
        turns = [
            (label, seg.start, seg.end)
            for seg, _, label in references[uri].itertracks(yield_label=True)
        ]
        frames = int(mixture.duration * 100)
        assert torch.equal(turns_to_activity(turns, mixture.speakers, frames), mixture.activity())
        assert uems[uri].duration() == pytest.approx(mixture.duration, abs=1e-3)
    assert (
        content["statistics"]["recordings"] == 5 and 0 <= content["statistics"]["overlap_ratio"] < 1
    )
    assert (
        write_mixture_set(tmp_path / "set", sim, count=5, subset="dev") == content
    )  # same parameters: no-op
    with pytest.raises(FileExistsError, match="other parameters"):
        write_mixture_set(tmp_path / "set", sim, count=6, subset="dev")
    # keys added to the simulation later are recorded only when changed: sets written before
    # they existed are still the same sets
    assert "sources" not in content["parameters"]["simulation"]
    segmented = _simulator(tiny_voxceleb, sources="segments", min_segment_seconds=0.3)
    recorded = write_mixture_set(tmp_path / "seg", segmented, count=1)["parameters"]["simulation"]
    assert recorded["sources"] == "segments" and recorded["min_segment_seconds"] == 0.3
    assert "segmenter" not in recorded


def test_speech_regions_skip_leading_and_trailing_silence():
    rate = 16000
    t = np.arange(rate) / rate
    wave = np.concatenate(
        [np.zeros(rate // 2), 0.3 * np.sin(2 * np.pi * 200 * t), np.zeros(rate // 4)]
    )
    wave += np.random.default_rng(0).normal(0, 1e-4, wave.size)
    ((start, end),) = speech_regions(wave.astype(np.float32), rate)
    assert start == pytest.approx(0.5, abs=0.03) and end == pytest.approx(1.5, abs=0.03)


def test_statistics_by_hand():
    act = torch.tensor([[1, 0], [1, 1], [0, 1], [0, 0]], dtype=torch.float32)
    stats = mixture_statistics([act], rate=1)
    assert stats["overlap_ratio"] == pytest.approx(1 / 3) and stats[
        "silence_ratio"
    ] == pytest.approx(1 / 4)
    assert stats["mean_turn_seconds"] == pytest.approx(2.0) and stats["speakers_per_recording"] == 2


def test_cli_writes_the_ami_layout_and_prints_statistics(tiny_voxceleb, tmp_path, capsys):
    out = tmp_path / "mix"
    assert (
        synth_main(
            [
                "mixtures",
                "--source",
                str(tiny_voxceleb / "wav"),
                "--out",
                str(out),
                "--count",
                "3",
                "--speakers",
                "2:1",
                "--beta",
                "2:3",
                "--subset",
                "development",
            ]
        )
        == 0
    )
    printed = json.loads(capsys.readouterr().out)
    assert printed == json.loads((out / "mixtures.json").read_text())["statistics"]
    assert {p.name for p in out.iterdir()} == {
        "audio",
        "development.lst",
        "development.rttm",
        "development.uem",
        "mixtures.json",
    }
    with pytest.raises(SystemExit):
        synth_main(
            [
                "mixtures",
                "--source",
                str(tiny_voxceleb / "wav"),
                "--out",
                str(tmp_path / "x"),
                "--speakers",
                "2:one",
            ]
        )


def test_segment_sources_place_whole_speech_segments_of_the_minimum_length(tiny_voxceleb):
    low, high = 3, 5
    sim = _simulator(
        tiny_voxceleb,
        utterances_per_speaker=(low, high),
        sources="segments",
        min_segment_seconds=0.6,
    )
    for index in range(4):
        mixture = sim(index)
        per_speaker = {s: [t for t in mixture.turns if t[0] == s] for s in mixture.speakers}
        for turns in per_speaker.values():
            # one turn per segment: the piece is labelled speech from end to end
            assert low <= len(turns) <= high
            assert all(end - start >= 0.6 - 0.002 for _, start, end in turns)
    # the same pieces as whole utterances hold their silences inside the turns' gaps instead
    whole = _simulator(tiny_voxceleb, utterances_per_speaker=(low, high))(0)
    assert whole.turns != sim(0).turns
    with pytest.raises(
        ValueError, match=r"speaker \S+: none of its \d+ files holds a speech segment"
    ):
        _simulator(tiny_voxceleb, sources="segments", min_segment_seconds=60.0)(0)
    with pytest.raises(ValueError, match="simulation.sources must be one of"):
        MixtureConfig(sources="sentences")


def test_silero_segments_of_real_speech():
    tree = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "speechocean762-vox"
    if not tree.is_dir():
        pytest.skip(f"real speech ({tree}) is absent: the silero-vad segmenter is tried on it")
    config = MixtureConfig(
        utterances_per_speaker=(2, 3), sources="segments", segmenter="silero", snr_db=()
    )
    mixture = simulator_from_tree(tree / "wav", config, seed=1)(0)
    assert len(mixture.speakers) == 2
    assert all(end - start >= 1.5 - 0.002 for _, start, end in mixture.turns)


def test_reference_statistics_crop_to_the_scored_regions_and_match_the_written_set(
    tiny_voxceleb, tmp_path, capsys
):
    reference = Annotation(uri="r")
    reference[Segment(0, 4)] = "a"
    reference[Segment(3, 6)] = "b"
    scored = Timeline([Segment(2, 8)], uri="r")
    (activity,) = reference_activities({"r": reference}, {"r": scored})
    stats = mixture_statistics([activity])
    # inside [2, 8]: speech 2-6 (4 s), overlap 3-4 (1 s), silence 6-8 (2 s)
    assert stats["overlap_ratio"] == pytest.approx(0.25) and stats[
        "silence_ratio"
    ] == pytest.approx(2 / 6)
    sim = _simulator(tiny_voxceleb, speakers={2: 1.0})
    content = write_mixture_set(tmp_path / "set", sim, count=4, subset="test")
    assert (
        turn_statistics_main(
            [str(tmp_path / "set" / "test.rttm"), "--uem", str(tmp_path / "set" / "test.uem")]
        )
        == 0
    )
    printed = json.loads(capsys.readouterr().out)
    for key, value in content["statistics"].items():
        assert printed[key] == pytest.approx(value, rel=0.02), key


def test_silero_vad_leaves_torch_threads_as_they_were():
    # silero-vad's import sets torch's threads to 1 for the whole process; a fresh interpreter shows
    # whether importing sonolab's modules and running the detector still does
    import subprocess
    import sys

    code = (
        "import torch; torch.set_num_threads(3)\n"
        "import sonolab.tasks, sonolab.inference.clustering, sonolab.data.mixtures\n"
        "from sonolab.data.speech_activity import silero_regions\n"
        "silero_regions(torch.zeros(16000), 16000)\n"
        "print(torch.get_num_threads())\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "3"
