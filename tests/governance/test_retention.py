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
    assert metadata["files_deleted"].data == {"exports/retention_audience": 1, "dsar/access_bundles": 1,
                                              "models/drift_references": 0}


def test_drift_references_of_archived_models_expire_and_the_rest_lose_withdrawn_customers(lake_with_events):
    """Each model version keeps a sample of validation rows with customer ids. Retention deletes it 90 days after
    an archived version was made; the references still in service lose the rows of customers who have withdrawn
    profiling consent since (by a consent event or an opt-out request)."""
    from datetime import UTC, datetime

    from assets.consent import CONSENT_OVERRIDES_TABLE
    from assets.governance.retention import MODEL_REFERENCE_DAYS
    from resources.registry import REGISTRY_TABLE

    lake, landing, root = lake_with_events
    made = {"champion": AS_OF - timedelta(days=200), "challenger": AS_OF - timedelta(days=200),
            "archived-old": AS_OF - timedelta(days=MODEL_REFERENCE_DAYS + 1),
            "archived-new": AS_OF - timedelta(days=MODEL_REFERENCE_DAYS - 1)}
    status = {"champion": "champion", "challenger": "challenger", "archived-old": "archived",
              "archived-new": "archived"}
    lake.append(*REGISTRY_TABLE, pl.DataFrame({
        "version": list(made), "status": [status[v] for v in made],
        "created_at": [datetime(d.year, d.month, d.day, tzinfo=UTC) for d in made.values()]}))
    customers = ["T1", "T2", "T3"]
    reference = pl.DataFrame({"customer_id": customers, "consent_profiling": [True] * 3, "recency_days": [1.0, 2, 3]})
    for version in [*made, "not-in-registry"]:
        (root / "models" / version).mkdir(parents=True)
        reference.write_parquet(root / "models" / version / "reference.parquet")
    granted = datetime(2024, 1, 1, tzinfo=UTC)
    lake.append("bronze", "consents", pl.DataFrame({
        "customer_id": customers + ["T2"], "purpose": ["profiling"] * 4, "granted": [True, True, True, False],
        "event_ts": [granted] * 3 + [datetime(2025, 6, 1, tzinfo=UTC)]}))
    lake.append(*CONSENT_OVERRIDES_TABLE, pl.DataFrame({
        "customer_id": ["T3"], "purpose": ["profiling"], "granted": [False],
        "event_ts": [datetime(2025, 7, 1, tzinfo=UTC)], "request_id": ["DSAR-3"]}))

    assay = AssayResource(home=str(root), landing_dir=str(landing))
    result = materialize([retention], resources={"lake": lake, "assay": assay},
                         run_config={"ops": {"governance__retention": {"config": {"as_of": AS_OF.isoformat()}}}})
    assert result.success
    assert not (root / "models" / "archived-old" / "reference.parquet").exists()
    for version in ("champion", "challenger", "archived-new"):
        kept = pl.read_parquet(root / "models" / version / "reference.parquet")
        assert kept.get_column("customer_id").to_list() == ["T1"], version
        assert (root / "models" / version / "reference.parquet").stat().st_mode & 0o777 == 0o644 & ~_umask()
    untouched = pl.read_parquet(root / "models" / "not-in-registry" / "reference.parquet")
    assert untouched.height == 3  # a version the registry does not know is not Assay's to judge
    [metadata] = [m.metadata for m in result.asset_materializations_for_node("governance__retention")]
    assert metadata["files_deleted"].data["models/drift_references"] == 1
    assert metadata["drift_reference_rows_withdrawn"].value == 6
    audit = lake.scan("gold", "audit_log").collect().filter(pl.col("subject") == "models/drift_references")
    assert audit.get_column("rows").to_list() == [6]


def _umask() -> int:
    import os

    mask = os.umask(0)
    os.umask(mask)
    return mask
