"""Partitions, defined once: daily landing days and snapshot dates (weekly by default)."""

from __future__ import annotations

from datetime import timedelta

from dagster import DailyPartitionsDefinition, TimeWindowPartitionsDefinition

from domain.settings import AssaySettings

_settings = AssaySettings.from_env()

daily_partitions = DailyPartitionsDefinition(
    start_date=_settings.start_date.isoformat(),
    end_date=_settings.end_date.isoformat() if _settings.end_date else None,
)

# A snapshot's key is its snapshot date T; its features use data before T. `end_offset=1` makes T available
# as soon as T arrives (its window [T, next T) is the week it will be scored in, not data it uses).
snapshot_partitions = TimeWindowPartitionsDefinition(
    cron_schedule=_settings.snapshot_cron,
    start=_settings.snapshot_start.isoformat(),
    end=(_settings.end_date + timedelta(days=7)).isoformat() if _settings.end_date else None,
    fmt="%Y-%m-%d",
    end_offset=1,
)
