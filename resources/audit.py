"""The audit log: one append-only Delta row per PII-touching action (scoring, export, report, model decision)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import polars as pl

AUDIT_TABLE = ("gold", "audit_log")
AUDIT_SCHEMA = {"logged_at": pl.Datetime("us", "UTC"), "action": pl.Utf8, "subject": pl.Utf8, "run_id": pl.Utf8,
                "rows": pl.Int64, "details": pl.Utf8}


def audit_entry(action: str, subject: str, run_id: str, rows: int, details: dict | None = None) -> pl.DataFrame:
    """One audit row; `details` is stored as sorted JSON so entries compare and diff cleanly."""
    return pl.DataFrame(
        {"logged_at": [datetime.now(UTC)], "action": [action], "subject": [subject], "run_id": [run_id],
         "rows": [rows], "details": [json.dumps(details or {}, sort_keys=True, default=str)]},
        schema=AUDIT_SCHEMA,
    )


def record(lake, action: str, subject: str, run_id: str, rows: int, details: dict | None = None) -> None:
    """Append an entry. Append-only on purpose: re-running a partition is a second action and is logged again."""
    lake.append(*AUDIT_TABLE, audit_entry(action, subject, run_id, rows, details))
