"""Retention on real Delta tables: old rows deleted, their files vacuumed, landing days purged, the rest intact."""

from __future__ import annotations

from datetime import date, timedelta

import polars as pl
import pytest
from dagster import materialize

from assets.governance.assets import effective_policy, retention
from assets.governance.retention import apply_retention
from resources.assay import AssayResource
from resources.lake import LakeResource

AS_OF = date(2025, 12, 31)


def _events(days: list[date]) -> pl.DataFrame:
    return pl.DataFrame({
        "event_id": [f"E{i}" for i in range(len(days))],
        "customer_id": [f"C{i % 3}" for i in range(len(days))],
        "_partition_date": days,
    })


@pytest.fixture
def lake_with_events(tmp_path):
    lake = LakeResource(root=str(tmp_path / "lake"))
    days = [AS_OF - timedelta(days=d) for d in (500, 500, 400, 396, 395, 10, 1)]
    lake.replace_window("bronze", "events", _events(days), "_partition_date", min(days), AS_OF,
                        partition_by=["_partition_date"])
    landing = tmp_path / "landing"
    for day in set(days):
        folder = landing / "events" / f"date={day.isoformat()}"
        folder.mkdir(parents=True)
        (folder / "part-00000.parquet").write_bytes(b"raw")
    return lake, landing, tmp_path


def test_old_rows_and_their_files_are_gone_and_the_rest_is_intact(lake_with_events):
    lake, landing, root = lake_with_events
    before = lake.scan("bronze", "events").collect()
    outcome = apply_retention(lake, "bronze/events", "_partition_date", 395, AS_OF, landing, vacuum_grace_hours=0)
    after = lake.scan("bronze", "events").collect()
    cutoff = AS_OF - timedelta(days=395)
    assert outcome.cutoff == cutoff
    assert outcome.rows_deleted == before.filter(pl.col("_partition_date") < cutoff).height == 4
    assert after.height == outcome.rows_after == before.height - 4
    assert after.get_column("_partition_date").min() == cutoff  # the cutoff day itself is kept
    assert after.sort("event_id").equals(before.filter(pl.col("_partition_date") >= cutoff).sort("event_id"))
    # Vacuumed: no Parquet file of a deleted day is left on disk, so time travel cannot restore it.
    table_dir = root / "lake" / "bronze" / "events"
    left = {p.parent.name for p in table_dir.rglob("*.parquet")}
    assert all(name.removeprefix("_partition_date=") >= cutoff.isoformat() for name in left)
    assert outcome.files_vacuumed >= 3
    assert sorted(p.name for p in (landing / "events").iterdir()) == sorted(
        f"date={d}" for d in after.get_column("_partition_date").unique().cast(pl.Utf8))
    assert outcome.landing_days_purged == 3


def test_a_reader_of_the_version_before_the_delete_keeps_its_files_until_the_grace_is_over(lake_with_events):
    from deltalake import DeltaTable

    lake, landing, root = lake_with_events
    uri = lake.uri("bronze", "events")
    reader = DeltaTable(uri)  # a dbt build or a scoring run that began before retention ran
    before = lake.scan("bronze", "events").collect()
    outcome = apply_retention(lake, "bronze/events", "_partition_date", 395, AS_OF, landing)
    assert outcome.rows_deleted == 4 and outcome.files_vacuumed == 0
    assert pl.scan_delta(uri, version=reader.version()).collect().height == before.height  # still readable
    later = apply_retention(lake, "bronze/events", "_partition_date", 395, AS_OF, landing, vacuum_grace_hours=0)
    assert later.rows_deleted == 0 and later.files_vacuumed >= 3  # the next run, once the grace is over


def test_a_second_run_deletes_nothing(lake_with_events):
    lake, landing, _ = lake_with_events
    apply_retention(lake, "bronze/events", "_partition_date", 395, AS_OF, landing)
    again = apply_retention(lake, "bronze/events", "_partition_date", 395, AS_OF, landing)
    assert (again.rows_deleted, again.landing_days_purged) == (0, 0)


def test_the_asset_applies_the_policy_and_audits_each_deletion(lake_with_events):
    lake, landing, root = lake_with_events
    assay = AssayResource(home=str(root), landing_dir=str(landing))
    result = materialize([retention], resources={"lake": lake, "assay": assay},
                         run_config={"ops": {"governance__retention": {"config": {
                             "as_of": AS_OF.isoformat(), "policy_json": '{"bronze/events": 30}'}}}})
    assert result.success
    assert lake.scan("bronze", "events").collect().height == 2  # only the last 30 days
    audit = lake.scan("gold", "audit_log").collect()
    assert audit.filter(pl.col("action") == "retention_delete").get_column("rows").to_list() == [5]


def test_unknown_tables_and_empty_retention_are_refused():
    with pytest.raises(ValueError, match="no retention rule"):
        effective_policy('{"bronze/nowhere": 10}')
    with pytest.raises(ValueError, match="at least one day"):
        effective_policy('{"bronze/events": 0}')
    assert effective_policy("")["bronze/events"] == ("_partition_date", 395)


def test_expired_hand_off_files_and_access_bundles_are_deleted_and_the_rest_kept(lake_with_events):
    import os
    from datetime import datetime

    lake, landing, root = lake_with_events

    def written(path, day: date) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("customer_id\nC1\n")
        stamp = datetime(day.year, day.month, day.day, 12).timestamp()
        os.utime(path, (stamp, stamp))

    written(root / "exports" / "retention_audience_2025-08-04.csv", AS_OF - timedelta(days=120))
    written(root / "exports" / "retention_audience_2025-12-29.csv", AS_OF - timedelta(days=2))
    written(root / "dsar" / "DSAR-1" / "access.json", AS_OF - timedelta(days=45))
    written(root / "dsar" / "DSAR-2" / "access.json", AS_OF - timedelta(days=3))
    written(root / "exports" / "notes.csv", AS_OF - timedelta(days=400))  # not a file Assay names so: kept
    assay = AssayResource(home=str(root), landing_dir=str(landing))
    result = materialize([retention], resources={"lake": lake, "assay": assay},
                         run_config={"ops": {"governance__retention": {"config": {"as_of": AS_OF.isoformat()}}}})
    assert result.success
    assert sorted(p.name for p in (root / "exports").iterdir()) == ["notes.csv", "retention_audience_2025-12-29.csv"]
    assert sorted(p.name for p in (root / "dsar").iterdir()) == ["DSAR-2"]
    [metadata] = [m.metadata for m in result.asset_materializations_for_node("governance__retention")]
    assert metadata["files_deleted"].data == {"exports/retention_audience": 1, "dsar/access_bundles": 1}
