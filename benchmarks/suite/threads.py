"""CPU threads: how OpenMP's waiting policy decides the speed of a process that shares its cores
with another busy one (a second job of a sweep, a data loader, anything), and what it costs alone.

Each measurement runs in a fresh interpreter, since the policy is read once, when torch loads the
OpenMP runtime (``OMP_WAIT_POLICY``; unset: idle threads spin a while, then sleep)."""

from __future__ import annotations

import itertools
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

# Training steps of the same model (softmax head, batch 32 crops of 2 s, Adam); prints crops / s.
TRAIN_PROBE = """
import sys, time, torch
from sonolab.features import KaldiFbank
from sonolab.losses import SoftmaxCrossEntropy
from sonolab.models import EcapaTdnn
torch.manual_seed(0)
model = EcapaTdnn(input_size=80, channels=128, mfa_channels=None)
fbank = KaldiFbank()
head = SoftmaxCrossEntropy(192, 100)
optimiser = torch.optim.Adam([*model.parameters(), *head.parameters()])
wave, labels = torch.randn(32, 32000) * 0.1, torch.randint(0, 100, (32,))
lengths = torch.full((32,), 32000)
def step():
    feats, frames = fbank(wave, lengths)
    loss = head(model(feats, frames)["embedding"], labels)
    optimiser.zero_grad()
    loss.backward()
    optimiser.step()
step()
steps = int(sys.argv[1]) // 3
start = time.perf_counter()
for _ in range(steps):
    step()
print(32 * steps / (time.perf_counter() - start))
"""

# A busy neighbour: matrix products on every core until killed.
NEIGHBOUR = """
import torch
a = torch.randn(512, 512)
while True:
    a = torch.tanh(a @ a)
"""


def _environment(policy: str | None) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    env["SONOLAB_ROOT"] = str(ROOT)
    if policy:
        env["OMP_WAIT_POLICY"] = policy
    return env


def _probe(policy: str | None, utterances: int, probe: str = PROBE) -> float:
    env = _environment(policy)
    out = subprocess.run(
        [sys.executable, "-c", probe, str(utterances)],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    return float(out.stdout.strip().splitlines()[-1])


def _with_neighbour(policy: str | None, utterances: int, probe: str = PROBE) -> float:
    env = _environment(policy)
    neighbour = subprocess.Popen([sys.executable, "-c", NEIGHBOUR], env=env)
    try:
        return _probe(policy, utterances, probe)
    finally:
        neighbour.kill()
        neighbour.wait()


def threads(settings: Settings) -> list[Row]:
    """ECAPA embedding rate with OpenMP's default waiting (spin, then sleep) or passive waiting,
    alone and beside a busy process that uses every core (with the same policy)."""
    if settings.device != "cpu":
        return []
    utterances = 10 if settings.quick else 30
    rows = []
    probes = (
        (f"ECAPA C=128 embedding, {utterances} utterances of 2-14 s", PROBE, "utterances/s"),
        (f"ECAPA C=128 training, {utterances // 3} steps of 32 crops", TRAIN_PROBE, "crops/s"),
    )
    for (what, probe, unit), (label, measure) in itertools.product(
        probes, (("alone", _probe), ("beside a busy process", _with_neighbour))
    ):
        default, passive = [], []
        for r in range(settings.repeats):
            for policy in (None, "PASSIVE") if r % 2 == 0 else ("PASSIVE", None):
                (passive if policy else default).append(measure(policy, utterances, probe))
        rows.append(
            Row(
                "threads",
                f"{what}, {label}",
                "OMP_WAIT_POLICY unset",
                "OMP_WAIT_POLICY=PASSIVE",
                unit,
                default,
                passive,
                check="same computation; only how idle threads wait differs",
            )
        )
    return rows


CASES = {"threads": threads}
