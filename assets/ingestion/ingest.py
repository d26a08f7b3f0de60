"""Ingesting a window of landing days, a bounded chunk of days at a time."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path

import polars as pl

from assets.erasure import drop_erased
from assets.ingestion.landing import UnreadableFile, read_landing
from assets.ingestion.pseudonymise import protect_quarantined, pseudonymise_valid
from assets.ingestion.validation import REJECTED, empty_quarantine, validate_batch
from domain.contract import PARTITION_COLUMN, TIMESTAMP, VAULT_TABLE, SourceSpec
from domain.faults import fault_point
from domain.pseudonym import Tokeniser
from resources.lake import LakeResource


@dataclass
class IngestionSummary:
    rows_in: int = 0
    rows_valid: int = 0
    rows_quarantined: int = 0
    values_nulled: int = 0  # rows kept with a malformed value nulled (each noted in the quarantine)
    rows_erased: int = 0  # landing rows of customers erased on request (tombstoned), never ingested again
    files: int = 0
    ignored: list[str] = field(default_factory=list)  # entries of the day folders that are not landing files
    unreadable: list[UnreadableFile] = field(default_factory=list)  # landing files set aside in the file quarantine
    reasons: Counter = field(default_factory=Counter)
    extra_columns: set[str] = field(default_factory=set)
    pii_masked: Counter = field(default_factory=Counter)  # `column:kind` -> values masked by the PII scan
    rows_vaulted: int = 0  # rows whose contact details went to the pii_vault
    bronze_version: int = 0
    quarantine_version: int = 0
    vault_version: int | None = None
    file_quarantine_version: int | None = None


FILE_QUARANTINE_SCHEMA: dict[str, pl.DataType] = {
    "file": pl.Utf8,
    "reason": pl.Utf8,
    "size_bytes": pl.Int64,
    PARTITION_COLUMN: pl.Date,
    "_run_id": pl.Utf8,
    "_ingested_at": TIMESTAMP,
}


def file_quarantine_table(source: str) -> str:
    """The file quarantine of a source: `quarantine/<source>_files`, one row per landing file that could not be read."""
    return f"{source}_files"


def file_quarantine_frame(unreadable: list[UnreadableFile] | tuple[UnreadableFile, ...], run_id: str,
                          ingested_at: datetime) -> pl.DataFrame:
    rows = [{"file": f.path, "reason": f.reason, "size_bytes": Path(f.path).stat().st_size, PARTITION_COLUMN: f.day,
             "_run_id": run_id, "_ingested_at": ingested_at} for f in unreadable]
    return pl.DataFrame(rows, schema=FILE_QUARANTINE_SCHEMA)


def day_chunks(start: date, end: date, days: int) -> list[tuple[date, date]]:
    """[start, end) cut into consecutive half-open chunks of at most `days` days."""
    chunks, cursor = [], start
    while cursor < end:
        chunks.append((cursor, min(cursor + timedelta(days=days), end)))
        cursor = chunks[-1][1]
    return chunks


def ids_landed_before(lake: LakeResource, spec: SourceSpec, rows: pl.DataFrame, day: date) -> pl.Series | None:
    """The ids of `rows` that bronze already holds from a landing day before `day`, for sources where a repeated
    id is a duplicate. Only earlier days count, so re-running a day judges it the same way whatever ran since."""
    if spec.repeat_is_update or not rows.height or spec.id_column not in rows.columns \
            or not lake.exists("bronze", spec.name):
        return None
    ids = rows.get_column(spec.id_column).cast(pl.Utf8).drop_nulls().unique()
    if ids.is_empty():
        return None
    # The range adds nothing to the membership test, but the scan can skip every file whose id statistics lie
    # outside it: where ids grow over time, most of the history (docs/performance.md, "The weekly tick").
    within = pl.col(spec.id_column).is_between(pl.lit(ids.min()), pl.lit(ids.max()))
    earlier = (pl.col(PARTITION_COLUMN) < day) & within & pl.col(spec.id_column).is_in(ids.implode())
    return lake.scan("bronze", spec.name).filter(earlier).select(spec.id_column).unique().collect().to_series()


def ingest_window(
    landing_dir: Path, spec: SourceSpec, mapping: dict[str, str], lake: LakeResource, start: date, end: date,
    run_id: str, ingested_at: datetime, chunk_days: int, key: bytes, erased: set[str] | None = None,
    encoding: str = "utf-8",
) -> IngestionSummary:
    """Validate landing days [start, end) into bronze and quarantine, replacing exactly those days.

    Identifiers are tokenised with `key` on the way (see pseudonymise.py); contact details go to the pii_vault,
    whose rows for those days are replaced alongside.

    A long backfill is processed `chunk_days` at a time, each chunk replacing its own days, so memory is bounded
    by a chunk whatever the window (a two-year window of 30M events held at once needs over 20 GB)."""
    summary = IngestionSummary()
    tokens = Tokeniser(key)  # one per window: a customer met in every chunk is hashed once
    for chunk_start, chunk_end in day_chunks(start, end, chunk_days):
        batch = read_landing(landing_dir, spec.name, chunk_start, chunk_end, mapping, encoding)
        landing_rows, n_erased = drop_erased(batch.frame, spec.customer_column, key, erased or set())
        result = validate_batch(landing_rows, spec, run_id, ingested_at,
                                protect=lambda rows: protect_quarantined(rows, spec, tokens),
                                earlier_ids=ids_landed_before(lake, spec, landing_rows, chunk_start))
        split = pseudonymise_valid(result.valid, spec, tokens)
        # Four commits, one per table. A run killed between them leaves each table whole at its own version, and
        # re-running the days replaces them all (the landing sensor and run retries make sure it runs again).
        bronze = lake.replace_window("bronze", spec.name, split.bronze, PARTITION_COLUMN, chunk_start, chunk_end,
                                     partition_by=[PARTITION_COLUMN])
        fault_point(f"ingestion:bronze-written:{spec.name}")
        if split.vault is not None:
            vault = lake.replace_window(*VAULT_TABLE, split.vault, PARTITION_COLUMN, chunk_start, chunk_end,
                                        partition_by=[PARTITION_COLUMN])
            summary.rows_vaulted += split.vault.height
            summary.vault_version = vault.version
            fault_point(f"ingestion:vault-written:{spec.name}")
        quarantine = lake.replace_window(
            "quarantine", spec.name, result.quarantine if result.rows_in else empty_quarantine(),
            PARTITION_COLUMN, chunk_start, chunk_end, partition_by=[PARTITION_COLUMN])
        # Written when the days have an unreadable file or held an entry (a re-run after a file was fixed clears
        # it): no table for a source whose files have always been readable, and no commit, nor a Dagster partition
        # materialization, for days that never had one.
        files_table = file_quarantine_table(spec.name)
        if batch.unreadable or (lake.exists("quarantine", files_table)
                                and count_window(lake, "quarantine", files_table, chunk_start, chunk_end)):
            summary.file_quarantine_version = lake.replace_window(
                "quarantine", files_table, file_quarantine_frame(batch.unreadable, run_id, ingested_at),
                PARTITION_COLUMN, chunk_start, chunk_end, partition_by=[PARTITION_COLUMN]).version
        summary.rows_in += result.rows_in + n_erased
        summary.rows_erased += n_erased
        summary.rows_valid += result.rows_valid
        summary.rows_quarantined += result.rows_quarantined
        summary.values_nulled += result.values_nulled
        summary.files += len(batch.files)
        summary.ignored += batch.ignored
        summary.unreadable += batch.unreadable
        summary.reasons.update(result.reasons)
        summary.extra_columns.update(result.extra_columns)
        summary.pii_masked.update(result.pii_masked)
        summary.bronze_version, summary.quarantine_version = bronze.version, quarantine.version
    return summary


def count_window(lake: LakeResource, layer: str, name: str, start: date, end: date,
                 where: pl.Expr | None = None) -> int:
    """Rows of a Delta table in [start, end) of the partition column (and `where`), counted without loading them."""
    window = (pl.col(PARTITION_COLUMN) >= start) & (pl.col(PARTITION_COLUMN) < end)
    return lake.scan(layer, name).filter(window if where is None else window & where).select(pl.len()).collect().item()


def count_rejected(lake: LakeResource, source: str, start: date, end: date) -> int:
    """Quarantined rows in [start, end) that are not in bronze. Records of a value nulled in a kept row are not
    counted (quarantines written before dispositions existed hold rejected rows only)."""
    if "disposition" not in lake.scan("quarantine", source).collect_schema().names():
        return count_window(lake, "quarantine", source, start, end)
    rejected = pl.col("disposition").is_null() | (pl.col("disposition") == REJECTED)
    return count_window(lake, "quarantine", source, start, end, rejected)
