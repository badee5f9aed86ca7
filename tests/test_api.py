"""The Python API (sonolab.load) and the `sonolab` command's inference and help, on tiny trained
runs of each family (diarization: tests/tasks/test_diarization.py's tiny run)."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch

import sonolab
from sonolab.cli import commands
from sonolab.cli import main as sonolab_main
from sonolab.data.audio import load_audio
from sonolab.inference.speaker import SpeakerVerifier
from sonolab.inference.tagger import Tagger
from sonolab.utils.errors import DataFormatError


def test_a_verification_run_embeds_and_scores_as_its_test_did(trained_run, tiny_voxceleb):
    verifier = sonolab.load(trained_run, device="cpu")
    assert isinstance(verifier, SpeakerVerifier) and "SpeakerVerifier(" in repr(verifier)
    rows = [line.split() for line in (trained_run / "scores_synth.txt").read_text().splitlines()]
    wav = tiny_voxceleb / "wav"
    for enroll, test, score, _ in rows[:5]:  # plain cosine: the run's trial scores
        assert verifier.score(wav / enroll, wav / test) == pytest.approx(float(score), abs=1e-4)
    files = sorted({wav / r[0] for r in rows[:6]})
    one_by_one = verifier.embed(files)
    assert one_by_one.shape == (len(files), verifier.embedding_dim)
    # a waveform is embedded as its file is; batches pad, which the lobes see a little
    wave = load_audio(files[0], verifier.sample_rate)
    assert np.array_equal(verifier.embed(wave), one_by_one[0])
    assert np.array_equal(verifier.embed(wave.numpy()), one_by_one[0])
    batched = verifier.embed(files, batch_size=3)
    cosine = (batched * one_by_one).sum(1) / np.linalg.norm(batched, axis=1)
    assert (cosine / np.linalg.norm(one_by_one, axis=1)).min() > 0.99
    # a checkpoint inside the run folder loads the same weights
    last = sonolab.load(trained_run / "checkpoints" / "last.ckpt", device="cpu")
    assert last.checkpoint.name == "last.ckpt"
    with pytest.raises(DataFormatError, match="a training run folder"):
        sonolab.load(trained_run / "nothing-here")
    with pytest.raises(Exception, match="waveform: expected a non-empty 1-D float array"):
        verifier.embed(torch.zeros(2, 10))


@pytest.mark.slow  # four command runs that each load the run: the default suite's time
def test_the_inference_commands_count_unreadable_files(
    trained_run, tiny_voxceleb, tmp_path, capsys
):
    wav = tiny_voxceleb / "wav"
    a, b = sorted(wav.rglob("*.wav"))[:2]
    assert sonolab_main(["score", str(a), str(b), f"run_dir={trained_run}", "device=cpu"]) == 0
    printed = float(capsys.readouterr().out.strip())
    assert printed == pytest.approx(sonolab.load(trained_run).score(a, b), abs=1e-6)
    folder = tmp_path / "in"
    folder.mkdir()
    for i, src in enumerate((a, b)):
        (folder / f"{i}.wav").write_bytes(src.read_bytes())
    (folder / "broken.wav").write_bytes(b"RIFF not really a wave file")
    out = tmp_path / "emb"
    assert sonolab_main(["embed", str(folder), f"run_dir={trained_run}", f"out={out}"]) == 0
    assert "2 files embedded, 1 skipped" in capsys.readouterr().out
    assert np.load(out / "embeddings.npz")["keys"].tolist() == ["0.wav", "1.wav"]
    # with on_error=raise the unreadable file stops the command, named
    assert sonolab_main(["embed", str(folder), f"run_dir={trained_run}", "on_error=raise"]) == 1
    assert "broken.wav" in capsys.readouterr().err
    # a run of another family, an unknown key, an unknown command
    assert sonolab_main(["tag", str(folder), f"run_dir={trained_run}"]) == 1
    assert "needs one whose inference is Tagger" in capsys.readouterr().err
    assert sonolab_main(["embed", str(folder), f"run_dir={trained_run}", "colour=red"]) == 1
    assert "colour: expected one of the command's keys" in capsys.readouterr().err
    assert sonolab_main(["nonsense"]) == 2


@pytest.mark.slow  # trains a tiny HTS-AT run (shared with the export test)
def test_a_tagging_run_tags_files_with_frame_scores(tagging_run, tiny_esc50, tmp_path, capsys):
    tagger = sonolab.load(tagging_run, device="cpu")
    assert isinstance(tagger, Tagger) and len(tagger.labels) == 4
    clip = sorted((tiny_esc50 / "audio").glob("*.wav"))[0]
    wave = load_audio(clip, tagger.sample_rate)[: tagger.window]
    tags = tagger.tag(wave, top_k=3)
    assert len(tags.labels) == 3 and tags.scores == sorted(tags.scores, reverse=True)
    assert tags.clip_scores.sum() == pytest.approx(1.0, abs=1e-5)  # single label: softmax
    with torch.inference_mode():  # one window: the model's own prediction for the clip
        logits = tagger.task(wave[None], torch.tensor([wave.numel()]))
    assert np.allclose(tags.clip_scores, logits.softmax(-1)[0].numpy(), atol=1e-6)
    assert tags.frame_scores.shape[1] == 4 and tags.frame_seconds > 0
    # a longer input: windows of the run's clip length, the last one ending with the input (not
    # a mostly padded one); each class's best window
    longer = torch.cat([wave, wave.flip(0), wave[: tagger.window // 2]])
    windows = [wave, wave.flip(0), longer[-tagger.window :]]
    expected = np.max([tagger.tag(w).clip_scores for w in windows], axis=0)
    joined = tagger.tag(longer)
    assert np.allclose(joined.clip_scores, expected, atol=1e-6)
    frames = int(np.ceil(2.5 * tagger.clip_seconds / joined.frame_seconds))
    assert abs(len(joined.frame_scores) - frames) <= 1
    assert np.allclose(joined.frame_scores[: len(tags.frame_scores)], tags.frame_scores, atol=1e-6)
    # a short remainder does not add a window of silence: 1.01 clips score as the last clip
    tail = torch.cat([wave, wave.flip(0)[: tagger.window // 100]])
    assert np.allclose(
        tagger.tag(tail).clip_scores,
        np.max([tags.clip_scores, tagger.tag(tail[-tagger.window :]).clip_scores], axis=0),
        atol=1e-6,
    )
    # sonolab tag: CSV and JSON of each file's top labels
    out = tmp_path / "tags"
    assert (
        sonolab_main(
            [
                "tag",
                str(tiny_esc50 / "audio"),
                f"run_dir={tagging_run}",
                f"out={out}",
                "top_k=2",
                "frames=true",
            ]
        )
        == 0
    )
    rows = list(csv.DictReader((out / "tags.csv").open()))
    files = sorted(p.name for p in (tiny_esc50 / "audio").glob("*.wav"))
    assert [r["file"] for r in rows[::2]] == files and {r["rank"] for r in rows} == {"1", "2"}
    listing = json.loads((out / "tags.json").read_text())
    assert listing[0]["labels"] == [r["label"] for r in rows[:2]] and "frame_scores" in listing[0]


def test_every_command_answers_help(capsys):
    assert sonolab_main(["--help"]) == 0
    listing = capsys.readouterr().out
    names = set(commands())
    assert {"train", "eval", "embed", "score", "diarize", "tag", "report", "synth", "pack"} <= names
    for name in names:
        assert name in listing
        with pytest.raises(SystemExit) as stop:
            sonolab_main([name, "--help"])
        assert stop.value.code in (0, None), name
        assert len(capsys.readouterr().out) > 50, name


def test_every_command_takes_its_options_as_key_value(tmp_path):
    import argparse

    from sonolab.cli import as_flags

    parser = argparse.ArgumentParser()
    parser.add_argument("--out")
    parser.add_argument("--shard-clips", type=int)
    parser.add_argument("--verify", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--dry", action="store_true")
    parser.add_argument("--metrics", nargs="+")
    argv = ["out=/x", "shard_clips=5", "verify=false", "dry=true", "metrics=eer,min_dcf*"]
    assert as_flags(parser, [*argv, "data.root=/d", "--seed", "3"]) == [
        "--out", "/x", "--shard-clips", "5", "--no-verify", "--dry", "--metrics", "eer",
        "min_dcf*", "data.root=/d", "--seed", "3",
    ]  # fmt: skip
    # a generator's options, as key=value (the same dataset as with --flags)
    options = ["num_classes=2", "clips_per_class=2", "folds=2", "seconds=0.5", "sample_rate=8000"]
    assert sonolab_main(["synth", "esc50", f"out={tmp_path / 'a'}", *options]) == 0
    flags = ["--num-classes", "2", "--clips-per-class", "2", "--folds", "2", "--seconds", "0.5"]
    assert sonolab_main(["synth", "esc50", "--out", str(tmp_path / "b"), *flags,
                         "--sample-rate", "8000"]) == 0  # fmt: skip
    first, second = (sorted((tmp_path / d / "audio").iterdir()) for d in "ab")
    assert [p.name for p in first] == [p.name for p in second] and len(first) == 4
    assert all(a.read_bytes() == b.read_bytes() for a, b in zip(first, second))
