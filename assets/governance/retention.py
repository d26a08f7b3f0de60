"""Retention: rows older than a table's retention period are deleted, and their files vacuumed at once so Delta
time travel cannot bring them back; the landing files of those days are purged too, so nothing re-ingests them."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import polars as pl

from assets.ingestion.landing import day_folder, landed_days

# layer/table -> (date column, days kept). Raw behaviour is kept 13 months; orders 7 years (accounting);
# quarantined raw records 90 days (long enough to fix and replay a source); scores and exports as long as needed
# to explain a decision. Customers are kept while they are customers (erasure handles leavers on request).
DEFAULT_POLICY: dict[str, tuple[str, int]] = {
    "bronze/events": ("_partition_date", 395),
    "bronze/campaign_touches": ("_partition_date", 730),
    "bronze/orders": ("_partition_date", 2555),
    "quarantine/customers": ("_partition_date", 90),
    "quarantine/orders": ("_partition_date", 90),
    "quarantine/events": ("_partition_date", 90),
    "quarantine/campaign_touches": ("_partition_date", 90),
    "quarantine/consents": ("_partition_date", 90),
    # the file quarantine names files and reasons only; kept as long as the rows' quarantine
    **{f"quarantine/{source}_files": ("_partition_date", 90)
       for source in ("customers", "orders", "events", "campaign_touches", "consents")},
    "gold/customer_scores": ("snapshot_date", 730),
    "gold/audience_exports": ("snapshot_date", 90),
}


@dataclass(frozen=True)
class RetentionOutcome:
    table: str
    cutoff: date
    rows_before: int
    rows_deleted: int
    files_vacuumed: int
    landing_days_purged: int

    @property
    def rows_after(self) -> int:
        return self.rows_before - self.rows_deleted


def apply_retention(lake, table: str, column: str, days: int, as_of: date,
                    landing_dir: Path | None = None) -> RetentionOutcome:
    """Delete rows of `layer/table` whose `column` is before `as_of - days`, vacuum, and (for bronze tables, when
    `landing_dir` is given) remove the landing day folders before the cutoff. Running it twice deletes nothing
    the second time."""
    from deltalake import DeltaTable

    layer, name = table.split("/")
    cutoff = as_of - timedelta(days=days)
    if not lake.exists(layer, name):
        return RetentionOutcome(table, cutoff, 0, 0, 0, 0)
    rows_before = lake.scan(layer, name).select(pl.len()).collect().item()
    delta = DeltaTable(lake.uri(layer, name), storage_options=lake.storage_options or None)
    metrics = delta.delete(predicate=f"{column} < '{cutoff.isoformat()}'")
    deleted = int(metrics.get("num_deleted_rows", 0) or 0)
    # Zero retention on purpose: the point is that the old rows are gone, including from time travel.
    vacuumed = delta.vacuum(retention_hours=0, enforce_retention_duration=False, dry_run=False)
    purged = 0
    if landing_dir is not None and layer == "bronze":
        for day in landed_days(landing_dir, name):
            if day < cutoff:
                shutil.rmtree(day_folder(landing_dir, name, day))
                purged += 1
    return RetentionOutcome(table, cutoff, rows_before, deleted, len(vacuumed), purged)
