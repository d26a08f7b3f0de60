"""The landing sensor asks for ingestion of each new or changed landing day, once."""

from __future__ import annotations

from datetime import date

import polars as pl
from dagster import DagsterInstance, SkipReason, build_sensor_context

from orchestration.automation import landing_sensor
from resources.assay import AssayResource


def land(landing, source: str, day: date, rows: int) -> None:
    folder = landing / source / f"date={day.isoformat()}"
    folder.mkdir(parents=True, exist_ok=True)
    pl.DataFrame({"x": list(range(rows))}).write_parquet(folder / "part-0.parquet")


def tick(instance, assay, cursor):
    context = build_sensor_context(instance=instance, cursor=cursor, resources={"assay": assay})
    result = landing_sensor(context)
    requests = [] if isinstance(result, SkipReason) else list(result or [])
    return requests, context.cursor


def test_requests_new_days_then_only_changed_ones(tmp_path):
    landing = tmp_path / "landing"
    assay = AssayResource(home=str(tmp_path), landing_dir=str(landing))
    with DagsterInstance.ephemeral() as instance:
        land(landing, "orders", date(2024, 3, 1), 2)
        land(landing, "customers", date(2024, 3, 1), 1)
        land(landing, "orders", date(2024, 3, 2), 2)
        land(landing, "orders", date(1999, 1, 1), 2)  # outside the partition range: ignored, not an error
        requests, cursor = tick(instance, assay, None)
        assert [r.partition_key for r in requests] == ["2024-03-01", "2024-03-02"]
        assert all(r.tags["assay/reason"] == "new-landing-files" for r in requests)

        requests, cursor = tick(instance, assay, cursor)
        assert requests == []

        land(landing, "events", date(2024, 3, 2), 5)  # a late source for an already ingested day
        requests, cursor = tick(instance, assay, cursor)
        assert [r.partition_key for r in requests] == ["2024-03-02"]
