"""The feature store: dbt marts exported to Delta, one snapshot partition replaced at a time."""


from datetime import date

from dagster import (
    AssetExecutionContext,
    AssetKey,
    AutomationCondition,
    BackfillPolicy,
    MaterializeResult,
    MetadataValue,
    TimeWindowPartitionsDefinition,
    asset,
)

from assets.conditions import label_matured, snapshot_due
from assets.features.dbt import WAREHOUSE_POOL
from assets.partitions import AssayPartitions
from domain.duckdb_setup import connect
from resources.assay import AssayResource
from resources.lake import LakeResource

SNAPSHOT_COLUMN = "snapshot_date"


def export_mart(
    warehouse_path: str, lake: LakeResource, mart: str, start: date, end: date
) -> tuple[int, int, dict[str, int]]:
    """Stream `marts.<mart>` rows with start <= snapshot_date < end into `gold/<mart>`.

    Returns the row count, the Delta version written and rows per snapshot."""
    con = connect(warehouse_path, read_only=True)
    try:
        query = f"select * from marts.{mart} where {SNAPSHOT_COLUMN} >= ? and {SNAPSHOT_COLUMN} < ? order by all"
        per_snapshot = dict(
            con.execute(
                f"select {SNAPSHOT_COLUMN}::varchar, count(*) from marts.{mart} "
                f"where {SNAPSHOT_COLUMN} >= ? and {SNAPSHOT_COLUMN} < ? group by 1 order by 1",
                [start, end],
            ).fetchall()
        )
        # A record-batch stream keeps memory flat however many snapshots a backfill covers.
        reader = con.execute(query, [start, end]).fetch_record_batch(rows_per_batch=500_000)
        result = lake.replace_window_stream("gold", mart, reader, SNAPSHOT_COLUMN, start, end, [SNAPSHOT_COLUMN])
    finally:
        con.close()
    return sum(per_snapshot.values()), result.version, per_snapshot


def _gold_asset(mart: str, description: str, snapshots: TimeWindowPartitionsDefinition,
                condition: AutomationCondition):
    @asset(
        key=AssetKey(["gold", mart]),
        deps=[AssetKey(["marts", mart])],
        partitions_def=snapshots,
        automation_condition=condition,
        backfill_policy=BackfillPolicy.single_run(),
        group_name="features",
        kinds={"delta", "duckdb"},
        pool=WAREHOUSE_POOL,
        description=description,
    )
    def _export(context: AssetExecutionContext, assay: AssayResource, lake: LakeResource) -> MaterializeResult:
        window = context.partition_time_window
        rows, version, per_snapshot = export_mart(
            str(assay.warehouse_path), lake, mart, window.start.date(), window.end.date()
        )
        return MaterializeResult(
            metadata={
                "dagster/row_count": rows,
                "rows_per_snapshot": MetadataValue.json(per_snapshot),
                "snapshots": len(per_snapshot),
                "delta_version": version,
                "path": MetadataValue.path(lake.uri("gold", mart)),
            }
        )

    return _export


def build_gold_assets(partitions: AssayPartitions) -> list:
    period = partitions.snapshot_period_days
    return [
        _gold_asset("customer_features", "Point-in-time customer features per snapshot date (Delta feature store).",
                    partitions.snapshots, snapshot_due(period)),
        _gold_asset("churn_labels", "Churn labels per matured snapshot: no order in [snapshot_date, snapshot_date + "
                    "horizon). Built once the horizon's orders have landed.", partitions.snapshots,
                    label_matured(period, partitions.label_periods)),
    ]
