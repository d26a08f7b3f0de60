"""Retraining is requested on a sustained crossing, not a blip, and not again during the cooldown; a promotion
re-scores the newest snapshot."""

from __future__ import annotations

from datetime import date, timedelta

import polars as pl
from dagster import (
    DagsterInstance,
    RunRequest,
    SkipReason,
    build_sensor_context,
)

from assets.monitoring.triggers import RetrainPolicy, retraining_trigger
from orchestration.automation import rescore_after_promotion, retraining_sensor
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
        lake.overwrite("gold", "monitoring_metrics", _metrics("source_shifted_columns", [0.0, 1.0, 1.0]))
        context = build_sensor_context(instance=instance, resources={"lake": lake})
        request = retraining_sensor(context)
        assert isinstance(request, RunRequest)
        assert request.tags["assay/reason"] == "monitoring-input-drift"
        assert request.tags["assay/trigger_snapshot"] == (MONDAY + timedelta(weeks=2)).isoformat()
        again = build_sensor_context(instance=instance, resources={"lake": lake}, cursor=context.cursor)
        assert isinstance(retraining_sensor(again), SkipReason)


def test_source_shift_is_the_default_drift_trigger_and_the_evidently_share_is_not():
    default = RetrainPolicy()
    shifted = _metrics("source_shifted_columns", [0.0, 1.0, 2.0])
    trigger = retraining_trigger(shifted, default, None)
    assert trigger is not None and trigger.reason == "input-drift"
    # the drift share against the training reference sits near 0.5 on a world without drift: not a trigger
    assert retraining_trigger(_metrics("drift_share", [0.7, 0.8, 0.9]), default, None) is None
    assert retraining_trigger(_metrics("drift_share", [0.7, 0.8, 0.9]), POLICY, None) is not None


def test_a_promotion_rescores_the_newest_scored_snapshot_once_and_a_rejection_does_not(tmp_path):
    from datetime import UTC, datetime

    lake = LakeResource(root=str(tmp_path / "lake"))
    newest = MONDAY + timedelta(weeks=5)
    lake.overwrite("gold", "customer_scores", pl.DataFrame({"snapshot_date": [MONDAY, newest],
                                                           "p_churn": [0.1, 0.2]}))

    def decide(version: str, action: str) -> None:
        lake.append("gold", "model_decisions", pl.DataFrame({
            "decided_at": [datetime.now(UTC)], "version": [version], "action": [action], "actor": ["gate"],
            "details": ["{}"]}))

    with DagsterInstance.ephemeral() as instance:
        def tick(cursor):
            context = build_sensor_context(instance=instance, resources={"lake": lake}, cursor=cursor)
            return rescore_after_promotion(context), context.cursor

        assert isinstance(tick(None)[0], SkipReason)
        decide("v1", "rejected")
        skipped, cursor = tick(None)
        assert isinstance(skipped, SkipReason)
        decide("v2", "promoted")
        decide("v3", "promoted")  # two promotions between ticks: one re-scoring, with the last champion
        request, cursor = tick(cursor)
        assert isinstance(request, RunRequest)
        assert request.partition_key == newest.isoformat()
        assert request.tags == {"assay/reason": "champion-promoted", "assay/champion_version": "v3"}
        assert isinstance(tick(cursor)[0], SkipReason)


def test_an_input_change_is_refitted_once_its_weeks_can_reach_the_fit_window(tmp_path, monkeypatch):
    from assets.modeling.training import fit_lag_weeks
    from assets.monitoring.triggers import refit_trigger

    # 90-day labels, 4 validation, 4 calibration and 4 early-stopping snapshots, each held-out fold purged by the
    # horizon: the newest fitted snapshot is 13 + 3 + 13 + 3 + 13 + 4 = 49 weeks before the training day
    assert fit_lag_weeks(90, 4, 4, 4) == 49
    assert fit_lag_weeks(28, 2, 2, 2) == 16
    policy = RetrainPolicy(refit_weeks=2, refit_snapshots=2)  # due 2 + 2 - 1 = 3 weeks after the change
    quiet = _metrics("source_shifted_columns", [0.0] * 4)
    assert refit_trigger(quiet, None, policy) is None
    assert refit_trigger(quiet, MONDAY + timedelta(weeks=1), policy) is None  # newest is only 2 weeks after
    due = refit_trigger(quiet, MONDAY, policy)
    assert due is not None and due.reason == "post-change-refit" and due.snapshot == MONDAY + timedelta(weeks=3)

    monkeypatch.setenv("ASSAY_RETRAIN_REFIT_WEEKS", "2")
    monkeypatch.setenv("ASSAY_RETRAIN_REFIT_SNAPSHOTS", "2")
    lake = LakeResource(root=str(tmp_path / "lake"))
    reasons, configs = [], []
    cursor = None
    with DagsterInstance.ephemeral() as instance:
        # the change shows on weeks 1-2, then the sources are quiet again; the cooldown (28 days) would hold back
        # any ordinary request until week 6
        for values in ([0.0], [0.0, 1.0], [0.0, 1.0, 1.0], [0.0, 1.0, 1.0, 0.0], [0.0, 1.0, 1.0, 0.0, 0.0],
                       [0.0, 1.0, 1.0, 0.0, 0.0, 0.0]):
            lake.overwrite("gold", "monitoring_metrics", _metrics("source_shifted_columns", values))
            context = build_sensor_context(instance=instance, resources={"lake": lake}, cursor=cursor)
            result = retraining_sensor(context)
            cursor = context.cursor
            reasons.append(result.tags["assay/reason"] if isinstance(result, RunRequest) else "")
            configs.append(result.run_config if isinstance(result, RunRequest) else None)
    # request at week 2 (second crossing), refit 3 weeks after the change was first seen (week 1): week 4, once
    assert reasons == ["", "", "monitoring-input-drift", "", "monitoring-post-change-refit", ""]
    # the first request fits on what there is; the refit only on the snapshots from the change on
    assert configs[2] == {}
    assert configs[4] == {"ops": {"models__churn_model": {"config": {
        "fit_from": (MONDAY + timedelta(weeks=1)).isoformat()}}}}


def test_calibration_decay_triggers_and_opens_a_change_for_the_refit(tmp_path, monkeypatch):
    from assets.monitoring.triggers import refit_trigger

    decayed = _metrics("ece_increase", [0.0, 0.004, 0.05, 0.04])
    trigger = retraining_trigger(decayed, RetrainPolicy(), None)
    assert trigger is not None and trigger.reason == "performance-decay"
    assert trigger.since == MONDAY + timedelta(weeks=2) and "ece_increase" in trigger.detail
    assert retraining_trigger(_metrics("ece_increase", [0.0, 0.05, 0.01]), RetrainPolicy(), None) is None
    assert retraining_trigger(decayed, RetrainPolicy(ece_increase=None), None) is None

    monkeypatch.setenv("ASSAY_RETRAIN_REFIT_WEEKS", "1")
    monkeypatch.setenv("ASSAY_RETRAIN_REFIT_SNAPSHOTS", "2")
    lake = LakeResource(root=str(tmp_path / "lake"))
    weeks = [MONDAY + timedelta(weeks=k) for k in range(6)]
    monitored = pl.DataFrame({"snapshot_date": weeks, "metric": "source_shifted_columns", "column": "*",
                              "value": 0.0})
    with DagsterInstance.ephemeral() as instance:
        lake.overwrite("gold", "monitoring_metrics", pl.concat([monitored.head(4), decayed]))
        context = build_sensor_context(instance=instance, resources={"lake": lake})
        first = retraining_sensor(context)
        assert first.tags["assay/reason"] == "monitoring-performance-decay"
        # the change dates from the first decayed matured snapshot (week 2): the refit is due 1 + 2 - 1 weeks on
        due = RetrainPolicy(refit_weeks=1, refit_snapshots=2)
        assert refit_trigger(monitored.head(4), weeks[2], due) is None  # week 3: one week early
        assert refit_trigger(monitored.head(5), weeks[2], due).snapshot == weeks[4]
        lake.overwrite("gold", "monitoring_metrics", pl.concat([monitored, decayed]))
        context = build_sensor_context(instance=instance, resources={"lake": lake}, cursor=context.cursor)
        refit = retraining_sensor(context)
        assert refit.tags["assay/reason"] == "monitoring-post-change-refit"
        assert refit.run_config["ops"]["models__churn_model"]["config"]["fit_from"] == weeks[2].isoformat()


def test_performance_decay_of_a_replaced_champion_is_no_reason_to_retrain():
    decayed = _metrics("auc_decay", [0.0, 0.05, 0.06]).with_columns(pl.lit("old").alias("model_version"))
    assert retraining_trigger(decayed, POLICY, None, champion="old") is not None
    assert retraining_trigger(decayed, POLICY, None, champion="new") is None
    # the source monitor's rows carry no model version and always count
    shifted = _metrics("source_shifted_columns", [0.0, 2.0, 1.0]).with_columns(
        pl.lit(None, dtype=pl.Utf8).alias("model_version"))
    assert retraining_trigger(shifted, RetrainPolicy(), None, champion="new").reason == "input-drift"
