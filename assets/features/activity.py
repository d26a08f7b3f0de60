"""How much of `intermediate.int_customer_daily_activity` a feature run recomputes.

The activity table holds running totals per customer, so a change on day d changes every row from d on. A feature
run compares the Delta file listing of each activity source, per landing day, with the listing the table was last
built from (kept in the warehouse, `LEDGER_TABLE`): a landing day whose files differ was added, re-ingested or
erased. The earliest activity date any such day held (before or after the change) is where the recompute starts.
A weekly run thus reads the week that landed, and a late or corrected day costs the history from that day on.
The listing comes from Delta's log, so finding the changes does not scan the data.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path

import duckdb
import pyarrow as pa

from domain.duckdb_setup import connect

LEDGER_TABLE = "intermediate.activity_landing_days"
# The bronze sources the activity table reads, with the timestamps whose days a landing day's rows fall on.
ACTIVITY_SOURCES: dict[str, tuple[str, ...]] = {
    "orders": ("order_ts",),
    "events": ("event_ts",),
    "campaign_touches": ("sent_ts", "opened_ts", "clicked_ts"),
}


@dataclass(frozen=True)
class LandingDay:
    files: str  # md5 of the sorted data file paths: Delta never reuses a file name, so any rewrite changes it
    rows: int
    first_activity: date | None  # earliest UTC activity date among the day's rows


Ledger = dict[tuple[str, date], LandingDay]


@dataclass(frozen=True)
class ActivityPlan:
    """What a feature run does to the activity table, and the ledger to record once it has succeeded."""

    full_refresh: bool  # no ledger yet (a new warehouse, or one built before the ledger): rebuild from scratch
    recompute_from: date | None  # None with full_refresh False: nothing changed, the table stays as it is
    changed_days: int
    ledger: Ledger

    def dbt_vars(self) -> dict[str, str | None]:
        return {"activity_from": self.recompute_from.isoformat() if self.recompute_from else None}


def _listing(con: duckdb.DuckDBPyConnection, table: str) -> dict[date, tuple[str, int]]:
    rows = con.execute(
        "select partitions['_partition_date']::date, md5(string_agg(data_file, '|' order by data_file)), "
        "sum(cardinality)::bigint from delta_list_files(?) group by 1",
        [table],
    ).fetchall()
    return {day: (files, rows) for day, files, rows in rows}


def _first_activity(con: duckdb.DuckDBPyConnection, table: str, columns: tuple[str, ...],
                    days: list[date]) -> dict[date, date | None]:
    """Earliest activity date per landing day, reading only those days' files (a constant partition filter)."""
    if not days:
        return {}
    earliest = "least(" + ", ".join(f"min({c})" for c in columns) + ")" if len(columns) > 1 else f"min({columns[0]})"
    listed = ", ".join(f"date '{d.isoformat()}'" for d in days)
    rows = con.execute(
        f"select _partition_date, ({earliest} at time zone 'UTC')::date from delta_scan(?) "
        f"where _partition_date in ({listed}) group by 1",
        [table],
    ).fetchall()
    return dict(rows)


def read_ledger(warehouse_path: str | Path) -> Ledger | None:
    """The listing the activity table was built from; None when there is none (or no warehouse)."""
    if not Path(warehouse_path).exists():
        return None
    con = connect(str(warehouse_path), read_only=True, delta=False)
    try:
        schema, name = LEDGER_TABLE.split(".")
        exists = con.execute(
            "select count(*) from information_schema.tables where table_schema = ? and table_name = ?", [schema, name]
        ).fetchone()[0]
        if not exists:
            return None
        rows = con.execute(f"select source, landing_date, files, n_rows, first_activity from {LEDGER_TABLE}").fetchall()
    finally:
        con.close()
    return {(source, day): LandingDay(files, n_rows, first) for source, day, files, n_rows, first in rows}


def plan_activity_run(lake_root: str | Path, previous: Ledger | None) -> ActivityPlan:
    """Compare the bronze listing with `previous` and work out where the activity table must be recomputed."""
    con = connect()
    try:
        ledger: Ledger = {}
        recompute_from: date | None = None
        changed_days = 0
        for source, columns in ACTIVITY_SOURCES.items():
            table = str(Path(lake_root) / "bronze" / source)
            listing = _listing(con, table)
            old = {day: entry for (name, day), entry in (previous or {}).items() if name == source}
            changed = sorted(day for day, (files, _) in listing.items()
                             if day not in old or old[day].files != files)
            fresh = _first_activity(con, table, columns, changed)
            for day, (files, rows) in listing.items():
                first = fresh[day] if day in fresh else old[day].first_activity
                ledger[(source, day)] = LandingDay(files, rows, first)
            gone = [day for day in old if day not in listing]
            for day in [*changed, *gone]:
                changed_days += 1
                candidates = [day, fresh.get(day), old[day].first_activity if day in old else None]
                earliest = min(d for d in candidates if d is not None)
                recompute_from = earliest if recompute_from is None else min(recompute_from, earliest)
    finally:
        con.close()
    if previous is None:
        return ActivityPlan(True, None, changed_days, ledger)
    return ActivityPlan(False, recompute_from, changed_days, ledger)


def record_activity_run(warehouse_path: str | Path, plan: ActivityPlan) -> None:
    """Store the listing the activity table now reflects (after the dbt run succeeded)."""
    # held to the limit: the first commit after a full build can checkpoint gigabytes of dbt's work
    con = connect(str(warehouse_path), delta=False)
    try:
        con.execute("begin")
        con.execute(
            f"create or replace table {LEDGER_TABLE} (source varchar not null, landing_date date not null, "
            "files varchar not null, n_rows bigint not null, first_activity date, primary key (source, landing_date))"
        )
        entries = sorted(plan.ledger.items())
        rows = pa.table({
            "source": [source for (source, _), _ in entries],
            "landing_date": pa.array([day for (_, day), _ in entries], pa.date32()),
            "files": [e.files for _, e in entries],
            "n_rows": pa.array([e.rows for _, e in entries], pa.int64()),
            "first_activity": pa.array([e.first_activity for _, e in entries], pa.date32()),
        })
        con.register("ledger_rows", rows)
        con.execute(f"insert into {LEDGER_TABLE} select * from ledger_rows")
        con.execute("commit")
    finally:
        con.close()
