"""DESED's strong / weak label and duration TSVs: what they hold, and each bad row named by line."""

from __future__ import annotations

import pytest

from sonolab.data.readers import read_durations, read_strong_labels, read_weak_labels
from sonolab.utils.errors import DataFormatError

STRONG = "filename\tonset\toffset\tevent_label\n"


def _write(path, text):
    path.write_text(text, encoding="utf-8")
    return path


def test_strong_labels_events_and_clips_without_events(tmp_path):
    path = _write(
        tmp_path / "validation.tsv",
        STRONG + "a.wav\t0.5\t2.25\tdog\na.wav\t3\t4\tcat\nquiet.wav\t\t\t\nb.wav\t1.0\t9.5\tdog\n",
    )
    events, clips = read_strong_labels(path, labels=["dog", "cat"])
    assert clips == ["a.wav", "quiet.wav", "b.wav"]
    assert [(e.filename, e.onset, e.offset, e.label) for e in events] == [
        ("a.wav", 0.5, 2.25, "dog"),
        ("a.wav", 3.0, 4.0, "cat"),
        ("b.wav", 1.0, 9.5, "dog"),
    ]


@pytest.mark.parametrize(
    "row,expected",
    [
        (
            "a.wav\t2.0\t1.5\tdog",
            r"bad.tsv:3: expected an offset after its onset, found '2.0 -> 1.5'",
        ),
        ("a.wav\t1.0\t1.5\tbird", r"bad.tsv:3: expected an event label among \['cat', 'dog'\]"),
        ("a.wav\tsoon\t1.5\tdog", r"bad.tsv:3: expected a number for the onset"),
        ("a.wav\t1.0\t1.5\tdog\textra", r"bad.tsv:3: expected 4 tab-separated fields"),
        (
            "missing.wav\t1.0\t1.5\tdog",
            r"bad.tsv:3: expected a file under .*missing.wav is missing",
        ),
    ],
)
def test_bad_strong_rows_are_named_by_line(row, expected, tmp_path):
    (tmp_path / "audio").mkdir()
    (tmp_path / "audio" / "a.wav").write_bytes(b"")
    path = _write(tmp_path / "bad.tsv", STRONG + "a.wav\t0\t1\tcat\n" + row + "\n")
    with pytest.raises(DataFormatError, match=expected):
        read_strong_labels(path, labels=["dog", "cat"], audio_dir=tmp_path / "audio")


def test_weak_labels_durations_and_headers(tmp_path):
    weak = _write(tmp_path / "weak.tsv", "filename\tevent_labels\na.wav\tdog,cat\nb.wav\tcat\n")
    assert read_weak_labels(weak, labels=["dog", "cat"]) == {
        "a.wav": ("dog", "cat"),
        "b.wav": ("cat",),
    }
    with pytest.raises(DataFormatError, match=r"weak.tsv:2: expected an event label among"):
        read_weak_labels(weak, labels=["dog"])
    twice = _write(tmp_path / "twice.tsv", "filename\tevent_labels\na.wav\tdog\na.wav\tcat\n")
    with pytest.raises(DataFormatError, match=r"twice.tsv:3: expected each file listed once"):
        read_weak_labels(twice)
    durations = _write(tmp_path / "d.tsv", "filename\tduration\na.wav\t10.0\nb.wav\t0\n")
    with pytest.raises(DataFormatError, match=r"d.tsv:3: expected a positive duration"):
        read_durations(durations)
    headless = _write(tmp_path / "h.tsv", "a.wav\t0\t1\tdog\n")
    with pytest.raises(DataFormatError, match=r"h.tsv:1: expected the header filename<tab>onset"):
        read_strong_labels(headless)
