"""Ingestion through Dagster into real Delta tables: idempotent per day, conserving rows, evolving schema."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path

import polars as pl
import pytest
from dagster import AssetKey, materialize

from assets.ingestion.assets import build_ingestion_assets
from assets.ingestion.landing import landing_fingerprints, read_landing
from assets.partitions import AssayPartitions
from domain.pseudonym import pseudonym_key, token
from domain.settings import AssaySettings
from resources.assay import AssayResource
from resources.lake import LakeResource


def write_orders(landing: Path, day: date, rows: list[dict], fmt: str = "parquet") -> None:
    folder = landing / "orders" / f"date={day.isoformat()}"
    folder.mkdir(parents=True, exist_ok=True)
    frame = pl.DataFrame(rows)
    if fmt == "csv":
        frame.write_csv(folder / "part-0.csv")
    else:
        frame.write_parquet(folder / "part-0.parquet")


def order(order_id: str, day: date, hour: int, amount: float = 10.0, customer: str | None = "c1", **extra) -> dict:
    row = {"order_id": order_id, "customer_id": customer,
           "order_ts": datetime(day.year, day.month, day.day, hour, tzinfo=UTC),
           "amount": amount, "n_items": 1, "channel": "web"}
    row.update(extra)
    return row


D1, D2 = date(2024, 2, 1), date(2024, 2, 2)
# the ingestion assets over the default daily partitions (not the caller's environment)
INGESTION = build_ingestion_assets(AssayPartitions.from_settings(AssaySettings.from_env({})))


@pytest.fixture
def landing(tmp_path) -> Path:
    landing = tmp_path / "landing"
    write_orders(landing, D1, [order("o1", D1, 1), order("o2", D1, 2, amount=-3.0), order("o2", D1, 2),
                               order("o3", D1, 3, customer=None)])
    write_orders(landing, D2, [order("o4", D2, 1, coupon_code="SAVE10"), order("o5", D2, 5),
                               order("o5", D2, 5)])
    return landing


def run_ingestion(tmp_path: Path, landing: Path, partition: str, mapping: dict | None = None):
    resources = {
        "assay": AssayResource(home=str(tmp_path), landing_dir=str(landing),
                               column_mapping_json=json.dumps(mapping or {})),
        "lake": LakeResource(root=str(tmp_path / "lake")),
    }
    result = materialize(INGESTION, partition_key=partition, resources=resources)
    assert result.success
    return result


def bronze(tmp_path: Path, source: str = "orders", layer: str = "bronze") -> pl.DataFrame:
    return pl.read_delta(str(tmp_path / "lake" / layer / source))


def test_rows_in_equal_bronze_plus_quarantine_and_check_passes(tmp_path, landing):
    result = run_ingestion(tmp_path, landing, D1.isoformat())
    assert bronze(tmp_path).get_column("order_id").sort().to_list() == ["o1", "o2"]
    quarantine = bronze(tmp_path, layer="quarantine")
    assert sorted(quarantine.get_column("reason").to_list()) == [
        "greater_than_or_equal_to:amount", "null_value:customer_id"]
    meta = result.asset_materializations_for_node("ingest_orders")[0].metadata
    assert meta["rows_in"].value == 4 == meta["rows_valid"].value + meta["rows_quarantined"].value
    checks = [c for c in result.get_asset_check_evaluations() if c.asset_key == AssetKey(["bronze", "orders"])]
    assert checks and all(c.passed for c in checks)


def test_rematerializing_a_day_replaces_exactly_that_day(tmp_path, landing):
    run_ingestion(tmp_path, landing, D1.isoformat())
    run_ingestion(tmp_path, landing, D2.isoformat())
    before = bronze(tmp_path).group_by("_partition_date").len().sort("_partition_date")
    run_ingestion(tmp_path, landing, D1.isoformat())
    after = bronze(tmp_path).group_by("_partition_date").len().sort("_partition_date")
    assert before.equals(after)
    assert bronze(tmp_path, layer="quarantine").height == 3  # two from D1 (not doubled), one duplicate from D2
    # A corrected landing file replaces that day's rows, and only them.
    write_orders(landing, D1, [order("o1", D1, 1)])
    run_ingestion(tmp_path, landing, D1.isoformat())
    assert bronze(tmp_path).filter(pl.col("_partition_date") == D1).height == 1
    assert bronze(tmp_path).filter(pl.col("_partition_date") == D2).height == 2
    assert bronze(tmp_path, layer="quarantine").filter(pl.col("_partition_date") == D1).height == 0


def test_new_column_mid_period_is_carried_without_breaking_older_days(tmp_path, landing):
    run_ingestion(tmp_path, landing, D1.isoformat())
    run_ingestion(tmp_path, landing, D2.isoformat())
    table = bronze(tmp_path).sort("order_id")
    assert "coupon_code" in table.columns
    assert table.get_column("coupon_code").to_list() == [None, None, "SAVE10", None]
    run_ingestion(tmp_path, landing, D1.isoformat())  # an old day re-run after the column appeared
    assert bronze(tmp_path).height == 4


def test_column_mapping_and_csv_landing(tmp_path):
    landing = tmp_path / "landing"
    rows = [{"id": "o1", "cust": "c1", "order_ts": "2024-02-01T10:00:00Z", "value": "12.5", "n_items": "1",
             "channel": "web"}]
    write_orders(landing, D1, rows, fmt="csv")
    run_ingestion(tmp_path, landing, D1.isoformat(),
                  mapping={"orders": {"id": "order_id", "cust": "customer_id", "value": "amount"}})
    table = bronze(tmp_path)
    # bronze is keyed by the customer's token, under the deployment's key
    assert table.select("order_id", "customer_id", "amount").rows() == [("o1", token(pseudonym_key(tmp_path), "c1"),
                                                                         12.5)]


def test_absent_optional_source_leaves_an_empty_table_with_the_contract_schema(tmp_path, landing):
    result = run_ingestion(tmp_path, landing, D1.isoformat())
    events = bronze(tmp_path, "events")
    assert events.height == 0 and "event_ts" in events.columns
    meta = [m for m in result.get_asset_materialization_events()
            if m.asset_key == AssetKey(["bronze", "events"])][0].materialization.metadata
    assert meta["source_present"].value is False


def test_landing_reader_and_fingerprints_notice_changes(tmp_path, landing):
    batch = read_landing(landing, "orders", D1, date(2024, 2, 3))
    assert batch.frame.height == 7 and len(batch.files) == 2
    first = landing_fingerprints(landing, ["orders", "customers"])
    assert set(first) == {D1.isoformat(), D2.isoformat()}
    write_orders(landing, D2, [order("o9", D2, 1)])
    second = landing_fingerprints(landing, ["orders"])
    assert first[D1.isoformat()] == second[D1.isoformat()] and first[D2.isoformat()] != second[D2.isoformat()]


def test_chunked_backfill_equals_one_pass(tmp_path, landing):
    from assets.ingestion.ingest import day_chunks, ingest_window
    from domain.contract import ORDERS

    assert day_chunks(D1, date(2024, 2, 6), 2) == [(D1, date(2024, 2, 3)), (date(2024, 2, 3), date(2024, 2, 5)),
                                                  (date(2024, 2, 5), date(2024, 2, 6))]
    now = datetime(2024, 3, 1, tzinfo=UTC)
    results = {}
    for chunk in (1, 31):
        lake = LakeResource(root=str(tmp_path / f"lake{chunk}"))
        summary = ingest_window(landing, ORDERS, {}, lake, D1, date(2024, 2, 3), "r", now, chunk_days=chunk,
                                key=b"k")
        assert summary.rows_in == summary.rows_valid + summary.rows_quarantined == 7
        results[chunk] = pl.read_delta(lake.uri("bronze", "orders")).drop("_ingested_at").sort("order_id")
    assert results[1].equals(results[31].select(results[1].columns))


def test_a_range_run_of_several_days_equals_a_run_per_day(tmp_path, landing):
    """The landing sensor asks for one run per run of consecutive new days: ingesting the range at once gives what
    ingesting each day does."""
    from orchestration.automation import range_tags

    def resources(lake: str) -> dict:  # one home (one pseudonym key), a lake each
        return {"assay": AssayResource(home=str(tmp_path), landing_dir=str(landing)),
                "lake": LakeResource(root=str(tmp_path / lake))}

    result = materialize(INGESTION, tags=range_tags([D1.isoformat(), D2.isoformat()]), resources=resources("lake"))
    assert result.success
    meta = result.asset_materializations_for_node("ingest_orders")[0].metadata
    assert meta["rows_in"].value == 7 == meta["rows_valid"].value + meta["rows_quarantined"].value
    for day in (D1, D2):
        assert materialize(INGESTION, partition_key=day.isoformat(), resources=resources("per_day")).success

    def table(lake: str, layer: str) -> pl.DataFrame:
        frame = pl.read_delta(str(tmp_path / lake / layer / "orders"))
        if "record" in frame.columns:
            # a quarantined record is kept with the columns of its batch: a range's batch has every day's columns,
            # so a record of the first day also names the column that appeared on the second, as null
            records = [json.dumps({k: v for k, v in json.loads(r).items() if v is not None}, sort_keys=True)
                       for r in frame.get_column("record")]
            frame = frame.with_columns(pl.Series("record", records))
        # when and by which run differ; what landed where does not
        return frame.drop("_ingested_at", "_run_id", strict=False).sort(pl.all())

    for layer in ("bronze", "quarantine"):
        at_once, one_by_one = table("lake", layer), table("per_day", layer)
        assert at_once.height > 0 and at_once.equals(one_by_one.select(at_once.columns)), layer


def test_what_is_not_a_landing_file_is_left_alone_and_counted(tmp_path, landing):
    folder = landing / "orders" / f"date={D1.isoformat()}"
    (folder / "README.txt").write_text("exported nightly by the shop system")
    (folder / "old").mkdir()
    result = run_ingestion(tmp_path, landing, D1.isoformat())
    meta = result.asset_materializations_for_node("ingest_orders")[0].metadata
    assert meta["ignored_files"].value == 2 and meta["ignored"].value == ["README.txt", "old"]
    assert (folder / "README.txt").exists() and (folder / "old").is_dir()  # never deleted or moved
