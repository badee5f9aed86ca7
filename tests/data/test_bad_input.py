"""Audio files and datamodules fed bad input: truncated, non-finite, multi-channel and other-rate
audio, stray files in a tree, the pre-scan, recording sets that do not match; each error names the
file, or what is skipped is counted."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from sonolab.data.audio import audio_problem, load_audio, load_random_crop
from sonolab.data.readers import (
    scan_speaker_tree,
)
from sonolab.data.skips import SkipLog
from sonolab.data.verify import CHECKS_VERSION, cache_file
from sonolab.utils.errors import ConfigValueError, DataFormatError

from ..bad_input import SR
from ..bad_input import dm as _dm
from ..bad_input import tone as _tone
from ..bad_input import truncate as _truncate


def _recording_set(
    tmp_path: Path, rate: int, channels: int, uris=("m1",), rttm_uris=("m1",)
) -> Path:
    root = tmp_path / "rec"
    (root / "audio").mkdir(parents=True)
    tone = np.tile(_tone(rate=rate), 3)
    for uri in uris:
        data = tone if channels == 1 else np.stack([np.zeros_like(tone), tone], axis=1)
        sf.write(root / "audio" / f"{uri}.wav", data, rate, subtype="FLOAT")
    (root / "set.lst").write_text("".join(u + "\n" for u in uris))
    (root / "set.rttm").write_text(
        "".join(f"SPEAKER {u} 1 0.5 2.0 <NA> <NA> A <NA> <NA>\n" for u in rttm_uris)
    )
    (root / "set.uem").write_text("".join(f"{u} 1 0.0 3.0\n" for u in rttm_uris))
    return root


@pytest.mark.parametrize(
    "fmt, subtype", [("WAV", "PCM_16"), ("WAV", "FLOAT"), ("FLAC", "PCM_16"), ("OGG", "VORBIS")]
)
def test_truncated_audio_is_an_error_naming_the_file(tmp_path, fmt, subtype):
    path = tmp_path / f"cut.{fmt.lower()}"
    sf.write(path, np.tile(_tone(), 2), SR, format=fmt, subtype=subtype)
    _truncate(path)
    with pytest.raises(
        DataFormatError, match=rf"cut\.{fmt.lower()}: expected .*(truncated|read error)"
    ):
        load_audio(path, SR)
    assert "cut." in audio_problem(path, SR, True)


def test_float_files_with_nan_or_infinity_fail_the_pre_scan(tmp_path):
    clean = np.tile(_tone(), 2).astype(np.float32)
    for value, name in [(np.nan, "nan"), (np.inf, "inf")]:
        wave = clean.copy()
        wave[SR // 2 : SR // 2 + 3] = value  # 3 samples at 0.5 s
        path = tmp_path / f"{name}.wav"
        sf.write(path, wave, SR, subtype="FLOAT")
        assert audio_problem(path, SR, True) == (
            f"{path}: expected finite samples, found 3 NaN / infinite ones (the first at 0.500 s)"
        )
    sf.write(tmp_path / "clean.wav", clean, SR, subtype="FLOAT")
    assert audio_problem(tmp_path / "clean.wav", SR, True) is None


def test_truncated_wav_fails_even_for_a_crop_from_its_intact_half(tmp_path):
    path = tmp_path / "cut.wav"
    sf.write(path, np.tile(_tone(), 4), SR, subtype="PCM_16")
    _truncate(path)
    with pytest.raises(
        DataFormatError, match=r"cut.wav: expected the 128000 data bytes its header declares"
    ):
        load_random_crop(path, SR, True, 1000, np.random.default_rng(0))


def test_non_finite_samples_are_named(tmp_path):
    data = _tone()
    data[1234] = np.nan
    path = tmp_path / "nan.wav"
    sf.write(path, data, SR, subtype="FLOAT")
    with pytest.raises(
        DataFormatError,
        match=r"nan.wav: expected finite sample values, found 'NaN or infinity at sample 1234'",
    ):
        load_audio(path, SR)


def test_stereo_is_averaged_by_default_and_a_channel_can_be_picked(tmp_path):
    speech = _tone()
    path = tmp_path / "right_only.wav"
    sf.write(path, np.stack([np.zeros_like(speech), speech], axis=1), SR, subtype="FLOAT")
    np.testing.assert_allclose(
        load_audio(path, SR).numpy(), speech / 2, atol=1e-6
    )  # not the silent left channel
    np.testing.assert_allclose(load_audio(path, SR, channel=1).numpy(), speech, atol=1e-6)
    assert float(load_random_crop(path, SR, True, 800, np.random.default_rng(0)).abs().max()) > 0.1
    with pytest.raises(
        DataFormatError, match=r"right_only.wav: expected a channel 2 .*found '2 channel\(s\)'"
    ):
        load_audio(path, SR, channel=2)


def test_the_datamodule_applies_the_channel_setting(tiny_copy):
    utt = next((tiny_copy / "wav").glob("*/*/*.wav"))
    mono, rate = sf.read(utt, dtype="float32")
    sf.write(utt, np.stack([np.zeros_like(mono), mono], axis=1), rate, subtype="FLOAT")
    rel = str(utt.relative_to(tiny_copy / "wav"))
    for channel, expected in ((None, mono / 2), (1, mono)):
        dm = _dm(tiny_copy, audio={"channel": channel})
        dm.setup("test")
        dataset = dm.test_dataloader()[0].dataset
        dataset.paths = [rel]
        np.testing.assert_allclose(dataset[0]["wave"].numpy(), expected, atol=1e-4)
    with pytest.raises(
        ConfigValueError, match=r"data.audio.channel: expected null \(average the channels\)"
    ):
        _dm(tiny_copy, audio={"channel": -1})


def test_hidden_entries_and_other_extensions_are_ignored_and_counted(tiny_copy):
    wav = tiny_copy / "wav"
    speaker = sorted(p for p in wav.iterdir() if p.is_dir())[0]
    session = next(p for p in speaker.iterdir() if p.is_dir())
    (wav / ".git").mkdir()
    (wav / ".git" / "HEAD").write_text("ref")
    shutil.copy(next(session.glob("*.wav")), session / "._00001.wav")  # macOS resource fork
    (session / "00009.m4a").write_bytes(b"\0" * 100)
    m4a_only = wav / "id19999" / "sessionA"
    m4a_only.mkdir(parents=True)
    (m4a_only / "00001.m4a").write_bytes(b"\0" * 100)
    skips = SkipLog()
    utts = scan_speaker_tree(wav, ("wav",), skips=skips)
    assert ".git" not in {u.speaker for u in utts} and not any("._" in u.path for u in utts)
    counts = skips.as_dict()
    assert counts["hidden file or folder ignored"]["count"] == 2
    assert counts["audio file with an extension not in data.audio.extensions (.m4a)"]["count"] == 2
    assert counts["speaker left out: no file with an extension in data.audio.extensions"][
        "examples"
    ] == ["id19999 (1 .m4a)"]
    with pytest.raises(
        DataFormatError,
        match=r"id19999 \(only \.m4a files; add the extension to data.audio.extensions",
    ):
        scan_speaker_tree(wav, ("wav",), speakers=[speaker.name, "id19999"])


def test_audio_pre_scan_lists_bad_files_or_skips_and_counts_them(tiny_copy, monkeypatch):
    train_speakers = (tiny_copy / "train_speakers.txt").read_text().split()
    files = sorted((tiny_copy / "wav" / train_speakers[0]).rglob("*.wav"))
    _truncate(files[0])
    sf.write(files[1], _tone(rate=8000), 8000)  # wrong rate, with resampling off
    with pytest.raises(
        DataFormatError,
        match=r"wav: expected audio the loaders can read \(32 files checked for "
        r"train\), found '2 bad files' \(all listed in .*bad_audio_train.txt; "
        r"data.on_bad_audio=skip leaves them out\)",
    ) as err:
        _dm(tiny_copy, verify_audio=True, audio={"resample": False}).setup("fit")
    assert [d.split(": expected")[0] for d in err.value.details] == [str(files[0]), str(files[1])]
    assert "found '8000 Hz'" in err.value.details[1] and "truncated" in err.value.details[0]
    listing = (
        cache_file(
            tiny_copy,
            {
                "checks": CHECKS_VERSION,
                "sample_rate": SR,
                "resample": False,
                "channel": None,
                "min_seconds": 0.025,
            },
        ).parent
        / "bad_audio_train.txt"
    )
    assert listing.is_file() and len(listing.read_text().splitlines()) == 2
    assert (
        listing.parent == tiny_copy / ".sonolab"
    )  # beside the data, outside the trees that are scanned

    calls = []
    import sonolab.data.verify as verify

    real = verify.audio_problem
    monkeypatch.setattr(
        verify, "audio_problem", lambda *a, **k: calls.append(Path(a[0])) or real(*a, **k)
    )
    dm = _dm(tiny_copy, verify_audio=True, audio={"resample": False}, on_bad_audio="skip")
    dm.setup("fit")
    assert not [c for c in calls if c.parts[-3] in train_speakers]  # training files: from the cache
    assert len(dm.train_set) == 8 * 4 - 2
    entry = dm.skipped.as_dict()["unreadable training file left out (data.on_bad_audio=skip)"]
    assert entry["count"] == 2 and any(files[0].name in e for e in entry["examples"])
    assert "hidden file or folder ignored" not in dm.skipped.as_dict()
    calls.clear()
    files[2].write_bytes(b"not audio")  # only a changed file is checked again
    dm = _dm(tiny_copy, verify_audio=True, audio={"resample": False}, on_bad_audio="skip")
    dm.setup("fit")
    assert calls == [files[2]] and len(dm.train_set) == 8 * 4 - 3


def test_one_class_list_fails_at_setup_before_any_embedding(tiny_copy):
    (tiny_copy / "trials.txt").write_text(
        "".join(
            line + "\n"
            for line in (tiny_copy / "trials.txt").read_text().splitlines()
            if line.startswith("1")
        )
    )
    with pytest.raises(DataFormatError, match=r"trials.txt: expected both target"):
        _dm(tiny_copy).setup("fit")


def test_diarization_chunks_of_other_rates_and_stereo_recordings(tmp_path):
    from sonolab.data.diarization import RecordingChunks, RecordingSet

    root = _recording_set(tmp_path, rate=8000, channels=2)
    recordings = RecordingSet.from_files(
        "set", root, "set.lst", "set.rttm", "set.uem", "audio/{uri}.wav"
    )
    chunk = RecordingChunks(recordings, 3.0, SR, 4, SkipLog())[0]
    assert chunk["wave"].numel() == 3 * SR  # resampled from 8 kHz
    assert float(chunk["wave"].abs().max()) == pytest.approx(
        0.15, abs=0.01
    )  # the two channels averaged
    assert (
        chunk["labels"].shape == (300, 1)
        and chunk["labels"][50:250].all()
        and not chunk["labels"][:50].any()
    )


def test_diarization_uri_without_reference_or_audio_is_named(tmp_path):
    from sonolab.data.diarization import RecordingSet

    root = _recording_set(tmp_path, rate=SR, channels=1, uris=("m1", "m2"), rttm_uris=("m1",))
    with pytest.raises(DataFormatError, match=r"'m2' in list, audio but not in rttm, uem"):
        RecordingSet.from_files("set", root, "set.lst", "set.rttm", "set.uem", "audio/{uri}.wav")
    (root / "audio" / "m1.wav").unlink()
    skips = SkipLog()
    kept = RecordingSet.from_files(
        "set",
        root,
        "set.lst",
        "set.rttm",
        "set.uem",
        "audio/{uri}.wav",
        on_missing="skip",
        skips=skips,
    )
    assert kept.uris == [] and sum(skips.counts.values()) == 2


def test_a_misspelt_simulation_key_is_named(tiny_voxceleb, tmp_path):
    from sonolab.data.diarization import DiarizationDataModule

    dm = DiarizationDataModule(
        root=str(tmp_path),
        simulation={"tree": str(tiny_voxceleb / "wav"), "utterance_per_speaker": [1, 2]},
        num_workers=0,
    )
    with pytest.raises(
        ConfigValueError, match=r"data.simulation.utterance_per_speaker: expected one of \["
    ):
        dm.setup("fit")


def test_recordings_to_diarize_with_clashing_names_or_missing_files_are_named(tmp_path):
    from sonolab.data.diarization import RecordingSet
    from sonolab.data.readers import find_recordings

    root = _recording_set(tmp_path, rate=SR, channels=1, uris=("m1", "m2"), rttm_uris=("m1",))
    (root / "audio" / "sub").mkdir()
    sf.write(root / "audio" / "sub" / "m1.flac", np.zeros(SR, dtype=np.float32), SR)
    with pytest.raises(
        DataFormatError,
        match=r"audio: expected recordings with different file names .*m1.wav and .*m1.flac",
    ):
        find_recordings(root / "audio", ("wav", "flac"))
    listing = tmp_path / "list.txt"
    listing.write_text("audio/m1.wav\naudio/m3.wav\n")
    shutil.copytree(root / "audio", tmp_path / "audio")
    with pytest.raises(
        DataFormatError,
        match=r"list.txt:2: expected an existing audio file on every line, found 'audio/m3.wav'",
    ):
        find_recordings(listing, ("wav",))
    with pytest.raises(DataFormatError, match=r"expected audio files \(wav\), found 'none'"):
        find_recordings(tmp_path / "audio" / "sub", ("wav",))
    # references that miss a recording: named, as for a configured set
    listing.write_text("audio/m1.wav\naudio/m2.wav\n")
    with pytest.raises(DataFormatError, match=r"'m2' in recordings but not in rttm"):
        RecordingSet.from_recordings("set", str(listing), rttm=str(root / "set.rttm"))
    whole = RecordingSet.from_recordings(
        "set", str(listing), rttm=str(root / "set.rttm"), on_missing="skip", skips=SkipLog()
    )
    assert whole.uris == ["m1"] and whole.uems["m1"].extent().duration == pytest.approx(
        sf.info(root / "audio" / "m1.wav").duration
    )


def test_a_truncated_recording_is_found_when_its_set_is_read(tmp_path):
    from sonolab.data.diarization import DiarizationDataModule

    root = _recording_set(tmp_path, rate=SR, channels=1, uris=("m1", "m2"), rttm_uris=("m1", "m2"))
    _truncate(root / "audio" / "m2.wav")
    sets = {
        "dev": {"lst": "set.lst", "rttm": "set.rttm", "uem": "set.uem", "audio": "audio/{uri}.wav"}
    }
    dm = DiarizationDataModule(
        root=str(root), sets=sets, train="dev", val=None, test=["dev"], num_workers=0
    )
    with pytest.raises(
        DataFormatError,
        match=r"recording set dev: expected recordings the loader can read "
        r"\(2 checked\), found '1 bad files'.*\n  .*m2.wav",
    ):
        dm.setup("test")
    dm = DiarizationDataModule(
        root=str(root),
        sets=sets,
        train="dev",
        val=None,
        test=["dev"],
        num_workers=0,
        on_bad_audio="skip",
    )
    dm.setup("test")
    assert dm.recordings("dev").uris == ["m1"]
    assert (
        dm.skipped.as_dict()["unreadable recording left out (data.on_bad_audio=skip)"]["count"] == 1
    )


def test_references_are_checked_against_the_audio_length(tmp_path):
    from pyannote.core import Segment

    from sonolab.data.diarization import RecordingSet
    from sonolab.data.skips import SkipLog

    root = _recording_set(tmp_path, rate=SR, channels=1)  # m1: 3 s of audio
    seconds = sf.info(root / "audio" / "m1.wav").duration
    turns = [
        "SPEAKER m1 1 0.5 2.0 <NA> <NA> A <NA> <NA>",
        "SPEAKER m1 1 2.5 1.0 <NA> <NA> B <NA> <NA>",  # runs 0.5 s past the end
        "SPEAKER m1 1 4.0 1.0 <NA> <NA> B <NA> <NA>",  # starts past the end
        "SPEAKER m1 1 1e300 1.0 <NA> <NA> B <NA> <NA>",  # its end rounds to its onset
        "SPEAKER m1 1 2.95 0.1 <NA> <NA> A <NA> <NA>",  # within the tolerance: cropped silently
    ]
    (root / "set.rttm").write_text("\n".join(turns) + "\n")

    def read(on_missing="error", uem="set.uem"):
        skips = SkipLog()
        found = RecordingSet.from_files(
            "dev", root, "set.lst", "set.rttm", uem, "audio/{uri}.wav", on_missing, skips
        )
        return found, skips.as_dict()

    with pytest.raises(
        DataFormatError,
        match=r"set.rttm:2: expected a turn inside its recording's audio "
        rf"\(0 to {seconds:.3f} s\); data.on_missing=skip crops or drops it and counts it, "
        r"found 'SPEAKER m1 1 2.5 1.0",
    ):
        read()
    found, skipped = read("skip")
    assert sorted((s.start, s.end) for s in found.references["m1"].get_timeline()) == [
        (0.5, 2.5),
        (2.5, seconds),
        (2.95, seconds),
    ]
    assert skipped == {
        "RTTM turn ignored: its end rounds to its onset (no time in it)": {
            "count": 1,
            "examples": [f"{root / 'set.rttm'}:4"],
        },
        "turn past the end of its audio dropped (data.on_missing=skip)": {
            "count": 1,
            "examples": [f"{root / 'set.rttm'}:3"],
        },
        "turn running past the end of its audio cropped (data.on_missing=skip)": {
            "count": 1,
            "examples": [f"{root / 'set.rttm'}:2"],
        },
    }
    # A scored region past the end would score speech that does not exist as missed.
    (root / "set.rttm").write_text(turns[0] + "\n")
    (root / "long.uem").write_text("m1 1 0.0 34.5\n")
    with pytest.raises(
        DataFormatError, match=r"long.uem:1: expected a scored region inside its recording's audio"
    ):
        read(uem="long.uem")
    found, skipped = read("skip", uem="long.uem")
    assert list(found.uems["m1"]) == [Segment(0.0, seconds)]
    assert list(skipped) == [
        "scored region running past the end of its audio cropped (data.on_missing=skip)"
    ]
    # Recordings given to evaluate.py without a UEM: a turn past the end is no longer cropped
    # silently.
    (root / "set.rttm").write_text(turns[2] + "\n")
    with pytest.raises(DataFormatError, match=r"set.rttm:1: expected a turn inside"):
        RecordingSet.from_recordings("mine", str(root / "audio"), str(root / "set.rttm"))
