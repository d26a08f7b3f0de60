"""Partitions, built once from the settings and handed to every asset factory: daily landing days and snapshot
dates. Nothing here reads the environment; `orchestration/definitions.py` does, once."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from dagster import DailyPartitionsDefinition, TimeWindowPartitionMapping, TimeWindowPartitionsDefinition

from domain.settings import AssaySettings


def at_midnight(day: date) -> datetime:
    return datetime.combine(day, time(), UTC)


@dataclass(frozen=True)
class AssayPartitions:
    daily: DailyPartitionsDefinition
    snapshots: TimeWindowPartitionsDefinition
    label_horizon_days: int

    @classmethod
    def from_settings(cls, settings: AssaySettings) -> AssayPartitions:
        end = settings.end_date
        return cls(
            daily=DailyPartitionsDefinition(start_date=settings.start_date.isoformat(),
                                            end_date=end.isoformat() if end else None),
            # A snapshot's key is its date T; its features use data before T. `end_offset=1` makes T available as
            # soon as T arrives (its window [T, next T) is the week it is scored in, not data it uses).
            snapshots=TimeWindowPartitionsDefinition(
                cron_schedule=settings.snapshot_cron, start=settings.snapshot_start.isoformat(),
                end=(end + timedelta(days=7)).isoformat() if end else None, fmt="%Y-%m-%d", end_offset=1),
            label_horizon_days=settings.label_horizon_days,
        )

    @property
    def snapshot_period_days(self) -> int:
        first = self.snapshots.get_first_partition_window()
        if first is None:
            raise ValueError("the snapshot partitions are empty: check ASSAY_SNAPSHOT_START and ASSAY_END_DATE")
        return (first.end - first.start).days

    @property
    def label_periods(self) -> int:
        """Snapshot periods a label waits for: its horizon, rounded up to whole periods."""
        return math.ceil(self.label_horizon_days / self.snapshot_period_days)

    def label_window_mapping(self) -> TimeWindowPartitionMapping:
        """Snapshot T → the landing days its label reads: [T, T + horizon), widened to whole snapshot periods (a
        90-day horizon on weekly snapshots waits for 13 weeks of orders, one day more than it needs)."""
        return TimeWindowPartitionMapping(start_offset=0, end_offset=self.label_periods - 1)

    def label_due(self, snapshot: date) -> date:
        """The first day on which every landing day that the label of `snapshot` reads has ended."""
        return snapshot + timedelta(days=self.label_periods * self.snapshot_period_days)

    def days_before(self, end: date) -> list[str]:
        """Landing days < end."""
        return self.daily.get_partition_keys(current_time=at_midnight(end))

    def snapshots_through(self, day: date) -> list[str]:
        """Snapshot dates <= day (a snapshot exists from its own date on)."""
        return self.snapshots.get_partition_keys(current_time=at_midnight(day) + timedelta(seconds=1))
