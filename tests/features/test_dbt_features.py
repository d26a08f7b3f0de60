"""The dbt feature marts on tiny handcrafted bronze tables, through the real dbt and DuckDB.

Window rule under test: the w-day window of snapshot T is [T - w days, T) on UTC timestamps, so an order at
exactly T - 30 days counts in orders_30d and one at T - 31 days does not; nothing at or after T counts.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


T = "2025-01-01"
T_TS = utc(2025, 1, 1)

CUSTOMERS = [
    {
        "customer_id": "a",
        "email": " A@Example.com ",
        "gender": "f",
        "birth_year": 1980,
        "country": "de",
        "acquisition_channel": "SEO",
        "signup_ts": utc(2024, 1, 1, 9),
    },
    {"customer_id": "b", "country": "FR", "acquisition_channel": "ads", "signup_ts": utc(2024, 6, 1)},
    # signs up exactly at T: not "before T", so not in the population
    {"customer_id": "c", "country": "FR", "acquisition_channel": "ads", "signup_ts": T_TS},
    # last order 397 days before T: outside the 365-day population window
    {"customer_id": "d", "country": "NL", "acquisition_channel": "ads", "signup_ts": utc(2023, 1, 1)},
]

ORDERS = [
    # a: T-31d (outside 30d), exactly T-30d (inside), one second before T
    {"order_id": "a1", "customer_id": "a", "order_ts": T_TS - timedelta(days=31), "amount": 10.0, "n_items": 1},
    {"order_id": "a2", "customer_id": "a", "order_ts": T_TS - timedelta(days=30), "amount": 20.0, "n_items": 2},
    {"order_id": "a3", "customer_id": "a", "order_ts": T_TS - timedelta(seconds=1), "amount": 5.5, "n_items": 3},
    # b: two orders 100 days before T, one 10 days before: 1 in the last 90 days against 2 in the 90 before
    {"order_id": "b1", "customer_id": "b", "order_ts": T_TS - timedelta(days=100), "amount": 30.0, "n_items": 1},
    {
        "order_id": "b2",
        "customer_id": "b",
        "order_ts": T_TS - timedelta(days=100, hours=-2),
        "amount": 20.0,
        "n_items": 1,
    },
    {"order_id": "b3", "customer_id": "b", "order_ts": T_TS - timedelta(days=10), "amount": 30.0, "n_items": 2},
    {"order_id": "c1", "customer_id": "c", "order_ts": utc(2024, 12, 15), "amount": 9.0, "n_items": 1},
    {"order_id": "d1", "customer_id": "d", "order_ts": utc(2023, 12, 1), "amount": 9.0, "n_items": 1},
]

EVENTS = [
    {"event_id": "e1", "customer_id": "a", "event_ts": utc(2024, 12, 20, 8), "event_type": "add_to_cart"},
    {"event_id": "e2", "customer_id": "a", "event_ts": utc(2024, 11, 1), "event_type": "page_view"},
    {
        "event_id": "e3",
        "customer_id": None,
        "anonymous_id": "anon",
        "event_ts": utc(2024, 12, 30),
        "event_type": "page_view",
    },
]

TOUCHES = [
    {
        "touch_id": "t1",
        "customer_id": "a",
        "campaign_id": "k",
        "channel": "email",
        "sent_ts": utc(2024, 12, 10),
        "opened_ts": utc(2024, 12, 11),
        "clicked_ts": utc(2024, 12, 11, 1),
        "is_control": False,
    },
    {
        "touch_id": "t2",
        "customer_id": "a",
        "campaign_id": "k",
        "channel": "email",
        "sent_ts": utc(2024, 12, 30),
        "is_control": False,
    },
    {
        "touch_id": "t3",
        "customer_id": "a",
        "campaign_id": "k",
        "channel": "email",
        "sent_ts": utc(2024, 12, 10),
        "is_control": True,
    },
]

CONSENTS = [
    {"consent_id": "k1", "customer_id": "a", "purpose": "profiling", "granted": True, "event_ts": utc(2024, 6, 1)},
    {
        "consent_id": "k2",
        "customer_id": "a",
        "purpose": "marketing",
        "granted": True,
        "event_ts": utc(2024, 12, 31, 12),
    },
    {
        "consent_id": "k3",
        "customer_id": "a",
        "purpose": "marketing",
        "granted": False,
        "event_ts": utc(2024, 12, 31, 12),
    },
]


def base_tables() -> dict[str, list[dict]]:
    return {
        "customers": list(CUSTOMERS),
        "orders": list(ORDERS),
        "events": list(EVENTS),
        "campaign_touches": [dict(row) for row in TOUCHES],
        "consents": list(CONSENTS),
    }


def test_hand_computed_features(workspace) -> None:
    workspace.write(base_tables())
    workspace.dbt("run", [T])

    features = workspace.features(T)
    assert sorted(features) == ["a", "b"]  # c signed up at T, d's last order is 397 days old

    a = features["a"]
    assert a["country"] == "DE" and a["acquisition_channel"] == "seo"
    assert "gender" not in a and "birth_year" not in a
    assert a["tenure_days"] == 366  # 2024-01-01 -> 2025-01-01
    assert a["recency_days"] == 1
    assert (a["orders_30d"], a["orders_90d"], a["orders_365d"], a["orders_lifetime"]) == (2, 3, 3, 3)
    assert a["revenue_30d"] == Decimal("25.50")
    assert a["revenue_lifetime"] == Decimal("35.50")
    assert a["avg_order_value_365d"] == pytest.approx(35.5 / 3)
    assert a["items_per_order_365d"] == pytest.approx(2.0)
    assert a["mean_days_between_orders"] == pytest.approx(15.0)  # 2024-12-01 .. 2024-12-31 over 2 gaps
    assert (a["events_30d"], a["events_90d"], a["add_to_cart_90d"]) == (1, 2, 1)
    assert a["days_since_last_event"] == 12
    # t1 and t2 sent, t3 is the control group; t1 opened and clicked
    assert (a["touches_90d"], a["opens_90d"], a["clicks_90d"]) == (2, 1, 1)
    assert a["open_rate_90d"] == pytest.approx(0.5)
    assert a["click_rate_90d"] == pytest.approx(0.5)
    assert a["consent_profiling"] is True
    assert a["consent_marketing"] is False  # grant and withdrawal at the same instant: the withdrawal wins

    b = features["b"]
    assert b["recency_days"] == 10
    assert (b["orders_30d"], b["orders_90d"], b["orders_180d"]) == (1, 1, 3)
    assert b["order_trend_90d"] == -1
    assert b["revenue_trend_90d"] == Decimal("-20.00")
    assert b["mean_days_between_orders"] == pytest.approx(45.0)
    assert (b["events_30d"], b["touches_90d"]) == (0, 0)
    assert b["days_since_last_event"] is None
    assert b["open_rate_90d"] is None and b["click_rate_90d"] is None
    assert b["consent_profiling"] is None and b["consent_marketing"] is None


def test_features_are_point_in_time(make_workspace) -> None:
    base = make_workspace("base")
    base.write(base_tables())

    # the same history plus everything at exactly T (00:00:00Z) and later
    future = make_workspace("future")
    tables = base_tables()
    tables["orders"] += [
        {"order_id": "a9", "customer_id": "a", "order_ts": T_TS, "amount": 99.0, "n_items": 9},
        {"order_id": "b9", "customer_id": "b", "order_ts": T_TS, "amount": 99.0, "n_items": 9},
        {"order_id": "b10", "customer_id": "b", "order_ts": utc(2025, 2, 1), "amount": 99.0, "n_items": 9},
    ]
    tables["events"] += [
        {"event_id": "e9", "customer_id": "b", "event_ts": T_TS, "event_type": "add_to_cart"},
        {"event_id": "e10", "customer_id": "a", "event_ts": utc(2025, 1, 5), "event_type": "login"},
    ]
    # the touch sent before T is opened exactly at T; another one is sent at T
    tables["campaign_touches"][1]["opened_ts"] = T_TS
    tables["campaign_touches"].append(
        {
            "touch_id": "t9",
            "customer_id": "b",
            "campaign_id": "k",
            "channel": "sms",
            "sent_ts": T_TS,
            "opened_ts": T_TS,
            "is_control": False,
        }
    )
    tables["consents"] += [
        {"consent_id": "k9", "customer_id": "a", "purpose": "profiling", "granted": False, "event_ts": T_TS},
        {"consent_id": "k10", "customer_id": "b", "purpose": "marketing", "granted": True, "event_ts": T_TS},
    ]
    future.write(tables)

    # ... and the same history plus one order of b one microsecond before T, which must count
    just_before = make_workspace("just_before")
    tables = base_tables()
    tables["orders"].append(
        {
            "order_id": "b8",
            "customer_id": "b",
            "order_ts": T_TS - timedelta(microseconds=1),
            "amount": 7.0,
            "n_items": 1,
        }
    )
    just_before.write(tables)

    for workspace in (base, future, just_before):
        workspace.dbt("run", [T])

    assert future.features(T) == base.features(T)

    changed = just_before.features(T)
    assert changed["a"] == base.features(T)["a"]
    assert changed["b"]["orders_30d"] == base.features(T)["b"]["orders_30d"] + 1
    assert changed["b"]["recency_days"] == 1


def test_churn_labels_around_the_horizon(workspace) -> None:
    tables = base_tables()
    tables["orders"] += [
        # a orders again on the last instant inside [T, T + 90d): not churned
        {
            "order_id": "a9",
            "customer_id": "a",
            "order_ts": T_TS + timedelta(days=90, microseconds=-1),
            "amount": 1.0,
            "n_items": 1,
        },
        # b's next order is exactly at T + 90d, outside the horizon: churned
        {"order_id": "b9", "customer_id": "b", "order_ts": T_TS + timedelta(days=90), "amount": 1.0, "n_items": 1},
    ]
    workspace.write(tables)
    later = "2025-01-08"  # T + 7d: its horizon ends after data_end, so not matured

    workspace.dbt("run", [T, later], data_end="2025-04-01")
    labels = workspace.query("select * from marts.churn_labels order by snapshot_date, customer_id")
    assert [(str(r["snapshot_date"]), r["customer_id"], r["churned"], r["horizon_days"]) for r in labels] == [
        (T, "a", 0, 90),
        (T, "b", 1, 90),
    ]
    # features exist for both snapshots even though only T is labelled
    assert workspace.query("select count(distinct snapshot_date) as n from marts.customer_features")[0]["n"] == 2

    # without the var, data_end is the day after the last order partition (2025-04-01 + 1)
    workspace.dbt("run", [T, later])
    labels = workspace.query("select snapshot_date, count(*) as n from marts.churn_labels group by all")
    assert [(str(r["snapshot_date"]), r["n"]) for r in labels] == [(T, 2)]

    # a shorter horizon: b's order at T + 90d is also outside 30 days, a's too
    workspace.dbt("run", [T], label_horizon_days=30)
    labels = workspace.query("select customer_id, churned, horizon_days from marts.churn_labels order by 1")
    assert [(r["customer_id"], r["churned"], r["horizon_days"]) for r in labels] == [("a", 1, 30), ("b", 1, 30)]


def test_only_required_sources(workspace) -> None:
    workspace.write({"customers": CUSTOMERS, "orders": ORDERS})  # events, touches, consents: empty tables

    workspace.dbt("build", [T])  # models, data tests and unit tests

    features = workspace.features(T)
    assert sorted(features) == ["a", "b"]
    for row in features.values():
        assert (row["events_30d"], row["events_90d"], row["add_to_cart_90d"]) == (0, 0, 0)
        assert (row["touches_90d"], row["opens_90d"], row["clicks_90d"]) == (0, 0, 0)
        assert row["days_since_last_event"] is None
        assert row["open_rate_90d"] is None and row["click_rate_90d"] is None
        assert row["consent_profiling"] is None and row["consent_marketing"] is None
    assert features["a"]["orders_30d"] == 2


def test_rerun_replaces_and_other_snapshots_are_kept(workspace) -> None:
    workspace.write(base_tables())
    first = ["2024-12-01", T]
    counts_sql = (
        "select 'features' as mart, snapshot_date, count(*) as n from marts.customer_features group by all "
        "union all select 'labels', snapshot_date, count(*) from marts.churn_labels group by all "
        "order by mart, snapshot_date"
    )

    workspace.dbt("run", first, data_end="2025-06-01")
    after_first = workspace.query(counts_sql)
    assert {str(r["snapshot_date"]) for r in after_first} == set(first)

    workspace.dbt("run", first, data_end="2025-06-01")
    assert workspace.query(counts_sql) == after_first

    workspace.dbt("run", ["2025-01-15"], data_end="2025-06-01")
    after_second = workspace.query(counts_sql)
    assert [r for r in after_second if str(r["snapshot_date"]) != "2025-01-15"] == after_first
    assert {(r["mart"], str(r["snapshot_date"])) for r in after_second} >= {
        ("features", "2025-01-15"),
        ("labels", "2025-01-15"),
    }


def test_snapshots_built_in_chunks_equal_one_run(make_workspace) -> None:
    """Long backfills run in chunks of snapshots (ASSAY_FEATURE_SNAPSHOTS_PER_RUN): the marts must not depend on
    how the snapshots were grouped into runs."""
    snapshots = ["2024-12-01", "2024-12-15", T]
    marts = "select * from marts.{} order by all"
    whole, chunked = make_workspace("whole"), make_workspace("chunked")
    for workspace in (whole, chunked):
        workspace.write(base_tables())
    whole.dbt("run", snapshots, data_end="2025-06-01")
    chunked.dbt("run", snapshots[:2], data_end="2025-06-01")
    chunked.dbt("run", snapshots[2:], data_end="2025-06-01")
    for mart in ("customer_features", "churn_labels"):
        rows = whole.query(marts.format(mart))
        assert {str(r["snapshot_date"]) for r in rows} == set(snapshots)
        assert chunked.query(marts.format(mart)) == rows


REFERENCE_FEATURES = """
with
snapshots as (select unnest(cast($snapshots as timestamptz[])) as t),
customers as (
    select * from delta_scan('$lake/bronze/customers')
    qualify row_number() over (partition by customer_id order by _partition_date desc, _ingested_at desc) = 1
),
orders_before as (
    select s.t, o.* from snapshots as s join delta_scan('$lake/bronze/orders') as o on o.order_ts < s.t
),
order_stats as (
    select
        t, customer_id, max(order_ts) as last_ts, min(order_ts) as first_ts, count(*) as n, sum(amount) as revenue,
        count(*) filter (where order_ts >= t - interval 30 day) as o30,
        count(*) filter (where order_ts >= t - interval 90 day) as o90,
        count(*) filter (where order_ts >= t - interval 180 day) as o180,
        count(*) filter (where order_ts >= t - interval 365 day) as o365,
        coalesce(sum(amount) filter (where order_ts >= t - interval 90 day), 0) as r90,
        coalesce(sum(amount) filter (where order_ts >= t - interval 365 day), 0) as r365,
        coalesce(sum(n_items) filter (where order_ts >= t - interval 365 day), 0) as i365
    from orders_before
    group by all
),
population as (
    select o.*, c.signup_ts, upper(trim(c.country)) as country
    from order_stats as o join customers as c using (customer_id)
    where c.signup_ts < o.t and o.last_ts >= o.t - interval 365 day
),
events as (
    select
        s.t, e.customer_id,
        count(*) filter (where e.event_ts >= s.t - interval 30 day) as e30,
        count(*) filter (where e.event_ts >= s.t - interval 90 day and e.event_type = 'add_to_cart') as a90,
        max(e.event_ts) as last_event_ts
    from snapshots as s join delta_scan('$lake/bronze/events') as e on e.event_ts < s.t
    group by all
),
touches as (
    select
        s.t, x.customer_id,
        count(*) filter (where x.sent_ts >= s.t - interval 90 day and x.sent_ts < s.t) as t90,
        count(*) filter (where x.opened_ts >= s.t - interval 90 day and x.opened_ts < s.t) as op90,
        count(*) filter (where x.clicked_ts >= s.t - interval 90 day and x.clicked_ts < s.t) as c90
    from snapshots as s join delta_scan('$lake/bronze/campaign_touches') as x on not x.is_control
    group by all
),
consents as (
    select s.t, c.customer_id, c.purpose, c.granted
    from snapshots as s join delta_scan('$lake/bronze/consents') as c on c.event_ts < s.t
    qualify row_number() over (partition by s.t, c.customer_id, c.purpose order by c.event_ts desc, c.granted) = 1
)
select
    cast(p.t as date) as snapshot_date, p.customer_id, p.country,
    (cast(p.t as date) - cast(p.signup_ts as date))::integer as tenure_days,
    (cast(p.t as date) - cast(p.last_ts as date))::integer as recency_days,
    p.o30 as orders_30d, p.o90 as orders_90d, p.o180 as orders_180d, p.o365 as orders_365d,
    p.n as orders_lifetime,
    round(p.r90, 2) as revenue_90d, round(p.revenue, 2) as revenue_lifetime,
    p.i365 / p.o365 as items_per_order_365d,
    case when p.n >= 2 then (cast(p.last_ts as date) - cast(p.first_ts as date)) / (p.n - 1) end
        as mean_days_between_orders,
    coalesce(e.e30, 0) as events_30d, coalesce(e.a90, 0) as add_to_cart_90d,
    (cast(p.t as date) - cast(e.last_event_ts as date))::integer as days_since_last_event,
    coalesce(x.t90, 0) as touches_90d, coalesce(x.op90, 0) as opens_90d, coalesce(x.c90, 0) as clicks_90d,
    cp.granted as consent_profiling, cm.granted as consent_marketing
from population as p
left join events as e using (t, customer_id)
left join touches as x using (t, customer_id)
left join consents as cp on cp.t = p.t and cp.customer_id = p.customer_id and cp.purpose = 'profiling'
left join consents as cm on cm.t = p.t and cm.customer_id = p.customer_id and cm.purpose = 'marketing'
"""


def random_tables(seed: int, n_customers: int = 150) -> dict[str, list[dict]]:
    """Small random sources with many same-day and boundary coincidences (timestamps on a 6-hour grid)."""
    import random

    rng = random.Random(seed)
    start = utc(2024, 1, 1)

    def when(days: int) -> datetime:
        return start + timedelta(days=rng.randrange(days), hours=6 * rng.randrange(4))

    tables: dict[str, list[dict]] = {name: [] for name in ("customers", "orders", "events", "campaign_touches")}
    tables["consents"] = []
    for i in range(n_customers):
        cid = f"c{i:04d}"
        tables["customers"].append(
            {"customer_id": cid, "country": rng.choice(["de", "FR"]), "signup_ts": when(500) - timedelta(days=200)}
        )
        for j in range(rng.choice([0, 1, 2, 5, 12])):
            tables["orders"].append(
                {
                    "order_id": f"{cid}-o{j}",
                    "customer_id": cid,
                    "order_ts": when(700),
                    "amount": round(rng.uniform(1, 100), 2),
                    "n_items": rng.randint(1, 4),
                }
            )
        for j in range(rng.choice([0, 3, 10])):
            tables["events"].append(
                {
                    "event_id": f"{cid}-e{j}",
                    "customer_id": cid,
                    "event_ts": when(700),
                    "event_type": rng.choice(["page_view", "add_to_cart"]),
                }
            )
        for j in range(rng.choice([0, 2, 6])):
            sent = when(700)
            opened = sent + timedelta(days=rng.randrange(5)) if rng.random() < 0.5 else None
            tables["campaign_touches"].append(
                {
                    "touch_id": f"{cid}-t{j}",
                    "customer_id": cid,
                    "campaign_id": "k",
                    "sent_ts": sent,
                    "opened_ts": opened,
                    "clicked_ts": opened + timedelta(hours=6) if opened and rng.random() < 0.5 else None,
                    "is_control": rng.random() < 0.2,
                }
            )
        for j in range(rng.choice([0, 1, 3])):
            tables["consents"].append(
                {
                    "consent_id": f"{cid}-k{j}",
                    "customer_id": cid,
                    "purpose": rng.choice(["profiling", "marketing"]),
                    "granted": rng.random() < 0.6,
                    "event_ts": when(700),
                }
            )
    return tables


def test_matches_brute_force_references(workspace) -> None:
    """Every feature of a random lake equals a direct per-snapshot computation on the raw timestamps; and every
    column equals the hand-written query that `make bench` sets the feature build beside
    (bench/feature_reference.sql), so a feature changed in dbt alone fails here."""
    import duckdb

    from bench.feature_reference import mismatched_rows
    from bench.feature_reference import reference_sql as bench_reference_sql
    from domain.duckdb_setup import connect

    workspace.write(random_tables(seed=11))
    snapshots = ["2024-03-04", "2024-07-01", "2024-07-08", "2025-01-01", "2025-06-30"]
    workspace.dbt("run", snapshots)

    reference_sql = REFERENCE_FEATURES.replace("$lake", str(workspace.lake)).replace(
        "$snapshots", "[" + ", ".join(f"'{d} 00:00:00+00'" for d in snapshots) + "]"
    )
    with duckdb.connect() as con:
        con.sql("load delta; set TimeZone = 'UTC'")
        reference = con.sql(reference_sql)
        columns = reference.columns
        expected = {(str(r[0]), r[1]): r for r in reference.fetchall()}

    actual_rows = workspace.query(f"select {', '.join(columns)} from marts.customer_features")
    actual = {(str(r["snapshot_date"]), r["customer_id"]): tuple(r.values()) for r in actual_rows}

    assert len(expected) > 100
    assert actual.keys() == expected.keys()
    for key, row in expected.items():
        for name, want, got in zip(columns, row, actual[key], strict=True):
            if isinstance(want, float | Decimal) and got is not None:
                assert float(got) == pytest.approx(float(want)), (key, name)
            else:
                assert got == want, (key, name)

    with connect() as con:
        con.execute("set TimeZone = 'UTC'")
        con.execute(f"attach '{workspace.warehouse}' as warehouse (read_only)")
        for snapshot in snapshots:
            con.execute(f"create or replace temp table reference as "
                        f"{bench_reference_sql(str(workspace.lake), date.fromisoformat(snapshot), 365)}")
            assert con.execute("select count(*) from reference").fetchone()[0] > 20, snapshot
            assert mismatched_rows(con, date.fromisoformat(snapshot)) == {
                "rows_only_in_reference": 0, "rows_only_in_dbt": 0}, snapshot


def _land(lake, source: str, rows: list[dict], replace_day: str | None = None, landing_day: str | None = None) -> None:
    """Append `rows` to a bronze table as one ingestion run would, or replace one landing day with them.
    `landing_day` files every row under that day whatever its timestamp (a late file)."""
    import polars as pl
    from deltalake import write_deltalake

    from tests.features.conftest import bronze_frame

    frame = bronze_frame(source, rows)
    if landing_day:
        frame = frame.with_columns(pl.lit(landing_day).str.to_date().alias("_partition_date"))
    options = {"partition_by": ["_partition_date"]}
    if replace_day:
        write_deltalake(str(lake / "bronze" / source), frame.to_arrow(), mode="overwrite",
                        predicate=f"_partition_date = '{replace_day}'", **options)
    elif len(frame):
        write_deltalake(str(lake / "bronze" / source), frame.to_arrow(), mode="append", **options)


def test_incremental_activity_equals_a_full_build(make_workspace) -> None:
    """Weeks landing one after another, then a corrected old day (one order dropped, one late order dated weeks
    before its landing day) and an emptied day: the incrementally maintained activity table and the features
    equal a fresh build on the final data, and a weekly run recomputes only from the week that landed."""
    from assets.features.activity import plan_activity_run, read_ledger

    tables = random_tables(seed=5)
    cut1, cut2, cut3 = "2024-07-01", "2024-07-08", "2025-01-01"
    time_column = {"orders": "order_ts", "events": "event_ts", "campaign_touches": "sent_ts"}

    def rows_between(source: str, lo: str | None, hi: str | None) -> list[dict]:
        return [r for r in tables[source]
                if (lo is None or r[time_column[source]].date().isoformat() >= lo)
                and (hi is None or r[time_column[source]].date().isoformat() < hi)]

    live = make_workspace("incremental")
    live.write({"customers": tables["customers"], "consents": tables["consents"],
                **{s: rows_between(s, None, cut1) for s in time_column}})
    live.dbt("run", [cut1])

    for source in time_column:
        _land(live.lake, source, rows_between(source, cut1, cut2))
    weekly = plan_activity_run(live.lake, read_ledger(live.warehouse))
    assert not weekly.full_refresh and weekly.recompute_from.isoformat() >= cut1
    live.dbt("run", [cut2])

    for source in time_column:
        _land(live.lake, source, rows_between(source, cut2, None))
    # a corrected orders file for an old day: one order less, and one dated 40 days before the landing day
    corrected_day = next(r["order_ts"].date() for r in sorted(tables["orders"], key=lambda r: r["order_ts"])
                         if r["order_ts"].date().isoformat() >= "2024-05-01")
    day_rows = [r for r in tables["orders"] if r["order_ts"].date() == corrected_day]
    dropped = day_rows[0]
    late = {**dropped, "order_id": "late-1", "order_ts": dropped["order_ts"] - timedelta(days=40)}
    _land(live.lake, "orders", [*day_rows[1:], late], replace_day=corrected_day.isoformat(),
          landing_day=corrected_day.isoformat())
    # every event of another old day is withdrawn
    emptied_day = next(r["event_ts"].date() for r in sorted(tables["events"], key=lambda r: r["event_ts"])
                       if r["event_ts"].date().isoformat() >= "2024-06-01")
    _land(live.lake, "events", [], replace_day=emptied_day.isoformat())
    correction = plan_activity_run(live.lake, read_ledger(live.warehouse))
    assert correction.recompute_from == late["order_ts"].date()
    live.dbt("run", [cut3])

    tables["orders"] = [r for r in tables["orders"] if r is not dropped] + [late]
    tables["events"] = [r for r in tables["events"] if r["event_ts"].date() != emptied_day]
    fresh = make_workspace("fresh")
    fresh.write(tables)
    fresh.dbt("run", [cut1, cut2, cut3])

    activity = "select * from intermediate.int_customer_daily_activity order by customer_id, activity_date"
    assert len(fresh.query(activity)) > 1000
    assert live.query(activity) == fresh.query(activity)
    assert live.features(cut3) == fresh.features(cut3)
    # nothing landed: the next run leaves the table alone
    assert plan_activity_run(live.lake, read_ledger(live.warehouse)).recompute_from is None


def test_a_run_longer_than_one_statement_is_written_in_batches_that_change_nothing(make_workspace) -> None:
    """customer_features writes a run's snapshot dates `snapshots_per_statement` at a time (its materialization,
    macros/snapshot_incremental.sql), so that a run's memory does not grow with its length: a run of more dates than
    one statement holds is written in several, and its rows are those of runs that each fit in one."""
    snapshots = [(datetime(2024, 10, 6) + timedelta(weeks=k)).date().isoformat() for k in range(13)]
    batched, short_runs = make_workspace("batched"), make_workspace("short_runs")
    for workspace in (batched, short_runs):
        workspace.write(base_tables())
    batched.dbt("run", snapshots, data_end="2025-06-01")
    manifest = json.loads((batched.root / "target" / "manifest.json").read_text())
    per_statement = manifest["nodes"]["model.assay.customer_features"]["config"]["snapshots_per_statement"]
    assert per_statement < len(snapshots)
    for start in range(0, len(snapshots), per_statement - 1):  # other boundaries than the batches'
        short_runs.dbt("run", snapshots[start:start + per_statement - 1], data_end="2025-06-01")

    rows = batched.query("select * from marts.customer_features order by all")
    assert {str(r["snapshot_date"]) for r in rows} == set(snapshots)
    assert len({r["customer_id"] for r in rows}) > 1
    assert short_runs.query("select * from marts.customer_features order by all") == rows
    # dbt's own log of the SQL it ran: one insert per batch of dates
    log = (batched.root / "logs" / "dbt.log").read_text()
    inserts = log.count('insert into "warehouse"."marts"."customer_features"')
    assert inserts == -(-len(snapshots) // per_statement)


def test_a_run_sets_the_duckdb_memory_limit_it_is_given(workspace, monkeypatch) -> None:
    """Every cursor of a dbt run has the orchestrator's limit for the run (a weekly run's, ASSAY_DBT_MEMORY_LIMIT),
    else the limit of every Assay connection; a value that is not a size fails the run rather than reaching the
    SQL."""
    import duckdb

    from domain.duckdb_setup import DEFAULT_MEMORY_LIMIT

    def as_duckdb_says(limit: str) -> str:
        with duckdb.connect(config={"memory_limit": limit}) as con:
            return con.sql("select current_setting('memory_limit')").fetchone()[0]

    def limit_in_dbt() -> str:
        [(limit,)] = workspace.show("select current_setting('memory_limit')")
        return limit

    monkeypatch.delenv("ASSAY_DUCKDB_MEMORY_LIMIT", raising=False)
    monkeypatch.delenv("ASSAY_DBT_MEMORY_LIMIT", raising=False)
    workspace.write(random_tables(seed=3))
    workspace.dbt("run", ["2024-07-01"])
    assert limit_in_dbt() == as_duckdb_says(DEFAULT_MEMORY_LIMIT)
    monkeypatch.setenv("ASSAY_DUCKDB_MEMORY_LIMIT", "500MB")
    assert limit_in_dbt() == as_duckdb_says("500MB")
    monkeypatch.setenv("ASSAY_DBT_MEMORY_LIMIT", "300MB")
    assert limit_in_dbt() == as_duckdb_says("300MB")
    workspace.dbt("run", ["2024-07-08"])
    assert len(workspace.features("2024-07-08")) > 0
    monkeypatch.setenv("ASSAY_DBT_MEMORY_LIMIT", "300MB'; select 1; --")
    with pytest.raises(AssertionError, match="expected a size"):
        workspace.dbt("run", ["2024-07-15"])
