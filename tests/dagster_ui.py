"""`make ui` on a home, and Debian's Chromium to look at it (the UI tests)."""

from __future__ import annotations

import os
import signal
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from loopback import free_port

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = Path("/usr/bin/chromium")  # Debian's package, installed by `make system-packages`
# Headless, and nothing that reaches for Google's servers: the machine's network is closed.
CHROMIUM_FLAGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def home_env(home: Path) -> dict[str, str]:
    """The environment of a user whose home is `home`: make derives the lake, warehouse and instance from it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ASSAY_", "DAGSTER_"))}
    env.update({"ASSAY_HOME": str(home), "DAGSTER_HOME": str(home / "dagster"), "ASSAY_LAKE_ROOT": str(home / "lake"),
                "ASSAY_WAREHOUSE_PATH": str(home / "warehouse.duckdb")})
    return env


def serving(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/server_info", timeout=2) as answer:
            return answer.status == 200
    except OSError:
        return False


@contextmanager
def running_ui(home: Path, log: Path) -> Iterator[str]:
    """`make ui` on `home`, in its own process group; yields the UI's address and stops it (SIGTERM) after."""
    port = free_port()
    with log.open("wb") as out:
        make = subprocess.Popen(["make", "--no-print-directory", "ui", f"UI_PORT={port}"], cwd=REPO,
                                env=home_env(home), stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while not serving(port):
            assert make.poll() is None, f"make ui exited before the UI served; its log: {log}"
            assert time.monotonic() < deadline, f"the UI did not answer within 2 minutes; its log: {log}"
            time.sleep(0.5)
        yield f"http://127.0.0.1:{port}"
    finally:
        os.killpg(make.pid, signal.SIGTERM)
        try:
            make.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(make.pid, signal.SIGKILL)
            make.wait()


@contextmanager
def chromium_page(width: int = 1400, height: int = 800, scale: float = 1) -> Iterator:
    """A page in Debian's headless Chromium, driven by Playwright (which never downloads a browser here); `scale`
    device pixels per CSS pixel in its screenshots."""
    if not CHROMIUM.exists():
        pytest.skip("Debian's Chromium is not installed (/usr/bin/chromium): `make system-packages` installs it, as "
                    "root or through sudo")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_FLAGS)
        try:
            page = browser.new_page(viewport={"width": width, "height": height}, device_scale_factor=scale)
            page.set_default_timeout(60_000)
            yield page
        finally:
            browser.close()
