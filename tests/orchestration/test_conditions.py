"""The automation's own rules, evaluated tick after tick by Dagster against an instance, without running anything."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from dagster import (
    AssetKey,
    AssetMaterialization,
    DagsterInstance,
    Definitions,
    TimeWindowPartitionsDefinition,
    asset,
    evaluate_automation_conditions,
)

from assets.conditions import snapshot_due

SNAPSHOTS = TimeWindowPartitionsDefinition(cron_schedule="0 0 * * 1", start="2025-01-06", fmt="%Y-%m-%d",
                                           end_offset=1)
FEATURES, CHAMPION, SCORES = AssetKey(["gold", "customer_features"]), AssetKey(["models", "champion"]), AssetKey(
    ["gold", "customer_scores"])
THIS_WEEK, LAST_WEEK = date(2025, 6, 2), date(2025, 5, 26)


@asset(key=FEATURES, partitions_def=SNAPSHOTS)
def features() -> None:
    return None


@asset(key=CHAMPION)
def champion() -> None:
    return None


@asset(key=SCORES, deps=[FEATURES, CHAMPION], partitions_def=SNAPSHOTS, automation_condition=snapshot_due(7))
def scores() -> None:
    return None


class Ticks:
    """Dagster's evaluation of the automation a minute apart, with its cursor, as the daemon and the clock run it."""

    def __init__(self, instance: DagsterInstance) -> None:
        self.defs = Definitions(assets=[features, champion, scores])
        self.instance, self.at, self.cursor = instance, datetime(2025, 6, 2, 6, tzinfo=UTC), None

    def requested(self) -> set[str]:
        result = evaluate_automation_conditions(defs=self.defs, instance=self.instance, evaluation_time=self.at,
                                                cursor=self.cursor)
        self.at, self.cursor = self.at + timedelta(minutes=1), result.cursor
        return set(result.get_requested_partitions(SCORES))

    def written(self, key: AssetKey, partition: date | None = None) -> None:
        self.instance.report_runless_asset_event(
            AssetMaterialization(asset_key=key, partition=partition.isoformat() if partition else None))


def test_a_snapshot_left_unscored_is_requested_once_until_something_it_reads_is_written():
    """Before the first promotion a scoring run finishes without writing (the gate rejected every model, and the
    champion asset says so). The daemon must not ask for that snapshot again a minute later, forever: it asks again
    when the features or the champion are written anew."""
    with DagsterInstance.ephemeral() as instance:
        ticks = Ticks(instance)
        ticks.written(CHAMPION)
        ticks.written(FEATURES, LAST_WEEK)
        ticks.written(FEATURES, THIS_WEEK)
        assert ticks.requested() == {LAST_WEEK.isoformat(), THIS_WEEK.isoformat()}
        assert ticks.requested() == set()  # the runs finished without scores: not requested again
        assert ticks.requested() == set()
        ticks.written(FEATURES, THIS_WEEK)  # a late landing day rebuilt this week's features
        assert ticks.requested() == {THIS_WEEK.isoformat()}
        ticks.written(CHAMPION)  # a promotion: every unscored snapshot in the look-back is due again
        assert ticks.requested() == {LAST_WEEK.isoformat(), THIS_WEEK.isoformat()}
        ticks.written(SCORES, THIS_WEEK)
        ticks.written(SCORES, LAST_WEEK)
        ticks.written(CHAMPION)
        assert ticks.requested() == set()  # scored snapshots are rescored by the promotion sensor, not here
