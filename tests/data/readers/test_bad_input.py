"""Readers fed bad files: trial lists, RTTM / UEM / URI lists, ESC-50 metadata and AudioSet
segments; each error names the file and line, and what is skipped is counted."""

from __future__ import annotations

import json
import logging

import pytest

from sonolab.data.readers import (
    match_uris,
    read_esc50_meta,
    read_json_datafile,
    read_rttm,
    read_segments,
    read_trial_list,
    read_uem,
    read_uri_list,
)
from sonolab.data.skips import SkipLog
from sonolab.utils.errors import DataFormatError

from ...conftest import SHARED_DATA


@pytest.mark.parametrize(
    "content, match",
    [
        (
            "1 a/s/1.wav b/s/2.wav\n0 a/s/3.wav b/s/4.wav\n0 b/s/2.wav a/s/1.wav\n",
            r"t.txt:3: expected one label per pair, but line 1 labels the same pair 1",
        ),
        (
            "1 a/s/1.wav b/s/2.wav\n0 a/s/3.wav b/s/4.wav\n1 a/s/1.wav b/s/2.wav\n",
            r"t.txt:3: expected each pair once \(line 1 has the same pair; "
            r"data.lists.duplicate_trials=drop",
        ),
        ("1 a/s/1.wav a/s/1.wav\n", r"t.txt:1: expected two different files per trial"),
        (
            "1 a/s/1.wav b/s/2.wav\n1 a/s/3.wav b/s/4.wav\n",
            r"t.txt: expected both target \(1\) and non-target \(0\) trials.*found 'only 2 target "
            r"trials'",
        ),
    ],
)
def test_trial_list_contradictions_are_errors_naming_the_lines(tmp_path, content, match):
    path = tmp_path / "t.txt"
    path.write_text(content)
    with pytest.raises(DataFormatError, match=match):
        read_trial_list(path)


def test_duplicate_trials_can_be_dropped_and_counted(tmp_path):
    path = tmp_path / "t.txt"
    path.write_text("1 a/s/1.wav b/s/2.wav\n0 a/s/3.wav b/s/4.wav\n1 b/s/2.wav a/s/1.wav\n")
    skips = SkipLog()
    assert [t.line for t in read_trial_list(path, duplicates="drop", skips=skips)] == [1, 2]
    assert skips.as_dict()["repeated trial dropped (t.txt)"] == {
        "count": 1,
        "examples": [f"{path}:3"],
    }


def test_rttm_with_byte_order_mark_keeps_its_first_turn(tmp_path):
    path = tmp_path / "bom.rttm"
    path.write_bytes(
        "\ufeffSPEAKER mtg 1 0.00 1.00 <NA> <NA> A <NA> <NA>\n"
        "SPEAKER mtg 1 1.00 2.00 <NA> <NA> B <NA> <NA>\n".encode("utf-8")
    )
    assert read_rttm(path)["mtg"].labels() == ["A", "B"]


@pytest.mark.parametrize(
    "line, match",
    [
        (
            "SPEAKR mtg 1 0.0 1.0 <NA> <NA> A <NA> <NA>",
            r"r.rttm:2: expected an RTTM record type \(SPEAKER, SPKR-INFO",
        ),
        (
            "SPEAKER mtg 1 nan 1.0 <NA> <NA> A <NA> <NA>",
            r"r.rttm:2: expected a finite number for onset, found 'nan'",
        ),
        (
            "SPEAKER mtg 1 0.0 inf <NA> <NA> A <NA> <NA>",
            r"r.rttm:2: expected a finite number for duration, found 'inf'",
        ),
        ("SPEAKER mtg 1 0.0 -1 <NA> <NA> A <NA> <NA>", r"r.rttm:2: expected duration >= 0"),
    ],
)
def test_rttm_bad_records_are_named_by_line(tmp_path, line, match):
    path = tmp_path / "r.rttm"
    path.write_text("SPEAKER mtg 1 0.00 1.00 <NA> <NA> A <NA> <NA>\n" + line + "\n")
    with pytest.raises(DataFormatError, match=match):
        read_rttm(path)


def test_zero_length_turns_are_counted_and_empty_references_are_errors(tmp_path, caplog):
    path = tmp_path / "z.rttm"
    path.write_text(
        "SPEAKER mtg 1 0.00 1.00 <NA> <NA> A <NA> <NA>\nSPEAKER mtg 1 2.00 0.00 <NA> <NA> B <NA> "
        "<NA>\n"
    )
    skips = SkipLog()
    assert read_rttm(path, skips=skips)["mtg"].labels() == ["A"]
    assert skips.as_dict()["zero-duration RTTM turn ignored"] == {
        "count": 1,
        "examples": [f"{path}:2"],
    }
    with caplog.at_level(logging.WARNING):
        read_rttm(path)
    assert "1 x zero-duration RTTM turn ignored" in caplog.text
    for name, reader in (("e.rttm", read_rttm), ("e.uem", read_uem)):
        (tmp_path / name).write_text("\n")
        with pytest.raises(DataFormatError, match=rf"{name}: expected at least one"):
            reader(tmp_path / name)
    (tmp_path / "info.rttm").write_text("SPKR-INFO mtg 1 <NA> <NA> <NA> unknown A <NA> <NA>\n")
    with pytest.raises(DataFormatError, match=r"info.rttm: expected at least one SPEAKER turn"):
        read_rttm(tmp_path / "info.rttm")


def test_tagging_targets_out_of_range_and_header_only_files(tmp_path):
    esc = tmp_path / "esc50.csv"
    esc.write_text("filename,fold,target,category\n1-1-A-0.ogg,1,0,dog\n1-2-A-50.ogg,1,50,x\n")
    with pytest.raises(DataFormatError, match=r"esc50.csv:3: expected target in 0..49, found '50'"):
        read_esc50_meta(esc)
    esc.write_text("filename,fold,target,category\n1-1-A-0.ogg,1,-1,dog\n")
    with pytest.raises(DataFormatError, match=r"esc50.csv:2: expected target in 0..49, found '-1'"):
        read_esc50_meta(esc)
    esc.write_text("filename,fold,target,category\n")
    with pytest.raises(DataFormatError, match=r"esc50.csv: expected at least one clip row"):
        read_esc50_meta(esc)
    from sonolab.data.readers import AudioSetLabel

    labels = [AudioSetLabel(0, "/m/a", "A")]
    seg = tmp_path / "seg.csv"
    seg.write_text("YTID,start_seconds,end_seconds,positive_labels\n")
    with pytest.raises(DataFormatError, match=r"seg.csv: expected at least one segment row"):
        read_segments(seg, labels)
    seg.write_text('YTID,start_seconds,end_seconds,positive_labels\nx,nan,10,"/m/a"\n')
    with pytest.raises(
        DataFormatError, match=r"seg.csv:2: expected a finite number for start_seconds"
    ):
        read_segments(seg, labels)
    data = tmp_path / "d.json"
    data.write_text('{"data": []}')
    with pytest.raises(DataFormatError, match=r"d.json: expected at least one entry"):
        read_json_datafile(data, labels)


def test_uris_missing_from_a_source_are_reported_with_their_look_alikes(tmp_path):
    sources = {
        "list": (tmp_path / "a.lst", {"m1", "trñ00"}),
        "audio": (tmp_path / "audio", {"m1", "trñ00"}),
        "rttm": (tmp_path / "a.rttm", {"m1", "trn00"}),
        "uem": (tmp_path / "a.uem", {"m1", "trn00"}),
    }
    with pytest.raises(
        DataFormatError,
        match=r"a.lst: expected the same recordings in every source .*"
        r"found '2 that are not'\n.*\n  'trñ00' in list, audio but not in "
        r"rttm, uem; rttm has 'trn00'",
    ):
        match_uris(sources)
    skips = SkipLog()
    assert match_uris(sources, skip=True, skips=skips) == {"m1"}
    assert sum(skips.counts.values()) == 2


def test_the_shared_ami_excerpts_mismatch_is_detected():
    root = SHARED_DATA / "ami-excerpts"
    if not (root / "train.lst").is_file():
        pytest.skip(f"real data not present: {root} (see ../shared/data/README.md)")
    sources = {
        "list": (root / "train.lst", set(read_uri_list(root / "train.lst"))),
        "audio": (root / "audio", {p.stem for p in (root / "audio").glob("tr*.flac")}),
        "rttm": (root / "train.rttm", set(read_rttm(root / "train.rttm"))),
        "uem": (root / "train.uem", set(read_uem(root / "train.uem"))),
    }
    with pytest.raises(
        DataFormatError, match=r"'trñ00' in list, audio but not in rttm, uem; rttm has 'trn00'"
    ):
        match_uris(sources)


def test_one_file_has_one_name_in_a_trial_list(tmp_path):
    path = tmp_path / "t.txt"
    path.write_text("1 a/s/1.wav b/s/2.wav\n0 ./a/s/1.wav c/s/3.wav\n")
    assert [(t.enroll, t.test) for t in read_trial_list(path)] == [
        ("a/s/1.wav", "b/s/2.wav"),
        ("a/s/1.wav", "c/s/3.wav"),
    ]
    path.write_text("1 a/s/1.wav ./a/s/1.wav\n")
    with pytest.raises(DataFormatError, match=r"t.txt:1: expected two different files per trial"):
        read_trial_list(path)
    path.write_text("1 a/s/1.wav b/s/2.wav\n0 a/s/3.wav b/s/4.wav\n1 a//s/1.wav b/s/./2.wav\n")
    with pytest.raises(DataFormatError, match=r"t.txt:3: expected each pair once \(line 1"):
        read_trial_list(path)


@pytest.mark.parametrize(
    "rows, found",
    [
        ("a.ogg,5,0,dog\nb.ogg,1,1,cat\na.ogg,2,0,dog\n", "a.ogg in fold 5 and fold 2"),
        ("a.ogg,1,0,dog\nb.ogg,1,1,cat\na.ogg,1,1,cat\n", "a.ogg with target 0 and target 1"),
        ("a.ogg,1,0,dog\nb.ogg,1,1,cat\na.ogg,1,0,dog\n", "a.ogg twice in the same fold"),
    ],
)
def test_an_esc50_clip_listed_twice_is_named(tmp_path, rows, found):
    path = tmp_path / "esc50.csv"
    path.write_text("filename,fold,target,category\n" + rows)
    with pytest.raises(
        DataFormatError,
        match=rf"esc50.csv:4: expected each filename once \(first listed on line 2\), "
        rf"found '{found}",
    ):
        read_esc50_meta(path)


def test_an_audioset_clip_listed_twice_is_named(tmp_path):
    from sonolab.data.readers.audioset import AudioSetLabel

    labels = [AudioSetLabel(0, "/m/a", "A"), AudioSetLabel(1, "/m/b", "B")]
    path = tmp_path / "train.csv"
    header = "YTID,start_seconds,end_seconds,positive_labels\n"
    path.write_text(header + 'x,0,10,"/m/a"\ny,0,10,"/m/b"\nx,0,10,"/m/b"\nx,20,30,"/m/b"\n')
    with pytest.raises(
        DataFormatError,
        match=r"train.csv:4: expected each clip once \(first listed at line 2\), found 'x at 0 s "
        r"with labels \[0\] there and \[1\] here'",
    ):
        read_segments(path, labels)
    path.write_text(header + 'x,0,10,"/m/a"\nx,20,30,"/m/b"\n')  # two segments of one video
    assert len(read_segments(path, labels)) == 2
    datafile = tmp_path / "train.json"
    entries = [{"wav": "a.wav", "labels": "/m/a"}, {"wav": "a.wav", "labels": "/m/a"}]
    datafile.write_text(json.dumps({"data": entries}))
    with pytest.raises(
        DataFormatError,
        match=r"train.json: expected each clip once \(first listed at data\[0\]\), found 'a.wav "
        r"twice with the same labels at data\[1\]'",
    ):
        read_json_datafile(datafile, labels)
