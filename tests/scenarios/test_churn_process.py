"""churn_process: a competitor opens in the home market; no input field's distribution moves, the matured calibration
does. The sensor asks for a retraining, then for a refit on post-onset snapshots only, and performance recovers."""

from __future__ import annotations

import json
from datetime import date, timedelta

import polars as pl
import pytest
from scenario_replay import ONSET, replay

from orchestration.scenario import ScenarioPlan
from resources.lake import LakeResource

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def churn_process(tmp_path_factory):
    # 1-week labels and one-snapshot folds keep the fit lag at 4 weeks, so the post-change refit (trained on the 4
    # snapshots from the change) comes 7 weeks after it and its matured performance 1 week later. 16 weekly ticks
    # past the backfill; the same replay as `assay scenario --kind churn_process --horizon-days 7 --fold-snapshots 1
    # --train-snapshots 6 --pre-weeks 4 --post-weeks 11 --no-monthly --tuning-trials 1`
    plan = ScenarioPlan(kind="churn_process", onset=ONSET, size="small", pre_onset_weeks=4, post_onset_weeks=11,
                        horizon_days=7, monthly_retraining=False, tuning_trials=1,
                        train_snapshots=6, early_stopping_snapshots=1, calibration_snapshots=1,
                        validation_snapshots=1, refit_snapshots=4)
    return replay(tmp_path_factory, plan)


def _decisions(home) -> pl.DataFrame:
    return LakeResource(root=str(home / "lake")).scan("gold", "model_decisions").collect()


def test_a_churn_process_change_is_asked_for_within_two_snapshots_without_a_false_alarm_before(churn_process):
    _, _, weeks, _ = churn_process
    before = [w for w in weeks if not w.after_onset]
    assert len(before) >= 5
    assert all(w.requested == "" and w.source_alerts == 0 for w in before)
    first = next(w for w in weeks if w.requested)
    # the inputs did not move: the matured calibration of the onset week and the next one did
    assert first.after_onset and first.snapshot <= ONSET + timedelta(weeks=2)
    assert first.requested == "monitoring-performance-decay"
    assert all(w.source_shifted_columns == 0 for w in weeks)


def test_the_post_change_refit_fits_on_post_onset_snapshots_only_and_its_decision_is_logged(churn_process):
    home, _, weeks, _ = churn_process
    refit = next(w for w in weeks if w.requested == "monitoring-post-change-refit")
    assert date.fromisoformat(refit.trained_from) >= ONSET
    assert refit.decision in ("promoted", "rejected")
    logged = _decisions(home).filter(pl.col("version") == refit.challenger)
    assert logged.get_column("action").to_list() == [refit.decision]
    assert logged.item(0, "actor").startswith("gate:run:")
    assert json.loads(logged.item(0, "details"))["challenger_version"] == refit.challenger


def test_performance_recovers_once_a_model_trained_after_the_change_scores(churn_process):
    _, _, weeks, _ = churn_process
    first_champion = weeks[0].champion
    # whichever retraining after the change the gate promoted first (a decay retraining or the refit)
    promoted = [w for w in weeks if w.after_onset and w.decision == "promoted"]
    assert promoted and promoted[0].champion != first_champion
    decayed = [w for w in weeks if w.matured_snapshot and w.matured_snapshot >= ONSET
               and w.matured_model == first_champion]
    recovered = [w for w in weeks if w.matured_model in {p.champion for p in promoted}]
    assert len(decayed) >= 2 and len(recovered) >= 2

    def mean(values):
        return sum(values) / len(values)

    # the onset champion over-trusted the home market: its probabilities fell short of the new churn rate
    assert mean([w.matured_ece for w in decayed]) > 0.05  # beyond the ECE limit of any champion
    assert mean([w.matured_ece for w in recovered]) < 0.03
    assert mean([w.matured_auc for w in recovered]) > mean([w.matured_auc for w in decayed]) + 0.015


def test_sixteen_weeks_and_more_come_from_sensors_schedules_and_automation_alone(churn_process):
    home, plan, weeks, instance = churn_process
    assert len([w for w in weeks if w.after_onset]) >= 10 and len(weeks) >= 16
    ticked = [r.dagster_run for r in instance.get_run_records()
              if not r.dagster_run.tags.get("assay/reason", "").startswith("backfill-")]
    assert ticked and all(run.tags.get("dagster/sensor_name") or run.tags.get("dagster/schedule_name")
                          for run in ticked)


def test_each_week_one_more_snapshot_is_labelled_on_time_and_its_performance_measured(churn_process):
    home, plan, weeks, _ = churn_process
    lake = LakeResource(root=str(home / "lake"))
    labelled = set(lake.scan("gold", "churn_labels").select("snapshot_date").unique().collect().to_series())
    metrics = lake.scan("gold", "monitoring_metrics").filter(pl.col("source") == "performance").collect()
    measured = set(metrics.filter(pl.col("metric") == "auc").get_column("snapshot_date"))
    for week in weeks:
        due = week.snapshot - timedelta(days=plan.horizon_days)  # a 7-day horizon matures on the next Monday
        assert due in labelled and due in measured, week.snapshot
        assert week.matured_auc is not None and week.matured_ece is not None
    # never a snapshot whose horizon had not landed when the clock stopped
    assert max(labelled) == weeks[-1].snapshot - timedelta(days=plan.horizon_days)


def test_a_retraining_request_is_decided_by_the_gate_and_a_promotion_rescores(churn_process):
    _, _, weeks, instance = churn_process
    runs = [r.dagster_run for r in instance.get_run_records()]
    retrained = [w for w in weeks if w.requested]
    assert retrained and all(w.decision in ("promoted", "rejected") for w in retrained)
    promoted = [w for w in retrained if w.decision == "promoted"]
    assert promoted
    rescored = {run.tags.get("dagster/partition") for run in runs
                if run.tags.get("dagster/sensor_name") == "rescore_after_promotion"}
    assert {w.snapshot.isoformat() for w in promoted} <= rescored


def test_the_synthetic_sources_delivery_is_timed_apart_from_assays_runs(churn_process):
    home, _, weeks, _ = churn_process
    ticks = [json.loads(path.read_text()) for path in sorted((home / "reports" / "ticks").glob("*.json"))]
    assert len(ticks) == len(weeks)
    # a tick that finds the feed's outbox empty simulates the next 8 weeks into it (the generator replays the world
    # from its start), the first tick among them; the others move that outbox's day folders into landing
    simulated = [tick["day"] for tick in ticks if tick["feed_seconds"] > 0.5]
    assert simulated[0] == ticks[0]["day"] and len(simulated) <= len(ticks) // 8 + 1
