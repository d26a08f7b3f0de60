"""Consent state per customer and purpose, and the rule that decides who may be profiled or contacted.

Shared by every stage that touches a person (scoring profiles, exports contact, data-subject requests withdraw),
so it lives beside the stages and imports none of them.

A customer may be used for a purpose only if consent for it was granted as of the snapshot *and* is still granted
now: scoring a past snapshot after a withdrawal would profile someone who has said no, and a grant given after the
snapshot does not make that snapshot's processing lawful in hindsight.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import polars as pl

PURPOSES = ("profiling", "marketing")
CONSENT_OVERRIDES_TABLE = ("governance", "consent_overrides")  # opt-outs by data-subject request


def consent_state(consents: pl.LazyFrame, as_of: datetime | None = None) -> pl.DataFrame:
    """Latest consent per customer and purpose (columns customer_id, profiling, marketing; null = no record).

    Events at or after `as_of` are ignored (None: everything known). On one timestamp a withdrawal wins, as in
    the dbt features."""
    events = consents.select("customer_id", "purpose", "granted", "event_ts").filter(
        pl.col("customer_id").is_not_null())
    if as_of is not None:
        events = events.filter(pl.col("event_ts") < as_of)
    latest = (
        events.sort(["customer_id", "purpose", "event_ts", "granted"], descending=[False, False, False, True])
        .group_by("customer_id", "purpose")
        .agg(pl.col("granted").last())
        .collect()
    )
    wide = latest.pivot(on="purpose", index="customer_id", values="granted")
    for purpose in PURPOSES:
        if purpose not in wide.columns:
            wide = wide.with_columns(pl.lit(None, dtype=pl.Boolean).alias(purpose))
    return wide.select("customer_id", *PURPOSES)


@dataclass
class ConsentSplit:
    """Rows that may be used for a purpose, and how many were held back for each reason."""

    allowed: pl.DataFrame
    excluded: dict[str, int] = field(default_factory=dict)

    @property
    def excluded_total(self) -> int:
        return sum(self.excluded.values())


def split_by_consent(frame: pl.DataFrame, current: pl.DataFrame, purpose: str,
                     at_snapshot_column: str | None = None) -> ConsentSplit:
    """Keep the rows of `frame` whose customer has `purpose` consent now (per `current`, from consent_state) and,
    when `at_snapshot_column` names a column of `frame`, also had it as of the row's snapshot.

    Every input row is either allowed or counted under exactly one reason:
    `not_granted_at_snapshot`, `withdrawn_since_snapshot`, `not_granted` (no snapshot column given) or
    `no_consent_record` (the customer has no consent event for the purpose)."""
    if purpose not in PURPOSES:
        raise ValueError(f"unknown purpose {purpose!r}; choose one of {PURPOSES}")
    now = current.select("customer_id", pl.col(purpose).alias("_now"))
    joined = frame.join(now, on="customer_id", how="left")
    granted_now = pl.col("_now").fill_null(False)
    if at_snapshot_column:
        granted_at_t = pl.col(at_snapshot_column).fill_null(False)
        reason = (
            pl.when(pl.col("_now").is_null() & ~granted_at_t).then(pl.lit("no_consent_record"))
            .when(~granted_at_t).then(pl.lit("not_granted_at_snapshot"))
            .when(~granted_now).then(pl.lit("withdrawn_since_snapshot"))
        )
    else:
        reason = (
            pl.when(pl.col("_now").is_null()).then(pl.lit("no_consent_record"))
            .when(~granted_now).then(pl.lit("not_granted"))
        )
    marked = joined.with_columns(reason.alias("_reason"))
    excluded = dict(marked.filter(pl.col("_reason").is_not_null()).group_by("_reason").len().iter_rows())
    allowed = marked.filter(pl.col("_reason").is_null()).drop("_now", "_reason")
    return ConsentSplit(allowed=allowed, excluded={k: int(v) for k, v in sorted(excluded.items())})


def current_consents(lake) -> pl.DataFrame:
    """Consent state from every consent event ingested so far plus opt-outs taken by data-subject request (no rows
    when neither exists)."""
    columns = ["customer_id", "purpose", "granted", "event_ts"]
    sources = [lake.scan(*table).select(columns) for table in (("bronze", "consents"), CONSENT_OVERRIDES_TABLE)
               if lake.exists(*table)]
    if not sources:
        return pl.DataFrame(schema={"customer_id": pl.Utf8, **{p: pl.Boolean for p in PURPOSES}})
    return consent_state(pl.concat(sources, how="vertical_relaxed"))
