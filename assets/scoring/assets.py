"""Batch scores per snapshot partition, from the champion model."""


from collections import Counter

import polars as pl
from dagster import (
    AssetExecutionContext,
    AssetKey,
    AssetObservation,
    BackfillPolicy,
    Config,
    MaterializeResult,
    MetadataValue,
    asset,
)
from pydantic import Field

from assets.conditions import after_new_scores, snapshot_due
from assets.consent import current_consents, split_by_consent
from assets.markdown import markdown_table
from assets.modeling.pipeline import load_model
from assets.partitions import AssayPartitions
from assets.scoring.scoring import latest_scores, score_features
from resources.assay import AssayResource
from resources.audit import record
from resources.lake import LakeResource
from resources.registry import NO_CHAMPION, ModelRegistryResource


class ScoringConfig(Config):
    reason_snapshots: int = Field(
        4, description="Newest snapshots of a run that get reason codes (TreeSHAP); -1 = all. A weekly run scores "
                       "one snapshot, so it always carries reasons; long historical backfills skip the oldest.")


def score_snapshots(context: AssetExecutionContext, config: ScoringConfig, lake: LakeResource,
                    registry: ModelRegistryResource, legal_basis: str, reason_deciles: int = 10) -> MaterializeResult:
    """Score the partition's snapshots. Under `legal_basis` "consent" (ASSAY_PROFILING_LEGAL_BASIS) only customers
    with profiling consent as of the snapshot and still now; under another basis everyone, and it is recorded."""
    window = context.partition_time_window
    start, end = window.start.date(), window.end.date()
    model = load_model(registry)
    features = lake.scan("gold", "customer_features").filter(
        (pl.col("snapshot_date") >= start) & (pl.col("snapshot_date") < end))
    snapshots = features.select("snapshot_date").unique().collect().get_column("snapshot_date").sort().to_list()
    # One snapshot in memory at a time: a backfill over a year of snapshots at 1M customers would not fit at once.
    with_reasons = set(snapshots if config.reason_snapshots < 0 else snapshots[-config.reason_snapshots:]
                       if config.reason_snapshots else [])
    require_consent = legal_basis == "consent"
    consents = current_consents(lake) if require_consent else None
    batches, customers_in, excluded = [], 0, Counter()
    for snapshot in snapshots:
        batch = features.filter(pl.col("snapshot_date") == snapshot).collect()
        customers_in += batch.height
        if consents is not None:
            split = split_by_consent(batch, consents, "profiling", at_snapshot_column="consent_profiling")
            batch = split.allowed
            excluded.update(split.excluded)
        batches.append(score_features(batch, model, snapshot in with_reasons, reason_deciles))
    scores = pl.concat(batches or [score_features(pl.DataFrame(), model)])
    written = lake.replace_window("gold", "customer_scores", scores, "snapshot_date", start, end,
                                  partition_by=["snapshot_date"])
    if excluded:
        context.log.info(f"not scored for lack of profiling consent: {dict(excluded)}")
    if scores.height == 0 and customers_in:
        context.log.warning(f"nobody of {customers_in} customers was scored: {dict(excluded)} (profiling legal "
                            f"basis: {legal_basis}; see ASSAY_PROFILING_LEGAL_BASIS)")
    record(lake, "score", "gold/customer_scores", context.run_id, scores.height,
           {"snapshots": [str(s) for s in snapshots], "model_version": model.version, "excluded": dict(excluded),
            "profiling_legal_basis": legal_basis})
    return MaterializeResult(
        metadata={
            "dagster/row_count": scores.height,
            "customers_in": customers_in,
            "excluded_without_profiling_consent": sum(excluded.values()),
            "excluded_by_reason": MetadataValue.json(dict(sorted(excluded.items()))),
            "profiling_legal_basis": legal_basis,
            "profiling_consent_required": require_consent,
            "model_version": model.version,
            "snapshots_with_reasons": len(with_reasons),
            "reason_deciles": reason_deciles,
            "rows_with_reasons": scores.height - scores.get_column("reason_1_feature").null_count(),
            "top_reasons_latest": MetadataValue.json(
                scores.filter(pl.col("snapshot_date") == snapshots[-1]).group_by("reason_1_feature").len()
                .sort("len", descending=True).head(5).rows()) if snapshots else [],
            "mean_p_churn": float(scores.get_column("p_churn").mean()) if scores.height else 0.0,
            "top_decile_mean_p_churn": float(scores.filter(scores["decile"] == 1).get_column("p_churn").mean())
            if scores.height else 0.0,
            "delta_version": written.version,
            "path": MetadataValue.path(written.uri),
        }
    )


def build_customer_scores(partitions: AssayPartitions):
    @asset(
        key=AssetKey(["gold", "customer_scores"]),
        deps=[AssetKey(["gold", "customer_features"]), AssetKey(["models", "champion"])],
        partitions_def=partitions.snapshots,
        backfill_policy=BackfillPolicy.single_run(),
        output_required=False,  # skipped, with its reason, while no model has passed the gate
        # a new snapshot is scored with the champion of the day; after a promotion the rescore sensor rescores
        automation_condition=snapshot_due(partitions.snapshot_period_days),
        group_name="scoring",
        kinds={"delta", "lightgbm"},
        description="Calibrated churn probability, risk decile and top-3 reason codes per customer and snapshot, "
                    "from the champion model.",
    )
    def customer_scores(context: AssetExecutionContext, config: ScoringConfig, assay: AssayResource,
                        lake: LakeResource, registry: ModelRegistryResource):
        if registry.champion_version() is None:
            # Nothing to score with is not a failure: the step succeeds without materializing, so the steps that
            # read the scores (drift, matured performance) are skipped too, and the run finishes.
            context.log.warning(f"gold/customer_scores skipped: {NO_CHAMPION}")
            context.log_event(AssetObservation(asset_key=context.asset_key, metadata={"skipped": NO_CHAMPION}))
            return
        yield score_snapshots(context, config, lake, registry, assay.profiling_legal_basis, assay.reason_deciles)

    return customer_scores


NOTHING_SCORED = "nothing is scored yet: no model has passed the gate, or no customer could be scored (`assay summary`)"


def skipped_while_unscored(context: AssetExecutionContext, lake: LakeResource) -> bool:
    """True, having logged why, when gold/customer_scores holds no row: what publishes the newest scores (the
    threshold simulation, the audience, the segment report) then finishes without materializing instead of
    failing, as scoring itself does before the first promotion."""
    if lake.exists("gold", "customer_scores") and lake.scan("gold", "customer_scores").head(1).collect().height:
        return False
    context.log.warning(f"{context.asset_key.to_user_string()} skipped: {NOTHING_SCORED}")
    context.log_event(AssetObservation(asset_key=context.asset_key, metadata={"skipped": NOTHING_SCORED}))
    return True


class ThresholdConfig(Config):
    cost_per_contact: float = Field(2.0, description="Cost of one retention contact (currency units).")
    value_of_retained_customer: float = Field(120.0, description="Value of keeping one would-be churner.")
    save_rate: float = Field(0.15, description="Share of contacted would-be churners the contact saves.")
    contact_capacity: int = Field(0, description="Most customers the team can contact; 0 = no limit.")


@asset(
    key=AssetKey(["gold", "threshold_simulation"]),
    deps=[AssetKey(["gold", "customer_scores"])],
    automation_condition=after_new_scores(),
    output_required=False,  # skipped, with its reason, while nothing is scored
    group_name="scoring",
    kinds={"delta"},
    description="Campaign economics by score threshold on the newest snapshot's calibrated probabilities: volume, "
                "expected saves, cost and profit (rerun with your own numbers via `assay simulate`).",
)
def threshold_simulation(context: AssetExecutionContext, config: ThresholdConfig, assay: AssayResource,
                         lake: LakeResource):
    if skipped_while_unscored(context, lake):
        return
    from assets.modeling.threshold import (
        ThresholdEconomics,
        best_threshold,
        plot_threshold_simulation,
        simulate_thresholds,
    )

    scores = latest_scores(lake)
    economics = ThresholdEconomics(config.cost_per_contact, config.value_of_retained_customer, config.save_rate,
                                   config.contact_capacity or None)
    table = simulate_thresholds(scores.get_column("p_churn").to_numpy(), economics)
    snapshot = scores.item(0, "snapshot_date")
    stored = table.with_columns(pl.lit(snapshot).alias("snapshot_date"),
                                pl.lit(scores.item(0, "model_version")).alias("model_version"),
                                pl.lit(config.cost_per_contact).alias("cost_per_contact"),
                                pl.lit(config.value_of_retained_customer).alias("value_of_retained_customer"),
                                pl.lit(config.save_rate).alias("save_rate"),
                                pl.lit(config.contact_capacity).alias("contact_capacity"))
    written = lake.overwrite("gold", "threshold_simulation", stored)
    plot = plot_threshold_simulation(table, assay.reports_path / "threshold_simulation.png")
    best = best_threshold(table)
    yield MaterializeResult(metadata={
        "snapshot_date": str(snapshot), "customers": scores.height,
        "best_threshold": best["threshold"], "best_profit": best["profit"], "contacted_at_best": best["contacted"],
        "table": MetadataValue.md(_markdown(table)),
        "chart": MetadataValue.path(str(plot)), "delta_version": written.version,
    })


def _markdown(table: pl.DataFrame) -> str:
    return markdown_table(table.to_dicts(), digits=2)
