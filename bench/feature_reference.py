"""The feature build's references for `make bench` (stage `features_reference`), on a home the features stage built.

    python bench/feature_reference.py one    # the newest snapshot
    python bench/feature_reference.py loop   # every snapshot the features stage built, in turn

`one` runs bench/feature_reference.sql (every feature column, one query over the bronze Delta tables) for the newest
snapshot of the warehouse; `loop` runs it once per snapshot from the settings' first snapshot on (the features stage
rebuilds all of them), the naive way to build a feature history. Each result is materialized in DuckDB (nothing is
written to the lake), under the settings dbt's connections have: the memory limit, 2 threads, UTC.

Each snapshot's rows are then compared with the ones dbt built for it (not timed). Prints one JSON line: the
queries' seconds, snapshots, rows, and the rows found on one side only.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from datetime import date
from pathlib import Path

from domain.duckdb_setup import connect
from domain.settings import AssaySettings

REFERENCE_SQL = Path(__file__).with_name("feature_reference.sql")
FLOAT_DIGITS = 9  # dbt and the reference divide the same figures in a different order: compared to 1e-9


def reference_sql(lake: str, snapshot: date, active_window_days: int) -> str:
    text = REFERENCE_SQL.read_text()
    for name, value in (("$lake", lake), ("$t", snapshot.isoformat()), ("$active_window", str(active_window_days))):
        text = text.replace(name, value)
    return text


def built_snapshots(con, settings: AssaySettings) -> list[date]:
    """The snapshot dates the features stage built: the warehouse's, from the settings' first snapshot on."""
    rows = con.execute(
        "select distinct snapshot_date from warehouse.marts.customer_features "
        "where snapshot_date >= ? order by 1", [settings.snapshot_start]).fetchall()
    return [row[0] for row in rows]


def mismatched_rows(con, snapshot: date) -> dict[str, int]:
    """Rows of the reference that dbt did not build for `snapshot`, and the other way round (floats rounded)."""
    types = dict(con.execute("select column_name, column_type from (describe reference)").fetchall())
    columns = list(types)

    def select(source: str) -> str:
        cells = [f"round({c}, {FLOAT_DIGITS}) as {c}" if types[c] == "DOUBLE" else c for c in columns]
        return f"select {', '.join(cells)} from {source}"

    def rows_only_in(one: str, other: str) -> int:
        return con.execute(f"select count(*) from ({select(one)} except all {select(other)})").fetchone()[0]

    built = f"(select * from warehouse.marts.customer_features where snapshot_date = date '{snapshot}')"
    return {"rows_only_in_reference": rows_only_in("reference", built),
            "rows_only_in_dbt": rows_only_in(built, "reference")}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=("one", "loop"))
    args = parser.parse_args()
    settings = AssaySettings.from_env()
    con = connect()
    con.execute("set threads = 2; set TimeZone = 'UTC'; set preserve_insertion_order = false")
    con.execute(f"attach '{os.environ['ASSAY_WAREHOUSE_PATH']}' as warehouse (read_only)")
    snapshots = built_snapshots(con, settings)
    if not snapshots:
        raise SystemExit("no feature snapshots in the warehouse: run the features stage first")
    if args.mode == "one":
        snapshots = snapshots[-1:]
    seconds, rows = 0.0, 0
    mismatches = {"rows_only_in_reference": 0, "rows_only_in_dbt": 0}
    for snapshot in snapshots:
        sql = reference_sql(settings.lake_uri, snapshot, settings.active_window_days)
        started = time.perf_counter()
        con.execute(f"create or replace temp table reference as {sql}")
        seconds += time.perf_counter() - started
        rows += con.execute("select count(*) from reference").fetchone()[0]
        # the check is not timed
        for side, count in mismatched_rows(con, snapshot).items():
            mismatches[side] += count
    figures = {"seconds": round(seconds, 2), "snapshots": len(snapshots), "rows": rows, **mismatches,
               "newest_snapshot": snapshots[-1].isoformat()}
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
