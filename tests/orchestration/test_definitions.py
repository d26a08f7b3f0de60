"""The assembled definitions: what a reviewer should see change when the wiring changes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from dagster import (
    AssetKey,
    BackfillPolicy,
    DefaultScheduleStatus,
    DefaultSensorStatus,
    build_schedule_context,
    validate_run_config,
)

from assets.features.activity import ActivityPlan
from assets.features.dbt import dbt_var_environment, run_memory_limit, snapshot_vars
from assets.partitions import AssayPartitions
from domain.settings import AssaySettings
from orchestration.definitions import build_definitions

ROOT = Path(__file__).resolve().parents[2]
LABEL_KEYS = {AssetKey(["marts", "churn_labels"]), AssetKey(["gold", "churn_labels"])}
PERFORMANCE_KEY = AssetKey(["monitoring", "model_performance"])


def settings_for(home: Path, **environ: str) -> AssaySettings:
    """Settings from an explicit environment: whatever the caller exported does not change the wiring tested."""
    return AssaySettings.from_env({"ASSAY_HOME": str(home), **environ})


@pytest.fixture(scope="module")
def settings(tmp_path_factory) -> AssaySettings:
    return settings_for(tmp_path_factory.mktemp("home"))


@pytest.fixture(scope="module")
def defs(settings):
    return build_definitions(settings)


def job_keys(defs, name: str) -> set[AssetKey]:
    return set(defs.resolve_job_def(name).asset_layer.executable_asset_keys)


def test_graph_has_every_stage_with_lineage(defs):
    graph = defs.resolve_asset_graph()
    keys = {key.to_user_string() for key in graph.get_all_asset_keys()}
    expected = {
        "landing/orders", "bronze/orders", "quarantine/orders", "bronze/events", "bronze/consents",
        "staging/stg_orders", "intermediate/int_customer_daily_activity", "marts/customer_features",
        "marts/churn_labels", "gold/customer_features", "gold/churn_labels", "models/churn_model",
        "gold/customer_scores", "monitoring/drift_summary", "warehouse/analyst_views", "models/lightgbm_params",
        "models/champion", "reports/model_card", "gold/threshold_simulation",
    }
    assert expected <= keys
    # Lineage runs from landing files to the analyst views.
    upstream = graph.get(AssetKey(["warehouse", "analyst_views"])).parent_keys
    assert AssetKey(["gold", "customer_scores"]) in upstream
    assert AssetKey(["bronze", "orders"]) in graph.get(AssetKey(["staging", "stg_orders"])).parent_keys
    # the labels' population is the snapshot's features; their outcome is read from the orders themselves
    labels = graph.get(AssetKey(["marts", "churn_labels"])).parent_keys
    assert {AssetKey(["marts", "customer_features"]), AssetKey(["bronze", "orders"])} <= labels


def test_jobs_schedules_and_sensors(defs):
    assert {j.name for j in defs.jobs} == {"ingestion_job", "weekly_snapshot_job", "matured_labels_job",
                                           "retraining_job", "rescoring_job", "publish_job", "retention_job",
                                           "dsar_job"}
    schedules = {s.name: s for s in defs.schedules}
    assert {name: (s.job_name, s.default_status) for name, s in schedules.items()} == {
        "monthly_retraining_schedule": ("retraining_job", DefaultScheduleStatus.RUNNING),
        # it deletes data: off until the policy is the deployment's own
        "daily_retention_schedule": ("retention_job", DefaultScheduleStatus.STOPPED),
    }
    sensors = {s.name: s for s in defs.sensors}
    assert set(sensors) == {"landing_sensor", "snapshot_automation", "retraining_sensor", "rescore_after_promotion",
                            "dsar_sensor"}
    assert all(s.default_status == DefaultSensorStatus.RUNNING for s in sensors.values())
    assert {name: sensors[name].job_name for name in sensors if name != "snapshot_automation"} == {
        "landing_sensor": "ingestion_job", "retraining_sensor": "retraining_job",
        "rescore_after_promotion": "rescoring_job", "dsar_sensor": "dsar_job"}
    # retention deletes data: only its own job selects it
    retention = AssetKey(["governance", "retention"])
    assert [j.name for j in defs.jobs if retention in job_keys(defs, j.name)] == ["retention_job"]


def test_labels_are_built_when_they_mature_never_by_the_weekly_run(defs):
    weekly = job_keys(defs, "weekly_snapshot_job")
    assert not (LABEL_KEYS | {PERFORMANCE_KEY}) & weekly
    assert {AssetKey(["gold", "customer_features"]), AssetKey(["gold", "customer_scores"]),
            AssetKey(["monitoring", "drift_summary"]), AssetKey(["monitoring", "source_drift"])} <= weekly
    matured = job_keys(defs, "matured_labels_job")
    assert LABEL_KEYS | {PERFORMANCE_KEY} <= matured
    # and nothing of the weekly build: a horizon later, a snapshot's features and scores are long built
    assert not matured & {AssetKey(["marts", "customer_features"]), AssetKey(["gold", "customer_features"]),
                          AssetKey(["gold", "customer_scores"]), AssetKey(["monitoring", "drift_summary"])}


def test_the_retention_schedule_measures_from_the_day_it_fired_for(defs):
    schedule = next(s for s in defs.schedules if s.name == "daily_retention_schedule")
    with build_schedule_context(scheduled_execution_time=datetime(2025, 3, 1, 4, tzinfo=UTC)) as context:
        [request] = schedule.evaluate_tick(context).run_requests
    validated = validate_run_config(defs.resolve_job_def("retention_job"), request.run_config)
    assert validated["ops"]["governance__retention"]["config"]["as_of"] == "2025-03-01"
    assert request.run_key == "retention-2025-03-01"


def test_snapshot_partition_reads_the_landing_days_of_the_week_before(defs):
    graph = defs.resolve_asset_graph()
    days = upstream_days(graph, AssetKey(["staging", "stg_orders"]), "2024-07-08")
    assert days[0] == "2024-07-01" and days[-1] == "2024-07-07" and len(days) == 7


def test_a_snapshot_label_reads_the_orders_of_its_horizon_in_whole_weeks(defs, settings):
    assert settings.label_horizon_days == 90
    days = upstream_days(defs.resolve_asset_graph(), AssetKey(["marts", "churn_labels"]), "2024-07-08")
    # [T, T + 90) rounded up to 13 weeks: one day more than the label needs, never one less
    assert days[0] == "2024-07-08" and days[-1] == "2024-10-06" and len(days) == 13 * 7
    partitions = AssayPartitions.from_settings(settings)
    assert partitions.label_due(date(2024, 7, 8)) == date(2024, 10, 7)  # the day after the last of them


def upstream_days(graph, key: AssetKey, snapshot: str) -> list[str]:
    """The bronze/orders landing days that a snapshot partition of `key` depends on."""
    orders = AssetKey(["bronze", "orders"])
    snapshots, daily = graph.get(key).partitions_def, graph.get(orders).partitions_def
    mapping = graph.get_partition_mapping(key, orders)
    result = mapping.get_upstream_mapped_partitions_result_for_partitions(
        snapshots.empty_subset().with_partition_keys([snapshot]), snapshots, daily)
    assert not result.required_but_nonexistent_subset.get_partition_keys()
    return sorted(result.partitions_subset.get_partition_keys())


def test_snapshot_vars_are_sorted_iso_dates_with_the_window_settings():
    assert snapshot_vars(["2024-07-08", "2024-07-01"], 90, 365, date(2026, 1, 1)) == {
        "snapshot_dates": ["2024-07-01", "2024-07-08"], "label_horizon_days": 90, "active_window_days": 365,
        "data_end": "2026-01-01",
    }
    assert snapshot_vars(["2024-07-01"], 30, 180, None)["data_end"] is None
    with pytest.raises(ValueError):
        snapshot_vars([], 90, 365, None)


def test_a_runs_vars_travel_as_environment_variables_each_one_set():
    env = dbt_var_environment({**snapshot_vars(["2024-07-08", "2024-07-01"], 90, 365, None),
                               "activity_from": "2024-06-30"})
    assert env == {"ASSAY_DBT_SNAPSHOT_DATES": "2024-07-01,2024-07-08", "ASSAY_DBT_LABEL_HORIZON_DAYS": "90",
                   "ASSAY_DBT_ACTIVE_WINDOW_DAYS": "365", "ASSAY_DBT_DATA_END": "",
                   "ASSAY_DBT_ACTIVITY_FROM": "2024-06-30", "ASSAY_DBT_LANDING_FROM": "",
                   "ASSAY_DBT_MEMORY_LIMIT": ""}
    with pytest.raises(ValueError, match="do not read"):
        dbt_var_environment({"snapshot_date": "2024-07-01"})


def test_a_weekly_run_gets_the_incremental_memory_limit_a_backfill_or_rebuild_the_general_one():
    def plan(recompute_from: str | None, full_refresh: bool = False) -> ActivityPlan:
        return ActivityPlan(full_refresh, date.fromisoformat(recompute_from) if recompute_from else None, 1, {})

    week = ["2025-12-29"]
    assert run_memory_limit(week, plan("2025-12-22"), "600MB") == "600MB"  # the week that landed
    assert run_memory_limit(week, plan(None), "600MB") == "600MB"  # nothing changed
    assert run_memory_limit(week, None, "600MB") == "600MB"  # a label run
    outage = ["2025-12-15", "2025-12-22", "2025-12-29"]
    assert run_memory_limit(outage, plan("2025-11-17"), "600MB") == "600MB"  # 28 days before its first snapshot
    assert run_memory_limit(week, plan("2025-10-01"), "600MB") is None  # an old correction recomputes months
    assert run_memory_limit(week, plan(None, full_refresh=True), "600MB") is None  # the activity table rebuilt
    backfill = [(date(2025, 1, 6) + timedelta(weeks=i)).isoformat() for i in range(9)]
    assert run_memory_limit(backfill, None, "600MB") is None  # more snapshots than a weekly run


def test_partitions_are_bounded_by_the_day_asked_not_the_calendar(settings):
    assert settings.end_date is None  # open-ended: the partitions grow with the calendar
    partitions = AssayPartitions.from_settings(settings)
    days = partitions.days_before(date(2024, 3, 1))
    assert days[0] == "2024-01-01" and days[-1] == "2024-02-29" and len(days) == 60
    snapshots = partitions.snapshots_through(date(2024, 7, 15))
    assert snapshots == ["2024-07-01", "2024-07-08", "2024-07-15"]  # a snapshot exists from its own date on
    assert partitions.snapshots_through(date(2024, 7, 14)) == snapshots[:2]


def test_backfill_steps_cover_what_has_landed_with_labels_only_for_matured_snapshots(settings):
    from orchestration.backfill import STEP_NAMES, backfill_steps

    partitions = AssayPartitions.from_settings(settings)
    end = date(2024, 10, 7)  # exclusive
    steps = backfill_steps(partitions, end, score_snapshots=4, drift_snapshots=2, snapshots_per_run=3)
    assert list(steps) == [name for name in STEP_NAMES if name in steps]  # in the order they run
    assert {"ingestion", "features", "labels", "tuning", "model", "scores", "performance", "drift", "sources",
            "simulation", "governance", "warehouse", "retention"} <= set(steps)
    assert steps["ingestion"].keys == partitions.days_before(end) and steps["ingestion"].keys[-1] == "2024-10-06"
    snapshots = steps["features"].keys
    assert snapshots[0] == "2024-07-01" and snapshots[-1] == "2024-10-07" and len(snapshots) == 15
    assert (steps["features"].job, steps["features"].chunk) == ("weekly_snapshot_job", 3)
    # 2024-07-08's label reads the orders up to 2024-10-06, the last day landed; 2024-07-15's would need more
    assert steps["labels"].keys == ["2024-07-01", "2024-07-08"]
    assert steps["scores"].keys == snapshots[-4:]
    assert steps["performance"].keys == []  # its matured snapshots were not scored
    assert steps["drift"].keys == steps["sources"].keys == snapshots[-2:]
    assert all(steps[name].keys is None for name in ("tuning", "model", "simulation", "governance", "warehouse"))
    every = backfill_steps(partitions, end)
    assert every["performance"].keys == every["labels"].keys and every["scores"].keys == snapshots


def test_each_backfill_step_selects_assets_of_its_own_job(defs, settings):
    from orchestration.backfill import backfill_steps

    graph = defs.resolve_asset_graph()
    steps = backfill_steps(AssayPartitions.from_settings(settings), date(2025, 1, 6))
    for name, step in steps.items():
        in_job = job_keys(defs, step.job)
        selected = step.selection.resolve(graph) if step.selection is not None else in_job
        assert selected and selected <= in_job, name
    assert steps["features"].selection.resolve(graph).isdisjoint(LABEL_KEYS | {PERFORMANCE_KEY})
    assert steps["labels"].selection.resolve(graph) == LABEL_KEYS


class Recorder:
    """Stands in for `execute_job`: records each run the backfill would start."""

    def __init__(self) -> None:
        self.runs: list[dict] = []

    def __call__(self, defs, instance, job_name, **kwargs):
        self.runs.append({"job": job_name, **kwargs})
        return type("Result", (), {"success": True})()


def test_feature_backfills_run_in_chunks_of_snapshots(defs, settings, monkeypatch):
    from orchestration import backfill

    per_run = settings.feature_snapshots_per_run
    graph = defs.resolve_asset_graph()
    for mart in ("customer_features", "churn_labels"):
        assert graph.get(AssetKey(["marts", mart])).backfill_policy == BackfillPolicy.multi_run(per_run), mart
    recorder = Recorder()
    monkeypatch.setattr(backfill, "execute_job", recorder)
    keys = [f"2024-{m:02d}-01" for m in range(1, 8)]
    step = backfill.Step("weekly_snapshot_job", None, keys, chunk=3)
    assert backfill.run_step(defs, None, "features", step) == 3
    assert [r["partition_keys"] for r in recorder.runs] == [keys[0:3], keys[3:6], keys[6:]]
    assert all(r["job"] == "weekly_snapshot_job" and r["tags"]["assay/reason"] == "backfill-features"
               for r in recorder.runs)
    assert backfill.run_step(defs, None, "features", backfill.Step("weekly_snapshot_job", None, keys)) == 1
    assert recorder.runs[-1]["partition_keys"] == keys  # no chunk: one run
    assert backfill.run_step(defs, None, "labels", backfill.Step("matured_labels_job", None, [])) == 0
    assert len(recorder.runs) == 4  # nothing matured: no run at all
    with pytest.raises(ValueError, match="at least 1"):
        AssaySettings.from_env({"ASSAY_FEATURE_SNAPSHOTS_PER_RUN": "0"})


def test_a_failed_backfill_run_stops_the_backfill(defs, monkeypatch):
    from orchestration import backfill

    monkeypatch.setattr(backfill, "execute_job", lambda *a, **k: type("Result", (), {"success": False})())
    with pytest.raises(RuntimeError, match="features"):
        backfill.run_step(defs, None, "features", backfill.Step("weekly_snapshot_job", None, ["2024-07-01"]))


def test_modelling_config_is_the_retraining_default_and_a_step_config_is_laid_over_it(tmp_path, monkeypatch):
    from orchestration import backfill

    modelling = {"churn_model": {"train_snapshots": 13}, "lightgbm_params": {"n_trials": 2}}
    settings = settings_for(tmp_path, ASSAY_MODELLING_CONFIG=json.dumps(modelling))
    defs = build_definitions(settings)
    job = defs.resolve_job_def("retraining_job")
    defaults = validate_run_config(job, {})["ops"]
    assert defaults["models__churn_model"]["config"]["train_snapshots"] == 13
    assert defaults["models__lightgbm_params"]["config"]["n_trials"] == 2
    assert build_definitions(settings_for(tmp_path)).resolve_job_def("retraining_job").run_config is None

    recorder = Recorder()
    monkeypatch.setattr(backfill, "execute_job", recorder)
    relaxed = {"ops": {"models__churn_model": {"config": {"min_selection_rate_ratio": 0.2}}}}
    backfill.run_step(defs, None, "model", backfill.Step("retraining_job", None, None), run_config=relaxed)
    ops = validate_run_config(job, recorder.runs[0]["run_config"])["ops"]
    model = ops["models__churn_model"]["config"]
    assert (model["train_snapshots"], model["min_selection_rate_ratio"]) == (13, 0.2)
    assert ops["models__lightgbm_params"]["config"]["n_trials"] == 2
    with pytest.raises(ValueError, match="unknown assets"):
        settings_for(tmp_path, ASSAY_MODELLING_CONFIG=json.dumps({"churn_modle": {}}))


def test_the_cli_tuning_budget_is_valid_run_config_of_the_tuning_asset(defs):
    from orchestration.cli import main, tuning_run_config

    # the backfill's tuning step runs the retraining job on the tuning asset
    job = defs.resolve_job_def("retraining_job")
    validated = validate_run_config(job, tuning_run_config(30, 600.0))
    tuning = validated["ops"]["models__lightgbm_params"]["config"]
    assert (tuning["n_trials"], tuning["timeout_seconds"]) == (30, 600.0)
    assert tuning_run_config(None, 90.0) == {"ops": {"models__lightgbm_params": {"config": {"timeout_seconds": 90.0}}}}
    assert tuning_run_config(None, None) == {}  # the asset's own defaults
    with pytest.raises(SystemExit):  # a budget that is not a number is refused before anything runs
        main(["run", "--steps", "tuning", "--tuning-trials", "many"])


# Imports a module, recording each ASSAY_* environment variable that code of this project reads (a library copying
# the whole environment, e.g. to start a subprocess, is not a read of a setting); prints the names read.
_ENV_READS = """
import json, os, sys, sysconfig
root, stdlib = sys.argv[2], sysconfig.get_paths()["stdlib"]
read = set()
getitem = os._Environ.__getitem__
def spy(self, key):
    frame = sys._getframe(1)
    while frame is not None and (frame.f_code.co_filename.startswith((stdlib, "<frozen"))):
        frame = frame.f_back  # through os.getenv, Mapping.get and the import machinery to the caller
    caller = frame.f_code.co_filename if frame is not None else ""
    if str(key).startswith("ASSAY_") and caller.startswith(root) and "/.venv/" not in caller:
        read.add(key)
    return getitem(self, key)
os._Environ.__getitem__ = spy
__import__(sys.argv[1])
print(json.dumps(sorted(read)))
"""


def env_reads(module: str) -> list[str]:
    env = {**os.environ, "ASSAY_HOME": "/nonexistent/assay", "ASSAY_END_DATE": "2025-01-01"}
    out = subprocess.run([sys.executable, "-c", _ENV_READS, module, str(ROOT) + "/"], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_importing_the_partitions_does_not_read_the_environment():
    assert env_reads("assets.partitions") == []
    # the probe sees a read when there is one: the code location reads the environment, once, on import
    assert "ASSAY_END_DATE" in env_reads("orchestration.definitions")


def test_a_finished_history_ends_its_partitions_at_the_end_date(tmp_path):
    partitions = AssayPartitions.from_settings(settings_for(tmp_path, ASSAY_END_DATE="2024-08-05"))
    later = datetime(2030, 1, 1, tzinfo=UTC)
    assert partitions.daily.get_partition_keys(current_time=later)[-1] == "2024-08-04"  # the end is exclusive
    # the snapshot on the end date is the last: its features read only the days before it
    assert partitions.snapshots.get_partition_keys(current_time=later)[-2:] == ["2024-07-29", "2024-08-05"]


def test_dagster_definitions_validate_passes(tmp_path):
    dagster = Path(sys.executable).parent / "dagster"
    env = {**os.environ, "DAGSTER_HOME": str(tmp_path)}  # an instance of its own, whatever the caller exported
    result = subprocess.run([str(dagster), "definitions", "validate", "-w", "workspace.yaml"], cwd=ROOT,
                            capture_output=True, text=True, timeout=300, env=env)
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_runs_cores_are_lightgbms_threads_unless_those_are_set_apart(tmp_path):
    """ASSAY_CORES gives a run its cores (LightGBM's threads, drift reports side by side); ASSAY_LGBM_THREADS, when
    set, overrides LightGBM's share alone; neither may be below one."""
    from domain.settings import AssaySettings
    from resources.assay import AssayResource

    def settings(**env: str) -> AssaySettings:
        return AssaySettings.from_env({"ASSAY_HOME": str(tmp_path), **env})

    assert (settings().cores, settings().lgbm_threads) == (1, 1)
    two = AssayResource.from_settings(settings(ASSAY_CORES="2"))
    assert (two.cores, two.lgbm_threads) == (2, 2)
    assert (settings(ASSAY_CORES="2", ASSAY_LGBM_THREADS="1").lgbm_threads) == 1
    for bad in ({"ASSAY_CORES": "0"}, {"ASSAY_LGBM_THREADS": "0"}):
        with pytest.raises(ValueError, match="ASSAY_CORES and ASSAY_LGBM_THREADS"):
            settings(**bad)
