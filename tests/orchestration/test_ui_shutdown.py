"""`make ui` stops cleanly: Ctrl-C (SIGINT to the terminal's process group) or SIGTERM to make (what a supervisor
sends) ends the webserver, the daemon, the code server and everything they started within 10 seconds, also when
the UI was started in the background, where SIGINT comes ignored."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest
from dagster_ui import REPO, home_env, serving
from loopback import free_port

STOP_WITHIN_SECONDS = 10


def _group_alive(group: int) -> bool:
    """Whether a process of the group still runs. A zombie has ended: it waits only for its parent, here init
    once `dagster dev` is gone, to collect its exit status, which this machine's init does a second or two later."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:  # ended while being read
            continue
        state, process_group = fields[0], int(fields[2])
        if process_group == group and state != "Z":
            return True
    return False


def _listening_on(port: int) -> set[str]:
    """The IPv4 addresses with a socket listening on `port` (from the kernel's table, /proc/net/tcp)."""
    found = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        local, state = line.split()[1], line.split()[3]
        address, local_port = local.split(":")
        if state == "0A" and int(local_port, 16) == port:  # 0A: LISTEN
            found.add(socket.inet_ntoa(bytes.fromhex(address)[::-1]))
    return found


@pytest.mark.parametrize("stop", ["ctrl-c", "sigterm-in-background"])
def test_make_ui_stops_every_process_within_ten_seconds(tmp_path, stop):
    home = tmp_path / "home"
    (home / "dagster").mkdir(parents=True)
    shutil.copy(REPO / "orchestration" / "dagster.yaml", home / "dagster" / "dagster.yaml")
    port = free_port()
    env = home_env(home)
    background = stop == "sigterm-in-background"

    def as_started() -> None:
        os.setsid()  # its own process group: the terminal's, or the supervisor's
        if background:  # what a shell gives a command started with `&`
            signal.signal(signal.SIGINT, signal.SIG_IGN)

    make = subprocess.Popen(["make", "--no-print-directory", "ui", f"UI_PORT={port}"], cwd=REPO, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, preexec_fn=as_started)
    group = make.pid
    try:
        deadline = time.monotonic() + 120
        while not serving(port):
            assert make.poll() is None, "make ui exited before the UI served"
            assert time.monotonic() < deadline, "the UI did not answer within 2 minutes"
            time.sleep(0.5)
        assert _listening_on(port) == {"127.0.0.1"}  # loopback only
        stopped_at = time.monotonic()
        if background:
            os.kill(make.pid, signal.SIGTERM)
        else:
            os.killpg(group, signal.SIGINT)
        while time.monotonic() - stopped_at < 30:
            make.poll()  # reaps make once it exits (the others are reaped by init)
            if not _group_alive(group):
                break
            time.sleep(0.1)
        took = time.monotonic() - stopped_at
        left = subprocess.run(["ps", "-o", "pid,stat,args", "-g", str(group)], capture_output=True, text=True).stdout
        assert not _group_alive(group), f"processes of make ui still run {took:.0f} s after {stop}:\n{left}"
        assert took <= STOP_WITHIN_SECONDS, f"make ui took {took:.1f} s to stop after {stop}"
    finally:
        if _group_alive(group):
            os.killpg(group, signal.SIGKILL)
        make.wait(timeout=10)
