"""Diarization family: datamodule, chunk targets, AMI layouts (real data when present), whole and
windowed inference (speakers joined across windows), the one-speaker floor, and a tiny train ->
test -> report run."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from pyannote.core import Annotation, Segment, Timeline

import sonolab
from sonolab.cli import main as sonolab_main
from sonolab.data.diarization import DiarizationDataModule, RecordingSet, chunk_targets
from sonolab.data.readers import read_rttm, read_uem, read_uri_list, write_rttm, write_uem
from sonolab.data.skips import SkipLog
from sonolab.inference.diarization import (
    DecodingConfig,
    activities_to_annotation,
    diarize_recording,
    one_speaker_baseline,
)
from sonolab.metrics.der import diarization_error_rates
from sonolab.models.base import AudioModel
from sonolab.run import evaluate
from sonolab.utils.errors import ConfigValueError, DataFormatError

from ..conftest import ROOT, SHARED_DATA, compose, train_run


def diarization_overrides(tiny_voxceleb: Path, root: Path) -> list[str]:
    """Point the simulated-mixtures data at the tiny speaker corpus, with a handful of short
    mixtures."""
    return [
        f"data.synth_root={tiny_voxceleb}",
        "data.synth=null",
        f"data.root={root}",
        "data.simulation.count=8",
        "data.simulated_sets.sim_val.count=2",
        "data.simulated_sets.sim_test.count=3",
        "data.num_workers=0",
        "data.batch_size=4",
        "data.chunk_seconds=8",
        "data.simulation.utterances_per_speaker=[1,2]",
        "data.simulated_sets.sim_val.utterances_per_speaker=[1,2]",
        "data.simulated_sets.sim_test.utterances_per_speaker=[1,2]",
        "task.decoding.window_seconds=6",
        "task.decoding.hop_seconds=3",
        "trainer.enable_progress_bar=false",
    ]


def tiny_eend_overrides(tiny_voxceleb: Path, root: Path) -> list[str]:
    """A one-epoch synth_eend_eda run on the tiny corpus's mixtures."""
    return [
        "experiment=synth_eend_eda",
        *diarization_overrides(tiny_voxceleb, root),
        "trainer.max_epochs=1",
        "logger=csv",
    ]


def corpus_overrides(tiny_voxceleb: Path) -> list[str]:
    """The single-speaker corpus, noise and RIR paths of the simulation, for configs that point at
    real corpora (the recipe stages: LibriSpeech / MUSAN / RIRs), and a segmenter that finds the
    synthetic speech."""
    return [
        f"data.simulation.tree={tiny_voxceleb / 'wav'}",
        f"data.simulation.speakers_file={tiny_voxceleb / 'train_speakers.txt'}",
        f"data.simulation.noise_dir={tiny_voxceleb / 'musan' / 'noise'}",
        f"data.simulation.rir_dir={tiny_voxceleb / 'rirs'}",
        *[
            f"data.simulated_sets.{name}.{key}={value}"
            for name in ("sim_val", "sim_test")
            for key, value in (
                ("tree", tiny_voxceleb / "wav"),
                ("exclude_file", tiny_voxceleb / "train_speakers.txt"),
                ("noise_dir", tiny_voxceleb / "musan" / "noise"),
            )
        ],
        # the synthetic voices are no speech to silero-vad, and their utterances are short
        *[
            f"++data.{where}.{key}={value}"
            for where in ("simulation", "simulated_sets.sim_val", "simulated_sets.sim_test")
            for key, value in (("segmenter", "energy"), ("min_segment_seconds", 0.5))
        ],
    ]


def tiny_ami_tree(tiny_voxceleb: Path, out: Path) -> Path:
    """A few simulated meetings in the standard AMI diarization setup's layout (lists, per-meeting
    only_words RTTMs and UEMs, audio in ../amicorpus/<uri>/audio/<uri>.Mix-Headset.wav): returns
    data.root."""
    from sonolab.data.mixtures import MixtureConfig, simulator_from_tree
    from sonolab.data.readers import write_rttm, write_uem

    root = out / "AMI-diarization-setup"
    if root.is_dir():
        return root
    simulator = simulator_from_tree(
        tiny_voxceleb / "wav",
        MixtureConfig(speakers={2: 0.5, 3: 0.5}, utterances_per_speaker=(1, 2)),
        seed=5,
        prefix="ES200",
    )
    index = 0
    for subset, count in (("train", 3), ("dev", 1), ("test", 1)):
        uris = []
        for _ in range(count):
            mixture = simulator(index)
            index += 1
            audio = out / "amicorpus" / mixture.uri / "audio"
            audio.mkdir(parents=True)
            sf.write(
                audio / f"{mixture.uri}.Mix-Headset.wav", mixture.wave.numpy(), mixture.sample_rate
            )
            for folder in ("only_words/rttms", "uems"):
                (root / folder / subset).mkdir(parents=True, exist_ok=True)
            write_rttm(
                root / "only_words" / "rttms" / subset / f"{mixture.uri}.rttm",
                {mixture.uri: mixture.turns},
            )
            write_uem(
                root / "uems" / subset / f"{mixture.uri}.uem",
                {mixture.uri: (0.0, mixture.duration)},
            )
            uris.append(mixture.uri)
        (root / "lists").mkdir(exist_ok=True)
        (root / "lists" / f"{subset}.meetings.txt").write_text("".join(u + "\n" for u in uris))
    return root


def ami_overrides(tiny_voxceleb: Path, out: Path) -> list[str]:
    """data=ami on :func:`tiny_ami_tree`, with short chunks and windows."""
    return [
        f"data.root={tiny_ami_tree(tiny_voxceleb, out)}",
        "data.num_workers=0",
        "data.batch_size=2",
        "data.chunk_seconds=8",
        "task.decoding.window_seconds=6",
        "task.decoding.hop_seconds=3",
        "trainer.enable_progress_bar=false",
    ]


def _datamodule(tiny_voxceleb: Path, root: Path, **kw) -> DiarizationDataModule:
    spec = {
        "tree": str(tiny_voxceleb / "wav"),
        "utterances_per_speaker": [1, 2],
        "noise_dir": str(tiny_voxceleb / "musan" / "noise"),
    }
    args = dict(
        root=str(root),
        train="simulated",
        val="dev",
        test=["dev"],
        num_workers=0,
        batch_size=3,
        chunk_seconds=5.0,
        simulation={
            **spec,
            "speakers_file": str(tiny_voxceleb / "train_speakers.txt"),
            "count": 6,
            "speakers": {1: 0.3, 2: 0.4, 3: 0.3},
        },
        simulated_sets={
            "dev": {
                **spec,
                "exclude_file": str(tiny_voxceleb / "train_speakers.txt"),
                "count": 2,
                "subset": "development",
            }
        },
    )
    return DiarizationDataModule(**{**args, **kw})


def test_training_batches_hold_padded_targets_and_masks(tiny_voxceleb, tmp_path):
    dm = _datamodule(tiny_voxceleb, tmp_path)
    dm.prepare_data()
    dm.setup("fit")
    batch = next(iter(dm.train_dataloader()))
    assert batch["wave"].shape[0] == 3 and batch["wave"].shape[1] <= 5 * 16000
    assert batch["labels"].shape[2] == int(batch["num_speakers"].max()) >= 1
    for i in range(3):  # targets beyond each chunk's speakers and frames are padding (zeros)
        assert batch["labels"][i, batch["label_frames"][i] :].sum() == 0
        assert batch["labels"][i, :, batch["num_speakers"][i] :].sum() == 0
        assert batch["label_frames"][i] == pytest.approx(batch["length"][i] / 160, abs=1)
    val = next(iter(dm.val_dataloader()))
    assert (
        val["labels"].shape[0] >= 1
        and (tmp_path / dm.simulated_dirs["dev"] / "development.rttm").is_file()
    )
    assert dm.simulated_dirs["dev"].startswith("dev_")
    assert [ld.dataset[0]["set"] for ld in dm.test_dataloader()] == ["dev"]


def test_simulated_training_mixtures_are_new_every_epoch_unless_configured(tiny_voxceleb, tmp_path):
    def epochs(**simulation):
        dm = _datamodule(tiny_voxceleb, tmp_path, simulated_sets={}, val=None, test=[])
        dm.simulation.update(simulation)
        dm.chunk_seconds = 2.0  # shorter than the mixtures: where the crop starts matters
        dm.setup("fit")
        loader = dm.train_dataloader()
        seen = []
        for epoch in range(2):
            loader.sampler.set_epoch(epoch)  # what Lightning does before each epoch
            seen.append(
                sorted((u, s) for batch in loader for u, s in zip(batch["uri"], batch["start"]))
            )
        return [[uri for uri, _ in epoch] for epoch in seen], [dict(epoch) for epoch in seen]

    fresh, _ = epochs()
    assert len(fresh[0]) == 6 and not set(fresh[0]) & set(fresh[1])  # 2 x 6 different conversations
    assert fresh == epochs()[0]  # a function of the seeds
    same, starts = epochs(new_each_epoch=False)
    # the same mixtures, cropped anew: over the epochs every part of each is trained on
    assert same[0] == same[1] and starts[0] != starts[1]
    assert starts == epochs(new_each_epoch=False)[1]


def test_persistent_loader_workers_simulate_each_epoch_as_a_single_process(tiny_voxceleb, tmp_path):
    """The training loader keeps its workers across epochs; every epoch's simulated chunks are
    still those of a loader without workers (the epoch reaches them through the sampler)."""
    drawn = {}
    for workers in (0, 1):
        dm = _datamodule(
            tiny_voxceleb, tmp_path, num_workers=workers, simulated_sets={}, val=None, test=[]
        )
        dm.chunk_seconds = 2.0
        dm.setup("fit")
        loader = dm.train_dataloader()
        assert loader.persistent_workers == (workers > 0)
        drawn[workers] = []
        for epoch in range(2):
            loader.sampler.set_epoch(epoch)
            drawn[workers].append([(b["uri"], b["start"], b["wave"], b["labels"]) for b in loader])
    for epoch in range(2):
        assert len(drawn[0][epoch]) == len(drawn[1][epoch]) > 0
        for ours, theirs in zip(drawn[0][epoch], drawn[1][epoch]):
            assert ours[:2] == theirs[:2]
            assert torch.equal(ours[2], theirs[2]) and torch.equal(ours[3], theirs[3])
    assert drawn[0][0][0][0] != drawn[0][1][0][0]  # new conversations every epoch


def test_training_logs_the_corpus_statistics_beside_the_declared_overlap(
    tiny_voxceleb, tmp_path, caplog
):
    dm = _datamodule(tiny_voxceleb, tmp_path, simulated_sets={}, val=None, test=[])
    dm.simulation["expected_overlap_ratio"] = 0.344
    with caplog.at_level("INFO", logger="sonolab.data.diarization"):
        dm.setup("fit")
    line = next(r.getMessage() for r in caplog.records if "training mixtures" in r.getMessage())
    assert "the first 6" in line and "(declared 0.344)" in line and "silence ratio" in line
    # a recording set trained on (AMI adaptation) states its references' statistics
    dm = _datamodule(tiny_voxceleb, tmp_path / "set", train="dev", val=None, test=[])
    dm.prepare_data()
    with caplog.at_level("INFO", logger="sonolab.data.diarization"):
        dm.setup("fit")
    assert "training set dev: overlap ratio" in caplog.text


def test_chunks_with_more_speakers_than_the_maximum_keep_the_most_active(tmp_path):
    reference = Annotation(uri="m")
    for k, (start, end) in enumerate([(0, 1), (0, 5), (2, 3), (1, 4)]):
        reference[Segment(start, end)] = f"s{k}"
    skips = SkipLog()
    labels, speakers = chunk_targets(
        reference, 0.0, 5.0, max_speakers=2, skips=skips, where="m 0-5s"
    )
    assert speakers == ["s1", "s3"] and labels.shape == (500, 2)  # kept in order of first activity
    assert skips.as_dict()["speakers beyond data.max_speakers=2 dropped from a chunk"] == {
        "count": 2,
        "examples": ["m 0-5s"],
    }


def test_real_ami_references_per_subset():
    root = SHARED_DATA / "ami-diarization-setup"
    if not root.is_dir():
        pytest.skip(f"real data not present: {root} (see ../shared/data/README.md)")
    for subset in ("train", "dev", "test"):
        meetings = read_uri_list(root / "lists" / f"{subset}.meetings.txt")
        rttms = sorted(p.stem for p in (root / "only_words" / "rttms" / subset).glob("*.rttm"))
        assert sorted(meetings) == rttms
        speakers = [
            len(read_rttm(root / "only_words" / "rttms" / subset / f"{m}.rttm")[m].labels())
            for m in meetings
        ]
        assert 3 <= min(speakers) and max(speakers) <= 5
    assert len(read_uri_list(root / "lists" / "train.meetings.txt")) > len(
        read_uri_list(root / "lists" / "dev.meetings.txt")
    )


def test_ami_excerpts_read_and_their_uri_mismatch_is_named_or_skipped():
    root = SHARED_DATA / "ami-excerpts"
    if not root.is_dir():
        pytest.skip(f"real data not present: {root} (see ../shared/data/README.md)")
    dev = RecordingSet.from_files(
        "dev", root, "development.lst", "development.rttm", "development.uem", "audio/{uri}.flac"
    )
    assert dev.uris == ["dev00", "dev01"] and all(p.is_file() for p in dev.audio.values())
    with pytest.raises(
        DataFormatError, match=r"'trñ00' in list, audio but not in rttm, uem; rttm has 'trn00'"
    ):
        RecordingSet.from_files(
            "train", root, "train.lst", "train.rttm", "train.uem", "audio/{uri}.flac"
        )
    skips = SkipLog()
    train_set = RecordingSet.from_files(
        "train",
        root,
        "train.lst",
        "train.rttm",
        "train.uem",
        "audio/{uri}.flac",
        on_missing="skip",
        skips=skips,
    )
    # the listed trñ00 is skipped; the RTTM's trn00, which no list names, is simply not wanted
    assert (
        len(train_set.uris) == 9
        and "trñ00" not in train_set.uris
        and sum(skips.counts.values()) == 1
    )


def test_the_ami_adaptation_split_shares_no_speaker_and_leaves_the_tested_excerpts_alone():
    if not (SHARED_DATA / "ami-excerpts").is_dir():
        pytest.skip(f"real data not present: {SHARED_DATA / 'ami-excerpts'}")
    cfg = compose("train", ["experiment=speechocean_eend_eda_ami_adapt", "init_from=/any"])
    data = cfg.data
    sets = {}
    for name in (data.train, data.val, *data.test):
        spec = data.sets[name]
        skips = SkipLog()
        sets[name] = RecordingSet.from_files(
            name, Path("/"), spec.lst, spec.rttm, spec.uem, spec.audio, "error", skips
        )
        assert not skips.counts, name
    speakers = {n: {s for r in x.references.values() for s in r.labels()} for n, x in sets.items()}
    train, val, (test,) = data.train, data.val, data.test
    assert len(sets[train].uris) == 7 and sets[val].uris == ["trn07", "trn08"]
    assert not speakers[train] & speakers[val] and not speakers[train] & speakers[test]
    assert not speakers[val] & speakers[test]


# -- chunked inference: a stand-in model whose speaker order changes in every window ----------
RATE, TONES = 8000, (300.0, 700.0)


class _BandEnergies(torch.nn.Module):
    """10 ms frames -> energy at each tone frequency (the stand-in 'features')."""

    frame_shift_ms = 10.0

    def num_frames(self, samples):
        return samples // 80

    def forward(self, wave, lengths):
        frames = wave[:, : wave.shape[1] // 80 * 80].reshape(wave.shape[0], -1, 80)
        t = torch.arange(80) / RATE
        bands = [
            (
                (frames * torch.sin(2 * np.pi * f * t)).sum(-1) ** 2
                + (frames * torch.cos(2 * np.pi * f * t)).sum(-1) ** 2
            )
            for f in TONES
        ]
        return torch.stack(bands, dim=-1), self.num_frames(lengths)


class _ShufflingOracle(AudioModel):
    """Activities from the band energies, its speaker columns rotated on every call (as EEND-EDA's
    attractor order is arbitrary per window); existence says which tones the window holds."""

    output_type = "activities"
    subsampling = 10

    def __init__(self):
        super().__init__()
        self.calls = 0
        self.noise = torch.Generator().manual_seed(0)

    def forward(self, feats, frames, num_speakers=None):
        pooled = feats[:, : feats.shape[1] // 10 * 10].reshape(feats.shape[0], -1, 10, 2).mean(2)
        logits = 20 * (pooled / (pooled.max() + 1e-9) - 0.1)
        # each tone's attractor: a fixed direction plus noise (as a model's would vary per window)
        attractors = torch.eye(2)[None] + 0.2 * torch.randn(1, 2, 2, generator=self.noise)
        self.calls += 1
        if self.calls % 2:
            logits, attractors = logits.flip(-1), attractors.flip(1)
        # as EEND-EDA: the speakers present in the window come first, and only they exist
        present = (logits[0] > 0).any(0)
        order = torch.cat([torch.nonzero(present)[:, 0], torch.nonzero(~present)[:, 0]])
        existence = torch.full((1, len(TONES) + 1), -9.0)
        existence[0, : int(present.sum())] = 9.0
        return {
            "activities": logits[..., order],
            "existence": existence,
            "attractors": attractors[:, order],
            "frames": frames // 10,
        }

    @staticmethod
    def count_speakers(existence, threshold=0.5):
        return (torch.sigmoid(existence) >= threshold).int().cumprod(1).sum(1)


def _tone_recording(path: Path, turns: list[tuple[float, float, int]], duration: float):
    """A recording of tone 'speakers' (start, end, tone index) and its reference."""
    reference = Annotation(uri=path.stem)
    wave = np.zeros(int(duration * RATE), dtype=np.float32)
    for start, end, k in turns:
        samples = np.arange(int(start * RATE), int(end * RATE))
        wave[samples] += 0.3 * np.sin(2 * np.pi * TONES[k] * samples / RATE)
        reference[Segment(start, end)] = f"tone{k}"
    sf.write(path, wave, RATE)
    return reference


def _diarize(path: Path, reference: Annotation, config: DecodingConfig) -> tuple[dict, np.ndarray]:
    model = _ShufflingOracle()
    probs, step = diarize_recording(model, _BandEnergies(), path, RATE, config)
    hypothesis = activities_to_annotation(probs, step, path.stem, median_frames=1)
    uri = path.stem
    return diarization_error_rates({uri: reference}, {uri: hypothesis})["collar0.25"]["corpus"], (
        probs
    )


def test_windowed_inference_joins_speakers_across_windows(tmp_path):
    rng = np.random.default_rng(0)
    duration, turns, t = 95.0, [], 0.0
    while t < duration - 2:  # alternating turns, sometimes overlapping, short pauses
        for k in range(len(TONES)):
            end = min(t + float(rng.uniform(1.0, 3.0)), duration)
            turns.append((t, end, k))
            t = end - float(rng.uniform(0, 0.5)) + float(rng.uniform(0, 0.6))
    reference = _tone_recording(tmp_path / "long.wav", turns, duration)
    windowed = DecodingConfig(window_seconds=20, hop_seconds=10)
    der, probs = _diarize(tmp_path / "long.wav", reference, windowed)
    assert probs.shape == (950, 2) and der["der"] < 3.0 and der["confusion"] < 0.5
    whole, probs = _diarize(tmp_path / "long.wav", reference, DecodingConfig())  # one pass
    assert probs.shape == (950, 2) and whole["der"] < 3.0


def test_a_speaker_silent_longer_than_the_overlap_keeps_one_label(tmp_path):
    # tone 1 speaks at the start and again after 50 s of silence, far beyond a 10 s overlap
    turns = [(t, t + 2.0, 0) for t in np.arange(0.0, 90.0, 3.0)]
    turns += [(t + 1.0, t + 2.5, 1) for t in (0.0, 6.0, 12.0, 70.0, 76.0, 82.0)]
    reference = _tone_recording(tmp_path / "gap.wav", turns, 90.0)
    windowed = DecodingConfig(window_seconds=20, hop_seconds=10)
    der, probs = _diarize(tmp_path / "gap.wav", reference, windowed)
    assert probs.shape[1] == 2 and der["confusion"] < 0.5 and der["der"] < 5.0


class _OneSpeakerCount(_ShufflingOracle):
    """The stand-in with an existence head that always counts one speaker."""

    def forward(self, feats, frames, num_speakers=None):
        out = super().forward(feats, frames, num_speakers)
        out["existence"] = torch.tensor([[9.0, -9.0, -9.0]]).expand(feats.shape[0], -1)
        return out


class _Run:
    """What the task reads of its trainer at the end of a validation epoch."""

    world_size, sanity_checking = 1, False


@pytest.mark.parametrize("model, estimated", [(_ShufflingOracle, 0.0), (_OneSpeakerCount, 50.0)])
def test_validation_scores_the_estimated_count_beside_the_oracle_one(model, estimated):
    from sonolab.losses.pit import PermutationInvariantBCE
    from sonolab.tasks.diarization import DiarizationTask

    # two tones, one after the other (1 s each): with one counted speaker, half the speech is missed
    t = np.arange(RATE) / RATE
    wave = np.concatenate([0.3 * np.sin(2 * np.pi * f * t) for f in TONES]).astype(np.float32)
    labels = torch.zeros(1, 200, 2)
    labels[0, :100, 0] = labels[0, 100:, 1] = 1
    batch = {
        "wave": torch.from_numpy(wave)[None],
        "length": torch.tensor([wave.size]),
        "labels": labels,
        "label_frames": torch.tensor([200]),
        "num_speakers": torch.tensor([2]),
    }
    task = DiarizationTask(
        model(),
        _BandEnergies(),
        PermutationInvariantBCE(),
        {"sample_rate": RATE, "max_speakers": 2},
        torch.optim.Adam,
    )
    logged = {}
    task.log = lambda name, value, **kw: logged.__setitem__(name, float(value))
    task.trainer = _Run()
    task.validation_step(batch, 0)
    task.on_validation_epoch_end()
    assert logged["val/der"] == pytest.approx(0.0, abs=1.0)
    assert logged["val/der_estimated"] == pytest.approx(estimated, abs=2.0)
    assert logged["val/count_exact"] == (1.0 if estimated == 0 else 0.0)


def test_oracle_speech_activity_cuts_turns_to_the_reference_and_fills_its_speech():
    # 10 frames of 0.1 s: speaker 0 sure in 0-0.3 s, nobody sure in 0.5-0.8 s (speaker 1 likelier)
    probs = np.zeros((10, 2))
    probs[0:3, 0] = 0.9
    probs[5:8, 1] = 0.3
    probs[5:8, 0] = 0.1
    speech = Timeline([Segment(0.1, 0.25), Segment(0.52, 0.7)])
    found = activities_to_annotation(probs, 0.1, "r", 0.5, 1, speech=speech)
    turns = sorted(
        (label, round(s.start, 3), round(s.end, 3))
        for s, _, label in found.itertracks(yield_label=True)
    )
    assert turns == [("spk00", 0.1, 0.25), ("spk01", 0.52, 0.7)]
    plain = activities_to_annotation(probs, 0.1, "r", 0.5, 1)
    (only,) = plain.get_timeline().support()  # without oracle speech: speaker 0's 0-0.3 s alone
    assert (only.start, only.end) == pytest.approx((0.0, 0.3))
    with pytest.raises(ConfigValueError, match="task.decoding.speech_activity"):
        DecodingConfig(speech_activity="silero")


def test_one_speaker_floor():
    reference = Annotation(uri="r")
    reference[Segment(0, 4)] = "a"
    reference[Segment(3, 6)] = "b"
    der = diarization_error_rates({"r": reference}, {"r": one_speaker_baseline(reference)})[
        "collar0"
    ]["corpus"]
    # 7 s of speaker time: the single label covers 'a' (4 s); 1 s of 'b' overlapped is missed, 2 s
    # confused
    assert der["speech"] == pytest.approx(7.0) and der["missed"] == pytest.approx(1.0)
    assert der["confusion"] == pytest.approx(2.0) and der["der"] == pytest.approx(300 / 7)


def test_tiny_training_run_writes_the_diarization_report(tiny_voxceleb, tmp_path):
    out = tmp_path / "run"
    summary = train_run(tiny_eend_overrides(tiny_voxceleb, tmp_path / "mix"), out)
    assert summary["train_metrics"]["train/loss"] > 0
    assert {"val/der", "val/der_estimated", "val/count_exact"} <= set(summary["train_metrics"])
    metrics = json.loads((out / "metrics.json").read_text())
    result = metrics["test"]["sim_test"]
    for key in ("collar0", "collar0.25"):
        assert set(result["system"][key]["files"]) == {f"sim_test_{i:06d}" for i in range(3)}
        assert (
            result["floor"][key]["corpus"]["speech"]
            == result["system"][key]["corpus"]["speech"]
            > 0
        )
    assert metrics["checkpoint_reason"] == "best by val/der"
    assert len(list((out / "rttm" / "sim_test").glob("*.rttm"))) == 3
    assert len(list((out / "timelines" / "sim_test").glob("*.png"))) == 3
    assert "one speaker (floor)" in (out / "results.md").read_text()
    # evaluate.py re-scores the run from its folder: the same DER, with no family-specific code.
    eval_dir = tmp_path / "eval"
    evaluate(
        compose("eval", [f"run_dir={out}", "trainer.enable_progress_bar=false"], eval_dir),
        ROOT / "configs",
    )
    again = json.loads((eval_dir / "metrics.json").read_text())["test"]["sim_test"]
    for key in ("collar0", "collar0.25"):
        assert again["system"][key]["corpus"]["der"] == pytest.approx(
            result["system"][key]["corpus"]["der"], abs=1e-9
        )
    # evaluate.py on recordings given as a folder, with their references: the same numbers again
    sim_dir = next((tmp_path / "mix").glob("sim_test_*"))
    given = _evaluate_recordings(
        tmp_path,
        out,
        f"recordings={sim_dir / 'audio'}",
        f"rttm={sim_dir / 'test.rttm'}",
        f"uem={sim_dir / 'test.uem'}",
    )
    assert (
        given["test"]["audio"]["system"]["collar0"]["files"] == result["system"]["collar0"]["files"]
    )
    # oracle modes: the reference's count and speech; the turns then cover exactly its speech
    oracle = _evaluate_recordings(
        tmp_path,
        out,
        f"recordings={sim_dir / 'audio'}",
        f"rttm={sim_dir / 'test.rttm'}",
        f"uem={sim_dir / 'test.uem'}",
        "decoding={speech_activity: oracle, oracle_count: true}",
    )
    oracle_dir = tmp_path / f"eval{len(list(tmp_path.glob('eval*'))) - 1}"
    references = read_rttm(sim_dir / "test.rttm")
    for uri, reference in references.items():
        found = read_rttm(oracle_dir / "rttm" / "audio" / f"{uri}.rttm")[uri]
        mismatch = found.get_timeline().support().gaps(reference.get_timeline().support())
        assert found.get_timeline().support().duration() == pytest.approx(
            reference.get_timeline().support().duration(), abs=0.01
        ), uri
        assert len(found.labels()) <= len(reference.labels()) and mismatch.duration() < 0.01
    corpus = oracle["test"]["audio"]["system"]["collar0"]["corpus"]
    assert (
        corpus["false_alarm"]
        <= given["test"]["audio"]["system"]["collar0"]["corpus"]["false_alarm"]
    )
    # ... and as a list of audio files without references: RTTMs and timelines, no score
    listing = tmp_path / "two.lst"
    listing.write_text("".join(f"{sim_dir.name}/audio/sim_test_00000{i}.wav\n" for i in (0, 2)))
    shutil.copytree(sim_dir, tmp_path / sim_dir.name)
    unscored = _evaluate_recordings(tmp_path, out, f"recordings={listing}")
    assert unscored["test"]["two"] == {"scored": False, "recordings": 2}
    eval_dir = tmp_path / f"eval{len(list(tmp_path.glob('eval*'))) - 1}"
    assert sorted(p.name for p in (eval_dir / "rttm" / "two").iterdir()) == [
        "sim_test_000000.rttm",
        "sim_test_000002.rttm",
    ]
    assert len(list((eval_dir / "timelines" / "two").glob("*.png"))) == 2
    assert "2 recordings diarized, not scored" in (eval_dir / "results.md").read_text()
    # The same turns as the training run wrote for that recording (the tiny model may write none at
    # all).
    hypothesis = (eval_dir / "rttm" / "two" / "sim_test_000002.rttm").read_text()
    assert hypothesis == (out / "rttm" / "sim_test" / "sim_test_000002.rttm").read_text()
    # the Python API and `sonolab diarize` decode as the run's test did (its tuned threshold and
    # median filter, from metrics.json): the same RTTM; a fixed count bounds the speakers
    diarizer = sonolab.load(out, device="cpu")
    wav = sim_dir / "audio" / "sim_test_000002.wav"
    assert isinstance(diarizer.diarize(wav), Annotation)
    assert len(diarizer.diarize(wav, num_speakers=1).labels()) <= 1
    assert sonolab_main(["diarize", str(listing), f"run_dir={out}", f"out={tmp_path / 'cli'}"]) == 0
    assert (tmp_path / "cli" / "rttm" / "sim_test_000002.rttm").read_text() == hypothesis
    assert len(list((tmp_path / "cli" / "timelines").glob("*.png"))) == 2
    # Any file name: a space and a Latin-1 byte (not UTF-8) in recording names; the references
    # name them escaped, as sonolab writes them; output RTTMs read back to the same URIs.
    odd = tmp_path / "odd"
    odd.mkdir()
    names = {"sim_test_000000": "my meeting", "sim_test_000001": "caf\udce9"}
    turns = read_rttm(sim_dir / "test.rttm")
    for old, new in names.items():
        shutil.copy(sim_dir / "audio" / f"{old}.wav", os.fsencode(odd / f"{new}.wav"))
    write_rttm(
        odd / "ref.rttm",
        {
            new: [(label, seg.start, seg.end) for seg, _, label in turns[old].itertracks(True)]
            for old, new in names.items()
        },
    )
    regions = read_uem(sim_dir / "test.uem")
    write_uem(odd / "ref.uem", {new: tuple(regions[old][0]) for old, new in names.items()})
    assert "SPEAKER my%20meeting 1 " in (odd / "ref.rttm").read_text()
    scored = _evaluate_recordings(
        tmp_path, out, f"recordings={odd}", f"rttm={odd / 'ref.rttm'}", f"uem={odd / 'ref.uem'}"
    )
    odd_eval = tmp_path / f"eval{len(list(tmp_path.glob('eval*'))) - 1}"
    files = scored["test"]["odd"]["system"]["collar0"]["files"]
    assert set(files) == set(names.values())
    for old, new in names.items():
        assert files[new] == pytest.approx(result["system"]["collar0"]["files"][old])
        written = Path(os.fsdecode(os.fsencode(odd_eval / "rttm" / "odd" / f"{new}.rttm")))
        if written.read_text(errors="surrogateescape").strip():  # the tiny model may write none
            assert set(read_rttm(written)) == {new}
    assert sorted((odd_eval / "rttm" / "odd" / "escaped_uris.tsv").read_bytes().splitlines()) == [
        b"caf%E9\tcaf\xe9.rttm",
        b"my%20meeting\tmy meeting.rttm",
    ]
    # arguments of another family, or references without recordings, are named
    with pytest.raises(
        ConfigValueError,
        match=r"trials: expected an argument of this run's datamodule "
        r"DiarizationDataModule \(recordings, rttm, uem\)",
    ):
        _evaluate_recordings(tmp_path, out, "trials=x.txt")
    with pytest.raises(
        ConfigValueError, match=r"rttm: expected recordings=<folder or list> to go with it"
    ):
        _evaluate_recordings(tmp_path, out, "rttm=x.rttm")


def _evaluate_recordings(tmp_path: Path, run_dir: Path, *overrides: str) -> dict:
    out = tmp_path / f"eval{len(list(tmp_path.glob('eval*')))}"
    evaluate(
        compose(
            "eval", [f"run_dir={run_dir}", "trainer.enable_progress_bar=false", *overrides], out
        ),
        ROOT / "configs",
    )
    return json.loads((out / "metrics.json").read_text())


def test_decoding_is_tuned_on_the_dev_recordings():
    from sonolab.inference.diarization import tune_decoding

    reference = Annotation(uri="d")
    reference[Segment(1.0, 4.0)] = "a"
    reference[Segment(6.0, 9.0)] = "b"
    probs = np.full(
        (100, 2), 0.65
    )  # everywhere above 0.6: only a threshold of 0.7 removes the false alarms
    probs[10:40, 0] = probs[60:90, 1] = 0.9
    probs[50, 0] = (
        0.2  # one-frame dip: a median filter is not needed at 0.7, and must not be chosen blindly
    )
    config = DecodingConfig(threshold_grid=(0.5, 0.6, 0.7), median_grid=(1, 5))
    threshold, median, der = tune_decoding({"d": (probs, 0.1)}, {"d": reference}, None, config)
    assert threshold == 0.7 and der == pytest.approx(0.0, abs=1e-6) and median in (1, 5)
    with pytest.raises(ConfigValueError, match="task.decoding.tune_setup: expected collar0"):
        tune_decoding(
            {"d": (probs, 0.1)}, {"d": reference}, None, DecodingConfig(tune_setup="collar9")
        )


def test_ami_config_maps_the_standard_setup_layout(tmp_path):
    """data=ami on the real references: every meeting is found in list, RTTM and UEM; the audio the
    config points at is absent here, and that is reported by meeting name."""
    root = SHARED_DATA / "ami-diarization-setup"
    if not root.is_dir():
        pytest.skip(f"real data not present: {root} (see ../shared/data/README.md)")
    from hydra.utils import instantiate

    cfg = compose("train", ["data=ami", f"data.root={root}", "data.num_workers=0"], tmp_path)
    dm = instantiate(cfg.data, _recursive_=False)
    with pytest.raises(DataFormatError, match=r"in list, rttm, uem but not in audio") as err:
        dm.setup("test")
    dev = read_uri_list(root / "lists" / "test.meetings.txt")
    assert len(err.value.details) == len(dev)
    skips = SkipLog()
    skipped = RecordingSet.from_files(
        "test",
        root,
        "lists/test.meetings.txt",
        "only_words/rttms/test/{uri}.rttm",
        "uems/test/{uri}.uem",
        str(tmp_path / "{uri}.wav"),
        on_missing="skip",
        skips=skips,
    )
    assert skipped.uris == [] and sum(skips.counts.values()) == len(dev)


@pytest.mark.slow  # two processes each start torch and Lightning: ~1 min on 2 cores
def test_two_process_ddp_training_and_test_gather_every_recording_once(tiny_voxceleb, tmp_path):
    """trainer=ddp on 2 CPU processes (gloo): training mixtures are sharded by rank, validation
    error
    counts summed over ranks, and the test hypotheses of both ranks gathered: every recording scored
    once, the same DER as re-scoring the run's checkpoint in one process."""
    from ..conftest import run_script

    run_dir = tmp_path / "ddp_run"
    result = run_script(
        "train.py",
        [
            "experiment=synth_eend_eda",
            *diarization_overrides(tiny_voxceleb, tmp_path / "mix"),
            "trainer=ddp",
            "trainer.accelerator=cpu",
            "trainer.devices=2",
            "trainer.precision=32-true",
            "trainer.sync_batchnorm=false",
            "trainer.max_epochs=1",
            "~callbacks.progress_bar",
            f"hydra.run.dir={run_dir}",
        ],
        tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    trained = json.loads((run_dir / "metrics.json").read_text())["test"]["sim_test"]
    assert set(trained["system"]["collar0"]["files"]) == {f"sim_test_{i:06d}" for i in range(3)}
    eval_dir = tmp_path / "eval_one_process"
    result = run_script(
        "evaluate.py",
        [f"run_dir={run_dir}", f"hydra.run.dir={eval_dir}", "trainer.enable_progress_bar=false"],
        tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    again = json.loads((eval_dir / "metrics.json").read_text())["test"]["sim_test"]
    for key in ("collar0", "collar0.25"):
        assert again["system"][key]["files"] == trained["system"][key]["files"]
        assert again["system"][key]["corpus"]["speech"] == pytest.approx(
            trained["floor"][key]["corpus"]["speech"]
        )


def test_a_saved_run_s_retired_decoding_key_is_dropped_with_a_warning(caplog):
    with caplog.at_level("WARNING", logger="sonolab.inference.diarization"):
        config = DecodingConfig.from_config({"window_seconds": 30.0, "link_threshold": 0.3})
    assert config.window_seconds == 30.0
    assert "task.decoding.link_threshold is no longer used" in caplog.text
