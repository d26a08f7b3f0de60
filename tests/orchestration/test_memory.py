"""The clock's memory sampler counts the process and its children, and gives a step only the samples of its span."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from orchestration.memory import MemorySampler

pytestmark = pytest.mark.skipif(not Path("/proc/self/statm").exists(), reason="the sampler reads Linux's /proc")

CHILD_MB = 300
# a child that holds CHILD_MB of touched memory until its stdin closes
HOLDER = f"import sys; block = bytearray({CHILD_MB} * 2**20); print('ready', flush=True); sys.stdin.read()"


def test_a_childs_memory_counts_while_it_runs_and_not_after():
    with MemorySampler(interval=0.05) as memory:
        before = time.time()
        time.sleep(0.3)
        alone = time.time()
        child = subprocess.Popen([sys.executable, "-c", HOLDER], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                 text=True)
        assert child.stdout.readline().strip() == "ready"
        held_from = time.time()
        time.sleep(0.3)
        held_to = time.time()
        child.communicate("")
        time.sleep(0.3)
        after = time.time()
    own = memory.peak_mb(before, alone)
    with_child = memory.peak_mb(held_from, held_to)
    assert own is not None and with_child is not None
    assert with_child - own >= CHILD_MB * 0.9
    assert memory.peak_mb(held_to + 0.1, after) < own + CHILD_MB * 0.5


def test_a_span_without_a_sample_has_no_peak():
    memory = MemorySampler(interval=0.05)  # never started
    assert memory.peak_mb(0, time.time()) is None
    with MemorySampler(interval=10) as memory:
        started = time.time()
    assert memory.peak_mb(started + 1, started + 2) is None
