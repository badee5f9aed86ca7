"""DER: equal to the pyannote-metrics command-line tool on the same RTTM / UEM files, in both
setups; corpus DER is total error over total speech; the frame-level DER agrees with pyannote on
frames."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from pyannote.core import Annotation, Segment
from pyannote.metrics.diarization import DiarizationErrorRate

from sonolab.data.readers import read_rttm, read_uem, read_uri_list
from sonolab.metrics.der import SETUPS, diarization_error_rates, frame_der, frame_error_counts

from ..conftest import SHARED_DATA

CLI = Path(sys.executable).parent / "pyannote-metrics"


def _write_rttm(path: Path, annotations: dict[str, Annotation]) -> None:
    with path.open("w", encoding="utf-8") as out:
        for uri, annotation in annotations.items():
            for segment, _, label in annotation.itertracks(yield_label=True):
                out.write(
                    f"SPEAKER {uri} 1 {segment.start:.3f} {segment.duration:.3f} <NA> <NA> {label} "
                    "<NA> <NA>\n"
                )


def _random_reference(
    rng: np.random.Generator, uri: str, duration: float, speakers: int
) -> Annotation:
    annotation = Annotation(uri=uri)
    for k in range(speakers):
        t = float(rng.uniform(0, 3))
        while t < duration - 1:
            length = float(rng.uniform(0.3, 4.0))
            annotation[Segment(round(t, 3), round(min(t + length, duration), 3))] = f"spk{k}"
            t += length + float(rng.exponential(2.0))
    return annotation


def _perturbed(rng: np.random.Generator, reference: Annotation) -> Annotation:
    """A plausible system output: shifted boundaries, renamed speakers, a few merges, drops and
    false alarms."""
    hypothesis = Annotation(uri=reference.uri)
    for segment, _, label in reference.itertracks(yield_label=True):
        if rng.random() < 0.1:
            continue
        start = max(0.0, segment.start + rng.normal(0, 0.3))
        end = max(start + 0.05, segment.end + rng.normal(0, 0.3))
        name = "sys_a" if rng.random() < 0.15 else f"sys_{label}"
        hypothesis[Segment(round(start, 3), round(end, 3))] = name
    for _ in range(3):
        start = float(rng.uniform(0, reference.get_timeline().extent().end))
        hypothesis[Segment(round(start, 3), round(start + 1.0, 3))] = "sys_fa"
    return hypothesis


def _cli_der(
    tmp: Path,
    uris: list[str],
    ref_rttm: Path,
    uem: Path,
    hyp_rttm: Path,
    collar: float,
    skip_overlap: bool = False,
) -> dict[str, float]:
    """DER (%) per URI and TOTAL as printed by ``pyannote-metrics diarization`` (2 decimals)."""
    (tmp / "files.lst").write_text("".join(u + "\n" for u in uris), encoding="utf-8")
    (tmp / "database.yml").write_text(
        "Protocols:\n  Check:\n    SpeakerDiarization:\n      Files:\n        scope: file\n        "
        "test:\n"
        f"          uri: {tmp / 'files.lst'}\n          annotation: {ref_rttm}\n          "
        f"annotated: {uem}\n"
    )
    env = {**os.environ, "PYANNOTE_DATABASE_CONFIG": str(tmp / "database.yml")}
    out = subprocess.run(
        [
            str(CLI),
            "diarization",
            "--subset=test",
            f"--collar={collar}",
            *(["--skip-overlap"] if skip_overlap else []),
            "Check.SpeakerDiarization.Files",
            str(hyp_rttm),
        ],
        capture_output=True,
        text=True,
        env=env,
        check=True,
        cwd=tmp,
    ).stdout
    rows = {}
    for line in out.splitlines():
        match = re.match(r"^(\S+)\s+(\d+\.\d+)\s", line)
        if match and match.group(1) in set(uris) | {"TOTAL"}:
            rows[match.group(1)] = float(match.group(2))
    return rows


def _compare_with_cli(
    tmp: Path, references: dict, hypotheses: dict, uem_path: Path, ref_path: Path
) -> dict:
    hyp_path = tmp / "hyp.rttm"
    _write_rttm(hyp_path, hypotheses)
    ours = diarization_error_rates(read_rttm(ref_path), read_rttm(hyp_path), read_uem(uem_path))
    for setup in SETUPS:
        cli = _cli_der(
            tmp,
            sorted(references),
            ref_path,
            uem_path,
            hyp_path,
            2 * setup.collar_each_side,
            setup.skip_overlap,
        )
        assert set(cli) == set(references) | {"TOTAL"}, cli
        assert ours[setup.key]["corpus"]["der"] == pytest.approx(cli["TOTAL"], abs=0.006), setup.key
        for uri in references:
            assert ours[setup.key]["files"][uri]["der"] == pytest.approx(cli[uri], abs=0.006), (
                setup.key,
                uri,
            )
    return ours


def test_der_equals_the_pyannote_metrics_command_in_both_setups(tmp_path):
    rng = np.random.default_rng(0)
    references = {
        uri: _random_reference(rng, uri, 60.0, speakers)
        for uri, speakers in (("meeting_a", 4), ("trñ00", 2), ("call_b", 3))
    }
    ref_path = tmp_path / "ref.rttm"
    _write_rttm(ref_path, references)
    uem_path = tmp_path / "all.uem"
    uem_path.write_text("".join(f"{uri} 1 2.000 55.000\n" for uri in references), encoding="utf-8")
    ours = _compare_with_cli(
        tmp_path,
        references,
        {u: _perturbed(rng, r) for u, r in references.items()},
        uem_path,
        ref_path,
    )
    # Corpus DER is total error / total speech, not the mean of the files' DERs.
    files = ours["collar0"]["files"].values()
    corpus = ours["collar0"]["corpus"]
    assert corpus["der"] == pytest.approx(
        100
        * sum(f["false_alarm"] + f["missed"] + f["confusion"] for f in files)
        / sum(f["speech"] for f in files)
    )
    assert corpus["der"] != pytest.approx(np.mean([f["der"] for f in files]), abs=0.01)
    # The collar forgives boundary errors: scored speech and errors both shrink.
    assert ours["collar0.25"]["corpus"]["speech"] < corpus["speech"]
    assert ours["collar0.25"]["corpus"]["der"] < corpus["der"]


def test_der_on_real_ami_references_equals_the_command(tmp_path):
    root = SHARED_DATA / "ami-diarization-setup"
    if not root.is_dir():
        pytest.skip(f"real data not present: {root} (see ../shared/data/README.md)")
    uris = read_uri_list(root / "lists" / "dev.meetings.txt")[:2]
    ref_path, uem_path = tmp_path / "ref.rttm", tmp_path / "ref.uem"
    ref_path.write_text(
        "".join((root / "only_words" / "rttms" / "dev" / f"{u}.rttm").read_text() for u in uris)
    )
    uem_path.write_text("".join((root / "uems" / "dev" / f"{u}.uem").read_text() for u in uris))
    references = read_rttm(ref_path)
    rng = np.random.default_rng(1)
    ours = _compare_with_cli(
        tmp_path,
        references,
        {u: _perturbed(rng, r) for u, r in references.items()},
        uem_path,
        ref_path,
    )
    assert 1 < ours["collar0"]["corpus"]["der"] < 100


def test_missing_hypotheses_and_uems():
    reference = {"a": Annotation(uri="a"), "b": Annotation(uri="b")}
    reference["a"][Segment(0, 2)] = "s1"
    reference["b"][Segment(0, 1)] = "s1"
    result = diarization_error_rates(reference, {"a": reference["a"]})
    assert (
        result["collar0"]["no_hypothesis"] == ["b"]
        and result["collar0"]["files"]["b"]["der"] == 100.0
    )
    assert result["collar0"]["corpus"]["der"] == pytest.approx(100 / 3)
    from sonolab.utils.errors import DataFormatError

    with pytest.raises(
        DataFormatError,
        match=r"uem: expected a scored region \(UEM\) for every reference URI, found 'b'",
    ):
        diarization_error_rates(reference, {}, uems={"a": reference["a"].get_timeline()})
    with pytest.raises(DataFormatError, match=r"a reference for every hypothesis URI, found 'c'"):
        diarization_error_rates(reference, {"c": Annotation(uri="c")})


def _frames_to_annotation(active: np.ndarray, uri: str, step: float = 0.1) -> Annotation:
    annotation = Annotation(uri=uri)
    for k in range(active.shape[1]):
        for t in np.flatnonzero(active[:, k]):
            annotation[Segment(t * step, (t + 1) * step), f"{k}_{t}"] = f"spk{k}"
    return annotation.support()


def test_frame_der_matches_pyannote_on_the_same_frames():
    rng = np.random.default_rng(3)
    pred = torch.from_numpy(rng.random((3, 80, 3)) > 0.6)
    ref = torch.from_numpy(rng.random((3, 80, 3)) > 0.55)
    mask = torch.ones(3, 80, dtype=torch.bool)
    mask[1, 60:] = False
    counts = frame_error_counts(pred, ref, mask)
    metric = DiarizationErrorRate()
    for b in range(3):
        n = int(mask[b].sum())
        metric(
            _frames_to_annotation(ref[b, :n].numpy(), f"r{b}"),
            _frames_to_annotation(pred[b, :n].numpy(), f"r{b}"),
        )
    assert frame_der(counts) == pytest.approx(100 * abs(metric), abs=1e-6)
    assert counts["speech"] == pytest.approx(10 * metric.accumulated_["total"], abs=1e-6)
    # A relabelled perfect prediction has no error.
    perfect = frame_error_counts(ref[..., [2, 0, 1]], ref, mask)
    assert frame_der(perfect) == 0.0 and perfect["speech"] > 0


def test_jer_and_speaker_count_on_a_worked_example():
    """JER by hand: speaker a matched exactly (error 0); b = [3, 6] against y = [4, 6]: 1 - 2/3;
    the mean over the two reference speakers is 1/6. A third hypothesis speaker is a count error of
    one (and, unmatched, adds nothing to JER, which is over reference speakers)."""
    reference = Annotation(uri="r")
    reference[Segment(0, 4)] = "a"
    reference[Segment(3, 6)] = "b"
    hypothesis = Annotation(uri="r")
    hypothesis[Segment(0, 4)] = "x"
    hypothesis[Segment(4, 6)] = "y"
    result = diarization_error_rates({"r": reference}, {"r": hypothesis})["collar0"]
    assert result["files"]["r"]["jer"] == pytest.approx(100 / 6)
    assert result["corpus"]["jer"] == pytest.approx(100 / 6)
    assert result["corpus"]["count_error"] == 0 and result["corpus"]["count_exact"] == 1
    hypothesis[Segment(7, 8)] = "z"
    counted = diarization_error_rates({"r": reference}, {"r": hypothesis})["collar0"]
    assert counted["files"]["r"]["hypothesis_speakers"] == 3
    assert counted["corpus"]["count_error"] == 1 and counted["corpus"]["count_exact"] == 0
    # overlap not scored: the 1 s where a and b overlap leaves the scored speech
    skipped = diarization_error_rates({"r": reference}, {"r": hypothesis})["collar0.25_nooverlap"]
    assert skipped["corpus"]["speech"] < result["corpus"]["speech"] - 1.0 + 1e-6
