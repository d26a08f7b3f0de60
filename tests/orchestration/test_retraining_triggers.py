"""Retraining is requested on a sustained crossing, not a blip, and not again during the cooldown; a promotion
re-scores the newest snapshot."""

from __future__ import annotations

from datetime import date, timedelta

import polars as pl
from dagster import (
    AssetKey,
    AssetMaterialization,
    DagsterInstance,
    RunRequest,
    SkipReason,
    build_sensor_context,
)

from assets.monitoring.triggers import RetrainPolicy, retraining_trigger
from orchestration.automation import rescore_after_promotion, retraining_sensor
from orchestration.partitions import snapshot_partitions
from resources.lake import LakeResource

MONDAY = date(2025, 3, 3)
POLICY = RetrainPolicy(drift_share=0.5, auc_decay=0.03, consecutive=2, cooldown_days=28)


def _metrics(metric: str, values: list[float]) -> pl.DataFrame:
    return pl.DataFrame({"snapshot_date": [MONDAY + timedelta(weeks=k) for k in range(len(values))],
                         "metric": [metric] * len(values), "column": ["*"] * len(values), "value": values})


def test_a_single_snapshot_over_the_limit_is_not_enough():
    assert retraining_trigger(_metrics("drift_share", [0.1, 0.2, 0.7]), POLICY, None) is None
    assert retraining_trigger(_metrics("drift_share", [0.7, 0.7, 0.2]), POLICY, None) is None  # it recovered


def test_consecutive_crossings_trigger_with_the_reason_and_the_snapshots():
    trigger = retraining_trigger(_metrics("drift_share", [0.1, 0.6, 0.7]), POLICY, None)
    assert trigger is not None and trigger.reason == "drift" and trigger.snapshot == MONDAY + timedelta(weeks=2)
    decay = retraining_trigger(_metrics("auc_decay", [0.0, 0.04, 0.05]), POLICY, None)
    assert decay is not None and decay.reason == "performance-decay"


def test_cooldown_holds_back_a_second_request():
    metrics = _metrics("drift_share", [0.6, 0.7, 0.8, 0.9])
    newest = MONDAY + timedelta(weeks=3)
    assert retraining_trigger(metrics, POLICY, newest - timedelta(weeks=1)) is None
    assert retraining_trigger(metrics, POLICY, newest - timedelta(days=28)) is not None


def test_sensor_requests_once_then_cools_down(tmp_path):
    lake = LakeResource(root=str(tmp_path / "lake"))
    with DagsterInstance.ephemeral() as instance:
        assert isinstance(retraining_sensor(build_sensor_context(instance=instance, resources={"lake": lake})),
                          SkipReason)
        lake.overwrite("gold", "monitoring_metrics", _metrics("drift_share", [0.2, 0.6, 0.7]))
        context = build_sensor_context(instance=instance, resources={"lake": lake})
        request = retraining_sensor(context)
        assert isinstance(request, RunRequest)
        assert request.tags["assay/reason"] == "monitoring-drift"
        assert request.tags["assay/trigger_snapshot"] == (MONDAY + timedelta(weeks=2)).isoformat()
        again = build_sensor_context(instance=instance, resources={"lake": lake}, cursor=context.cursor)
        assert isinstance(retraining_sensor(again), SkipReason)


def test_a_promotion_rescores_the_newest_snapshot_and_a_rejection_does_not():
    with DagsterInstance.ephemeral() as instance:
        key = AssetKey(["models", "champion"])
        instance.report_runless_asset_event(AssetMaterialization(key, metadata={"decision": "rejected"}))
        [skip] = list(rescore_after_promotion(build_sensor_context(instance=instance)))
        assert isinstance(skip, SkipReason)
        instance.report_runless_asset_event(AssetMaterialization(
            key, metadata={"decision": "promoted", "challenger_version": "v2"}))
        [request] = list(rescore_after_promotion(build_sensor_context(instance=instance)))
        assert isinstance(request, RunRequest)
        assert request.partition_key == snapshot_partitions.get_last_partition_key()
        assert request.tags == {"assay/reason": "champion-promoted", "assay/champion_version": "v2"}
