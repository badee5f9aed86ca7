"""A stop by signal (a scheduler's SIGTERM, Ctrl-C, a closed terminal) never looks like success:
the process exits with 128 + the signal's number and the run's record says failed, naming it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .bad_input import script
from .conftest import ROOT, tiny_overrides

# a long inner loop (one long recording, one long list) inside the recorded, stoppable block
_LONG_LOOP = """
import sys, torch
from pathlib import Path
from omegaconf import OmegaConf
from sonolab.report.record import recorded_run
from sonolab.stopping import stop_on_signals
out = Path(sys.argv[1])
with stop_on_signals(), recorded_run(out, OmegaConf.create({"seed": 1})):
    x = torch.randn(256, 256)
    print("ready", flush=True)
    while True:
        x = torch.tanh(x @ x)
"""


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP])
def test_a_signal_stops_a_long_loop_within_seconds_with_its_exit_status(signum, tmp_path):
    proc = subprocess.Popen(
        [sys.executable, "-c", _LONG_LOOP, str(tmp_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout.readline().strip() == "ready"
    sent = time.monotonic()
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=30)
    assert time.monotonic() - sent < 5
    assert proc.returncode == 128 + signum, err[-2000:]
    record = json.loads((tmp_path / "run.json").read_text())
    name = signal.Signals(signum).name
    assert record["status"] == "failed" and record["signal"] == name
    assert f"stopped by {name}" in record["error"]


def test_handlers_are_restored_and_a_worker_process_keeps_the_default(tmp_path):
    from sonolab.stopping import StopRequested, stop_on_signals

    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(StopRequested) as stopped, stop_on_signals():
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)  # the handler interrupts this
    assert stopped.value.code == 143 and signal.getsignal(signal.SIGTERM) is before
    # A process forked inside the block (a dataloader worker) dies as it would without it.
    with stop_on_signals():
        ready, said = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child says it runs (a signal before that is cleared by the fork), waits
            os.write(said, b"1")
            time.sleep(30)
            os._exit(0)
        os.read(ready, 1)
        os.kill(pid, signal.SIGTERM)
        _, status = os.waitpid(pid, 0)
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGTERM


# evaluate.py as a user runs it, with a callback that signals the process at the first test batch
_EVALUATE_WITH_SIGNAL = """
import runpy, sys
import sonolab.run as run
from tests.faults import SignalAtStep
build = run.build_trainer
def with_signal(cfg, out):
    trainer = build(cfg, out)
    trainer.callbacks.append(SignalAtStep(0))
    return trainer
run.build_trainer = with_signal
sys.argv = sys.argv[1:]  # evaluate.py and its arguments
runpy.run_path(sys.argv[0], run_name="__main__")
"""


def test_sigterm_during_evaluation_exits_143_with_a_failed_record(trained_run, tmp_path):
    out = tmp_path / "eval"
    env = {**os.environ, "SONOLAB_ROOT": str(ROOT), "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            _EVALUATE_WITH_SIGNAL,
            str(ROOT / "evaluate.py"),
            f"run_dir={trained_run}",
            f"hydra.run.dir={out}",
            "trainer.enable_progress_bar=false",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 143, proc.stderr[-3000:]
    record = json.loads((out / "run.json").read_text())
    assert record["status"] == "failed" and record["signal"] == "SIGTERM"
    assert not (out / "metrics.json").exists()
    # Completed evaluations are recorded the same way.
    done = tmp_path / "eval_done"
    proc = script(
        "evaluate.py",
        [f"run_dir={trained_run}", f"hydra.run.dir={done}", "trainer.enable_progress_bar=false"],
        tmp_path,
    )
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err[-3000:]
    record = json.loads((done / "run.json").read_text())
    assert record["status"] == "completed" and record["metrics"]


@pytest.mark.slow  # trains in a subprocess with a loader worker: ~30 s on 2 cores
def test_sigterm_mid_epoch_exits_143_with_a_failed_record(tiny_voxceleb, tmp_path):
    run: Path = tmp_path / "run"
    proc = script(
        "train.py",
        [
            *tiny_overrides(tiny_voxceleb),
            "data.num_workers=1",
            "trainer.enable_progress_bar=false",
            f"hydra.run.dir={run}",
            "+callbacks.stop._target_=tests.faults.SignalAtStep",
            "+callbacks.stop.step=2",
        ],
        tmp_path,
        env={**os.environ, "SONOLAB_ROOT": str(ROOT), "PYTHONPATH": str(ROOT)},
    )
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 143, err[-3000:]
    record = json.loads((run / "run.json").read_text())
    assert record["status"] == "failed" and record["signal"] == "SIGTERM"
    assert not (run / "metrics.json").exists()


def test_sigterm_stops_data_generation_without_leaving_a_dataset(tmp_path):
    out = tmp_path / "synth"
    proc = script(
        "sonolab.data.synth",
        ["voxceleb", "--out", str(out), "--workers", "1", "--num-train-speakers", "400"],
        tmp_path,
    )
    deadline = time.monotonic() + 120
    while not list(tmp_path.glob(".synth.*")):  # the staged folder: the generation has begun
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()[1][-2000:]
        time.sleep(0.2)
    time.sleep(1)
    sent = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert time.monotonic() - sent < 10
    assert proc.returncode == 143, err[-2000:]
    assert "stopped by SIGTERM" in err
    # nothing half-written where the dataset goes, and the staged folder cleaned up
    assert not out.exists() and not list(tmp_path.glob(".synth.*"))
