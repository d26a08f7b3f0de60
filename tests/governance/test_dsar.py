"""Data-subject requests on a real lake: tiny synthetic data ingested into Delta, a gold table, a DuckDB
warehouse. Erasure must leave no trace in any file; access must return exactly what the tables hold."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

import duckdb
import polars as pl
import pytest
from lake_traces import rows_by_table, traces

from assets.consent import current_consents
from assets.erasure import TOMBSTONES_TABLE
from assets.governance.dsar import (
    REQUESTS_TABLE,
    DsarContext,
    Subject,
    audit_outcomes,
    erase_from_files,
    new_request,
    process_pending,
    requests,
    submit_request,
)
from assets.ingestion.ingest import ingest_window
from domain.contract import SOURCES, VAULT_TABLE
from domain.synthetic import config_for_size, generate
from resources.lake import LakeResource

START, END = date(2024, 1, 1), date(2024, 7, 1)  # half a year: every table and file kind, a quarter of the files
KEY = b"test key, not for production, 32+ bytes"


def _ingest_all(home: Path, lake: LakeResource, erased=None) -> dict[str, int]:
    erased_rows = {}
    for name, spec in SOURCES.items():
        summary = ingest_window(home / "landing", spec, {}, lake, START, END, "test", datetime.now(UTC), 800,
                                KEY, erased)
        erased_rows[name] = summary.rows_erased
        assert summary.rows_in == summary.rows_valid + summary.rows_quarantined + summary.rows_erased
    return erased_rows


@pytest.fixture
def lake_home(tmp_path, monkeypatch):
    monkeypatch.setenv("ASSAY_PSEUDONYM_KEY", KEY.decode())
    generate(config_for_size("tiny", end=END), tmp_path / "landing", tmp_path / "ground_truth")
    lake = LakeResource(root=str(tmp_path / "lake"))
    _ingest_all(tmp_path, lake)
    # a gold table and a warehouse table derived from bronze, as the pipeline would have them
    orders = lake.scan("bronze", "orders").collect()
    lake.overwrite("gold", "customer_scores", orders.group_by("customer_id").agg(pl.len().alias("orders"))
                   .with_columns(pl.lit(0.5).alias("p_churn")))
    con = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    con.execute("create schema staging")
    customers = lake.scan("bronze", "customers").collect().select("customer_id", "country")
    con.register("customers_frame", customers.to_arrow())
    con.execute("create table staging.stg_customers as select * from customers_frame")
    con.close()
    # a campaign hand-off file, keyed by token with the customer's own id beside it
    vault = lake.scan(*VAULT_TABLE).collect()
    exports = tmp_path / "exports"
    exports.mkdir()
    vault.select("source_customer_id", "customer_id").head(200).write_csv(exports / "retention_audience_x.csv")
    return tmp_path, lake


@dataclass(frozen=True)
class Person:
    customer_id: str  # their own id, as landing files and the vault hold it
    token: str  # how every table from bronze on knows them
    email: str
    phone: str | None  # only when nobody else shares it: a household phone rightly stays in the other's row


def _person(lake: LakeResource) -> Person:
    """A customer with orders (so they are in several tables) and a row in the hand-off file."""
    vault = lake.scan(*VAULT_TABLE).collect()
    with_orders = set(lake.scan("bronze", "orders").collect().get_column("customer_id").to_list())
    row = vault.head(200).filter(pl.col("customer_id").is_in(list(with_orders)) & pl.col("phone").is_not_null()
                                 ).sort("source_customer_id").row(0, named=True)
    shared = vault.filter(pl.col("phone") == row["phone"]).get_column("customer_id").n_unique() > 1
    return Person(row["source_customer_id"], row["customer_id"], row["email"], None if shared else row["phone"])


def test_erasure_leaves_no_trace_and_nothing_else_changes(lake_home):
    home, lake = lake_home
    person = _person(lake)
    needles = [n for n in (person.customer_id, person.token, person.email, person.phone) if n]
    original = {p: p.read_bytes() for p in (home / "landing").rglob("*.parquet")}
    before = rows_by_table(lake, person.token)
    for findable in (person.customer_id, person.token, person.email):
        assert traces(home, [findable]), f"{findable} must be findable before the erasure"
    hand_off = pl.read_csv(home / "exports" / "retention_audience_x.csv")

    lake.append(*REQUESTS_TABLE, new_request(person.customer_id, "erasure"))
    ctx = DsarContext(lake, home, home / "landing", home / "warehouse.duckdb")
    [outcome] = process_pending(ctx)

    assert outcome["kind"] == "erasure" and outcome["on_time"]
    assert traces(home / "lake", needles) == []
    assert traces(home / "landing", needles) == []
    assert traces(home / "warehouse.duckdb", needles) == []
    assert traces(home / "exports", needles) == []
    assert pl.read_csv(home / "exports" / "retention_audience_x.csv").height == hand_off.height - 1
    # Everyone else is intact: each table lost exactly the person's rows.
    after = rows_by_table(lake, person.token)
    for table, (rows, mine) in before.items():
        if table in ("governance/dsar_requests", "governance/erasure_tombstones"):
            continue
        assert after[table] == (rows - mine, 0), table
        assert outcome["rows_by_table"].get(table, 0) >= mine
    assert outcome["warehouse_rows"] == 1
    # The request log keeps a keyed hash, not the id; the tombstone holds the same hash.
    request = requests(lake).row(0, named=True)
    assert request["status"] == "completed" and request["customer_id"] is None
    assert lake.scan(*TOMBSTONES_TABLE).collect().get_column("subject_hash").to_list() == [request["subject_hash"]]

    # A source re-sends its old files: re-ingesting them does not bring the person back.
    for path, data in original.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    erased_rows = _ingest_all(home, lake, {request["subject_hash"]})
    assert erased_rows["customers"] == 1 and erased_rows["orders"] == before["bronze/orders"][1]
    assert lake.scan("bronze", "orders").collect().height == before["bronze/orders"][0] - before["bronze/orders"][1]
    assert traces(home / "lake", needles) == []


def test_access_bundle_holds_exactly_what_the_tables_hold(lake_home):
    home, lake = lake_home
    person = _person(lake)
    ctx = DsarContext(lake, home, home / "landing", home / "warehouse.duckdb")
    # an earlier request of theirs, audited: its audit entry belongs in the bundle
    lake.append(*REQUESTS_TABLE, new_request(person.customer_id, "opt_out"))
    [earlier] = process_pending(ctx)
    audit_outcomes(lake, [earlier], "run-1")
    lake.append(*REQUESTS_TABLE, new_request(person.customer_id, "access"))
    [outcome] = process_pending(ctx)
    bundle = json.loads(Path(outcome["file"]).read_text())
    assert [e["subject"] for e in bundle["gold/audit_log"]] == [earlier["request_id"]]
    for layer, name in lake.tables():
        frame = lake.scan(layer, name).collect()
        direct = frame.filter(pl.col("customer_id") == person.token).height if "customer_id" in frame.columns else 0
        if (layer, name) == REQUESTS_TABLE:
            direct = 2  # the opt-out, and the access request itself (pending when the bundle was made)
        assert len(bundle.get(f"{layer}/{name}", [])) >= direct, (layer, name)
    # contact details come from the vault, the only table holding them
    [vault_row] = bundle["restricted/pii_vault"]
    assert (vault_row["source_customer_id"], vault_row["email"]) == (person.customer_id, person.email)
    assert len(bundle["bronze/orders"]) == lake.scan("bronze", "orders").filter(
        pl.col("customer_id") == person.token).collect().height
    assert {"bronze/customers", "bronze/orders", "gold/customer_scores"} <= set(bundle)


def test_opt_out_withdraws_both_purposes_from_that_moment(lake_home):
    home, lake = lake_home
    person = _person(lake)
    lake.append(*REQUESTS_TABLE, new_request(person.customer_id, "opt_out"))
    process_pending(DsarContext(lake, home, home / "landing", home / "warehouse.duckdb"))
    state = current_consents(lake).filter(pl.col("customer_id") == person.token).row(0, named=True)
    assert state["profiling"] is False and state["marketing"] is False
    assert requests(lake).get_column("status").to_list() == ["completed"]


def test_requests_are_checked():
    with pytest.raises(ValueError, match="unknown request kind"):
        new_request("C1", "delete-everything")
    with pytest.raises(ValueError, match="customer id"):
        new_request("", "erasure")


def test_landing_files_with_numeric_ids_under_the_shops_own_column_are_erased(tmp_path):
    """Ids stay text from bronze on; a landing file may hold them as numbers under the shop's own column name."""
    landing = tmp_path / "landing"
    folder = landing / "orders" / "date=2024-02-01"
    folder.mkdir(parents=True)
    pl.DataFrame({"order_ref": ["a", "b", "c"], "cust": [42, 420, 7], "cds": [42, 1, 2]}).write_parquet(
        folder / "orders.parquet")
    (folder / "orders.jsonl").write_text('{"order_ref": "d", "cust": 42}\n{"order_ref": "e", "cust": 7}\n')
    subject = Subject("42", "tok42", ("42", "tok42"))
    rewritten, unreadable = erase_from_files(landing, subject, column_mapping={"orders": {"cust": "customer_id"}})
    assert (rewritten, unreadable) == (2, 0)
    parquet = pl.read_parquet(folder / "orders.parquet")
    # the person's row only: not customer 420, not a quantity of 42; numbers stay numbers
    assert parquet.rows() == [("b", 420, 1), ("c", 7, 2)] and parquet.schema["cust"] == pl.Int64
    assert pl.read_ndjson(folder / "orders.jsonl")["order_ref"].to_list() == ["e"]


def test_ids_that_are_numbers_or_years_erase_exactly_their_owners(tmp_path):
    """Customers 42 and 2024: the registry's AUC of 0.42, the audit log's dates and every other customer stay."""
    from domain.pseudonym import pseudonym_key, token
    from resources.audit import AUDIT_TABLE, record
    from resources.registry import REGISTRY_TABLE

    home, lake = tmp_path / "home", LakeResource(root=str(tmp_path / "home" / "lake"))
    key = pseudonym_key(home)
    ids = ["42", "2024", "7", "420"]
    lake.append("bronze", "orders", pl.DataFrame({
        "order_id": [f"o{i}" for i in ids], "customer_id": [token(key, i) for i in ids],
        "note": ["0.42", "2024-01-01", "42 items", "order of 2024"]}))
    registry = pl.DataFrame({"version": ["20240101T000000-abc"], "metrics": ['{"auc": 0.42, "rows": 2024}']})
    lake.append(*REGISTRY_TABLE, registry)
    record(lake, "ingest", "bronze/orders", "run-2024", 42, {"window_start": "2024-01-01", "rows": 2024})
    audit = lake.scan(*AUDIT_TABLE).collect()
    landing = tmp_path / "landing" / "orders" / "date=2024-02-01"
    landing.mkdir(parents=True)
    (landing / "orders.csv").write_text("order_ref,cust,dollars\na,42,0.42\nb,2024,20.24\nc,7,42\nd,420,2024\n")
    pl.DataFrame({"order_ref": ["e", "f", "g"], "cust": [2024, 42, 420]}).write_parquet(landing / "orders.parquet")

    for customer in ("42", "2024"):
        submit_request(lake, home, new_request(customer, "erasure"))
    ctx = DsarContext(lake, home, tmp_path / "landing", home / "warehouse.duckdb",
                      column_mapping={"orders": {"order_ref": "order_id", "cust": "customer_id"}})
    outcomes = process_pending(ctx)

    assert [o["kind"] for o in outcomes] == ["erasure", "erasure"]
    assert lake.scan("bronze", "orders").collect().get_column("order_id").sort().to_list() == ["o420", "o7"]
    assert lake.scan(*REGISTRY_TABLE).collect().equals(registry)
    assert lake.scan(*AUDIT_TABLE).collect().equals(audit)
    assert pl.read_csv(landing / "orders.csv").get_column("cust").to_list() == [7, 420]
    assert pl.read_parquet(landing / "orders.parquet").get_column("cust").to_list() == [420]


def test_a_request_submitted_while_others_are_processed_is_kept_and_handled_by_the_next_run(tmp_path, monkeypatch):
    import assets.governance.dsar as dsar

    home, lake = tmp_path / "home", LakeResource(root=str(tmp_path / "home" / "lake"))
    dsar.submit_request(lake, home, new_request("C1", "access"))
    bundle = dsar.access_bundle

    def bundle_while_someone_submits(*args, **kwargs):
        dsar.submit_request(lake, home, new_request("C2", "access"))  # another process, in the middle of the run
        return bundle(*args, **kwargs)

    monkeypatch.setattr(dsar, "access_bundle", bundle_while_someone_submits)
    ctx = DsarContext(lake, home, tmp_path / "landing", home / "warehouse.duckdb")
    assert len(process_pending(ctx)) == 1
    log = requests(lake).sort("requested_at")
    assert log.select("customer_id", "status").rows() == [("C1", "completed"), ("C2", "pending")]
    monkeypatch.setattr(dsar, "access_bundle", bundle)
    assert len(process_pending(ctx)) == 1
    assert requests(lake).get_column("status").to_list() == ["completed", "completed"]


def test_an_earlier_version_that_still_holds_the_person_is_found_and_only_its_history_purged(tmp_path):
    from assets.governance.dsar import ErasureReport, erase_from_lake

    lake = LakeResource(root=str(tmp_path / "lake"))
    lake.overwrite("gold", "audience", pl.DataFrame({"customer_id": ["tok1", "tok2"]}))
    lake.overwrite("gold", "audience", pl.DataFrame({"customer_id": ["tok2"]}))  # a re-run export without them
    lake.overwrite("gold", "others", pl.DataFrame({"customer_id": ["tok2", "tok3"]}))
    others = sorted(p.name for p in (tmp_path / "lake" / "gold" / "others").rglob("*") if p.is_file())
    report = ErasureReport()
    erase_from_lake(lake, Subject("1", "tok1", ("tok1",)), report)
    assert set(report.replaced_versions) == {"gold/audience"} and report.rows_total == 0
    assert report.old_files_deleted == 1
    assert traces(tmp_path / "lake", ["tok1"]) == []  # neither a data file nor the log's file statistics
    assert lake.scan("gold", "audience").collect().get_column("customer_id").to_list() == ["tok2"]
    assert sorted(p.name for p in (tmp_path / "lake" / "gold" / "others").rglob("*") if p.is_file()) == others



def test_anonymous_events_of_their_devices_and_their_rows_in_model_references_are_erased(tmp_path):
    from domain.pseudonym import pseudonym_key, token

    home, lake = tmp_path / "home", LakeResource(root=str(tmp_path / "home" / "lake"))
    key = pseudonym_key(home)
    me, other = token(key, "C1"), token(key, "C2")
    my_device, their_device = token(key, "device-of-c1"), token(key, "device-of-c2")
    lake.append("bronze", "events", pl.DataFrame({
        "event_id": ["e1", "e2", "e3", "e4"], "customer_id": [me, None, other, None],
        "device_id": [my_device, my_device, their_device, their_device]}))
    reference = home / "models" / "20250101T000000-abc" / "reference.parquet"
    reference.parent.mkdir(parents=True)
    pl.DataFrame({"customer_id": [me, other], "recency_days": [3.0, 40.0]}).write_parquet(reference)
    (home / "models" / "20250101T000000-abc" / "model.json").write_text('{"version": "x"}')

    submit_request(lake, home, new_request("C1", "access"))
    [access] = process_pending(DsarContext(lake, home, tmp_path / "landing", home / "warehouse.duckdb"))
    assert Path(access["file"]).stat().st_mode & 0o777 == 0o600  # the bundle is readable by its owner only
    assert {r["event_id"] for r in json.loads(Path(access["file"]).read_text())["bronze/events"]} == {"e1", "e2"}

    submit_request(lake, home, new_request("C1", "erasure"))
    [erasure] = process_pending(DsarContext(lake, home, tmp_path / "landing", home / "warehouse.duckdb"))
    assert lake.scan("bronze", "events").collect().get_column("event_id").sort().to_list() == ["e3", "e4"]
    assert pl.read_parquet(reference).get_column("customer_id").to_list() == [other]
    assert erasure["model_files_rewritten"] == 1 and erasure["unreadable_files"] == 0
    assert traces(home, [me, my_device]) == []
