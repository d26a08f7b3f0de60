"""Monitoring per snapshot: Evidently drift (HTML under reports/, gold/drift_summary), source drift and matured
performance, asset checks with warn/error thresholds, and alerts.

Each monitor writes its figures to the Delta table named by its own asset key (monitoring/drift_summary,
monitoring/source_drift, monitoring/model_performance), and gold/monitoring_metrics is an asset of its own, the
union of the three per snapshot: what the sensors read. So every table has one writer, and lineage shows who
feeds what.
"""


import json
from datetime import date, timedelta

import polars as pl
from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetDep,
    AssetExecutionContext,
    AssetKey,
    AssetObservation,
    AssetSpec,
    AutomationCondition,
    BackfillPolicy,
    Config,
    MaterializeResult,
    MetadataValue,
    TimeWindowPartitionMapping,
    asset,
    multi_asset,
)
from pydantic import Field

from assets.conditions import CATCH_UP_PERIODS, label_matured, snapshot_due
from assets.consent import current_consents, split_by_consent
from assets.markdown import markdown_table
from assets.modeling.pipeline import load_model
from assets.modeling.training import CATEGORICAL_FEATURES
from assets.monitoring.drift import (
    DEFAULT_SAMPLE_CAP,
    EVIDENTLY_WORKSPACE,
    DriftJob,
    drift_reports,
    sample_rows,
)
from assets.monitoring.metrics import (
    ALL_COLUMNS,
    METRIC_SCHEMA,
    Threshold,
    findings,
    performance_metrics,
    snapshot_metrics,
    union_metrics,
)
from assets.monitoring.source_drift import SourceShiftLimits, shift_findings, source_shift, summary_rows
from assets.partitions import AssayPartitions
from domain.contract import SOURCES
from resources.alerts import AlertsResource
from resources.assay import AssayResource
from resources.lake import LakeResource
from resources.registry import NO_CHAMPION, ModelRegistryResource

DRIFT_KEY = AssetKey(["monitoring", "drift_summary"])


class DriftConfig(Config):
    sample_cap: int = Field(DEFAULT_SAMPLE_CAP, description="Seeded row cap on reference and current data.")
    seed: int = Field(7, description="Sampling seed.")
    warn_share: float = Field(0.3, description="Warn when more than this share of columns drifted (Evidently).")
    error_share: float = Field(0.6, description="Error when more than this share of columns drifted.")
    psi_warn: float = Field(0.1, description="PSI of a feature: warn at or above (0.1 is the usual 'watch').")
    psi_error: float = Field(0.25, description="PSI of a feature: error at or above (0.25: 'significant shift').")
    missing_increase_warn: float = Field(0.05, description="Rise of a column's missing share over the reference.")
    missing_increase_error: float = Field(0.2, description="Rise of a column's missing share: error.")
    prediction_shift_warn: float = Field(0.03, description="Shift of mean p_churn against the reference.")
    prediction_shift_error: float = Field(0.08, description="Shift of mean p_churn: error.")
    unjudged_columns: list[str] = Field(["first_order_age_days", "tenure_days"],
                                        description="Features that grow with the calendar by construction (ages): "
                                                    "their figures are stored but not judged.")

    def thresholds(self) -> dict[str, list[Threshold]]:
        """Thresholds per asset check."""
        return {
            "psi_below_threshold": [Threshold("psi", self.psi_warn, self.psi_error)],
            "missing_share_stable": [Threshold("missing_share_increase", self.missing_increase_warn,
                                               self.missing_increase_error)],
            "prediction_shift_below_threshold": [Threshold("mean_shift", self.prediction_shift_warn,
                                                           self.prediction_shift_error, column="p_churn")],
        }


def drift_spec(partitions: AssayPartitions) -> dict:
    return dict(
        key=DRIFT_KEY,
        deps=[AssetKey(["gold", "customer_features"]), AssetKey(["gold", "customer_scores"])],
        partitions_def=partitions.snapshots,
        automation_condition=snapshot_due(partitions.snapshot_period_days),
        backfill_policy=BackfillPolicy.single_run(),
        group_name="monitoring",
        kinds={"evidently", "delta"},
        check_specs=[
            AssetCheckSpec("drift_share_below_threshold", asset=DRIFT_KEY,
                           description="Share of drifted feature and score columns (Evidently) under "
                                       "warn/error_share."),
            AssetCheckSpec("psi_below_threshold", asset=DRIFT_KEY,
                           description="No feature's PSI at psi_warn/error."),
            AssetCheckSpec("missing_share_stable", asset=DRIFT_KEY,
                           description="No column's missing share rose by missing_increase_warn/error."),
            AssetCheckSpec("prediction_shift_below_threshold", asset=DRIFT_KEY,
                           description="Mean p_churn within prediction_shift_warn/error of the reference."),
        ],
        description="Evidently data drift of features and scores against the champion's reference: a sample of its "
                    "out-of-time validation rows. Its figures (PSI, missing shares, prediction shift, drift share) "
                    "go to the table monitoring/drift_summary, the per-snapshot summary to gold/drift_summary.",
    )


def skipped_without_scores(context: AssetExecutionContext, lake: LakeResource,
                           registry: ModelRegistryResource) -> bool:
    """True, having logged why, when there is nothing scored to monitor: no model has passed the gate yet. In the
    run that scores, Dagster skips this step by itself; a run of its own (a backfill step, a matured label) gets
    here, and finishes without materializing instead of failing."""
    if registry.champion_version() is not None and lake.exists("gold", "customer_scores"):
        return False
    context.log.warning(f"{context.asset_key.to_user_string()} skipped: {NO_CHAMPION}")
    context.log_event(AssetObservation(asset_key=context.asset_key, metadata={"skipped": NO_CHAMPION}))
    return True


def drift_summary(context: AssetExecutionContext, config: DriftConfig, assay: AssayResource, lake: LakeResource,
                  registry: ModelRegistryResource, alerts: AlertsResource):
    if skipped_without_scores(context, lake, registry):
        return
    window = context.partition_time_window
    start, end = window.start.date(), window.end.date()
    model = load_model(registry)
    if not model.reference_path.exists():
        # retention deletes an archived version's reference; promoting that version back leaves nothing to compare
        reason = f"model {model.version} has no drift reference (expired by retention)"
        context.log.warning(f"{context.asset_key.to_user_string()} skipped: {reason}")
        context.log_event(AssetObservation(asset_key=context.asset_key, metadata={"skipped": reason}))
        return
    reference = sample_rows(pl.read_parquet(model.reference_path).drop("customer_id", strict=False),
                            config.sample_cap, config.seed)
    reference = reference.with_columns(pl.Series("p_churn", model.pipeline.predict(reference)))
    # Like for like: on the consent basis the reference holds only customers who may be profiled (see churn_model),
    # so each snapshot is compared through the same rule, as scoring applies it.
    consents = current_consents(lake) if assay.profiling_legal_basis == "consent" else None
    in_window = (pl.col("snapshot_date") >= start) & (pl.col("snapshot_date") < end)
    features = lake.scan("gold", "customer_features").filter(in_window)
    scores = lake.scan("gold", "customer_scores").filter(in_window).select("customer_id", "snapshot_date", "p_churn")
    snapshots = features.select("snapshot_date").unique().collect().get_column("snapshot_date").sort().to_list()

    jobs = []
    for snapshot in snapshots:
        one = features.filter(pl.col("snapshot_date") == snapshot).join(
            scores.filter(pl.col("snapshot_date") == snapshot), on=["customer_id", "snapshot_date"], how="left")
        current = one.collect()
        if consents is not None and "consent_profiling" in current.columns:
            current = split_by_consent(current, consents, "profiling", at_snapshot_column="consent_profiling").allowed
        current = sample_rows(current, config.sample_cap, config.seed).select(reference.columns)
        jobs.append(DriftJob(reference, current, list(CATEGORICAL_FEATURES),
                             assay.reports_path / "drift" / f"{snapshot.isoformat()}.html", snapshot))
    rows, metric_frames = [], []
    for job, summary in zip(jobs, drift_reports(jobs, assay.cores), strict=True):
        snapshot, current = job.snapshot_date, job.current
        rows.append({
            "snapshot_date": snapshot, "model_version": model.version, "columns": summary.columns,
            "drifted_columns": len(summary.drifted_columns), "drift_share": summary.drift_share,
            "drifted": json.dumps(summary.drifted_columns), "scores": json.dumps(summary.column_scores),
            "prediction_drifted": "p_churn" in summary.drifted_columns, "report_path": summary.report_path,
            "current_rows": current.height, "reference_rows": reference.height,
            "empty_columns": json.dumps(summary.empty_columns, sort_keys=True),
        })
        figures = snapshot_metrics(reference, current, list(CATEGORICAL_FEATURES))
        figures = pl.concat([figures, pl.DataFrame([("drift_share", ALL_COLUMNS, summary.drift_share)],
                                                   schema=["metric", "column", "value"], orient="row")])
        metric_frames.append(figures.with_columns(pl.lit(snapshot).alias("snapshot_date"),
                                                  pl.lit(model.version).alias("model_version")))
    table = pl.DataFrame(rows, schema_overrides={"snapshot_date": pl.Date}) if rows else pl.DataFrame(
        schema={"snapshot_date": pl.Date})
    written = lake.replace_window("gold", "drift_summary", table, "snapshot_date", start, end,
                                  partition_by=None)
    metrics = (pl.concat(metric_frames) if metric_frames else pl.DataFrame(schema=METRIC_SCHEMA)).select(
        [pl.col(c).cast(t) for c, t in METRIC_SCHEMA.items()]).with_columns(pl.lit("drift").alias("source"))
    lake.replace_window(*DRIFT_KEY.path, metrics, "snapshot_date", start, end)
    checks = {**config.thresholds(),
              "drift_share_below_threshold": [Threshold("drift_share", config.warn_share, config.error_share)]}
    judged = metrics.filter(~pl.col("column").is_in(config.unjudged_columns))
    found = {name: findings(judged, limits) for name, limits in checks.items()}
    raised = alerts.raise_alerts(pl.concat(list(found.values())), "monitoring/drift_summary", context.run_id,
                                 context.log)
    latest = rows[-1] if rows else None
    yield MaterializeResult(
        metadata={
            "snapshots": len(rows),
            "model_version": model.version,
            "latest_drift_share": latest["drift_share"] if latest else 0.0,
            "latest_drifted": MetadataValue.json(json.loads(latest["drifted"]) if latest else []),
            "latest_report": MetadataValue.path(latest["report_path"]) if latest else "",
            # a column without values on one side cannot be tested for drift: left out, and named
            "latest_empty_columns": MetadataValue.json(json.loads(latest["empty_columns"]) if latest else {}),
            "evidently_ui": "assay drift-workspace && evidently ui --workspace "
                            f"{assay.reports_path / EVIDENTLY_WORKSPACE}",
            "delta_version": written.version,
            "dagster/row_count": len(rows),
            "metric_rows": metrics.height,
            "alerts": raised["alerts"], "webhook": raised["webhook"],
        }
    )
    for name, hits in found.items():
        yield check_result(DRIFT_KEY, name, hits)




def check_result(asset_key: AssetKey, name: str, hits: pl.DataFrame) -> AssetCheckResult:
    """Passed without findings; otherwise failed with ERROR severity if any finding is an error, else WARN."""
    severity = AssetCheckSeverity.ERROR if (hits.get_column("severity") == "error").any() else AssetCheckSeverity.WARN
    worst = hits.sort("value", descending=True).head(10)
    return AssetCheckResult(
        check_name=name, asset_key=asset_key, passed=hits.height == 0, severity=severity,
        metadata={"findings": hits.height,
                  "worst": MetadataValue.json([{k: str(v) for k, v in r.items()} for r in worst.to_dicts()])},
    )


PERFORMANCE_KEY = AssetKey(["monitoring", "model_performance"])


class PerformanceConfig(Config):
    auc_decay_warn: float = Field(0.02, description="Validation AUC minus matured AUC: warn at or above.")
    auc_decay_error: float = Field(0.05, description="AUC decay: error at or above.")
    ece_increase_warn: float = Field(0.02, description="Matured ECE less its sampling-noise floor, minus the "
                                                       "validation ECE less its own: warn at or above.")
    ece_increase_error: float = Field(0.05, description="ECE increase: error at or above.")


def performance_spec(partitions: AssayPartitions) -> dict:
    return dict(
        key=PERFORMANCE_KEY,
        deps=[AssetKey(["gold", "churn_labels"]), AssetKey(["gold", "customer_scores"])],
        partitions_def=partitions.snapshots,
        backfill_policy=BackfillPolicy.single_run(),
        group_name="monitoring",
        kinds={"delta"},
        # labels of a snapshot mature a horizon after it; when they land, this runs for that snapshot on its own
        automation_condition=label_matured(partitions.snapshot_period_days, partitions.label_periods),
        check_specs=[AssetCheckSpec("performance_holds", asset=PERFORMANCE_KEY,
                                    description="Matured AUC and ECE within the configured decay of validation.")],
        description="AUC and calibration of the scores of each snapshot whose labels have matured, against the "
                    "validation figures of the model that scored it; its figures go to the table "
                    "monitoring/model_performance.",
    )


def model_performance(context: AssetExecutionContext, config: PerformanceConfig, lake: LakeResource,
                      registry: ModelRegistryResource, alerts: AlertsResource):
    if skipped_without_scores(context, lake, registry):
        return
    window = context.partition_time_window
    start, end = window.start.date(), window.end.date()
    in_window = (pl.col("snapshot_date") >= start) & (pl.col("snapshot_date") < end)
    scored = (lake.scan("gold", "customer_scores").filter(in_window)
              .select("customer_id", "snapshot_date", "p_churn", "model_version")
              .join(lake.scan("gold", "churn_labels").filter(in_window).select("customer_id", "snapshot_date",
                                                                                 "churned"),
                    on=["customer_id", "snapshot_date"]).collect())
    frames = []
    for (snapshot, version), rows in scored.group_by("snapshot_date", "model_version"):
        validation = registry.load(version).card.get("validation_metrics", {})
        figures = performance_metrics(rows.get_column("churned").to_numpy(), rows.get_column("p_churn").to_numpy(),
                                      validation)
        frames.append(figures.with_columns(pl.lit(snapshot).alias("snapshot_date"),
                                           pl.lit(version).alias("model_version")))
    metrics = (pl.concat(frames) if frames else pl.DataFrame(schema=METRIC_SCHEMA)).select(
        [pl.col(c).cast(t) for c, t in METRIC_SCHEMA.items()]).with_columns(pl.lit("performance").alias("source"))
    lake.replace_window(*PERFORMANCE_KEY.path, metrics, "snapshot_date", start, end)
    hits = findings(metrics, [Threshold("auc_decay", config.auc_decay_warn, config.auc_decay_error),
                              Threshold("ece_increase", config.ece_increase_warn, config.ece_increase_error)])
    # only decay counts: a matured AUC above validation is good news, not an alert
    hits = hits.filter(pl.col("value") > 0)
    raised = alerts.raise_alerts(hits, "monitoring/model_performance", context.run_id, context.log)
    auc = metrics.filter(pl.col("metric") == "auc").sort("snapshot_date")
    yield MaterializeResult(metadata={
        "matured_snapshots": auc.height,
        "latest_auc": float(auc.get_column("value")[-1]) if auc.height else 0.0,
        "auc_by_snapshot": MetadataValue.json({str(d): round(v, 4) for d, v in auc.select("snapshot_date", "value")
                                               .iter_rows()}),
        "alerts": raised["alerts"], "webhook": raised["webhook"],
    })
    yield check_result(PERFORMANCE_KEY, "performance_holds", hits)


SOURCE_DRIFT_KEY = AssetKey(["monitoring", "source_drift"])


class SourceDriftConfig(Config):
    baseline_weeks: int = Field(4, description="Landing weeks before the snapshot's own week that form the baseline.")
    gap_weeks: int = Field(1, description="Weeks left out between the baseline and the snapshot's own week, so a "
                                          "step change is judged against clean weeks twice in a row.")
    null_share_warn: float = Field(0.05, description="Rise of a field's null share over the baseline: warn.")
    null_share_error: float = Field(0.2, description="Rise of a field's null share: error (a broken field; models "
                                                     "trained or validated on such weeks are not promoted).")
    mean_change_warn: float = Field(0.1, description="Relative change of a numeric field's mean (geometric for a "
                                                          "positive field), beyond 2 standard errors: warn.")
    mean_change_error: float = Field(0.2, description="The same: error.")
    category_psi_warn: float = Field(0.1, description="PSI of a categorical field's mix: warn.")
    category_psi_error: float = Field(0.25, description="PSI of a categorical field's mix: error.")
    new_category_warn: float = Field(0.01, description="Share of rows with a value unseen in the baseline: warn.")
    new_category_error: float = Field(0.05, description="Share of rows with an unseen value: error.")
    volume_change_warn: float = Field(0.5, description="Relative change of rows per landing day: warn.")
    volume_change_error: float = Field(1.0, description="Relative change of rows per landing day: error.")
    min_rows: int = Field(500, description="A source's week with fewer rows is profiled but not judged.")

    def limits(self) -> SourceShiftLimits:
        return SourceShiftLimits(
            null_share_increase=(self.null_share_warn, self.null_share_error),
            mean_change=(self.mean_change_warn, self.mean_change_error),
            category_psi=(self.category_psi_warn, self.category_psi_error),
            new_category_share=(self.new_category_warn, self.new_category_error),
            volume_change=(self.volume_change_warn, self.volume_change_error), min_rows=self.min_rows,
        )


def source_drift_spec(partitions: AssayPartitions) -> dict:
    return dict(
        key=SOURCE_DRIFT_KEY,
        # the landing week before the snapshot and the baseline weeks before it
        deps=[AssetDep(AssetKey(["bronze", name]), partition_mapping=TimeWindowPartitionMapping(start_offset=-1,
                                                                                             end_offset=-1))
              for name in SOURCES],
        partitions_def=partitions.snapshots,
        automation_condition=snapshot_due(partitions.snapshot_period_days),
        backfill_policy=BackfillPolicy.single_run(),
        group_name="monitoring",
        kinds={"polars", "delta"},
        check_specs=[AssetCheckSpec("sources_stable", asset=SOURCE_DRIFT_KEY,
                                    description="No bronze field's null share, mean, category mix or daily volume in "
                                                "the week before the snapshot moved past its limits against the "
                                                "baseline weeks.")],
        description="Data quality and drift of the raw sources: each bronze field in the week before the snapshot "
                    "against the weeks before that. Catches a broken field, a new category or a price level the "
                    "first week it lands. Its figures go to the table monitoring/source_drift: their summary feeds "
                    "the retraining sensor (through gold/monitoring_metrics) and the champion gate.",
    )


def source_drift(context: AssetExecutionContext, config: SourceDriftConfig, lake: LakeResource,
                 alerts: AlertsResource):
    window = context.partition_time_window
    snapshots = [date.fromisoformat(k) for k in context.partition_keys]
    limits = config.limits()
    frames, found = [], []
    for snapshot in snapshots:
        shifts = [source_shift(lake.scan("bronze", name), spec, snapshot, config.baseline_weeks, config.gap_weeks)
                  for name, spec in SOURCES.items() if lake.exists("bronze", name)]
        if not shifts:
            raise LookupError("no bronze table yet: materialize the ingestion assets first")
        shift = pl.concat(shifts)
        hits = shift_findings(shift, limits)
        frames.append(pl.concat([shift.drop("current_rows"), summary_rows(hits)])
                      .with_columns(pl.lit(snapshot).alias("snapshot_date")))
        found.append(hits.drop("current_rows").with_columns(pl.lit(snapshot).alias("snapshot_date")))
    metrics = (pl.concat(frames) if frames else pl.DataFrame(schema=METRIC_SCHEMA)).with_columns(
        pl.lit(None, dtype=pl.Utf8).alias("model_version")).select(
        [pl.col(c).cast(t) for c, t in METRIC_SCHEMA.items()]).with_columns(pl.lit("source").alias("source"))
    lake.replace_window(*SOURCE_DRIFT_KEY.path, metrics, "snapshot_date", window.start.date(), window.end.date())
    hits = pl.concat(found)
    raised = alerts.raise_alerts(hits, "monitoring/source_drift", context.run_id, context.log)
    newest = hits.filter(pl.col("snapshot_date") == max(snapshots))
    yield MaterializeResult(metadata={
        "snapshots": len(snapshots),
        "metric_rows": metrics.height,
        "findings": hits.height,
        "latest_findings": MetadataValue.md(markdown_findings(newest)) if newest.height else "none",
        "alerts": raised["alerts"], "webhook": raised["webhook"],
    })
    yield check_result(SOURCE_DRIFT_KEY, "sources_stable", hits)


def markdown_findings(hits: pl.DataFrame) -> str:
    lines = ["| column | metric | value | severity |", "| --- | --- | --- | --- |"]
    lines += [f"| {r['column']} | {r['metric']} | {r['value']:.3f} | {r['severity']} |"
              for r in hits.sort("severity", "column").iter_rows(named=True)]
    return "\n".join(lines)


MONITORING_METRICS_KEY = AssetKey(["gold", "monitoring_metrics"])
MONITORS = (DRIFT_KEY, SOURCE_DRIFT_KEY, PERFORMANCE_KEY)  # each writes the table named by its key


def monitors_updated(period_days: int, label_periods: int) -> AutomationCondition:
    """A snapshot's union, each time one of its monitors writes that snapshot. Not `eager()`: the monitors arrive
    at different times (drift and sources in the snapshot's week, performance a label horizon later), and eager
    waits until none is missing and looks at the newest partition only. Here one monitor present is enough, and
    the look-back reaches as far back as a label matures. A failed union is retried when the automation next runs
    one of its monitors (as in assets/conditions.py, a failure shows in the UI instead of looping)."""
    lookback = timedelta(days=period_days * (label_periods + CATCH_UP_PERIODS + 1))
    missing, failed = AutomationCondition.missing(), AutomationCondition.execution_failed()
    requested = AutomationCondition.will_be_requested()
    # Plain newly_updated on both sides of `since`: they carry materialization times, so a monitor written after
    # the union but before the next tick still counts. A composed condition (any_deps_updated, since_last_handled)
    # carries none, and the union's own update would win the tie and lose the monitor's rows.
    written_since = AutomationCondition.any_deps_match(AutomationCondition.newly_updated()).since(
        AutomationCondition.newly_updated())
    return (
        AutomationCondition.in_latest_time_window(lookback)
        & ((written_since & ~failed)
           | AutomationCondition.any_deps_match(requested)  # a monitor of the snapshot runs now: join its run
           | (missing & ~failed))  # a snapshot monitored before this asset existed, once
        & AutomationCondition.any_deps_match(~missing | requested)
        & ~AutomationCondition.any_deps_in_progress()
        & ~AutomationCondition.in_progress()
    ).with_label("monitors_updated")


def monitoring_metrics_spec(partitions: AssayPartitions) -> dict:
    return dict(
        key=MONITORING_METRICS_KEY,
        deps=list(MONITORS),
        partitions_def=partitions.snapshots,
        automation_condition=monitors_updated(partitions.snapshot_period_days, partitions.label_periods),
        backfill_policy=BackfillPolicy.single_run(),
        group_name="monitoring",
        kinds={"polars", "delta"},
        description="Every monitoring figure of a snapshot in one table (snapshot_date, metric, column, value, "
                    "model_version, source): the union of the monitors' own tables, rebuilt per snapshot whenever "
                    "one of them changes. The retraining sensor and the clock read it.",
    )


def monitoring_metrics(context: AssetExecutionContext, lake: LakeResource) -> MaterializeResult:
    window = context.partition_time_window
    start, end = window.start.date(), window.end.date()
    # a monitor that has never run has no table yet: the union holds what the others measured
    parts = [lake.read_window(*key.path, "snapshot_date", start, end) for key in MONITORS if lake.exists(*key.path)]
    union = union_metrics(parts)
    written = lake.replace_window(*MONITORING_METRICS_KEY.path, union, "snapshot_date", start, end)
    by_source = union.group_by("source").len().sort("source")
    return MaterializeResult(metadata={
        "dagster/row_count": union.height,
        "rows_by_source": MetadataValue.md(markdown_table(by_source.to_dicts())),
        "snapshots": union.get_column("snapshot_date").n_unique(),
        "delta_version": written.version,
    })


def skippable_asset(spec: dict):
    """An asset that may finish without materializing (no model has passed the gate yet), with its checks. An
    `@asset(output_required=False)` must still yield every check (dagster-io/dagster#27399); a one-asset
    `multi_asset` that can subset may leave both out."""
    key = spec["key"]
    return multi_asset(
        name="__".join(key.path),
        specs=[AssetSpec(key, deps=spec["deps"], description=spec["description"], group_name=spec["group_name"],
                         kinds=spec["kinds"], automation_condition=spec["automation_condition"], skippable=True)],
        partitions_def=spec["partitions_def"], backfill_policy=spec["backfill_policy"],
        check_specs=spec["check_specs"], can_subset=True)


def build_monitoring_assets(partitions: AssayPartitions) -> list:
    return [skippable_asset(drift_spec(partitions))(drift_summary),
            skippable_asset(performance_spec(partitions))(model_performance),
            asset(**source_drift_spec(partitions))(source_drift),
            asset(**monitoring_metrics_spec(partitions))(monitoring_metrics)]
