"""Fixtures for running the real dbt project on tiny handcrafted bronze Delta tables."""

from __future__ import annotations

import gc
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
import pytest

from assets.features.activity import plan_activity_run, read_ledger, record_activity_run
from domain.contract import LINEAGE_COLUMNS, SOURCES
from domain.duckdb_setup import ensure_delta_extension

DBT_PROJECT_DIR = Path(__file__).resolve().parents[2] / "dbt_project"
LINEAGE_SCHEMA: dict[str, pl.DataType] = {
    "_partition_date": pl.Date,
    "_source_file": pl.Utf8,
    "_run_id": pl.Utf8,
    "_ingested_at": pl.Datetime("us", "UTC"),
}
assert tuple(LINEAGE_SCHEMA) == LINEAGE_COLUMNS


def utc(*args: int) -> datetime:
    """A UTC timestamp, e.g. utc(2025, 1, 1) is the snapshot cut-off 2025-01-01 00:00:00Z."""
    return datetime(*args, tzinfo=UTC)


def bronze_frame(source: str, rows: Iterable[Mapping[str, Any]]) -> pl.DataFrame:
    """A bronze table as ingestion writes it: contract columns and dtypes plus lineage columns.

    Columns missing from a row are null; `_partition_date` is the UTC date of the source's time column.
    """
    spec = SOURCES[source]
    records = [{name: row.get(name) for name in spec.column_names} for row in rows]
    frame = pl.DataFrame(records, schema=spec.polars_schema)
    return frame.with_columns(
        pl.col(spec.time_column).dt.date().alias("_partition_date"),
        pl.lit("test.parquet", dtype=pl.Utf8).alias("_source_file"),
        pl.lit("test-run", dtype=pl.Utf8).alias("_run_id"),
        pl.lit(datetime(2026, 1, 2, tzinfo=UTC), dtype=pl.Datetime("us", "UTC")).alias("_ingested_at"),
    )


def write_bronze(lake: Path, tables: Mapping[str, Iterable[Mapping[str, Any]]]) -> None:
    """Write every contract source under lake/bronze; sources not in `tables` get an empty table."""
    for source in SOURCES:
        frame = bronze_frame(source, tables.get(source, []))
        frame.write_delta(
            str(lake / "bronze" / source),
            mode="overwrite",
            delta_write_options={"partition_by": ["_partition_date"]},
        )


@dataclass
class DbtWorkspace:
    """One lake + warehouse in a temp dir, and a way to run dbt against them."""

    root: Path
    monkeypatch: pytest.MonkeyPatch

    @property
    def lake(self) -> Path:
        return self.root / "lake"

    @property
    def warehouse(self) -> Path:
        return self.root / "warehouse.duckdb"

    def write(self, tables: Mapping[str, Iterable[Mapping[str, Any]]]) -> None:
        write_bronze(self.lake, tables)

    def dbt(self, command: str, snapshot_dates: list[str], **extra_vars: Any) -> None:
        from dbt.cli.main import dbtRunner

        self.monkeypatch.setenv("ASSAY_LAKE_ROOT", str(self.lake))
        self.monkeypatch.setenv("ASSAY_WAREHOUSE_PATH", str(self.warehouse))
        variables = {"snapshot_dates": snapshot_dates, **extra_vars}
        # as the feature asset does: the activity table is recomputed from the earliest changed landing day
        plan = plan_activity_run(self.lake, read_ledger(self.warehouse)) if command in ("run", "build") else None
        if plan is not None:
            variables.update(plan.dbt_vars())
        args = [
            command,
            "--project-dir",
            str(DBT_PROJECT_DIR),
            "--profiles-dir",
            str(DBT_PROJECT_DIR),
            "--target-path",
            str(self.root / "target"),
            "--log-path",
            str(self.root / "logs"),
            "--vars",
            json.dumps(variables),
            "--quiet",
        ]
        if command in ("run", "build"):
            args += ["--select", "+customer_features", "+churn_labels"]
            if plan.full_refresh:
                args.append("--full-refresh")
        try:
            result = dbtRunner().invoke(args)
        finally:
            # dbt-duckdb keeps its in-process DuckDB instance open; release it so the test can open the file
            from dbt.adapters.duckdb.connections import DuckDBConnectionManager

            DuckDBConnectionManager.close_all_connections()
            gc.collect()
        if not result.success:
            failures = []
            for node in getattr(result.result, "results", None) or []:
                if node.status not in ("success", "pass"):
                    failures.append(f"{node.node.name}: {node.status} {node.message}")
            raise AssertionError(f"dbt {command} failed: {result.exception or failures}")
        if plan is not None:
            record_activity_run(self.warehouse, plan)

    def show(self, sql: str) -> list[tuple]:
        """`dbt show --inline sql` on the workspace: the rows, as a dbt cursor sees them."""
        from dbt.cli.main import dbtRunner

        self.monkeypatch.setenv("ASSAY_LAKE_ROOT", str(self.lake))
        self.monkeypatch.setenv("ASSAY_WAREHOUSE_PATH", str(self.warehouse))
        try:
            result = dbtRunner().invoke([
                "show", "--inline", sql, "--project-dir", str(DBT_PROJECT_DIR), "--profiles-dir",
                str(DBT_PROJECT_DIR), "--target-path", str(self.root / "target"), "--log-path", str(self.root / "logs"),
                "--quiet"])
        finally:
            from dbt.adapters.duckdb.connections import DuckDBConnectionManager

            DuckDBConnectionManager.close_all_connections()
            gc.collect()
        if not result.success:
            raise AssertionError(f"dbt show failed: {result.exception or result.result}")
        return [tuple(row) for row in result.result.results[0].agate_table.rows]

    def query(self, sql: str) -> list[dict[str, Any]]:
        with duckdb.connect(str(self.warehouse), read_only=True) as con:
            relation = con.sql(sql)
            names = relation.columns
            return [dict(zip(names, row, strict=True)) for row in relation.fetchall()]

    def features(self, snapshot: str | date) -> dict[str, dict[str, Any]]:
        rows = self.query(
            f"select * from marts.customer_features where snapshot_date = date '{snapshot}' order by customer_id"
        )
        return {row["customer_id"]: row for row in rows}


@pytest.fixture(scope="session", autouse=True)
def _delta_extension() -> None:
    ensure_delta_extension()


@pytest.fixture
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> DbtWorkspace:
    (tmp_path / "lake").mkdir()
    return DbtWorkspace(tmp_path, monkeypatch)


@pytest.fixture
def make_workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[[str], DbtWorkspace]:
    """Several independent workspaces in one test (e.g. with and without future data)."""

    def make(name: str) -> DbtWorkspace:
        root = tmp_path / name
        (root / "lake").mkdir(parents=True)
        return DbtWorkspace(root, monkeypatch)

    return make
