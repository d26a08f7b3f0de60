"""The feature store: dbt marts exported to Delta, one snapshot partition replaced at a time."""


from datetime import date

import pyarrow as pa
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


# Snapshots per Delta commit of an export: delta-rs holds every open partition's rows until its commit, so a
# year of snapshots in one commit took 4 GB more than this.
SNAPSHOTS_PER_COMMIT = 8
# The export reads one snapshot at a time, so its connection needs room for one snapshot's sort; under the general
# limit DuckDB kept every page it had read cached, and a year's export held 1.7 GB more for no speed
# (docs/performance.md, "The general memory limit").
EXPORT_MEMORY_LIMIT = "600MB"


def export_mart(
    warehouse_path: str, lake: LakeResource, mart: str, start: date, end: date
) -> tuple[int, int, dict[str, int]]:
    """Stream `marts.<mart>` rows with start <= snapshot_date < end into `gold/<mart>`.

    The window is replaced in consecutive parts of at most SNAPSHOTS_PER_COMMIT snapshots, each a Delta commit
    that replaces exactly its own dates: memory stays flat however many snapshots a backfill covers, and a run
    stopped half-way is completed by running it again. Returns the row count, the last Delta version written and
    rows per snapshot."""
    con = connect(warehouse_path, read_only=True, delta=False,  # the marts are warehouse tables
                  memory_limit=EXPORT_MEMORY_LIMIT)
    try:
        per_snapshot = dict(
            con.execute(
                f"select {SNAPSHOT_COLUMN}::varchar, count(*) from marts.{mart} "
                f"where {SNAPSHOT_COLUMN} >= ? and {SNAPSHOT_COLUMN} < ? group by 1 order by 1",
                [start, end],
            ).fetchall()
        )
        schema = con.execute(f"select * from marts.{mart} limit 0").fetch_arrow_table().schema
        snapshots = [date.fromisoformat(s) for s in per_snapshot]
        groups = [snapshots[i:i + SNAPSHOTS_PER_COMMIT] for i in range(0, len(snapshots), SNAPSHOTS_PER_COMMIT)]
        # part boundaries: the window's ends and each later group's first snapshot, so the parts tile the window
        bounds = [start, *[group[0] for group in groups[1:]], end]

        def batches(group: list[date]):
            # in customer order: a deterministic file content without sorting the whole window
            for snapshot in group:
                yield from con.execute(f"select * from marts.{mart} where {SNAPSHOT_COLUMN} = ? order by customer_id",
                                       [snapshot]).fetch_record_batch(rows_per_batch=500_000)

        version = None
        for group, part_start, part_end in zip(groups or [[]], bounds[:-1], bounds[1:], strict=True):
            stream = pa.RecordBatchReader.from_batches(schema, batches(group))
            version = lake.replace_window_stream("gold", mart, stream, SNAPSHOT_COLUMN, part_start, part_end,
                                                 [SNAPSHOT_COLUMN]).version
    finally:
        con.close()
    return sum(per_snapshot.values()), version, per_snapshot


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
