"""The clock moves a home forward as the daemon would, on real files: a shop's export job delivers each day's files
into the user's own folder, and Assay (ASSAY_SOURCE=files, no synthetic feed) picks up what has landed. The home is
backfilled to D, lives day by day, goes down for three weeks while the files keep coming, catches up, and has a
late file corrected. One ingestion run fails on the way (an injected error), and the instance's run retries, as
shipped in dagster.yaml, retry it. Every run after the backfill comes from a sensor, a schedule or the automation, or
retries one; every partition is built exactly once; a late file re-labels what it changes; the user's folder is only
ever read."""

from __future__ import annotations

import os
from collections import Counter
from datetime import date, timedelta
from pathlib import Path

import polars as pl
import pytest
import yaml
from dagster import AssetKey, AssetRecordsFilter, DagsterInstance, RunsFilter
from shop_export import deliver as deliver_until

from assets.partitions import AssayPartitions
from domain.faults import ACTION_ENV, FAULT_ENV
from domain.settings import AssaySettings
from domain.synthetic import MARKER_FILE, config_for_size, generate
from orchestration.backfill import backfill_steps, run_backfill
from orchestration.clock import Clock
from orchestration.definitions import build_definitions
from orchestration.feed import feed_for

pytestmark = pytest.mark.slow

D = date(2025, 1, 6)  # a Monday: the home is backfilled to here
BEFORE_OUTAGE = D + timedelta(days=7)
AFTER_OUTAGE = BEFORE_OUTAGE + timedelta(weeks=3)  # the deployment was down for three weeks
END = AFTER_OUTAGE + timedelta(days=7)
HORIZON = 7
FAILING_DAY = BEFORE_OUTAGE - timedelta(days=4)  # its tick's ingestion run fails once, after bronze/orders committed
SHIPPED_INSTANCE = yaml.safe_load((Path(__file__).resolve().parents[2] / "orchestration" / "dagster.yaml").read_text())


def _materialized(instance, key: AssetKey) -> Counter:
    records = instance.fetch_materializations(AssetRecordsFilter(asset_key=key), limit=10_000).records
    return Counter(r.partition_key for r in records)


def _files(folder) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    root = tmp_path_factory.mktemp("clock_home")
    shop, exports = root / "shop", root / "exports"  # the source system, and the folder it exports into
    config = config_for_size("tiny", label_horizon_days=HORIZON, end=END + timedelta(days=14))
    generate(config, shop, root / "shop_truth", land_until=END + timedelta(days=1))

    def deliver(until: date) -> None:
        deliver_until(shop, exports, until)

    settings = AssaySettings.from_env({"ASSAY_HOME": str(root / "home"), "ASSAY_SOURCE": "files",
                                       "ASSAY_LANDING_DIR": str(exports), "ASSAY_LABEL_HORIZON_DAYS": str(HORIZON),
                                       "ASSAY_SNAPSHOT_START": "2024-09-02"})
    deliver(D)
    defs = build_definitions(settings)
    with DagsterInstance.ephemeral(settings={"run_retries": SHIPPED_INSTANCE["run_retries"]}) as instance:
        steps = backfill_steps(AssayPartitions.from_settings(settings), D)
        run_backfill(defs, instance, steps, ["ingestion", "features", "labels"], say=lambda _: None,
                     log_level="ERROR")
        backfilled = {r.dagster_run.run_id for r in instance.get_run_records()}
        clock = Clock(settings, instance, defs, feed=feed_for(settings), say=lambda _: None, log_level="ERROR")
        assert clock.feed is None  # real files land by themselves
        clock.prime(D)
        # no model at this size: the schedules that retrain are off, as a user would leave them without one
        clock.state.enabled["monthly_retraining_schedule"] = False
        days = []
        ticks = [BEFORE_OUTAGE - timedelta(days=k) for k in range(6, -1, -1)]  # daily, like the daemon
        ticks += [AFTER_OUTAGE, END]  # one tick after the outage, then a daemon that looks once a week
        for day in ticks:
            deliver(day)
            if day == FAILING_DAY:
                os.environ.update({FAULT_ENV: "ingestion:bronze-written:orders", ACTION_ENV: "raise"})
            try:
                days.append(clock.tick(day))
            finally:
                os.environ.pop(FAULT_ENV, None), os.environ.pop(ACTION_ENV, None)
        yield settings, defs, instance, clock, days, backfilled, _files(exports)


def test_the_users_folder_is_only_read(home):
    settings, *_, delivered = home
    assert _files(settings.landing) == delivered  # nothing added, moved, rewritten or deleted
    assert not (settings.landing / MARKER_FILE).exists()


def test_every_run_after_the_backfill_comes_from_a_sensor_or_a_schedule(home):
    _, _, instance, _, days, backfilled, _ = home
    runs = [r.dagster_run for r in instance.get_run_records() if r.dagster_run.run_id not in backfilled]
    assert runs and all(run.tags.get("dagster/sensor_name") or run.tags.get("dagster/schedule_name") for run in runs)
    assert {run.run_id for run in runs} == {r.run_id for day in days for r in day.runs}
    assert all(day.feed_seconds == 0 for day in days)  # real files: no synthetic source's time in a tick
    # the one failed run was retried once, on the same tick, for what it had not materialized
    records = [r for day in days for r in day.runs]
    [failed] = [r for r in records if not r.success]
    [retry] = [r for r in records if r.retry]
    assert retry.success and retry.retry == 1 and (retry.target, retry.partitions) == (failed.target, failed.partitions)
    retried = instance.get_run_by_id(retry.run_id)
    assert retried.tags["dagster/parent_run_id"] == failed.run_id
    assert AssetKey(["bronze", "orders"]) in retried.asset_selection
    assert AssetKey(["bronze", "customers"]) not in retried.asset_selection  # it had materialized


def test_each_step_of_a_ticked_run_has_its_time_and_a_long_one_its_peak_memory(home):
    *_, days, _, _ = home
    records = [r for day in days for r in day.runs]
    assert all(set(r.step_peak_mb) <= set(r.step_seconds) for r in records)
    # dbt runs as a child of the clock's process: its steps' peaks hold both
    dbt = [(r.step_seconds[step], r.step_peak_mb.get(step)) for r in records for step in r.step_seconds
           if step.startswith("dbt_")]
    assert dbt and all(peak is not None and peak > 100 for seconds, peak in dbt if seconds >= 1)


def test_each_landing_day_and_snapshot_is_built_exactly_once_across_the_outage(home):
    settings, _, instance, _, _, _, _ = home
    partitions = AssayPartitions.from_settings(settings)
    days = partitions.days_before(END)
    ingested = _materialized(instance, AssetKey(["bronze", "orders"]))
    assert [d for d in days if ingested[d] != 1] == []  # backfilled or ticked: once each, none missing
    snapshots = partitions.snapshots_through(END)
    features = _materialized(instance, AssetKey(["gold", "customer_features"]))
    assert [s for s in snapshots if features[s] != 1] == []
    # the outage's three snapshots were built on the tick after it, oldest first
    catch_up = [r for r in instance.get_run_records(RunsFilter(tags={"assay/clock_day": AFTER_OUTAGE.isoformat()}))]
    built = [r.dagster_run.tags.get("dagster/partition") for r in sorted(catch_up, key=lambda r: r.create_timestamp)
             if AssetKey(["gold", "customer_features"]) in (r.dagster_run.asset_selection or set())]
    assert built == [(BEFORE_OUTAGE + timedelta(weeks=k)).isoformat() for k in (1, 2, 3)]


def test_labels_mature_a_horizon_after_their_snapshot_each_once(home):
    settings, _, instance, _, days, _, _ = home
    partitions = AssayPartitions.from_settings(settings)
    labelled = _materialized(instance, AssetKey(["gold", "churn_labels"]))
    matured = [s for s in partitions.snapshots_through(END) if partitions.label_due(date.fromisoformat(s)) <= END]
    assert [s for s in matured if labelled[s] == 0] == []
    assert set(labelled) <= set(matured)  # never a snapshot whose horizon had not landed
    # on a normal week the label of T matures on T + horizon, on that day's tick
    by_day = {day.day: day for day in days}
    assert by_day[BEFORE_OUTAGE].labels_matured == [(BEFORE_OUTAGE - timedelta(days=HORIZON)).isoformat()]
    assert by_day[END].labels_matured == [(END - timedelta(days=HORIZON)).isoformat()]
    # the outage's matured labels all came on the tick after it
    assert sorted(by_day[AFTER_OUTAGE].labels_matured) == [
        (BEFORE_OUTAGE + timedelta(weeks=k)).isoformat() for k in range(0, 3)], [
        (r.partitions, r.reason, r.assets) for r in by_day[AFTER_OUTAGE].runs]
    assert [s for s in matured if labelled[s] != 1] == []
    table = pl.read_delta(str(settings.lake / "gold" / "churn_labels"))
    assert table.select("customer_id", "snapshot_date").is_duplicated().sum() == 0


def test_landed_rows_are_in_bronze_or_quarantine_once(home):
    settings, *_ = home
    landed = sum(pl.read_parquet(p).height for p in (settings.landing / "orders").rglob("*.parquet"))
    bronze = pl.read_delta(str(settings.lake / "bronze" / "orders")).height
    quarantine = pl.read_delta(str(settings.lake / "quarantine" / "orders")).height
    assert bronze + quarantine == landed


def test_a_late_file_that_changes_a_matured_label_relabels_that_snapshot(home):
    settings, defs, instance, clock, *_ = home
    lake = defs.resources["lake"]
    snapshot = END - timedelta(days=HORIZON)  # matured on END
    labels = lake.scan("gold", "churn_labels").filter(pl.col("snapshot_date") == snapshot).collect()
    churned = labels.filter(pl.col("churned") == 1).get_column("customer_id").to_list()
    assert churned, "a week of a tiny world always has someone without an order"
    vault = lake.scan("restricted", "pii_vault").collect()
    token = churned[0]
    raw_id = vault.filter(pl.col("customer_id") == token).item(0, "source_customer_id")
    # the source system re-sends the day after the snapshot with one more order, by that customer
    day = snapshot + timedelta(days=1)
    path = next((settings.landing / "orders" / f"date={day.isoformat()}").glob("*.parquet"))
    original = pl.read_parquet(path)
    extra = original.head(1).with_columns(pl.lit(raw_id).alias("customer_id"),
                                          pl.lit("late-order-1").alias("order_id"))
    pl.concat([original, extra]).write_parquet(path)
    before = _materialized(instance, AssetKey(["gold", "churn_labels"]))[snapshot.isoformat()]
    report = clock.tick(END + timedelta(days=1))
    assert any(r.target == "ingestion_job" and r.partitions == day.isoformat() for r in report.runs)
    assert snapshot.isoformat() in report.labels_matured
    relabelled = lake.scan("gold", "churn_labels").filter((pl.col("snapshot_date") == snapshot)
                                                         & (pl.col("customer_id") == token)).collect()
    assert relabelled.item(0, "churned") == 0
    assert _materialized(instance, AssetKey(["gold", "churn_labels"]))[snapshot.isoformat()] == before + 1
