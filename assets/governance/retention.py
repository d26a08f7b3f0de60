"""Retention: rows older than a table's retention period are deleted, and their files vacuumed once no reader can
still need them, so Delta time travel cannot bring them back; the landing files of those days are purged too, so
nothing re-ingests them. Files Assay writes outside the lake with personal data in them (campaign hand-offs, access
bundles) are deleted after their own period, and so are the drift references of models no longer in service."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import polars as pl

from assets.consent import split_by_consent
from assets.ingestion.landing import day_folder, landed_days
from domain.private_files import write_private

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


# Files under $ASSAY_HOME: (glob, days kept, by their modification time). A hand-off file as long as the audience
# table it came from; an access bundle a month after it was made (the person has had it by then).
FILE_POLICY: dict[str, tuple[str, int]] = {
    "exports/retention_audience": ("exports/retention_audience_*.csv", 90),
    "dsar/access_bundles": ("dsar/*/access.json", 30),
}


# A model version's drift reference (a sample of its validation rows, with customer ids) is kept while the version
# serves or may be promoted, and this long after it was made once it is archived: long enough to roll back to it.
MODEL_REFERENCE_DAYS = 90
REFERENCE_FILE = "reference.parquet"
SERVING_STATUSES = ("champion", "challenger")


@dataclass(frozen=True)
class ReferenceOutcome:
    files_expired: int  # references of archived versions past MODEL_REFERENCE_DAYS
    rows_withdrawn: int  # rows of customers who have since withdrawn profiling consent
    files_rewritten: int


def prune_model_references(models_dir: Path, registry: pl.DataFrame, consents: pl.DataFrame | None, as_of: date,
                           days: int = MODEL_REFERENCE_DAYS) -> ReferenceOutcome:
    """Each model version's drift reference: deleted once the version is archived and was made more than `days`
    before `as_of` (a rollback to it then monitors no drift, and says so); otherwise, when `consents` is given
    (profiling rests on consent), rewritten without the rows of customers who no longer have profiling consent.
    A version missing from `registry` keeps its file: Assay did not make it, or cannot tell its state."""
    cutoff = as_of - timedelta(days=days)
    state = {row["version"]: row for row in registry.iter_rows(named=True)} if registry.height else {}
    expired = withdrawn = rewritten = 0
    for path in sorted(Path(models_dir).glob(f"*/{REFERENCE_FILE}")):
        version = state.get(path.parent.name)
        if version is None:
            continue
        if version["status"] not in SERVING_STATUSES and version["created_at"].date() < cutoff:
            path.unlink()
            expired += 1
            continue
        if consents is None:
            continue
        reference = pl.read_parquet(path)
        if "customer_id" not in reference.columns:
            continue
        at_snapshot = "consent_profiling" if "consent_profiling" in reference.columns else None
        kept = split_by_consent(reference, consents, "profiling", at_snapshot).allowed
        if kept.height < reference.height:
            write_private(path, lambda handle, kept=kept: kept.write_parquet(handle), mode=path.stat().st_mode & 0o777)
            withdrawn += reference.height - kept.height
            rewritten += 1
    return ReferenceOutcome(expired, withdrawn, rewritten)


def expire_files(home: Path, pattern: str, days: int, as_of: date) -> int:
    """Delete the files under `home` matching `pattern` last written before `as_of - days` (an access bundle with
    its request's folder). Returns how many."""
    cutoff = as_of - timedelta(days=days)
    expired = [p for p in Path(home).glob(pattern)
               if p.is_file() and date.fromtimestamp(p.stat().st_mtime) < cutoff]
    for path in expired:
        if path.name == "access.json":
            shutil.rmtree(path.parent)
        else:
            path.unlink()
    return len(expired)


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


VACUUM_GRACE_HOURS = 1


def apply_retention(lake, table: str, column: str, days: int, as_of: date,
                    landing_dir: Path | None = None, vacuum_grace_hours: int = VACUUM_GRACE_HOURS) -> RetentionOutcome:
    """Delete rows of `layer/table` whose `column` is before `as_of - days`, vacuum the files that earlier
    versions no longer need once `vacuum_grace_hours` have passed since they were removed, and (for bronze
    tables, when `landing_dir` is given) remove the landing day folders before the cutoff. Running it twice
    deletes nothing the second time.

    The grace lets a reader that started before the delete (a dbt build, a scoring run) finish on the version it
    read; the daily schedule's next run vacuums what this one deleted. Erasure does not wait: it deletes the
    person's files at once."""
    from deltalake import DeltaTable

    layer, name = table.split("/")
    cutoff = as_of - timedelta(days=days)
    if not lake.exists(layer, name):
        return RetentionOutcome(table, cutoff, 0, 0, 0, 0)
    rows_before = lake.scan(layer, name).select(pl.len()).collect().item()
    delta = DeltaTable(lake.uri(layer, name), storage_options=lake.storage_options or None)
    metrics = delta.delete(predicate=f"{column} < '{cutoff.isoformat()}'")
    deleted = int(metrics.get("num_deleted_rows", 0) or 0)
    vacuumed = delta.vacuum(retention_hours=vacuum_grace_hours, enforce_retention_duration=False, dry_run=False)
    purged = 0
    if landing_dir is not None and layer == "bronze":
        for day in landed_days(landing_dir, name):
            if day < cutoff:
                shutil.rmtree(day_folder(landing_dir, name, day))
                purged += 1
    return RetentionOutcome(table, cutoff, rows_before, deleted, len(vacuumed), purged)
