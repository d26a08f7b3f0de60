"""Crashes and concurrent writers, injected for real: the `assay` CLI and ingestion run in subprocesses that kill
themselves with SIGKILL at named points (domain/faults.py), then run again. Afterwards every table is readable,
every landing row is accounted for (bronze + quarantine + erased), the erased person is found nowhere under the
home, and nobody else lost a row."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import textwrap
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import duckdb
import polars as pl
import pytest
from lake_traces import rows_by_table, traces

from assets.erasure import tombstone_hash
from assets.governance.dsar import new_request, requests, submit_request
from assets.ingestion.ingest import count_rejected, count_window
from domain.contract import PARTITION_COLUMN, SOURCES, VAULT_TABLE
from domain.faults import FAULT_ENV
from domain.synthetic import config_for_size, generate
from resources.lake import LakeResource

REPO = Path(__file__).resolve().parents[2]
KEY = "fault-injection key, not for production use"
START = date(2024, 1, 1)
END = START + timedelta(days=60)
# The order an erasure reaches them; each run below is killed at the next one, so every run restarts from a state
# the run before it left half-done.
ERASURE_POINTS = [
    "erasure:tombstone-written",
    "erasure:table-rewritten:bronze/orders",
    "lake:log-purged",
    "erasure:file-rewritten",
    "erasure:warehouse-copied",
    "erasure:table-rewritten:restricted/pii_vault",
    "erasure:erased",
]
INGESTION_POINTS = ["ingestion:vault-written:customers", "ingestion:bronze-written:orders"]


def _env(home: Path, fault: str | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASSAY_")}
    env.update({"ASSAY_HOME": str(home), "ASSAY_LAKE_ROOT": str(home / "lake"), "ASSAY_PSEUDONYM_KEY": KEY,
                "ASSAY_LANDING_DIR": str(home / "landing"), "ASSAY_SOURCE": "files"})
    if fault:
        env[FAULT_ENV] = fault
    return env


def _run(args: list[str], home: Path, fault: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(args, env=_env(home, fault), cwd=REPO, capture_output=True, text=True, timeout=300)


INGEST = textwrap.dedent("""
    import sys
    from datetime import UTC, date, datetime
    from pathlib import Path
    from assets.ingestion.ingest import ingest_window
    from domain.contract import SOURCES
    from resources.lake import LakeResource
    home, start, end = Path(sys.argv[1]), date.fromisoformat(sys.argv[2]), date.fromisoformat(sys.argv[3])
    erased = set(sys.argv[5].split(",")) if len(sys.argv) > 5 and sys.argv[5] else set()
    for name in sys.argv[4].split(","):
        ingest_window(home / "landing", SOURCES[name], {}, LakeResource(root=str(home / "lake")), start, end,
                      "run", datetime.now(UTC), int(sys.argv[7]), sys.argv[6].encode(), erased)
""")


def _ingest(home: Path, start: date, end: date, sources: list[str], fault: str | None = None,
            erased: set[str] = frozenset(), chunk_days: int = 30) -> subprocess.CompletedProcess:
    return _run([sys.executable, "-c", INGEST, str(home), start.isoformat(), end.isoformat(), ",".join(sources),
                 ",".join(sorted(erased)), KEY, str(chunk_days)], home, fault)


def _landing_rows(home: Path, source: str, start: date, end: date) -> int:
    from assets.ingestion.landing import read_landing

    return read_landing(home / "landing", source, start, end).frame.height


@pytest.fixture(scope="module")
def ingested_home(tmp_path_factory) -> Path:
    """A small world, ingested, with a gold table, a warehouse table and a campaign hand-off file."""
    home = tmp_path_factory.mktemp("crash") / "home"
    generate(config_for_size("tiny", n_customers=400, end=END), home / "landing", home / "ground_truth")
    result = _ingest(home, START, END, list(SOURCES))
    assert result.returncode == 0, result.stderr[-2000:]
    lake = LakeResource(root=str(home / "lake"))
    orders = lake.scan("bronze", "orders").collect()
    lake.overwrite("gold", "customer_scores", orders.group_by("customer_id").agg(pl.len().alias("orders")))
    con = duckdb.connect(str(home / "warehouse.duckdb"))
    con.execute("create schema staging")
    con.register("customers_frame", lake.scan("bronze", "customers").collect().select("customer_id", "country")
                 .to_arrow())
    con.execute("create table staging.stg_customers as select * from customers_frame")
    con.close()
    (home / "exports").mkdir()
    lake.scan(*VAULT_TABLE).collect().select("source_customer_id", "customer_id").write_csv(
        home / "exports" / "retention_audience_x.csv")
    return home


def test_an_erasure_killed_at_each_step_in_turn_completes_on_the_next_run(ingested_home, tmp_path):
    home = tmp_path / "home"
    shutil.copytree(ingested_home, home)
    lake = LakeResource(root=str(home / "lake"))
    with_orders = set(lake.scan("bronze", "orders").select("customer_id").collect().to_series().to_list())
    # someone with orders who also browsed anonymously on one of their devices
    events = lake.scan("bronze", "events").collect()
    anonymous_devices = events.filter(pl.col("customer_id").is_null()).get_column("device_id")
    browsed = events.filter(pl.col("device_id").is_in(anonymous_devices.implode()) & pl.col("customer_id").is_in(
        list(with_orders))).get_column("customer_id").unique()
    person = (lake.scan(*VAULT_TABLE).collect().filter(pl.col("customer_id").is_in(browsed.implode()))
              .sort("source_customer_id").row(0, named=True))
    needles = [person["source_customer_id"], person["customer_id"], person["email"]]
    assert all(traces(home, [n]) for n in needles)
    devices = (lake.scan("bronze", "events").filter(pl.col("customer_id") == person["customer_id"])
               .select("device_id").unique().collect().to_series().drop_nulls().to_list())
    before = rows_by_table(lake, person["customer_id"], devices)
    assert devices and before["bronze/events"][1] > 0
    from assets.ingestion.landing import read_landing

    landed_events = read_landing(home / "landing", "events", START, END).frame
    raw_devices = (landed_events.filter(pl.col("customer_id") == person["source_customer_id"])
                   .get_column("device_id").drop_nulls().unique().to_list())
    assert landed_events.filter(pl.col("customer_id").is_null() & pl.col("device_id").is_in(raw_devices)).height
    submit_request(lake, home, new_request(person["source_customer_id"], "erasure"))

    for point in ERASURE_POINTS:
        killed = _run([str(REPO / ".venv/bin/assay"), "dsar", "process"], home, point)
        assert killed.returncode == -signal.SIGKILL, f"{point} was not reached: {killed.stderr[-1500:]}"
        rows_by_table(lake, person["customer_id"])  # every table is readable at every point
        assert requests(lake).get_column("status").to_list() == ["pending"], point
    done = _run([str(REPO / ".venv/bin/assay"), "dsar", "process"], home)
    assert done.returncode == 0, done.stderr[-2000:]

    assert traces(home, needles + devices + raw_devices) == []
    after = rows_by_table(lake, person["customer_id"], devices)
    for table, (rows, mine) in before.items():
        if table not in ("governance/dsar_requests", "governance/erasure_tombstones"):
            assert after[table] == (rows - mine, 0), table  # nobody else lost a row
    [request] = requests(lake).to_dicts()
    assert request["status"] == "completed" and request["customer_id"] is None
    # one tombstone, whatever the number of runs
    assert lake.scan("governance", "erasure_tombstones").collect().height == 1
    assert pl.read_csv(home / "exports" / "retention_audience_x.csv").height == before[
        "restricted/pii_vault"][0] - 1


def test_ingestion_killed_between_its_commits_accounts_for_every_row_after_a_rerun(ingested_home, tmp_path):
    home = tmp_path / "home"
    shutil.copytree(ingested_home / "landing", home / "landing")
    lake = LakeResource(root=str(home / "lake"))
    # a customer erased on request: their landing rows count as erased, never as lost
    from assets.ingestion.landing import read_landing

    erased_id = read_landing(home / "landing", "orders", START, END).frame.item(0, "customer_id")
    erased = {tombstone_hash(KEY.encode(), erased_id)}
    sources = ["customers", "orders"]
    for point in INGESTION_POINTS:
        killed = _ingest(home, START, END, sources, point, erased)
        assert killed.returncode == -signal.SIGKILL, f"{point} was not reached: {killed.stderr[-1500:]}"
        for layer, name in lake.tables():
            lake.scan(layer, name).select(pl.len()).collect()
    rerun = _ingest(home, START, END, sources, erased=erased)
    assert rerun.returncode == 0, rerun.stderr[-2000:]

    erased_rows = 0
    for source in sources:
        spec = SOURCES[source]
        landed = _landing_rows(home, source, START, END)
        bronze = count_window(lake, "bronze", source, START, END)
        rejected = count_rejected(lake, source, START, END)
        keys = lake.scan("bronze", source).select(spec.id_column, PARTITION_COLUMN).collect()
        assert not keys.is_duplicated().any(), f"{source}: a row was ingested twice"
        mine = _landing_rows_of(home, source, spec.customer_column, erased_id)
        assert landed == bronze + rejected + mine, source
        erased_rows += mine
    assert erased_rows > 0
    vault = lake.scan(*VAULT_TABLE).collect()
    assert vault.height == lake.scan("bronze", "customers").select(pl.len()).collect().item()


def _landing_rows_of(home: Path, source: str, column: str, customer_id: str) -> int:
    from assets.ingestion.landing import read_landing

    frame = read_landing(home / "landing", source, START, END).frame
    return frame.filter(pl.col(column).cast(pl.Utf8) == customer_id).height


def test_two_backfills_of_different_days_one_adding_a_column_both_commit(ingested_home, tmp_path):
    """Orders gain `coupon_code` half-way through the window: the later days' backfill merges the schema while
    the earlier days' backfill writes. Both commit; no row is lost or written twice."""
    home = tmp_path / "home"
    shutil.copytree(ingested_home / "landing", home / "landing")
    lake = LakeResource(root=str(home / "lake"))
    middle = START + (END - START) / 2
    first = _ingest(home, START, START + timedelta(days=1), ["orders"])
    assert first.returncode == 0, first.stderr[-2000:]
    assert "coupon_code" not in lake.scan("bronze", "orders").collect_schema().names()
    env = _env(home)
    # a commit per day, so that the two runs' commits interleave
    args = [[sys.executable, "-c", INGEST, str(home), d0.isoformat(), d1.isoformat(), "orders", "", KEY, "1"]
            for d0, d1 in ((START + timedelta(days=1), middle), (middle, END))]
    runs = [subprocess.Popen(a, env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for a in args]
    for run in runs:
        _, err = run.communicate(timeout=300)
        assert run.returncode == 0, err[-2000:]
    assert "coupon_code" in lake.scan("bronze", "orders").collect_schema().names()
    ids = lake.scan("bronze", "orders").select("order_id").collect().to_series()
    assert ids.n_unique() == ids.len()
    assert _landing_rows(home, "orders", START, END) == ids.len() + count_rejected(lake, "orders", START, END)


def test_a_rewritten_table_keeps_an_append_committed_after_it_was_read(tmp_path):
    lake = LakeResource(root=str(tmp_path / "lake"))
    lake.append("gold", "scores", pl.DataFrame({"customer_id": ["a", "b"], "at": [datetime.now(UTC)] * 2}))
    read_once = []

    def drop_a(frame: pl.DataFrame) -> pl.DataFrame | None:
        if not read_once:  # the first read: another process commits before this one does
            read_once.append(frame.height)
            lake.append("gold", "scores", pl.DataFrame({"customer_id": ["c"], "at": [datetime.now(UTC)]}))
        return frame.filter(pl.col("customer_id") != "a")

    lake.rewrite("gold", "scores", drop_a)
    assert sorted(lake.scan("gold", "scores").collect().get_column("customer_id").to_list()) == ["b", "c"]


WINDOW_WRITER = textwrap.dedent("""
    import sys
    from datetime import date, timedelta
    import polars as pl
    from resources.lake import LakeResource
    lake, first, days, new_columns = LakeResource(root=sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    for i in range(first, first + days):
        day = date(2024, 1, 1) + timedelta(days=i)
        rows = pl.DataFrame({"id": [f"{i}-{j}" for j in range(3)], "landing_date": [day] * 3})
        if new_columns == "yes":  # a column the table has never had, every day
            rows = rows.with_columns(pl.lit("x").alias(f"extra_{i}"))
        lake.replace_window("bronze", "t", rows, "landing_date", day, day + timedelta(days=1),
                            partition_by=["landing_date"])
""")


def test_window_replaces_survive_a_concurrent_writer_that_keeps_changing_the_schema(tmp_path):
    """Each schema change fails the other writer's commit in flight ("Metadata changed since last commit"): the
    replace is repeated, and every day holds its rows once."""
    root = str(tmp_path / "lake")
    lake = LakeResource(root=root)
    lake.replace_window("bronze", "t", pl.DataFrame({"id": ["0-0"], "landing_date": [date(2024, 1, 1)]}),
                        "landing_date", date(2024, 1, 1), date(2024, 1, 2), partition_by=["landing_date"])
    writers = [subprocess.Popen([sys.executable, "-c", WINDOW_WRITER, root, first, "30", new_columns], cwd=REPO,
                                stderr=subprocess.PIPE, text=True)
               for first, new_columns in (("1", "no"), ("31", "yes"))]
    for writer in writers:
        _, err = writer.communicate(timeout=300)
        assert writer.returncode == 0, err[-2000:]
    frame = lake.scan("bronze", "t").collect()
    assert frame.height == 1 + 60 * 3 and frame.get_column("id").n_unique() == frame.height
