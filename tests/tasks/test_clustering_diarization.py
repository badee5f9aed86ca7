"""The clustering diarization pipeline: window making, clustering against known structure, and the
pipeline as a train=false run scored and re-scored by evaluate.py."""

from __future__ import annotations

import json

import numpy as np
import pytest
from pyannote.core import Annotation, Segment, Timeline
from sklearn.metrics import adjusted_rand_score

from sonolab.inference.clustering import (
    PipelineConfig,
    RecordingEmbeddings,
    ahc_labels,
    cluster_embeddings,
    oracle_speech,
    sliding_windows,
    spectral_labels,
    window_activities,
)
from sonolab.inference.eend_activity import FrameActivity, assign_overlap
from sonolab.run import evaluate, train
from sonolab.utils.errors import ConfigValueError, IncompatibleConfigError

from ..conftest import ROOT, compose, train_run
from .test_diarization import diarization_overrides, tiny_eend_overrides


def _speakers(count: int, per_speaker: int, noise: float, seed: int = 0):
    """Unit embeddings of ``count`` speakers (192-d), ``per_speaker`` noisy draws each."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((count, 192))
    labels = np.repeat(np.arange(count), per_speaker)
    points = centres[labels] + noise * rng.standard_normal((len(labels), 192))
    return points / np.linalg.norm(points, axis=1, keepdims=True), labels


def test_windows_cover_each_region_and_end_at_its_end():
    speech = Timeline([Segment(0.0, 4.0), Segment(5.0, 6.0)])
    windows = sliding_windows(speech, 1.5, 0.75)
    assert windows.tolist() == [
        [0.0, 1.5],
        [0.75, 2.25],
        [1.5, 3.0],
        [2.25, 3.75],
        [2.5, 4.0],
        [5.0, 6.0],
    ]


@pytest.mark.parametrize("method", ["ahc", "spectral"])
def test_clustering_finds_the_speakers_and_their_count(method):
    embeddings, truth = _speakers(4, 30, noise=0.8)
    config = PipelineConfig(method=method, ahc_threshold=0.7, spectral_pruning=0.2)
    cluster = ahc_labels if method == "ahc" else spectral_labels
    labels = cluster(embeddings, getattr(config, config.tuned_key), config)
    assert labels.max() + 1 == 4
    assert adjusted_rand_score(truth, labels) == pytest.approx(1.0)
    # a given count is obeyed, and the bounds hold an estimate in
    fixed = cluster(embeddings, 0.7, PipelineConfig(method=method, num_speakers=2))
    assert fixed.max() + 1 == 2
    capped = cluster(embeddings, 0.7, PipelineConfig(method=method, max_speakers=3))
    assert capped.max() + 1 == 3


def test_short_windows_join_the_nearest_cluster_and_frames_take_the_nearest_window():
    embeddings, truth = _speakers(2, 6, noise=0.5)
    windows = np.array([[i * 1.0, i * 1.0 + 1.5] for i in range(12)])
    windows[5] = [5.0, 5.2]  # too short to be clustered: placed by its centroid
    recording = RecordingEmbeddings(windows, embeddings, duration=13.0)
    labels = cluster_embeddings(recording, PipelineConfig(ahc_threshold=0.7))
    assert adjusted_rand_score(truth, labels) == pytest.approx(1.0)
    activities = window_activities(recording, labels)
    assert activities.shape == (1300, 2) and activities.sum(axis=1).max() == 1
    # frame 1.1 s lies in windows 0 ([0, 1.5]) and 1 ([1, 2.5]): window 0's centre (0.75) is nearer
    assert activities[110, labels[0]] == 1
    # nothing after the last window's end
    assert activities[1260:].sum() == 0


def test_oracle_speech_is_the_reference_inside_the_uem():
    reference = Annotation(uri="r")
    reference[Segment(0, 4)] = "a"
    reference[Segment(3, 6)] = "b"
    speech = oracle_speech(reference, Timeline([Segment(1, 5)]))
    assert list(speech) == [Segment(1, 5)]


def test_unknown_or_wrong_pipeline_settings_are_named():
    with pytest.raises(ConfigValueError, match="task.pipeline.windows"):
        PipelineConfig.from_config({"windows": 3})
    with pytest.raises(ConfigValueError, match="task.pipeline.method"):
        PipelineConfig(method="kmeans")


def _pipeline_overrides(tiny_voxceleb, root, trained_run) -> list[str]:
    return [
        "experiment=synth_clustering",
        f"embedding_run={trained_run}",
        *[o for o in diarization_overrides(tiny_voxceleb, root) if "task.decoding" not in o],
        "logger=csv",
    ]


def test_the_pipeline_runs_as_a_run_and_evaluate_py_scores_it_again(
    tiny_voxceleb, trained_run, tmp_path
):
    out = tmp_path / "run"
    train_run(_pipeline_overrides(tiny_voxceleb, tmp_path / "mix", trained_run), out)
    metrics = json.loads((out / "metrics.json").read_text())
    result = metrics["test"]["sim_test"]
    system, floor = result["system"]["collar0"]["corpus"], result["floor"]["collar0"]["corpus"]
    assert system["speech"] == floor["speech"] > 0
    # oracle speech activity: no false alarm beyond the 10 ms frames' rounding at turn edges
    assert system["false_alarm"] < 0.005 * system["speech"]
    assert metrics["pipeline"]["tuned_on"]["set"] == "sim_val"
    assert metrics["checkpoint"] == "checkpoints/tested.ckpt"
    eval_dir = tmp_path / "eval"
    evaluate(
        compose("eval", [f"run_dir={out}", "trainer.enable_progress_bar=false"], eval_dir),
        ROOT / "configs",
    )
    again = json.loads((eval_dir / "metrics.json").read_text())["test"]["sim_test"]
    assert again["system"]["collar0"]["corpus"]["der"] == pytest.approx(system["der"], abs=1e-9)
    # a given count is what every recording gets; the oracle count is each reference's (fewer
    # only where the speech holds fewer windows than speakers)
    for name, argument in (
        ("one", "pipeline={num_speakers: 1}"),
        ("oracle", "pipeline={oracle_count: true}"),
    ):
        evaluate(
            compose(
                "eval",
                [f"run_dir={out}", argument, "trainer.enable_progress_bar=false"],
                tmp_path / name,
            ),
            ROOT / "configs",
        )
    one, oracle = (
        json.loads((tmp_path / name / "metrics.json").read_text())["test"]["sim_test"]["system"]
        for name in ("one", "oracle")
    )
    assert {f["hypothesis_speakers"] for f in one["collar0"]["files"].values()} == {1}
    files = oracle["collar0"]["files"].values()
    assert all(0 < f["hypothesis_speakers"] <= f["speakers"] for f in files)
    assert sum(f["hypothesis_speakers"] for f in files) > len(files)
    assert "| JER (%) |" in (tmp_path / "oracle" / "results.md").read_text()


def test_the_pipeline_refuses_training(tiny_voxceleb, trained_run, tmp_path):
    overrides = _pipeline_overrides(tiny_voxceleb, tmp_path / "mix", trained_run)
    with pytest.raises(IncompatibleConfigError, match="trains nothing.*train=false"):
        train(compose("train", [*overrides, "train=true"], tmp_path / "a"), ROOT / "configs")


def test_silero_finds_the_speech_of_real_meeting_audio():
    """silero-vad on the real AMI development excerpts, against their references (pyannote's
    detection error rate): most speech found, next to no false alarm."""
    from pyannote.metrics.detection import DetectionErrorRate

    from sonolab.data.audio import load_audio
    from sonolab.data.readers.rttm import read_rttm, read_uem
    from sonolab.inference.clustering import silero_speech

    from ..conftest import SHARED_DATA

    root = SHARED_DATA / "ami-excerpts"
    if not (root / "development.rttm").is_file():
        pytest.skip(f"real data not present: {root} (see ../shared/data/README.md)")
    references, uems = read_rttm(root / "development.rttm"), read_uem(root / "development.uem")
    metric = DetectionErrorRate()
    for uri, reference in references.items():
        speech = silero_speech(
            load_audio(root / "audio" / f"{uri}.flac", 16000), 16000, PipelineConfig()
        )
        hypothesis = Annotation(uri=uri)
        for segment in speech:
            hypothesis[segment] = "speech"
        metric(reference, hypothesis, uem=uems[uri])
    # measured: 25.7 % (miss 10.9 s, false alarm 0.03 s of 42.6 s); all 60 s as speech: 41 %
    assert abs(metric) < 0.35
    assert metric["false alarm"] < 0.02 * metric["total"]


def test_overlap_takes_its_second_speaker_from_the_eend_activities():
    hypothesis = Annotation(uri="u")
    hypothesis[Segment(0.0, 5.02)] = "A"
    hypothesis[Segment(5.02, 10.0)] = "B"
    # EEND: speaker 0 in 0-6 s, speaker 1 in 4.5-9 s (overlap 4.5-6 s), nothing after 9 s
    active = np.zeros((120, 2), dtype=bool)
    active[0:60, 0] = True
    active[45:90, 1] = True
    eend = FrameActivity(active, 0.1)
    found = assign_overlap(hypothesis, eend)
    turns = sorted((label, s.start, s.end) for s, _, label in found.itertracks(yield_label=True))
    assert [label for label, *_ in turns] == ["A", "B"]
    assert turns[0][1:] == pytest.approx((0.0, 6.0)) and turns[1][1:] == pytest.approx((4.5, 10.0))
    assert list(eend.speech()) == [Segment(0.0, 9.0)]
    # one EEND speaker, or one cluster: nothing to add
    assert assign_overlap(hypothesis, FrameActivity(active[:, :1], 0.1)) == hypothesis
    lone = Annotation(uri="u")
    lone[Segment(0.0, 10.0)] = "A"
    assert [(s, label) for s, _, label in assign_overlap(lone, eend).itertracks(True)] == [
        (Segment(0.0, 10.0), "A")
    ]
    with pytest.raises(ConfigValueError, match="task.pipeline.eend_run"):
        PipelineConfig(overlap=True)


@pytest.fixture(scope="module")
def eend_run(tiny_voxceleb, tmp_path_factory):
    """A tiny EEND-EDA run (one epoch on the simulated mixtures)."""
    root = tmp_path_factory.mktemp("eend")
    train_run(tiny_eend_overrides(tiny_voxceleb, root / "mix"), root / "run")
    return root / "run"


def test_the_pipeline_reads_an_eend_run_for_speech_and_overlap(
    tiny_voxceleb, trained_run, eend_run, tmp_path
):
    from sonolab.inference.eend_activity import EendActivity

    overrides = _pipeline_overrides(tiny_voxceleb, tmp_path / "mix", trained_run)
    pipeline = f"task.pipeline.eend_run={eend_run}"
    out = tmp_path / "run"
    eend = [pipeline, "task.pipeline.speech_activity=eend", "task.pipeline.overlap=true"]
    train_run([*overrides, *eend], out)
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["pipeline"]["speech_activity"] == "eend"
    # every hypothesis turn lies inside the speech the EEND run finds in that recording
    activity = EendActivity(eend_run)
    sim_dir = next((tmp_path / "mix").glob("sim_test_*"))
    checked = 0
    for rttm in (out / "rttm" / "sim_test").glob("*.rttm"):
        speech = activity(sim_dir / "audio" / f"{rttm.stem}.wav").speech()
        text = rttm.read_text().split("\n")
        for line in filter(None, text):
            start, duration = map(float, line.split()[3:5])
            assert speech.crop(Segment(start, start + duration)).duration() == pytest.approx(
                duration, abs=0.02
            )
            checked += 1
    assert checked > 0  # the tiny EEND run finds speech, so the pipeline has turns to place
    with pytest.raises(IncompatibleConfigError, match="speaker activities come from"):
        EendActivity(trained_run)


def test_tuning_chooses_the_overlap_threshold_on_the_development_recordings():
    from sonolab.inference.clustering import tune_pipeline

    reference = Annotation(uri="d")
    reference[Segment(0.0, 5.0)] = "a"
    reference[Segment(4.0, 10.0)] = "b"
    # 1.5 s windows every 0.75 s; the first speaker's until 4.5 s, then the second's
    starts = np.arange(0.0, 8.6, 0.75)
    windows = np.stack([starts, starts + 1.5], axis=1)
    embeddings = np.where((windows.mean(1) < 4.5)[:, None], [1.0, 0.0], [0.0, 1.0])
    recording = RecordingEmbeddings(windows, embeddings, 10.0)
    # EEND: both speakers sure where they talk; the second one also at 0.7 in 1-3 s (a spurious
    # overlap that only a threshold of 0.7 or more leaves out)
    probs = np.zeros((100, 2))
    probs[0:50, 0] = 0.95
    probs[40:100, 1] = 0.95
    probs[10:30, 1] = 0.7
    eend = {"d": FrameActivity(probs, 0.1)}
    config = PipelineConfig(
        speech_activity="eend", eend_run="run", overlap=True, ahc_threshold_grid=[0.5]
    )
    chosen, der = tune_pipeline({"d": recording}, {"d": reference}, None, config, eend)
    assert chosen["ahc_threshold"] == 0.5 and chosen["overlap_threshold"] >= 0.7
    plain, without = tune_pipeline(
        {"d": recording}, {"d": reference}, None, PipelineConfig(ahc_threshold_grid=[0.5])
    )
    assert "overlap_threshold" not in plain and der < without - 5  # the 1 s overlap is found


def test_eend_speech_past_the_audio_end_or_too_short_to_embed_is_left_out(trained_run, tmp_path):
    import soundfile as sf

    from sonolab.inference.clustering import embed_recording
    from sonolab.models.run_embedder import VerificationRunEmbedder

    embedder = VerificationRunEmbedder(trained_run)
    rate = embedder.sample_rate
    noise = np.random.default_rng(0).normal(0, 0.1, int(2.03 * rate)).astype(np.float32)
    sf.write(tmp_path / "r.wav", noise, rate)
    probs = np.zeros((21, 1))
    probs[2:12, 0] = probs[20, 0] = 0.9  # 0.2-1.2 s, and the last frame: 2.0-2.1 s, past the end
    config = PipelineConfig(speech_activity="eend", eend_run="run")
    recording = embed_recording(
        embedder, tmp_path / "r.wav", config, eend=FrameActivity(probs, 0.1)
    )
    assert len(recording.windows) and recording.windows.max() <= 2.03
    assert (recording.windows[:, 1] - recording.windows[:, 0]).min() >= 0.1
    assert recording.windows.min() >= 0.2 - 1e-9 and recording.windows[:, 1].max() <= 1.2 + 1e-9
