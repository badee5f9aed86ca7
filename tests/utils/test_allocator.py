"""The CPU allocator setting: freed activation buffers are reused instead of faulted back in."""

from __future__ import annotations

import subprocess
import sys

import pytest

SCRIPT = """
import resource, sys, torch
from sonolab.utils.allocator import retain_freed_memory
if sys.argv[1] == "retain":
    assert retain_freed_memory()
torch.set_num_threads(1)
x = torch.randn(4, 32, 256, 64)
conv = torch.nn.Conv2d(32, 32, 3, padding=1)
# glibc's heap settles over the first steps (grad buffers, arena growth): measure the steady state
for _ in range(4):
    conv(x).sum().backward()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(3):
    conv(x).sum().backward()
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt: Linux only")
def test_retaining_freed_memory_removes_the_page_faults_of_each_step():
    faults = {
        mode: int(
            subprocess.run(
                [sys.executable, "-c", SCRIPT, mode], capture_output=True, text=True, check=True
            ).stdout.split()[-1]
        )
        for mode in ("default", "retain")
    }
    assert faults["retain"] * 4 < faults["default"], faults
