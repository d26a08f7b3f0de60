"""Where new landing days come from when the clock moves: the synthetic world behaves like a source system that
delivers each day's files the morning after; real files land by themselves (no feed)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path

from assets.ingestion.landing import DAY_FOLDER_PREFIX
from domain.contract import SOURCES
from domain.synthetic import MARKER_FILE, extend_world, landed_until, mark_landed, world_config

OUTBOX = "synthetic_outbox"  # under ASSAY_HOME: days simulated ahead, not yet delivered
AHEAD_DAYS = 56  # simulate this far ahead at once: each extension replays the world from its start


class SyntheticFeed:
    """Delivers the days of the world in `landing` one at a time. The generator runs ahead into an outbox under
    the home (simulating the world from its start each time, so a batch of weeks costs one replay), and each
    morning the day before moves into landing with a rename: a sensor never sees a day before it has ended."""

    def __init__(self, landing: Path, ground_truth: Path, outbox: Path) -> None:
        self.landing, self.ground_truth, self.outbox = landing, ground_truth, outbox

    def __call__(self, day: date) -> None:
        """Make every day before `day` landed."""
        landed = landed_until(self.landing)
        if landed is None:
            raise ValueError(f"{self.landing} holds no synthetic world: run `assay generate` first")
        if landed >= day:
            return
        self._simulate_through(landed, day)
        for source in SOURCES:
            for offset in range((day - landed).days):
                name = f"{DAY_FOLDER_PREFIX}{(landed + timedelta(days=offset)).isoformat()}"
                staged = self.outbox / source / name
                if staged.exists():
                    (self.landing / source).mkdir(parents=True, exist_ok=True)
                    os.replace(staged, self.landing / source / name)
        mark_landed(self.landing, day)

    def _simulate_through(self, landed: date, day: date) -> None:
        ahead = landed_until(self.outbox)
        if ahead is None or ahead < landed:
            # a fresh outbox starts from the world as landed: same config, nothing staged
            if self.outbox.exists():
                shutil.rmtree(self.outbox)  # only ever our own staging folder under the home
            self.outbox.mkdir(parents=True)
            shutil.copyfile(self.landing / MARKER_FILE, self.outbox / MARKER_FILE)
            ahead = landed
        if ahead < day:
            horizon = world_config(self.outbox).end
            # past the horizon, extend_world refuses with the world's end and what to do
            extend_world(self.outbox, self.ground_truth, min(day + timedelta(days=AHEAD_DAYS), horizon)
                         if day <= horizon else day)


def feed_for(settings) -> Callable[[date], None] | None:
    """The synthetic feed for a synthetic home; None for real files."""
    if settings.source != "synthetic":
        return None
    return SyntheticFeed(settings.landing, settings.ground_truth, settings.home / OUTBOX)
