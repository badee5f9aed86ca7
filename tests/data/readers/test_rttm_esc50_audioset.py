"""Readers for diarization (RTTM / UEM / lists) and tagging (ESC-50, AudioSet) formats."""

from __future__ import annotations

import json

import pytest
from pyannote.metrics.diarization import DiarizationErrorRate

from sonolab.data.readers import (
    read_class_labels,
    read_esc50_meta,
    read_json_datafile,
    read_rttm,
    read_segments,
    read_uem,
    read_uri_list,
)
from sonolab.utils.errors import DataFormatError

from ...conftest import SHARED_DATA


def _need(path):
    if not path.exists():
        pytest.skip(f"real data not present: {path} (see ../shared/data/README.md)")
    return path


def test_rttm_uem_and_list(tmp_path):
    rttm = tmp_path / "ref.rttm"
    rttm.write_text(
        "SPEAKER mtg 1 0.50 1.00 <NA> <NA> A <NA> <NA>\n"
        "SPKR-INFO mtg 1 <NA> <NA> <NA> unknown B <NA> <NA>\n"
        "SPEAKER mtg 1 1.00 2.00 <NA> <NA> B <NA> <NA>\n"
        "SPEAKER trñ00 1 0.00 1.00 <NA> <NA> MÉO069 <NA> <NA>\n",
        encoding="utf-8",
    )
    ref = read_rttm(rttm)
    assert set(ref) == {"mtg", "trñ00"}
    assert ref["mtg"].label_duration("A") == pytest.approx(1.0) and ref["mtg"].labels() == [
        "A",
        "B",
    ]
    uem = tmp_path / "all.uem"
    uem.write_text("mtg 1 0.0 2.5\n")
    assert read_uem(uem)["mtg"].duration() == pytest.approx(2.5)
    # DER of a reference against itself, through pyannote.metrics, is zero; a swap of labels is too.
    metric = DiarizationErrorRate()
    assert (
        metric(ref["mtg"], ref["mtg"].rename_labels({"A": "x", "B": "y"}), uem=read_uem(uem)["mtg"])
        == 0.0
    )
    lst = tmp_path / "files.lst"
    lst.write_text("mtg\ntrñ00\n", encoding="utf-8")
    assert read_uri_list(lst) == ["mtg", "trñ00"]


@pytest.mark.parametrize(
    "line, match",
    [
        (
            "SPEAKER mtg 1 abc 1.0 <NA> <NA> A <NA> <NA>",
            r"bad.rttm:1: expected a number for onset, found 'abc'",
        ),
        ("SPEAKER mtg 1 1.0 -2 <NA> <NA> A <NA> <NA>", r"bad.rttm:1: expected duration >= 0"),
        ("SPEAKER mtg 1 1.0", r"bad.rttm:1: expected 'SPEAKER <uri>"),
        (
            "speaker mtg 1 1.0 1.0 <NA> <NA> A <NA> <NA>",
            r"bad.rttm:1: expected an RTTM record type \(SPEAKER, ",
        ),
    ],
)
def test_bad_rttm_lines(tmp_path, line, match):
    path = tmp_path / "bad.rttm"
    path.write_text(line + "\n")
    with pytest.raises(DataFormatError, match=match):
        read_rttm(path)


def test_bad_uem_and_list(tmp_path):
    uem = tmp_path / "bad.uem"
    uem.write_text("mtg 1 0.0 2.0\nmtg 1 5.0 3.0\n")
    with pytest.raises(DataFormatError, match=r"bad.uem:2: expected end > start"):
        read_uem(uem)
    lst = tmp_path / "dup.lst"
    lst.write_text("a\nb\na\n")
    with pytest.raises(DataFormatError, match=r"dup.lst:3: expected each URI listed once"):
        read_uri_list(lst)


def test_real_ami_references():
    root = _need(SHARED_DATA / "ami-diarization-setup")
    meetings = read_uri_list(root / "lists" / "dev.meetings.txt")
    assert len(meetings) > 10
    ref = read_rttm(root / "only_words" / "rttms" / "dev" / f"{meetings[0]}.rttm")[meetings[0]]
    uem = read_uem(root / "uems" / "dev" / f"{meetings[0]}.uem")[meetings[0]]
    assert 3 <= len(ref.labels()) <= 5 and uem.duration() > 600
    excerpts = _need(SHARED_DATA / "ami-excerpts")
    uris = read_uri_list(excerpts / "train.lst")
    assert "trñ00" in uris
    assert read_uem(excerpts / "development.uem")


def test_esc50_meta(tmp_path):
    clips = read_esc50_meta(_need(SHARED_DATA / "esc10" / "meta" / "esc50.csv"))
    assert (
        len(clips) == 400
        and {c.fold for c in clips} == {1, 2, 3, 4, 5}
        and len({c.target for c in clips}) == 10
    )
    assert all(c.esc10 for c in clips)


def test_bad_esc50_meta(tmp_path):
    path = tmp_path / "esc50.csv"
    path.write_text("filename,fold,target,category\n1-1-A-0.ogg,1,0,dog\n1-2-A-0.ogg,6,0,dog\n")
    with pytest.raises(DataFormatError, match=r"esc50.csv:3: expected fold in 1..5, found '6'"):
        read_esc50_meta(path)
    path.write_text("filename,fold,target,category\n1-1-A-0.ogg,1,0,dog\n1-2-A-0.ogg,1,0,cat\n")
    with pytest.raises(DataFormatError, match=r"esc50.csv:3: expected target 0 to be 'dog'"):
        read_esc50_meta(path)
    path.write_text("name,fold\n")
    with pytest.raises(
        DataFormatError,
        match=r"esc50.csv:1: expected header columns filename, fold, target, category",
    ):
        read_esc50_meta(path)


def test_audioset_metadata_and_datafile(tmp_path):
    meta = _need(SHARED_DATA / "audioset-metadata")
    labels = read_class_labels(meta / "metadata" / "class_labels_indices.csv")
    assert len(labels) == 527 and labels[0].mid == "/m/09x0r" and labels[0].name == "Speech"
    clips = read_segments(meta / "segments" / "eval_segments.csv", labels)
    assert len(clips) > 20000 and all(c.labels and c.end > c.start for c in clips[:100])
    # AudioSet's original files start with '#' comment lines and a commented header.
    original = tmp_path / "orig.csv"
    original.write_text(
        "# Segments csv created Sun Mar  5 10:54:31 2017\n# num_ytids=1, num_segs=1\n"
        "# YTID, start_seconds, end_seconds, positive_labels\n"
        '--PJHxphWEs, 30.000, 40.000, "/m/09x0r,/t/dd00088"\n'
    )
    assert read_segments(original, labels)[0].labels == (
        0,
        labels[[lab.mid for lab in labels].index("/t/dd00088")].index,
    )
    bad = tmp_path / "bad.csv"
    bad.write_text('YTID,start_seconds,end_seconds,positive_labels\nabc,0,10,"/m/nope"\n')
    with pytest.raises(
        DataFormatError,
        match=r"bad.csv:2: expected labels listed in class_labels_indices.csv, found '/m/nope'",
    ):
        read_segments(bad, labels)
    datafile = tmp_path / "train.json"
    datafile.write_text(
        json.dumps({"data": [{"wav": "/x/a.flac", "labels": "/m/09x0r,/m/05zppz"}]})
    )
    assert read_json_datafile(datafile, labels)[0].labels == (0, 1)
    datafile.write_text('{"data": [\n{"wav": "a"\n')
    with pytest.raises(DataFormatError, match=r"train.json:\d+: expected valid JSON"):
        read_json_datafile(datafile, labels)
