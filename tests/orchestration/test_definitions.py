"""The assembled definitions: what a reviewer should see change when the wiring changes."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest
from dagster import AssetKey

from assets.features.dbt import snapshot_vars
from orchestration.definitions import defs

ROOT = Path(__file__).resolve().parents[2]


def test_graph_has_every_stage_with_lineage():
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


def test_jobs_schedules_and_sensors():
    assert {j.name for j in defs.jobs} >= {"ingestion_job", "weekly_snapshot_job", "retraining_job", "retention_job"}
    assert {s.name for s in defs.schedules} == {"daily_ingestion_schedule", "weekly_snapshot_schedule",
                                                "monthly_retention_schedule", "monthly_retraining_schedule"}
    # retention deletes data: only its own job and schedule select it
    weekly = defs.get_job_def("weekly_snapshot_job")
    assert AssetKey(["governance", "retention"]) not in weekly.asset_layer.executable_asset_keys
    assert {s.name for s in defs.sensors} == {"landing_sensor", "dsar_sensor", "retraining_sensor",
                                              "rescore_after_promotion"}


def test_snapshot_partition_reads_the_landing_days_of_the_week_before():
    graph = defs.resolve_asset_graph()
    mapped = graph.get_partition_mapping(AssetKey(["staging", "stg_orders"]), AssetKey(["bronze", "orders"]))
    from orchestration.partitions import daily_partitions, snapshot_partitions

    result = mapped.get_upstream_mapped_partitions_result_for_partitions(
        snapshot_partitions.empty_subset().with_partition_keys(["2024-07-08"]), snapshot_partitions,
        daily_partitions,
    )
    days = sorted(result.partitions_subset.get_partition_keys())
    assert days[0] == "2024-07-01" and days[-1] == "2024-07-07" and len(days) == 7


def test_snapshot_vars_are_sorted_iso_dates_with_the_window_settings():
    assert snapshot_vars(["2024-07-08", "2024-07-01"], 90, 365, date(2026, 1, 1)) == {
        "snapshot_dates": ["2024-07-01", "2024-07-08"], "label_horizon_days": 90, "active_window_days": 365,
        "data_end": "2026-01-01",
    }
    assert snapshot_vars(["2024-07-01"], 30, 180, None)["data_end"] is None
    with pytest.raises(ValueError):
        snapshot_vars([], 90, 365, None)


def test_feature_backfills_and_the_cli_run_in_chunks_of_snapshots():
    from dagster import BackfillPolicy

    from domain.settings import AssaySettings
    from orchestration.cli import chunks

    per_run = AssaySettings.from_env().feature_snapshots_per_run
    policy = defs.resolve_asset_graph().get(AssetKey(["marts", "customer_features"])).backfill_policy
    assert policy == BackfillPolicy.multi_run(per_run)
    keys = [f"k{i:02d}" for i in range(7)]
    assert chunks(keys, 3) == [["k00", "k01", "k02"], ["k03", "k04", "k05"], ["k06"]]
    assert chunks(keys, 7) == [keys] and chunks([], 3) == []
    with pytest.raises(ValueError, match="at least 1"):
        AssaySettings.from_env({"ASSAY_FEATURE_SNAPSHOTS_PER_RUN": "0"})


def test_the_cli_tuning_budget_is_valid_run_config_of_the_tuning_asset():
    from dagster import validate_run_config

    from orchestration.cli import main, tuning_run_config

    job = defs.resolve_implicit_job_def_def_for_assets([AssetKey(["models", "lightgbm_params"])])
    validated = validate_run_config(job, tuning_run_config(30, 600.0))
    tuning = validated["ops"]["models__lightgbm_params"]["config"]
    assert (tuning["n_trials"], tuning["timeout_seconds"]) == (30, 600.0)
    assert tuning_run_config(None, 90.0) == {"ops": {"models__lightgbm_params": {"config": {"timeout_seconds": 90.0}}}}
    assert tuning_run_config(None, None) == {}  # the asset's own defaults
    with pytest.raises(SystemExit):  # a budget that is not a number is refused before anything runs
        main(["run", "--steps", "tuning", "--tuning-trials", "many"])


def test_dagster_definitions_validate_passes(tmp_path):
    dagster = Path(sys.executable).parent / "dagster"
    env = {**os.environ, "DAGSTER_HOME": str(tmp_path)}  # an instance of its own, whatever the caller exported
    result = subprocess.run([str(dagster), "definitions", "validate", "-w", "workspace.yaml"], cwd=ROOT,
                            capture_output=True, text=True, timeout=300, env=env)
    assert result.returncode == 0, result.stdout + result.stderr
