"""CPU threads: how OpenMP's waiting policy decides the speed of a process that shares its cores
with another busy one (a second job of a sweep, a data loader, anything), and what it costs alone.

Each measurement runs in a fresh interpreter, since the policy is read once when the OpenMP
runtime starts (``OMP_WAIT_POLICY``; sonolab sets PASSIVE unless the variable is already set)."""

from __future__ import annotations

import os
import subprocess
import sys

from suite.common import ROOT, Row, Settings

# Embeds utterances of 2-14 s with a small ECAPA (C=128) one at a time; prints utterances / s.
PROBE = """
import sys, time, torch
from sonolab.features import KaldiFbank
from sonolab.models import EcapaTdnn
torch.manual_seed(0)
model = EcapaTdnn(input_size=80, channels=128, mfa_channels=None).eval()
fbank = KaldiFbank().eval()
waves = [torch.randn(1, 16000 * int(s)) * 0.1 for s in torch.randint(2, 15, (int(sys.argv[1]),))]
with torch.no_grad():
    start = time.perf_counter()
    for wave in waves:
        feats, frames = fbank(wave, torch.tensor([wave.shape[1]]))
        model(feats, frames)
print(len(waves) / (time.perf_counter() - start))
"""

# A busy neighbour: matrix products on every core until killed.
NEIGHBOUR = """
import torch
a = torch.randn(512, 512)
while True:
    a = torch.tanh(a @ a)
"""


def _probe(policy: str, utterances: int) -> float:
    env = {**os.environ, "OMP_WAIT_POLICY": policy, "SONOLAB_ROOT": str(ROOT)}
    out = subprocess.run(
        [sys.executable, "-c", PROBE, str(utterances)],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    return float(out.stdout.strip().splitlines()[-1])


def _with_neighbour(policy: str, utterances: int) -> float:
    env = {**os.environ, "OMP_WAIT_POLICY": policy}
    neighbour = subprocess.Popen([sys.executable, "-c", NEIGHBOUR], env=env)
    try:
        return _probe(policy, utterances)
    finally:
        neighbour.kill()
        neighbour.wait()


def threads(settings: Settings) -> list[Row]:
    """ECAPA embedding rate with OpenMP's threads waiting actively (spinning) or passively, alone
    and beside a busy process that uses every core (with the same policy)."""
    if settings.device != "cpu":
        return []
    utterances = 10 if settings.quick else 30
    rows = []
    for label, measure in (("alone", _probe), ("beside a busy process", _with_neighbour)):
        active, passive = [], []
        for r in range(settings.repeats):
            for policy in ("ACTIVE", "PASSIVE") if r % 2 == 0 else ("PASSIVE", "ACTIVE"):
                (active if policy == "ACTIVE" else passive).append(measure(policy, utterances))
        rows.append(
            Row(
                "threads",
                f"ECAPA C=128 embedding, {utterances} utterances of 2-14 s, {label}",
                "OMP_WAIT_POLICY=ACTIVE",
                "OMP_WAIT_POLICY=PASSIVE",
                "utterances/s",
                active,
                passive,
                check="same computation; only how idle threads wait differs",
            )
        )
    return rows


CASES = {"threads": threads}
