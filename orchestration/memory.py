"""Resident memory of a process and its children over time, so that a run's steps can each be given their peak.

The clock executes runs in its own process, and dbt runs as a child of it, so neither the process's peak nor the
children's (`getrusage`) says which step used the memory. A sampler thread reads Linux's `/proc` every
`interval` seconds: the process's resident set plus that of every process descending from it. A step's peak is
the largest sample taken while it ran (Dagster's step statistics give its start and end). Sampling can miss a spike
shorter than the interval; elsewhere than Linux nothing is sampled and no peak is given.
"""

from __future__ import annotations

import os
import threading
import time
from bisect import bisect_left, bisect_right
from pathlib import Path

PROC = Path("/proc")
PAGE_BYTES = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def _resident_bytes(pid: int) -> int:
    """Resident set of one process; 0 when it has already gone."""
    try:
        return int((PROC / str(pid) / "statm").read_text().split()[1]) * PAGE_BYTES
    except (OSError, IndexError, ValueError):
        return 0


def _parents() -> dict[int, int]:
    """Every live process's parent, from /proc/<pid>/stat (the command name may hold spaces: split after it)."""
    parents = {}
    for entry in os.scandir(PROC):
        if not entry.name.isdigit():
            continue
        try:
            stat = (PROC / entry.name / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2:].split()
        if len(fields) > 1:
            parents[int(entry.name)] = int(fields[1])
    return parents


def tree_resident_bytes(root: int) -> int:
    """Resident bytes of `root` and all its descendants (shared pages are counted in each process)."""
    children: dict[int, list[int]] = {}
    for pid, parent in _parents().items():
        children.setdefault(parent, []).append(pid)
    total, pending = 0, [root]
    while pending:
        pid = pending.pop()
        total += _resident_bytes(pid)
        pending.extend(children.get(pid, ()))
    return total


class MemorySampler:
    """Samples this process's tree while open (`with MemorySampler() as memory:`); `peak_mb(start, end)` is the
    largest sample between two epoch times."""

    def __init__(self, interval: float = 0.2) -> None:
        self.interval = interval
        self.enabled = PROC.joinpath("self", "statm").exists()
        self._times: list[float] = []
        self._bytes: list[int] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _sample(self) -> None:
        pid = os.getpid()
        while True:
            resident = tree_resident_bytes(pid)
            self._times.append(time.time())
            self._bytes.append(resident)
            if self._stop.wait(self.interval):
                return

    def __enter__(self) -> MemorySampler:
        if self.enabled:
            self._thread = threading.Thread(target=self._sample, name="memory-sampler", daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def peak_mb(self, start: float, end: float) -> float | None:
        """Largest sample taken in [start, end], in MB; None when none was (not Linux, or too short a span)."""
        low, high = bisect_left(self._times, start), bisect_right(self._times, end)
        if low >= high:
            return None
        return round(max(self._bytes[low:high]) / 2**20, 1)
