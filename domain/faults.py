"""Named points where a test can make a step fail, to prove that what follows a failure is safe.

`ASSAY_FAULT_AT=<point>` acts when the process reaches that point, as `ASSAY_FAULT_ACTION` says:
- `kill` (the default): the process sends itself SIGKILL. No `finally`, exit handler or flush runs, as when the
  machine loses power or the kernel kills a worker.
- `raise`: an `InjectedFault` the first time the point is reached in this process, as a transient error (a full
  disk, a lost connection) fails one run and not its retry.

Unset, a point costs one environment lookup."""

from __future__ import annotations

import os
import signal

FAULT_ENV = "ASSAY_FAULT_AT"
ACTION_ENV = "ASSAY_FAULT_ACTION"
_raised: set[str] = set()


class InjectedFault(RuntimeError):
    pass


def fault_point(name: str) -> None:
    if os.environ.get(FAULT_ENV) != name:
        return
    if os.environ.get(ACTION_ENV, "kill") == "raise":
        if name not in _raised:
            _raised.add(name)
            raise InjectedFault(f"fault injected at {name} ({FAULT_ENV})")
        return
    os.kill(os.getpid(), signal.SIGKILL)
