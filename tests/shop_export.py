"""A shop's export job, for the tests that live day by day on real files: the day folders the source system has
finished are copied into the user's landing folder, each once."""

from __future__ import annotations

import shutil
from datetime import date
from pathlib import Path


def deliver(shop: Path, exports: Path, until: date) -> None:
    """The export job has delivered every day before `until` (a day's files arrive once it has ended)."""
    for day_folder in sorted(shop.glob("*/date=*")):
        target = exports / day_folder.parent.name / day_folder.name
        if date.fromisoformat(day_folder.name.removeprefix("date=")) < until and not target.exists():
            shutil.copytree(day_folder, target)
