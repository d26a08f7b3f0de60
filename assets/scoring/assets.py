"""Batch scores per snapshot partition, from the champion model."""


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
    features = lake.read_window("gold", "customer_features", "snapshot_date", start, end)
    scores = score_features(features, model)
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
