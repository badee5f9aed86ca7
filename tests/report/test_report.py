"""Ablation tables (python -m sonolab.report) and the run.json record every run leaves."""

from __future__ import annotations

import csv
import json

import pytest

from sonolab.report.ablation import main as report_main
from sonolab.report.ablation import write_ablation
from sonolab.utils.errors import DataFormatError

from ..conftest import ROOT, compose, tiny_overrides


def _job(folder, overrides, seed, eer=None, error=None, expected=None):
    (folder / ".hydra").mkdir(parents=True)
    (folder / ".hydra" / "overrides.yaml").write_text("".join(f"- {o}\n" for o in overrides))
    config = {"seed": seed, **({"expected": expected} if expected else {})}
    (folder / ".hydra" / "config.yaml").write_text(json.dumps(config))
    if eer is not None:
        (folder / "metrics.json").write_text(
            json.dumps(
                {"test": {"vox1_O": {"eer": eer, "min_dcf_0.01": eer / 10, "list": "x.txt"}}}
            )
        )
    record = {
        "status": "completed" if error is None else "failed",
        "error": error,
        "overrides": overrides,
    }
    (folder / "run.json").write_text(json.dumps(record))


def test_table_has_mean_std_per_setting_published_values_and_failures(tmp_path, capsys):
    sweep = tmp_path / "sweep"
    expected = [{"metric": "test/vox1_O/eer", "value": 1.069, "source": "WeSpeaker"}]
    values = {
        ("ce", "ecapa_small"): [2.0, 4.0],
        ("ce", "xvector_small"): [3.0, 3.0],
        ("aam", "ecapa_small"): [1.0, 2.0],
        ("aam", "xvector_small"): [5.0, 7.0],
    }
    job = 0
    for (loss, model), eers in values.items():
        for seed, eer in zip((1, 2), eers):
            _job(
                sweep / str(job),
                [f"loss={loss}", f"model={model}", f"seed={seed}", "experiment=x"],
                seed,
                eer,
                expected=expected,
            )
            job += 1
    _job(
        sweep / str(job),
        ["loss=aam", "model=xvector_small", "seed=3", "experiment=x"],
        3,
        error="DataFormatError: /data/x.wav: expected audio, found 'missing file'",
    )
    table = write_ablation([sweep], sweep)
    assert (
        "| loss | model | vox1_O/eer | vox1_O/min_dcf_0.01 | vox1_O/eer published | seeds | failed "
        "|" in table
    )
    assert "| ce | ecapa_small | 3 +- 1.4 | 0.3 +- 0.14 | 1.069 (WeSpeaker) | 2 | 0 |" in table
    assert "| aam | xvector_small | 6 +- 1.4 |" in table and table.count("| 2 | 1 |") == 1
    assert (
        f"{sweep / str(job)}: DataFormatError: /data/x.wav: expected audio, found 'missing file'"
        in table
    )
    rows = list(csv.DictReader((sweep / "ablation.csv").read_text().splitlines()))
    ce = next(r for r in rows if r["loss"] == "ce" and r["model"] == "xvector_small")
    assert float(ce["test/vox1_O/eer mean"]) == 3.0 and float(ce["test/vox1_O/eer std"]) == 0.0
    tex = (sweep / "ablation.tex").read_text().splitlines()
    assert tex[0] == r"\begin{tabular}{llrrrrr}" and r"vox1\_O/eer" in tex[2]
    assert r"ce & ecapa\_small & 3 $\pm$ 1.4 & 0.3 $\pm$ 0.14 & 1.069 (WeSpeaker) & 2 & 0 \\" in tex
    # several folders or a glob: single runs of different days in one table
    other = tmp_path / "runs" / "day2"
    _job(other, ["loss=am", "model=ecapa_small"], 1, 2.5)
    assert (
        report_main(
            [str(tmp_path / "s*"), str(tmp_path / "runs" / "*"), "--out", str(tmp_path / "out")]
        )
        == 0
    )
    assert "| am | ecapa_small | 2.5 |" in capsys.readouterr().out
    assert report_main([str(tmp_path / "nothing")]) == 1


def test_rows_come_in_launch_order_past_ten_jobs(tmp_path):
    sweep = tmp_path / "sweep"
    settings = [
        (loss, model) for loss in ("ce", "am", "aam") for model in ("ecapa_small", "xvector_small")
    ]
    for job in range(12):  # folders 0 ... 11: a plain string sort would put 10 and 11 before 2
        loss, model = settings[job // 2]
        _job(
            sweep / str(job),
            [f"loss={loss}", f"model={model}", f"seed={job % 2}"],
            job % 2,
            1.0 + job,
        )
    table = write_ablation([sweep], sweep)
    rows = [
        line.split(" | ")[:2]
        for line in table.splitlines()
        if line.startswith("| a") or line.startswith("| c")
    ]
    assert [(loss.lstrip("| "), model) for loss, model in rows] == settings


def test_runs_leave_a_record_whether_they_complete_or_fail(tiny_voxceleb, tmp_path):
    from sonolab.run import train

    ok = tmp_path / "ok"
    train(
        compose(
            "train",
            [
                *tiny_overrides(tiny_voxceleb),
                "trainer.limit_train_batches=2",
                "logger=csv",
                "trainer.enable_progress_bar=false",
            ],
            ok,
        ),
        ROOT / "configs",
    )
    record = json.loads((ok / "run.json").read_text())
    assert (
        record["status"] == "completed"
        and record["error"] is None
        and record["config"]["seed"] == 42
    )
    assert (
        record["metrics"]["test/synth/eer"]
        == json.loads((ok / "metrics.json").read_text())["test"]["synth"]["eer"]
    )
    # summary.md: the differences from the defaults, the task's results table and the plots.
    summary = (ok / "summary.md").read_text()
    assert summary.startswith("# Run ok\n\n**completed** in ")
    assert (
        "`trainer.limit_train_batches=2`" in summary and "| logger |" not in summary
    )  # csv is the default logger
    assert (ok / "results.md").read_text().strip() in summary and "![det.png](det.png)" in summary
    bad = tmp_path / "bad"
    cfg = compose(
        "train",
        [
            *tiny_overrides(tiny_voxceleb),
            f"data.root={tmp_path / 'nowhere'}",
            "model=xvector_small",
        ],
        bad,
    )
    with pytest.raises(DataFormatError):
        train(cfg, ROOT / "configs")
    record = json.loads((bad / "run.json").read_text())
    assert record["status"] == "failed" and "nowhere" in record["error"] and not record["metrics"]
    summary = (bad / "summary.md").read_text()
    assert (
        "**failed** in" in summary
        and "nowhere" in summary
        and "| model | ecapa_small | xvector_small |" in summary
    )


@pytest.mark.slow
def test_a_real_sweep_gives_the_table_with_a_failed_run_listed(tiny_voxceleb, tmp_path):
    """2 losses x 2 models x 2 seeds of train.py -m on tiny data, and a failing job in the same
    sweep folder."""
    from ..conftest import run_script

    sweep = tmp_path / "sweep"
    common = [
        *tiny_overrides(tiny_voxceleb),
        "trainer.limit_train_batches=2",
        "trainer.enable_progress_bar=false",
        "~callbacks.progress_bar",
        f"hydra.sweep.dir={sweep}",
    ]
    result = run_script(
        "train.py",
        ["-m", "loss=ce,aam", "model=ecapa_small,xvector_small", "seed=1,2", *common],
        tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    failing = run_script(
        "train.py",
        [
            "-m",
            "loss=aam",
            "model=xvector_small",
            "seed=3",
            *common,
            "data.batch_size=0",
            "hydra.sweep.subdir=failed_${hydra.job.num}",
        ],
        tmp_path,
    )
    assert failing.returncode != 0  # the sweep reports its failed job ...
    table = (sweep / "ablation.md").read_text()  # ... which the table written after each job lists
    assert table.startswith("# Ablation: 9 runs")
    rows = [line for line in table.splitlines() if line.startswith("| ") and "---" not in line][1:]
    assert (
        len(rows) == 5
        and sum(" | 2 | 0 |" in r for r in rows) == 4
        and rows[-1].endswith("| 0 | 1 |")
    )
    assert all(" +- " in r for r in rows[:4])  # mean +- std over the two seeds
    assert "data.batch_size: expected at least 1, found 0" in table.split("Failed runs:")[1]


def test_an_unreadable_run_is_listed_and_the_table_still_written(tmp_path):
    from sonolab.report.folds import collect_folds

    sweep = tmp_path / "sweep"
    _job(sweep / "0", ["loss=ce"], 1, 2.0)
    _job(sweep / "1", ["loss=aam"], 1, 3.0)
    (sweep / "1" / "run.json").write_text('{"status": "comple')  # cut short by a kill
    _job(sweep / "2", ["loss=am"], 1, 4.0)
    (sweep / "2" / "metrics.json").write_text('{"test": ')
    table = write_ablation([sweep], sweep)
    assert "| ce | 2 | 0.2 | 1 | 0 |" in table
    assert f"- {sweep / '1'}: unreadable run.json: JSONDecodeError: Unterminated string" in table
    assert f"- {sweep / '2'}: unreadable metrics.json: JSONDecodeError: Expecting value" in table
    assert (sweep / "ablation.csv").is_file()
    rows = collect_folds([sweep])
    assert [f[1].split(":")[0] for row in rows for f in row["failed"]] == [
        "unreadable metrics.json"
    ]


def test_a_result_outside_the_expected_tolerance_is_marked(tmp_path):
    sweep = tmp_path / "sweep"
    expected = [{"metric": "test/vox1_O/eer", "value": 3.0, "source": "README", "tolerance": 0.5}]
    for job, (loss, eer) in enumerate([("ce", 3.4), ("aam", 3.6)]):
        _job(sweep / str(job), [f"loss={loss}"], 1, eer, expected=expected)
    table = write_ablation([sweep], sweep)
    assert "| ce | 3.4 | 0.34 | 3.0 +- 0.5 (README) |" in table
    assert "| aam | 3.6 (outside tolerance) | 0.36 | 3.0 +- 0.5 (README) |" in table
    rows = {r["loss"]: r for r in csv.DictReader((sweep / "ablation.csv").read_text().splitlines())}
    assert rows["aam"]["test/vox1_O/eer outside tolerance"] == "1"
    assert rows["ce"]["test/vox1_O/eer outside tolerance"] == "0"
