"""Jobs, schedules and sensors: what starts a run, in production (the daemon) and under `assay tick`.

| trigger | starts | default |
| --- | --- | --- |
| `landing_sensor` | ingestion of each new or changed landing day, one run per run of consecutive days | on |
| `snapshot_automation` | a snapshot's features, scores and drift once its landing week is in; its labels | on |
|  | and matured performance once its horizon has landed (assets/conditions.py) | |
| `retraining_sensor` | retraining when monitoring crosses its limits | on |
| `monthly_retraining_schedule` | retraining on the first of the month; the gate decides | on |
| `rescore_after_promotion` | re-scoring of the newest snapshot after a promotion | on |
| `dsar_sensor` | data-subject requests | on |
| `daily_retention_schedule` | deletes data past its retention period | off: turn on once the policy is yours |
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta

import polars as pl
from dagster import (
    AssetKey,
    AssetRecordsFilter,
    AssetSelection,
    AutomationConditionSensorDefinition,
    DagsterRunStatus,
    DefaultScheduleStatus,
    DefaultSensorStatus,
    RunRequest,
    RunsFilter,
    ScheduleDefinition,
    ScheduleEvaluationContext,
    SensorDefinition,
    SensorEvaluationContext,
    SkipReason,
    define_asset_job,
    schedule,
    sensor,
)

from assets.governance.dsar import requests
from assets.ingestion.landing import landing_fingerprints
from assets.monitoring.triggers import RetrainPolicy, refit_run_config, refit_trigger, retraining_trigger
from assets.partitions import AssayPartitions
from domain.contract import SOURCES
from resources.assay import AssayResource
from resources.lake import LakeResource
from resources.registry import DECISIONS_TABLE, REGISTRY_TABLE

# The selections every job, the backfill (`assay run`) and the clock use; defined once, here.
LABELS = AssetSelection.assets(AssetKey(["marts", "churn_labels"]), AssetKey(["gold", "churn_labels"]))
METRICS = AssetSelection.assets(AssetKey(["gold", "monitoring_metrics"]))  # the union the sensors read
PERFORMANCE = AssetSelection.assets(AssetKey(["monitoring", "model_performance"])) | METRICS
MATURED = LABELS | PERFORMANCE  # built a horizon after their snapshot, never by the weekly run
FEATURES = AssetSelection.groups("features") - MATURED
SCORES = AssetSelection.assets(AssetKey(["gold", "customer_scores"]))
DRIFT = AssetSelection.assets(AssetKey(["monitoring", "drift_summary"])) | METRICS
SOURCE_CHECKS = AssetSelection.assets(AssetKey(["monitoring", "source_drift"])) | METRICS
TUNING = AssetSelection.assets(AssetKey(["models", "lightgbm_params"]))
MODEL = AssetSelection.assets(AssetKey(["models", "churn_model"]), AssetKey(["models", "champion"]),
                              AssetKey(["reports", "model_card"]))
SIMULATION = AssetSelection.assets(AssetKey(["gold", "threshold_simulation"]))
GOVERNANCE = AssetSelection.groups("governance")
WAREHOUSE = AssetSelection.assets(AssetKey(["warehouse", "analyst_views"]))
MAX_DAYS_PER_RUN = 31  # an ingestion run of a longer outage is split, in order


def lay_over(base: Mapping, top: Mapping) -> dict:
    """`top` laid over `base` field by field. Dagster applies a job's default run config only down to an op's key:
    a run config naming `models__churn_model` replaces that asset's whole default config, so whoever makes a run
    config for a job with defaults lays it over them first."""
    out = dict(base)
    for key, value in top.items():
        out[key] = lay_over(out[key], value) if isinstance(value, Mapping) and isinstance(out.get(key), Mapping) \
            else value
    return out


def range_tags(keys: list[str]) -> dict[str, str]:
    """Tags that make one run cover a range of partitions (what a single-run backfill sets)."""
    return {"dagster/asset_partition_range_start": keys[0], "dagster/asset_partition_range_end": keys[-1]}


def consecutive_runs(days: list[str], max_len: int) -> list[list[str]]:
    """Sorted ISO days split into runs of consecutive days, each at most `max_len` long."""
    runs: list[list[str]] = []
    for day in sorted(days):
        if runs and len(runs[-1]) < max_len and date.fromisoformat(runs[-1][-1]) + timedelta(days=1) == \
                date.fromisoformat(day):
            runs[-1].append(day)
        else:
            runs.append([day])
    return runs


def landing_requests(current: dict[str, str], seen: dict[str, str], valid_days: set[str]) -> list[RunRequest]:
    """One request per run of consecutive days whose landing files are new or changed since `seen`."""
    changed = sorted(day for day, fp in current.items() if seen.get(day) != fp and day in valid_days)
    out = []
    for days in consecutive_runs(changed, MAX_DAYS_PER_RUN):
        # a key that changes when any of the days' files do
        digest = hashlib.sha256("|".join(current[d] for d in days).encode()).hexdigest()[:16]
        tags = {"assay/reason": "new-landing-files", "assay/landing_days": f"{days[0]}..{days[-1]}"}
        if len(days) == 1:
            out.append(RunRequest(run_key=f"{days[0]}:{current[days[0]]}", partition_key=days[0], tags=tags))
        else:
            out.append(RunRequest(run_key=f"{days[0]}..{days[-1]}:{digest}", tags={**tags, **range_tags(days)}))
    return out


def landing_cursor(seen: dict[str, str], current: dict[str, str], valid: set[str]) -> str:
    return json.dumps({**seen, **{d: fp for d, fp in current.items() if d in valid}}, sort_keys=True)


def ingested_days(instance) -> set[str]:
    """Days whose bronze partitions of every source are materialized in the instance (one page of records a
    source at a time)."""
    days: set[str] | None = None
    for source in SOURCES:
        found, cursor = set(), None
        while True:
            page = instance.fetch_materializations(AssetRecordsFilter(asset_key=AssetKey(["bronze", source])),
                                                   limit=1000, cursor=cursor)
            found |= {r.partition_key for r in page.records if r.partition_key}
            if not page.has_more:
                break
            cursor = page.cursor
        days = found if days is None else days & found
    return days or set()


def landing_sensor_fn(daily_keys):
    def landing_sensor(context: SensorEvaluationContext, assay: AssayResource):
        current = landing_fingerprints(assay.landing_path, list(SOURCES))
        if context.cursor:
            seen: dict[str, str] = json.loads(context.cursor)
        else:
            # A first tick on a home a backfill (`assay run`) or the clock built: days the instance has ingested
            # count as seen, or the daemon's first tick would ingest the whole history again.
            seen = {day: current[day] for day in ingested_days(context.instance) if day in current}
        valid = set(daily_keys())  # a folder dated outside the partitions is not a day Assay ingests
        found = landing_requests(current, seen, valid)
        if not found:
            return SkipReason("no new or changed landing days")
        context.update_cursor(landing_cursor(seen, current, valid))
        return found

    return landing_sensor


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


def retraining_sensor_with_defaults(defaults: Mapping):
    """`retraining_sensor` whose requests keep the deployment's modelling defaults (a refit only adds `fit_from`)."""
    def retraining_sensor_fn(context: SensorEvaluationContext, lake: LakeResource):
        result = retraining_sensor(context, lake)
        if isinstance(result, RunRequest) and defaults:
            return result.with_replaced_attrs(run_config=lay_over(defaults, result.run_config))
        return result

    return retraining_sensor_fn


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
    # A backfill that trained, promoted and then scored (`assay run`) leaves nothing to do: the daemon's first tick
    # on such a home must not score the newest snapshot again.
    scored_by = (lake.scan("gold", "customer_scores").filter(pl.col("snapshot_date") == newest)
                 .select(pl.col("model_version").unique()).collect().get_column("model_version").to_list())
    if scored_by == [version]:
        return SkipReason(f"the newest scored snapshot, {newest}, is already scored by the champion {version}")
    return RunRequest(run_key=f"rescore-{version}-{newest}", partition_key=newest.isoformat(), tags={
        "assay/reason": "champion-promoted", "assay/champion_version": version})


DSAR_RETRY_SECONDS = 60  # after the first failed run; doubled after each further one, at most an hour


def dsar_sensor(context: SensorEvaluationContext, lake: LakeResource):
    pending = requests(lake).filter(pl.col("status") == "pending").sort("deadline")
    if pending.height == 0:
        return SkipReason("no pending data-subject requests")
    ids = pending.get_column("request_id").to_list()
    handles = ",".join(ids)[:200]
    # One run for the pending requests; it handles them all. A failed run (a warehouse held open by an analyst, a
    # crash) leaves them pending; they are asked for again under a new key, later after each failure, rather than
    # waiting for another request to change the key.
    runs = context.instance.get_run_records(RunsFilter(job_name="dsar_job", tags={"assay/dsar_requests": handles}))
    if any(not r.dagster_run.is_finished for r in runs):
        return SkipReason("a DSAR run for these requests is queued or running")
    failed = [r for r in runs if r.dagster_run.status == DagsterRunStatus.FAILURE]
    if failed:
        wait = min(DSAR_RETRY_SECONDS * 2 ** (len(failed) - 1), 3600)
        last = max(r.end_time or r.create_timestamp.timestamp() for r in failed)
        if time.time() - last < wait:
            return SkipReason(f"{len(failed)} DSAR run(s) for these requests failed; the next try is "
                              f"{wait:.0f} s after the last")
    return RunRequest(run_key="|".join(ids) + (f"#retry-{len(failed)}" if failed else ""), tags={
        "assay/reason": "data-subject-request", "assay/dsar_requests": handles,
        "assay/dsar_earliest_deadline": str(pending.item(0, "deadline"))})


def retention_schedule_fn(context: ScheduleEvaluationContext):
    # retention is measured from the day the schedule fired for, so a late or replayed tick deletes what that day would
    day = context.scheduled_execution_time.date().isoformat()
    return RunRequest(run_key=f"retention-{day}", tags={"assay/reason": "retention-policy"},
                      run_config={"ops": {"governance__retention": {"config": {"as_of": day}}}})


@dataclass(frozen=True)
class Automation:
    jobs: list  # asset jobs, resolved against the asset graph by Definitions
    schedules: list[ScheduleDefinition]
    sensors: list[SensorDefinition]


def build_automation(partitions: AssayPartitions, retraining_config: dict | None = None) -> Automation:
    """`retraining_config`: the deployment's defaults for the modelling assets' run config."""
    ingestion_job = define_asset_job(
        "ingestion_job", selection=AssetSelection.groups("ingestion"), partitions_def=partitions.daily,
        description="Validate landing days of every source into bronze and quarantine.")
    weekly_snapshot_job = define_asset_job(
        "weekly_snapshot_job", selection=FEATURES | SCORES | DRIFT | SOURCE_CHECKS,
        partitions_def=partitions.snapshots,
        description="dbt features → Delta feature store → scores → drift and source checks, for snapshot dates. "
                    "What snapshot_automation runs each week; launch it by hand to rebuild a snapshot.")
    matured_labels_job = define_asset_job(
        "matured_labels_job", selection=MATURED, partitions_def=partitions.snapshots,
        description="Labels and matured performance of snapshots whose horizon has landed (what "
                    "snapshot_automation runs a horizon after each snapshot).")
    retraining_job = define_asset_job(
        "retraining_job", selection=AssetSelection.groups("modeling"),
        description="Retrain the churn model on the newest labelled snapshots and register it.",
        tags={"assay/reason": "manual-or-scheduled-retraining"}, config=retraining_config or None)
    publish_job = define_asset_job(
        "publish_job", selection=SIMULATION | GOVERNANCE | WAREHOUSE,
        description="Campaign economics, the consented audience export, the segment report and the analyst views, "
                    "from the newest scores.")
    rescoring_job = define_asset_job(
        "rescoring_job", selection=SCORES,
        partitions_def=partitions.snapshots, description="Score a snapshot again with the current champion.")
    retention_job = define_asset_job(
        "retention_job", selection=AssetSelection.groups("retention"),
        description="Delete and vacuum what is older than each table's retention period; purge old landing days.",
        tags={"assay/reason": "retention-policy"})
    dsar_job = define_asset_job(
        "dsar_job", selection=AssetSelection.groups("dsar"),
        description="Handle pending data-subject requests (access, erasure, opt-out).")

    schedules = [
        ScheduleDefinition(
            name="monthly_retraining_schedule", job=retraining_job, cron_schedule="0 5 1 * *",
            tags={"assay/reason": "monthly-retraining"}, default_status=DefaultScheduleStatus.RUNNING,
            description="Retrain on the first day of each month whatever the monitoring says; the gate decides."),
        schedule(name="daily_retention_schedule", job=retention_job, cron_schedule="0 4 * * *",
                 default_status=DefaultScheduleStatus.STOPPED,
                 description="Applies the retention policy every day at 04:00 UTC, as of that day. Off by default: "
                             "it deletes data.")(retention_schedule_fn),
    ]
    running = DefaultSensorStatus.RUNNING
    sensors = [
        sensor(name="landing_sensor", job=ingestion_job, minimum_interval_seconds=60, default_status=running,
               description="Launches ingestion of each landing day whose files are new or changed: one run per "
                           f"run of consecutive days (at most {MAX_DAYS_PER_RUN} days a run), oldest first.")(
            landing_sensor_fn(partitions.daily.get_partition_keys)),
        AutomationConditionSensorDefinition(
            "snapshot_automation", target=AssetSelection.all(),
            default_status=running, minimum_interval_seconds=60,
            description="Builds each snapshot once its landing week is in, and its labels and matured "
                        "performance once its horizon has landed (the rules in assets/conditions.py)."),
        sensor(name="retraining_sensor", job=retraining_job, minimum_interval_seconds=300, default_status=running,
               description="Requests a retraining run when the raw sources shift, or matured AUC or calibration "
                           "decays, past its limit on consecutive snapshots (ASSAY_RETRAIN_* environment "
                           "variables), at most once per cooldown; after such a change, once more when enough "
                           "snapshots from it have matured, fitted on those alone (ASSAY_RETRAIN_REFIT_WEEKS, "
                           "_REFIT_SNAPSHOTS).")(retraining_sensor_with_defaults(retraining_config or {})),
        sensor(name="rescore_after_promotion", job=rescoring_job, minimum_interval_seconds=60,
               default_status=running,
               description="After a promotion (by the gate or a rollback), re-scores the newest scored snapshot "
                           "with the new champion.")(rescore_after_promotion),
        sensor(name="dsar_sensor", job=dsar_job, minimum_interval_seconds=60, default_status=running,
               description="Launches dsar_job when governance/dsar_requests has pending requests (oldest deadline "
                           "first).")(dsar_sensor),
    ]
    jobs = [ingestion_job, weekly_snapshot_job, matured_labels_job, retraining_job, rescoring_job, publish_job,
            retention_job, dsar_job]
    return Automation(jobs=jobs, schedules=schedules, sensors=sensors)
