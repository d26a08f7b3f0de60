"""Batch scores per snapshot partition, from the champion model."""


import polars as pl
from dagster import AssetExecutionContext, AssetKey, BackfillPolicy, MaterializeResult, MetadataValue, asset

from assets.scoring.scoring import score_features
from orchestration.partitions import snapshot_partitions
from resources.lake import LakeResource
from resources.registry import ModelRegistryResource


@asset(
    key=AssetKey(["gold", "customer_scores"]),
    deps=[AssetKey(["gold", "customer_features"]), AssetKey(["models", "churn_model"])],
    partitions_def=snapshot_partitions,
    backfill_policy=BackfillPolicy.single_run(),
    group_name="scoring",
    kinds={"delta", "lightgbm"},
    description="Churn probability and risk decile per customer and snapshot, from the champion model.",
)
def customer_scores(context: AssetExecutionContext, lake: LakeResource,
                    registry: ModelRegistryResource) -> MaterializeResult:
    window = context.partition_time_window
    start, end = window.start.date(), window.end.date()
    model = registry.load()
    features = lake.scan("gold", "customer_features").filter(
        (pl.col("snapshot_date") >= start) & (pl.col("snapshot_date") < end))
    snapshots = features.select("snapshot_date").unique().collect().get_column("snapshot_date").sort().to_list()
    # One snapshot in memory at a time: a backfill over a year of snapshots at 1M customers would not fit at once.
    scores = pl.concat(
        [score_features(features.filter(pl.col("snapshot_date") == s).collect(), model) for s in snapshots]
        or [score_features(pl.DataFrame(), model)]
    )
    written = lake.replace_window("gold", "customer_scores", scores, "snapshot_date", start, end,
                                  partition_by=["snapshot_date"])
    return MaterializeResult(
        metadata={
            "dagster/row_count": scores.height,
            "model_version": model.version,
            "mean_p_churn": float(scores.get_column("p_churn").mean()) if scores.height else 0.0,
            "top_decile_mean_p_churn": float(scores.filter(scores["decile"] == 1).get_column("p_churn").mean())
            if scores.height else 0.0,
            "delta_version": written.version,
            "path": MetadataValue.path(written.uri),
        }
    )
