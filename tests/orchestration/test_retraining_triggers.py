"""Retraining is requested on a sustained crossing, not a blip, and not again during the cooldown; a promotion
re-scores the newest snapshot. The sensors are the real ones of the assembled definitions, evaluated as the daemon
evaluates them."""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path

import polars as pl
from dagster import DagsterInstance, DefaultSensorStatus, RunRequest, build_sensor_context, validate_run_config

from assets.monitoring.triggers import RetrainPolicy, retraining_trigger
from domain.settings import AssaySettings
from orchestration.definitions import build_definitions

MONDAY = date(2025, 3, 3)
POLICY = RetrainPolicy(drift_share=0.5, auc_decay=0.03, consecutive=2, cooldown_days=28)


class Sensors:
    """The sensors of a home at `home`, each tick's run request (None: a skip, which says why) and cursor."""

    def __init__(self, home: Path, environ: dict[str, str] | None = None) -> None:
        self.defs = build_definitions(AssaySettings.from_env({"ASSAY_HOME": str(home), **(environ or {})}))
        self.lake = self.defs.resources["lake"]  # the home's lake, which the sensors read

    def sensor(self, name: str):
        return next(s for s in self.defs.sensors if s.name == name)

    def tick(self, name: str, instance, cursor: str | None = None) -> tuple[RunRequest | None, str | None]:
        with build_sensor_context(instance=instance, cursor=cursor, resources=self.defs.resources,
                                  definitions=self.defs) as context:
            result = self.sensor(name).evaluate_tick(context)
        if not result.run_requests:
            assert result.skip_message
            return None, result.cursor
        [request] = result.run_requests
        return request, result.cursor


def assay_tags(request: RunRequest) -> dict[str, str]:
    """The tags the sensor set (Dagster adds its own, e.g. the sensor's name)."""
    return {k: v for k, v in request.tags.items() if k.startswith("assay/")}


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
    home = Sensors(tmp_path)
    sensor = home.sensor("retraining_sensor")
    assert sensor.job_name == "retraining_job" and sensor.default_status == DefaultSensorStatus.RUNNING
    with DagsterInstance.ephemeral() as instance:
        assert home.tick("retraining_sensor", instance) == (None, None)  # no metrics yet
        home.lake.overwrite("gold", "monitoring_metrics", _metrics("source_shifted_columns", [0.0, 1.0, 1.0]))
        request, cursor = home.tick("retraining_sensor", instance)
        assert isinstance(request, RunRequest)
        assert request.tags["assay/reason"] == "monitoring-input-drift"
        assert request.tags["assay/trigger_snapshot"] == (MONDAY + timedelta(weeks=2)).isoformat()
        assert home.tick("retraining_sensor", instance, cursor)[0] is None


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

    home = Sensors(tmp_path)
    sensor = home.sensor("rescore_after_promotion")
    assert sensor.job_name == "rescoring_job" and sensor.default_status == DefaultSensorStatus.RUNNING
    lake = home.lake
    newest = MONDAY + timedelta(weeks=5)
    lake.overwrite("gold", "customer_scores", pl.DataFrame({"snapshot_date": [MONDAY, newest],
                                                           "p_churn": [0.1, 0.2], "model_version": ["v0", "v0"]}))

    def decide(version: str, action: str) -> None:
        lake.append("gold", "model_decisions", pl.DataFrame({
            "decided_at": [datetime.now(UTC)], "version": [version], "action": [action], "actor": ["gate"],
            "details": ["{}"]}))

    with DagsterInstance.ephemeral() as instance:
        def tick(cursor):
            return home.tick("rescore_after_promotion", instance, cursor)

        assert tick(None)[0] is None
        decide("v1", "rejected")
        skipped, cursor = tick(None)
        assert skipped is None
        decide("v2", "promoted")
        decide("v3", "promoted")  # two promotions between ticks: one re-scoring, with the last champion
        request, cursor = tick(cursor)
        assert isinstance(request, RunRequest)
        # a snapshot partition of the rescoring job (the definitions refuse a key the job does not have)
        assert request.partition_key == newest.isoformat()
        assert assay_tags(request) == {"assay/reason": "champion-promoted", "assay/champion_version": "v3"}
        assert tick(cursor)[0] is None
        # a promotion whose champion already scored the newest snapshot (a backfill promotes, then scores): the
        # daemon's first tick on such a home asks for nothing
        lake.overwrite("gold", "customer_scores", pl.DataFrame({"snapshot_date": [newest], "p_churn": [0.2],
                                                               "model_version": ["v3"]}))
        assert tick(None)[0] is None


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
    home = Sensors(tmp_path)
    reasons, configs = [], []
    cursor = None
    with DagsterInstance.ephemeral() as instance:
        # the change shows on weeks 1-2, then the sources are quiet again; the cooldown (28 days) would hold back
        # any ordinary request until week 6
        for values in ([0.0], [0.0, 1.0], [0.0, 1.0, 1.0], [0.0, 1.0, 1.0, 0.0], [0.0, 1.0, 1.0, 0.0, 0.0],
                       [0.0, 1.0, 1.0, 0.0, 0.0, 0.0]):
            home.lake.overwrite("gold", "monitoring_metrics", _metrics("source_shifted_columns", values))
            result, cursor = home.tick("retraining_sensor", instance, cursor)
            reasons.append(result.tags["assay/reason"] if result is not None else "")
            configs.append(result.run_config if result is not None else None)
    # request at week 2 (second crossing), refit 3 weeks after the change was first seen (week 1): week 4, once
    assert reasons == ["", "", "monitoring-input-drift", "", "monitoring-post-change-refit", ""]
    # the first request fits on what there is; the refit only on the snapshots from the change on
    assert configs[2] == {}
    assert configs[4] == {"ops": {"models__churn_model": {"config": {
        "fit_from": (MONDAY + timedelta(weeks=1)).isoformat()}}}}


def test_a_refit_keeps_the_deployments_modelling_defaults(tmp_path, monkeypatch):
    """ASSAY_MODELLING_CONFIG is every retraining run's default: the refit's `fit_from` is laid over it, not in its
    place (a run config that names an asset replaces that asset's whole default config in Dagster)."""
    monkeypatch.setenv("ASSAY_RETRAIN_REFIT_WEEKS", "1")
    monkeypatch.setenv("ASSAY_RETRAIN_REFIT_SNAPSHOTS", "1")
    modelling = {"churn_model": {"train_snapshots": 13, "min_selection_rate_ratio": 0.2},
                 "lightgbm_params": {"n_trials": 2}}
    home = Sensors(tmp_path, {"ASSAY_MODELLING_CONFIG": json.dumps(modelling)})
    job = home.defs.resolve_job_def("retraining_job")
    requests = []
    cursor = None
    with DagsterInstance.ephemeral() as instance:
        for values in ([0.0, 1.0, 1.0], [0.0, 1.0, 1.0, 0.0]):  # a change on weeks 1-2, its refit due on week 3
            home.lake.overwrite("gold", "monitoring_metrics", _metrics("source_shifted_columns", values))
            request, cursor = home.tick("retraining_sensor", instance, cursor)
            assert request is not None
            requests.append(request)
    assert [r.tags["assay/reason"] for r in requests] == ["monitoring-input-drift", "monitoring-post-change-refit"]
    first, refit = (validate_run_config(job, r.run_config)["ops"] for r in requests)
    assert first["models__churn_model"]["config"]["train_snapshots"] == 13
    model = refit["models__churn_model"]["config"]
    assert model["fit_from"] == (MONDAY + timedelta(weeks=1)).isoformat()
    assert (model["train_snapshots"], model["min_selection_rate_ratio"]) == (13, 0.2)
    assert refit["models__lightgbm_params"]["config"]["n_trials"] == 2


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
    home = Sensors(tmp_path)
    lake = home.lake
    weeks = [MONDAY + timedelta(weeks=k) for k in range(6)]
    monitored = pl.DataFrame({"snapshot_date": weeks, "metric": "source_shifted_columns", "column": "*",
                              "value": 0.0})
    with DagsterInstance.ephemeral() as instance:
        lake.overwrite("gold", "monitoring_metrics", pl.concat([monitored.head(4), decayed]))
        first, cursor = home.tick("retraining_sensor", instance)
        assert first is not None and first.tags["assay/reason"] == "monitoring-performance-decay"
        # the change dates from the first decayed matured snapshot (week 2): the refit is due 1 + 2 - 1 weeks on
        due = RetrainPolicy(refit_weeks=1, refit_snapshots=2)
        assert refit_trigger(monitored.head(4), weeks[2], due) is None  # week 3: one week early
        assert refit_trigger(monitored.head(5), weeks[2], due).snapshot == weeks[4]
        lake.overwrite("gold", "monitoring_metrics", pl.concat([monitored, decayed]))
        refit, _ = home.tick("retraining_sensor", instance, cursor)
        assert refit is not None and refit.tags["assay/reason"] == "monitoring-post-change-refit"
        assert refit.run_config["ops"]["models__churn_model"]["config"]["fit_from"] == weeks[2].isoformat()


def test_performance_decay_of_a_replaced_champion_is_no_reason_to_retrain():
    decayed = _metrics("auc_decay", [0.0, 0.05, 0.06]).with_columns(pl.lit("old").alias("model_version"))
    assert retraining_trigger(decayed, POLICY, None, champion="old") is not None
    assert retraining_trigger(decayed, POLICY, None, champion="new") is None
    # the source monitor's rows carry no model version and always count
    shifted = _metrics("source_shifted_columns", [0.0, 2.0, 1.0]).with_columns(
        pl.lit(None, dtype=pl.Utf8).alias("model_version"))
    assert retraining_trigger(shifted, RetrainPolicy(), None, champion="new").reason == "input-drift"
