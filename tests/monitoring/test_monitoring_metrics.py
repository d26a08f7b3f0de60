"""gold/monitoring_metrics: one writer (the union of the three monitors' own tables), rebuilt per snapshot whenever
one monitor writes it, including the performance figures that arrive a label horizon later."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import polars as pl
from dagster import (
    AssetKey,
    AssetMaterialization,
    AutomationCondition,
    DagsterInstance,
    DailyPartitionsDefinition,
    Definitions,
    TimeWindowPartitionsDefinition,
    asset,
    evaluate_automation_conditions,
    materialize,
)

from assets.monitoring.assets import (
    DRIFT_KEY,
    MONITORING_METRICS_KEY,
    MONITORS,
    PERFORMANCE_KEY,
    SOURCE_DRIFT_KEY,
    monitoring_metrics,
    monitoring_metrics_spec,
)
from assets.monitoring.metrics import MONITORING_SCHEMA, union_metrics
from assets.partitions import AssayPartitions

FIRST = date(2025, 1, 6)
PARTITIONS = AssayPartitions(
    daily=DailyPartitionsDefinition(start_date="2025-01-01"),
    snapshots=TimeWindowPartitionsDefinition(cron_schedule="0 0 * * 1", start=FIRST.isoformat(), fmt="%Y-%m-%d",
                                             end_offset=1),
    label_horizon_days=28,
)
UNION = asset(**monitoring_metrics_spec(PARTITIONS))(monitoring_metrics)


def _figures(key: AssetKey, snapshot: date, n: int) -> pl.DataFrame:
    source = {DRIFT_KEY: "drift", SOURCE_DRIFT_KEY: "source", PERFORMANCE_KEY: "performance"}[key]
    return pl.DataFrame({"snapshot_date": [snapshot] * n, "metric": [f"m{i}" for i in range(n)],
                         "column": ["*"] * n, "value": [float(i) for i in range(n)],
                         "model_version": [None if source == "source" else "v1"] * n, "source": [source] * n},
                        schema=MONITORING_SCHEMA)


def _write(lake, key: AssetKey, snapshot: date, n: int) -> None:
    lake.replace_window(*key.path, _figures(key, snapshot, n), "snapshot_date", snapshot,
                        snapshot + timedelta(days=7))


def _union(lake, snapshot: date) -> pl.DataFrame:
    result = materialize([UNION], partition_key=snapshot.isoformat(), resources={"lake": lake})
    assert result.success
    return pl.read_delta(lake.uri(*MONITORING_METRICS_KEY.path))


def test_the_union_holds_each_monitors_rows_of_the_snapshot_and_replaces_them(lake):
    week, next_week = FIRST + timedelta(days=7), FIRST + timedelta(days=14)
    _write(lake, DRIFT_KEY, week, 3)
    _write(lake, SOURCE_DRIFT_KEY, week, 2)
    _write(lake, SOURCE_DRIFT_KEY, next_week, 4)  # another snapshot: not this partition's
    table = _union(lake, week)  # performance has no table yet: its labels have not matured
    assert table.schema == pl.Schema(MONITORING_SCHEMA)
    assert dict(table.group_by("source").len().iter_rows()) == {"drift": 3, "source": 2}
    assert table.get_column("snapshot_date").unique().to_list() == [week]

    _write(lake, SOURCE_DRIFT_KEY, week, 1)  # a monitor rewrites its week: the union follows, no duplicates
    _write(lake, PERFORMANCE_KEY, week, 2)  # and matured figures join the same snapshot later
    table = _union(lake, week)
    assert dict(table.group_by("source").len().iter_rows()) == {"drift": 3, "performance": 2, "source": 1}
    assert table.equals(union_metrics([_figures(k, week, n) for k, n in
                                       ((DRIFT_KEY, 3), (SOURCE_DRIFT_KEY, 1), (PERFORMANCE_KEY, 2))]))


def test_an_empty_window_writes_an_empty_table_with_the_readers_columns(lake):
    table = _union(lake, FIRST)
    assert table.height == 0 and table.columns == list(MONITORING_SCHEMA)


def _monitor(key: AssetKey, condition: AutomationCondition | None = None):
    @asset(key=key, partitions_def=PARTITIONS.snapshots, automation_condition=condition)
    def monitor() -> None:
        return None

    return monitor


class Ticks:
    """The automation evaluated tick after tick (a minute apart) against one instance, with its cursor."""

    def __init__(self, defs: Definitions, instance: DagsterInstance, start: datetime):
        self.defs, self.instance, self.at, self.cursor = defs, instance, start, None

    def requested(self) -> dict[str, set[str]]:
        result = evaluate_automation_conditions(defs=self.defs, instance=self.instance, evaluation_time=self.at,
                                                cursor=self.cursor)
        self.at, self.cursor = self.at + timedelta(minutes=1), result.cursor
        return {key.to_user_string(): set(result.get_requested_partitions(key))
                for key in (MONITORING_METRICS_KEY, *MONITORS) if result.get_requested_partitions(key)}

    def written(self, key: AssetKey, snapshot: date) -> None:
        self.instance.report_runless_asset_event(AssetMaterialization(asset_key=key, partition=snapshot.isoformat()))


UNION_KEY = MONITORING_METRICS_KEY.to_user_string()
NOW = datetime(2025, 6, 3, 6, tzinfo=UTC)
THIS_WEEK = date(2025, 6, 2)


def test_the_union_follows_each_monitor_that_writes_a_snapshot_within_the_label_look_back(lake):
    defs = Definitions(assets=[UNION, *(_monitor(k) for k in MONITORS)], resources={"lake": lake})
    matured = date(2025, 4, 28)  # a label horizon (4 weeks) and more ago
    too_old = date(2025, 3, 3)  # before the look-back (4 + 5 + 1 weeks)
    with DagsterInstance.ephemeral() as instance:
        ticks = Ticks(defs, instance, NOW)
        assert ticks.requested() == {}  # nothing monitored yet: nothing to unite
        ticks.written(DRIFT_KEY, THIS_WEEK)
        assert ticks.requested() == {UNION_KEY: {THIS_WEEK.isoformat()}}
        ticks.written(MONITORING_METRICS_KEY, THIS_WEEK)
        ticks.written(SOURCE_DRIFT_KEY, THIS_WEEK)  # lands after the union ran, before the next tick: still seen
        assert ticks.requested() == {UNION_KEY: {THIS_WEEK.isoformat()}}
        ticks.written(MONITORING_METRICS_KEY, THIS_WEEK)
        assert ticks.requested() == {}  # up to date: not again until a monitor writes again
        ticks.written(SOURCE_DRIFT_KEY, THIS_WEEK)  # one run rebuilding a monitor and the union after it
        ticks.written(MONITORING_METRICS_KEY, THIS_WEEK)
        assert ticks.requested() == {}
        for snapshot in (matured, too_old):
            ticks.written(MONITORING_METRICS_KEY, snapshot)
            ticks.written(PERFORMANCE_KEY, snapshot)  # its labels matured weeks after the snapshot
        assert ticks.requested() == {UNION_KEY: {matured.isoformat()}}


def test_the_union_joins_the_run_of_a_monitor_requested_on_the_same_tick(lake):
    due = AutomationCondition.in_latest_time_window() & AutomationCondition.missing()
    defs = Definitions(assets=[UNION, _monitor(DRIFT_KEY, due), _monitor(SOURCE_DRIFT_KEY),
                               _monitor(PERFORMANCE_KEY)], resources={"lake": lake})
    with DagsterInstance.ephemeral() as instance:
        assert Ticks(defs, instance, NOW).requested() == {DRIFT_KEY.to_user_string(): {THIS_WEEK.isoformat()},
                                     UNION_KEY: {THIS_WEEK.isoformat()}}
