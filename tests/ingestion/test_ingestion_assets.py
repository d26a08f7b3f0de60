"""Ingestion through Dagster into real Delta tables: idempotent per day, conserving rows, evolving schema."""

from __future__ import annotations

import gzip
import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest
from dagster import AssetKey, materialize

from assets.ingestion.assets import build_ingestion_assets
from assets.ingestion.ingest import ids_landed_before, ingest_window
from assets.ingestion.landing import landing_fingerprints, read_landing
from assets.partitions import AssayPartitions
from domain.contract import CUSTOMERS, ORDERS
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
    d3 = D2 + timedelta(days=1)
    # repeats of earlier days' ids (o1 on D2 and D3, o4 on D3): one-day chunks find them in bronze, written by the
    # chunks before; one 31-day chunk finds them within its own batch
    pl.DataFrame([order("o1", D2, 6)]).write_parquet(landing / "orders" / f"date={D2}" / "part-1.parquet")
    write_orders(landing, d3, [order("o1", d3, 1), order("o4", d3, 2), order("o7", d3, 3)])
    now = datetime(2024, 3, 1, tzinfo=UTC)
    results = {}
    for chunk in (1, 31):
        lake = LakeResource(root=str(tmp_path / f"lake{chunk}"))
        summary = ingest_window(landing, ORDERS, {}, lake, D1, d3 + timedelta(days=1), "r", now, chunk_days=chunk,
                                key=b"k")
        assert summary.rows_in == summary.rows_valid + summary.rows_quarantined == 11
        assert summary.reasons["duplicate_id_earlier_day:order_id"] == 3
        assert summary.bronze_version == lake.version("bronze", "orders")
        # a quarantined record keeps the raw columns of its batch: a column that one day has (coupon_code) is a
        # null in the records of the other days of its chunk
        results[chunk] = [pl.read_delta(lake.uri(layer, "orders")).drop("_ingested_at", "record", strict=False)
                          .sort(pl.all()) for layer in ("bronze", "quarantine")]
    for one_day, one_pass in zip(results[1], results[31], strict=True):
        assert one_day.equals(one_pass.select(one_day.columns))


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
    (landing / "orders" / "backup").mkdir()  # outside the day folders: not read, but counted too
    (landing / "orders" / "date=2024-02-30").mkdir()
    result = run_ingestion(tmp_path, landing, D1.isoformat())
    meta = result.asset_materializations_for_node("ingest_orders")[0].metadata
    assert meta["ignored_files"].value == 2 and meta["ignored"].value == ["README.txt", "old"]
    assert meta["outside_day_folders"].value == ["backup", "date=2024-02-30"]
    assert (folder / "README.txt").exists() and (folder / "old").is_dir()  # never deleted or moved


BAD_FILES = {
    "empty_file": ("empty.csv", b""),
    "corrupt_parquet": ("broken.parquet", b"PAR1 this is not a parquet body"),
    "corrupt_gzip": ("cut.csv.gz", gzip.compress(b"order_id,customer_id\no9,c9\n")[:20]),
    "undecodable_text": ("accents.csv", "order_id,customer_id,channel\no9,c9,Caf\u00e9\n".encode("latin-1")),
    "malformed_csv": ("quote.csv", b'order_id,customer_id,channel\no9,c9,"never closed\n'),
    "malformed_json": ("lines.jsonl", b'{"order_id": "o9", "customer_id": \n'),
}


@pytest.mark.parametrize("code", sorted(BAD_FILES))
def test_an_unreadable_file_goes_to_the_file_quarantine_and_its_day_still_ingests(tmp_path, landing, code):
    name, data = BAD_FILES[code]
    folder = landing / "orders" / f"date={D1.isoformat()}"
    (folder / name).write_bytes(data)
    lake = LakeResource(root=str(tmp_path / "lake"))
    summary = ingest_window(landing, ORDERS, {}, lake, D1, D2, "r1", datetime.now(UTC), 31, b"k" * 32)

    files = bronze(tmp_path, "orders_files", layer="quarantine")
    assert files.select("file").rows() == [(str(folder / name),)] and files["reason"][0].startswith(f"{code}:")
    # nothing of the file's contents in the reason: it can be personal data
    assert "c9" not in files["reason"][0] and "never closed" not in files["reason"][0]
    # the readable file of the same day is in bronze and quarantine, row for row
    assert summary.files == 1 and [f.path for f in summary.unreadable] == [str(folder / name)]
    assert summary.rows_in == 4 == bronze(tmp_path).height + bronze(tmp_path, layer="quarantine").height
    assert (folder / name).read_bytes() == data  # left where it landed, unchanged


FILE_QUARANTINE = AssetKey(["quarantine", "orders_files"])


def test_the_file_quarantine_shows_in_dagster_and_empties_once_the_file_is_fixed(tmp_path, landing):
    folder = landing / "orders" / f"date={D1.isoformat()}"
    for name, data in BAD_FILES.values():
        (folder / name).write_bytes(data)
    result = run_ingestion(tmp_path, landing, D1.isoformat())
    by_key = {m.asset_key: m.metadata for m in result.asset_materializations_for_node("ingest_orders")}
    assert by_key[AssetKey(["bronze", "orders"])]["unreadable_files"].value == len(BAD_FILES)
    assert by_key[AssetKey(["quarantine", "orders_files"])]["reasons"].value == dict.fromkeys(BAD_FILES, 1)
    assert result.get_asset_check_evaluations()[0].passed  # rows still conserved

    for name, _ in BAD_FILES.values():
        (folder / name).unlink()  # the shop re-sends the day without them: the day's entries are replaced
    fixed = run_ingestion(tmp_path, landing, D1.isoformat())
    assert bronze(tmp_path, "orders_files", layer="quarantine").height == 0
    emptied = {m.asset_key: m.metadata for m in fixed.asset_materializations_for_node("ingest_orders")}
    assert emptied[FILE_QUARANTINE]["dagster/row_count"].value == 0  # the change shows in Dagster too

    # a day whose files were always readable leaves the file quarantine alone: no commit, no materialization
    before = LakeResource(root=str(tmp_path / "lake")).version("quarantine", "orders_files")
    clean = run_ingestion(tmp_path, landing, D2.isoformat())
    assert FILE_QUARANTINE not in {m.asset_key for m in clean.asset_materializations_for_node("ingest_orders")}
    assert AssetKey(["quarantine", "orders"]) in {m.asset_key for m in clean.asset_materializations_for_node(
        "ingest_orders")}
    assert LakeResource(root=str(tmp_path / "lake")).version("quarantine", "orders_files") == before


def test_latin1_files_read_when_configured(tmp_path):
    landing = tmp_path / "landing"
    folder = landing / "orders" / f"date={D1.isoformat()}"
    folder.mkdir(parents=True)
    (folder / "shop.csv").write_bytes("order_id,customer_id,order_ts,amount,n_items,channel\n"
                                      "o1,c1,2024-02-01T10:00:00Z,9.5,1,Caf\u00e9\n".encode("latin-1"))
    resources = {"assay": AssayResource(home=str(tmp_path), landing_dir=str(landing), landing_encoding="latin-1"),
                 "lake": LakeResource(root=str(tmp_path / "lake"))}
    assert materialize(INGESTION, partition_key=D1.isoformat(), resources=resources).success
    assert bronze(tmp_path)["channel"].to_list() == ["Caf\u00e9"]


def test_the_ids_landed_before_a_day_are_those_of_earlier_days_at_the_edges_of_the_range_too(tmp_path):
    landing, lake = tmp_path / "landing", LakeResource(root=str(tmp_path / "lake"))
    write_orders(landing, D1, [order(i, D1, k) for k, i in enumerate(["o1", "o5", "o9"])])
    write_orders(landing, D2, [order("o6", D2, 7)])
    ingest_window(landing, ORDERS, {}, lake, D1, D2 + timedelta(days=1), "r", datetime.now(UTC), 31, b"k" * 32)
    rows = pl.DataFrame({"order_id": ["o5", "o6", "o9", None]})
    assert sorted(ids_landed_before(lake, ORDERS, rows, D2)) == ["o5", "o9"]  # o6 landed on D2, o1 is not asked
    assert ids_landed_before(lake, ORDERS, rows, D1).to_list() == []
    assert ids_landed_before(lake, ORDERS, pl.DataFrame({"order_id": [None]}, schema={"order_id": pl.Utf8}),
                             D2) is None


def test_an_id_repeated_on_a_later_day_is_a_duplicate_for_orders_and_an_update_for_customers(tmp_path):
    landing, lake = tmp_path / "landing", LakeResource(root=str(tmp_path / "lake"))
    write_orders(landing, D1, [order("o1", D1, 1), order("o2", D1, 2)])
    write_orders(landing, D2, [order("o1", D2, 3, amount=99.0), order("o3", D2, 4)])

    def ingest(spec, day):
        return ingest_window(landing, spec, {}, lake, day, day + timedelta(days=1), "r", datetime.now(UTC), 31,
                             b"k" * 32)

    ingest(ORDERS, D1)
    for _ in range(2):  # re-running the later day judges it the same way
        summary = ingest(ORDERS, D2)
        assert summary.reasons == {"duplicate_id_earlier_day:order_id": 1}
        assert summary.rows_in == summary.rows_valid + summary.rows_quarantined == 2
    assert sorted(bronze(tmp_path)["order_id"]) == ["o1", "o2", "o3"]  # the first arrival of o1, once
    ingest(ORDERS, D1)  # re-running the earlier day keeps it: only earlier days count against a day
    assert sorted(bronze(tmp_path)["order_id"]) == ["o1", "o2", "o3"]
    # both days in one run (a backfill chunk) judge the same way
    at_once = ingest_window(landing, ORDERS, {}, LakeResource(root=str(tmp_path / "at_once")), D1,
                            D2 + timedelta(days=1), "r", datetime.now(UTC), 31, b"k" * 32)
    assert at_once.reasons == {"duplicate_id_earlier_day:order_id": 1}

    for day, email in ((D1, "ann@example.com"), (D2, "ann@new.example.com")):
        folder = landing / "customers" / f"date={day.isoformat()}"
        folder.mkdir(parents=True)
        pl.DataFrame({"customer_id": ["c1"], "email": [email],
                      "signup_ts": [datetime(2024, 1, 5, tzinfo=UTC)]}).write_parquet(folder / "c.parquet")
        assert ingest(CUSTOMERS, day).rows_valid == 1  # a newer record of the account: staging keeps the latest
    at_once = ingest_window(landing, CUSTOMERS, {}, LakeResource(root=str(tmp_path / "at_once")), D1,
                            D2 + timedelta(days=1), "r", datetime.now(UTC), 31, b"k" * 32)
    assert at_once.rows_valid == 2 and not at_once.reasons
