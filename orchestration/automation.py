"""Jobs, schedules and sensors."""


import json
from datetime import date

import polars as pl
from dagster import (
    AssetKey,
    AssetSelection,
    DefaultSensorStatus,
    RunRequest,
    ScheduleDefinition,
    SensorEvaluationContext,
    SkipReason,
    build_schedule_from_partitioned_job,
    define_asset_job,
    sensor,
)

from assets.governance.dsar import requests
from assets.ingestion.landing import landing_fingerprints
from assets.monitoring.triggers import RetrainPolicy, refit_run_config, refit_trigger, retraining_trigger
from domain.contract import SOURCES
from orchestration.partitions import daily_partitions, snapshot_partitions
from resources.assay import AssayResource
from resources.lake import LakeResource
from resources.registry import DECISIONS_TABLE, REGISTRY_TABLE

ingestion_job = define_asset_job(
    "ingestion_job",
    selection=AssetSelection.groups("ingestion"),
    partitions_def=daily_partitions,
    description="Validate one landing day of every source into bronze and quarantine.",
)

weekly_snapshot_job = define_asset_job(
    "weekly_snapshot_job",
    selection=AssetSelection.groups("features", "scoring", "monitoring") - AssetSelection.groups("ingestion"),
    partitions_def=snapshot_partitions,
    description="dbt features and labels → Delta feature store → scores → drift, for one snapshot date.",
)

retraining_job = define_asset_job(
    "retraining_job",
    selection=AssetSelection.groups("modeling"),
    description="Retrain the churn model on the newest labelled snapshots and register it.",
    tags={"assay/reason": "manual-or-scheduled-retraining"},
)

monthly_retraining_schedule = ScheduleDefinition(
    name="monthly_retraining_schedule", job=retraining_job, cron_schedule="0 5 1 * *",
    tags={"assay/reason": "monthly-retraining"},
    description="Retrain on the first day of each month whatever the monitoring says; the gate decides.",
)

rescoring_job = define_asset_job(
    "rescoring_job",
    selection=AssetSelection.assets(AssetKey(["gold", "customer_scores"])),
    partitions_def=snapshot_partitions,
    description="Score a snapshot again with the current champion.",
)


@sensor(
    job=retraining_job,
    minimum_interval_seconds=300,
    default_status=DefaultSensorStatus.STOPPED,
    description="Requests a retraining run when the raw sources shift, or matured AUC or calibration decays, past "
                "its limit on consecutive snapshots (ASSAY_RETRAIN_* environment variables), at most once per "
                "cooldown; after such a change, once more when enough snapshots from it have matured, fitted on "
                "those alone (ASSAY_RETRAIN_REFIT_WEEKS, _REFIT_SNAPSHOTS).",
)
def retraining_sensor(context: SensorEvaluationContext, lake: LakeResource):
    if not lake.exists("gold", "monitoring_metrics"):
        return SkipReason("no monitoring metrics yet")
    policy = RetrainPolicy.from_env()
    state = json.loads(context.cursor) if context.cursor else {}
    last = date.fromisoformat(state["last_request"]) if state.get("last_request") else None
    changed = date.fromisoformat(state["changed_since"]) if state.get("changed_since") else None
    metrics = lake.scan("gold", "monitoring_metrics").collect()
    champions = (lake.scan(*REGISTRY_TABLE).filter(pl.col("status") == "champion").select("version").collect()
                 if lake.exists(*REGISTRY_TABLE) else pl.DataFrame())
    champion = champions.item(0, "version") if champions.height else None
    trigger = retraining_trigger(metrics, policy, last, champion) or refit_trigger(metrics, changed, policy)
    if trigger is None:
        return SkipReason(f"no metric over its limit on {policy.consecutive} consecutive snapshots (or cooling down)"
                          + (f"; a refit is due {policy.refit_due_weeks} weeks after {changed}" if changed else ""))
    if trigger.reason in ("input-drift", "performance-decay") and changed is None:
        changed = trigger.since  # a change already waiting for its refit keeps its first date
    elif trigger.reason == "post-change-refit":
        changed = None
    context.update_cursor(json.dumps({"last_request": trigger.snapshot.isoformat(),
                                      "changed_since": changed.isoformat() if changed else None}))
    tags = {"assay/reason": f"monitoring-{trigger.reason}", "assay/trigger_snapshot": trigger.snapshot.isoformat(),
            "assay/trigger_detail": trigger.detail[:200]}
    return RunRequest(run_key=f"retrain-{trigger.reason}-{trigger.snapshot}", run_config=refit_run_config(trigger),
                      tags=tags)


@sensor(
    job=rescoring_job,
    minimum_interval_seconds=60,
    default_status=DefaultSensorStatus.STOPPED,
    description="After a promotion (by the gate or a rollback), re-scores the newest scored snapshot with the new "
                "champion.",
)
def rescore_after_promotion(context: SensorEvaluationContext, lake: LakeResource):
    # The decisions table, not the champion asset's events: an asset sensor sees only the latest event between
    # ticks (dagster#32853), and a CLI rollback promotes without materializing anything.
    if not lake.exists(*DECISIONS_TABLE):
        return SkipReason("no model decision yet")
    seen = context.cursor or ""
    promotions = (lake.scan(*DECISIONS_TABLE).filter(pl.col("action") == "promoted").sort("decided_at")
                  .collect().filter(pl.col("decided_at").cast(pl.Utf8) > seen))
    if promotions.height == 0:
        return SkipReason("no promotion since the last tick")
    newest = (lake.scan("gold", "customer_scores").select(pl.col("snapshot_date").max()).collect().item()
              if lake.exists("gold", "customer_scores") else None)
    context.update_cursor(str(promotions.item(-1, "decided_at")))
    if newest is None:
        return SkipReason("nothing scored yet: the next weekly run scores with the new champion")
    version = promotions.item(-1, "version")  # several promotions between ticks: the last one is the champion
    return RunRequest(run_key=f"rescore-{version}-{newest}", partition_key=newest.isoformat(), tags={
        "assay/reason": "champion-promoted", "assay/champion_version": version})


daily_ingestion_schedule = build_schedule_from_partitioned_job(
    ingestion_job, name="daily_ingestion_schedule", hour_of_day=1, minute_of_hour=0
)
weekly_snapshot_schedule = build_schedule_from_partitioned_job(
    weekly_snapshot_job, name="weekly_snapshot_schedule", hour_of_day=3, minute_of_hour=0
)

retention_job = define_asset_job(
    "retention_job",
    selection=AssetSelection.groups("retention"),
    description="Delete and vacuum what is older than each table's retention period; purge old landing days.",
    tags={"assay/reason": "retention-policy"},
)
retention_schedule = ScheduleDefinition(
    name="monthly_retention_schedule", job=retention_job, cron_schedule="0 4 1 * *",
    description="Applies the retention policy on the first day of each month.",
)

dsar_job = define_asset_job(
    "dsar_job",
    selection=AssetSelection.groups("dsar"),
    description="Handle pending data-subject requests (access, erasure, opt-out).",
)


@sensor(
    job=dsar_job,
    minimum_interval_seconds=60,
    default_status=DefaultSensorStatus.STOPPED,
    description="Launches dsar_job when governance/dsar_requests has pending requests (oldest deadline first).",
)
def dsar_sensor(context: SensorEvaluationContext, lake: LakeResource):
    pending = requests(lake).filter(pl.col("status") == "pending").sort("deadline")
    if pending.height == 0:
        return SkipReason("no pending data-subject requests")
    ids = pending.get_column("request_id").to_list()
    # one run per set of pending requests; the run handles them all, so a retry after a failure is a new key
    return RunRequest(run_key="|".join(ids), tags={
        "assay/reason": "data-subject-request", "assay/dsar_requests": ",".join(ids)[:200],
        "assay/dsar_earliest_deadline": str(pending.item(0, "deadline"))})


MAX_DAYS_PER_TICK = 31


@sensor(
    job=ingestion_job,
    minimum_interval_seconds=60,
    default_status=DefaultSensorStatus.STOPPED,
    description="Launches ingestion for each landing day whose files are new or changed.",
)
def landing_sensor(context: SensorEvaluationContext, assay: AssayResource):
    seen: dict[str, str] = json.loads(context.cursor) if context.cursor else {}
    valid_days = set(daily_partitions.get_partition_keys())
    current = landing_fingerprints(assay.landing_path, list(SOURCES))
    changed = sorted(day for day, fp in current.items() if seen.get(day) != fp and day in valid_days)
    if not changed:
        return SkipReason("no new or changed landing days")
    batch = changed[:MAX_DAYS_PER_TICK]  # the rest is picked up on the next tick
    for day in batch:
        yield RunRequest(
            run_key=f"{day}:{current[day]}", partition_key=day,
            tags={"assay/reason": "new-landing-files", "assay/landing_fingerprint": current[day]},
        )
    seen.update({day: current[day] for day in batch})
    context.update_cursor(json.dumps(seen, sort_keys=True))
