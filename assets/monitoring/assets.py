"""Drift per snapshot: Evidently HTML under reports/, a summary row in gold/drift_summary, and a warning check."""


import json

import polars as pl
from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetKey,
    BackfillPolicy,
    Config,
    MaterializeResult,
    MetadataValue,
    asset,
)
from pydantic import Field

from assets.modeling.training import CATEGORICAL_FEATURES
from assets.monitoring.drift import DEFAULT_SAMPLE_CAP, drift_report, sample_rows
from orchestration.partitions import snapshot_partitions
from resources.assay import AssayResource
from resources.lake import LakeResource
from resources.registry import ModelRegistryResource

DRIFT_KEY = AssetKey(["monitoring", "drift_summary"])


class DriftConfig(Config):
    sample_cap: int = Field(DEFAULT_SAMPLE_CAP, description="Seeded row cap on reference and current data.")
    seed: int = Field(7, description="Sampling seed.")
    warn_share: float = Field(0.3, description="Warn when more than this share of columns drifted.")


@asset(
    key=DRIFT_KEY,
    deps=[AssetKey(["gold", "customer_features"]), AssetKey(["gold", "customer_scores"])],
    partitions_def=snapshot_partitions,
    backfill_policy=BackfillPolicy.single_run(),
    group_name="monitoring",
    kinds={"evidently", "delta"},
    check_specs=[AssetCheckSpec("drift_share_below_threshold", asset=DRIFT_KEY,
                                description="Share of drifted feature and score columns stays under warn_share.")],
    description="Evidently data drift of features and scores against the champion's training reference.",
)
def drift_summary(context: AssetExecutionContext, config: DriftConfig, assay: AssayResource, lake: LakeResource,
                  registry: ModelRegistryResource):
    window = context.partition_time_window
    start, end = window.start.date(), window.end.date()
    model = registry.load()
    reference = sample_rows(pl.read_parquet(model.reference_path), config.sample_cap, config.seed)
    reference = reference.with_columns(pl.Series("p_churn", model.pipeline.predict(reference)))
    in_window = (pl.col("snapshot_date") >= start) & (pl.col("snapshot_date") < end)
    features = lake.scan("gold", "customer_features").filter(in_window)
    scores = lake.scan("gold", "customer_scores").filter(in_window).select("customer_id", "snapshot_date", "p_churn")
    snapshots = features.select("snapshot_date").unique().collect().get_column("snapshot_date").sort().to_list()

    rows = []
    for snapshot in snapshots:
        one = features.filter(pl.col("snapshot_date") == snapshot).join(
            scores.filter(pl.col("snapshot_date") == snapshot), on=["customer_id", "snapshot_date"], how="left")
        current = sample_rows(one.collect(), config.sample_cap, config.seed)
        html = assay.reports_path / "drift" / f"{snapshot.isoformat()}.html"
        summary = drift_report(reference, current.select(reference.columns), list(CATEGORICAL_FEATURES), html)
        rows.append({
            "snapshot_date": snapshot, "model_version": model.version, "columns": summary.columns,
            "drifted_columns": len(summary.drifted_columns), "drift_share": summary.drift_share,
            "drifted": json.dumps(summary.drifted_columns), "scores": json.dumps(summary.column_scores),
            "prediction_drifted": "p_churn" in summary.drifted_columns, "report_path": summary.report_path,
            "current_rows": current.height, "reference_rows": reference.height,
        })
    table = pl.DataFrame(rows, schema_overrides={"snapshot_date": pl.Date}) if rows else pl.DataFrame(
        schema={"snapshot_date": pl.Date})
    written = lake.replace_window("gold", "drift_summary", table, "snapshot_date", start, end,
                                  partition_by=None)
    latest = rows[-1] if rows else None
    yield MaterializeResult(
        metadata={
            "snapshots": len(rows),
            "model_version": model.version,
            "latest_drift_share": latest["drift_share"] if latest else 0.0,
            "latest_drifted": MetadataValue.json(json.loads(latest["drifted"]) if latest else []),
            "latest_report": MetadataValue.path(latest["report_path"]) if latest else "",
            "delta_version": written.version,
            "dagster/row_count": len(rows),
        }
    )
    over = [r["snapshot_date"].isoformat() for r in rows if r["drift_share"] > config.warn_share]
    yield AssetCheckResult(
        check_name="drift_share_below_threshold",
        asset_key=DRIFT_KEY,
        passed=not over,
        severity=AssetCheckSeverity.WARN,
        metadata={"warn_share": config.warn_share, "snapshots_over": MetadataValue.json(over),
                  "max_share": max((r["drift_share"] for r in rows), default=0.0)},
    )


