"""Replay a drift scenario through the clock, week by week, and report what happened when.

The world is generated with a drift kind and onset, and landed up to the first monitored week; a backfill builds
its history and trains the first champion. Then the clock (orchestration/clock.py) moves the home forward one
week per tick, exactly as `assay tick` does: the week's landing days arrive, the landing sensor ingests them, the
automation builds the new snapshot (features, scores, drift, source checks) and the labels and matured performance
of the snapshot whose horizon has just landed, the schedules and the retraining sensor may ask for a retraining, the
gate decides and the re-scoring sensor re-scores after a promotion. Nothing is called directly.

The timeline keeps, per week: the source shift, the drift share, the matured AUC and ECE, the alerts raised by the
source monitor and by the rest (drift against the champion's reference, performance), runs requested (and why), the
gate's decision, the newest snapshot the challenger was fitted on, and the champion.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from contextlib import contextmanager, nullcontext
from dataclasses import asdict, dataclass, field
from datetime import date, timedelta
from pathlib import Path

import polars as pl

SCENARIO_HORIZON_DAYS = 28  # a 4-week churn label keeps the replay short; the logic does not depend on it


@dataclass(frozen=True)
class ScenarioPlan:
    kind: str
    onset: date  # a Monday: the snapshot of that date is the last whose features are all pre-onset
    size: str = "small"
    pre_onset_weeks: int = 9  # monitored snapshots before the onset snapshot
    post_onset_weeks: int = 24  # long enough for the post-change refit (16 + 3 weeks) and its matured performance
    horizon_days: int = SCENARIO_HORIZON_DAYS
    monthly_retraining: bool = True
    tuning_trials: int = 3
    # the replay's split: short folds keep the fit lag (and so the replay) short
    train_snapshots: int = 8
    early_stopping_snapshots: int = 2
    calibration_snapshots: int = 2
    validation_snapshots: int = 2
    refit_snapshots: int = 4  # training snapshots from the change on for the post-change refit

    @property
    def split(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in
                ("train_snapshots", "early_stopping_snapshots", "calibration_snapshots", "validation_snapshots")}

    @property
    def first_week(self) -> date:
        return self.onset - timedelta(weeks=self.pre_onset_weeks)

    @property
    def weeks(self) -> list[date]:
        return [self.first_week + timedelta(weeks=k) for k in range(self.pre_onset_weeks + self.post_onset_weeks + 1)]


@dataclass
class Week:
    snapshot: date
    after_onset: bool  # the snapshot's features include data from the onset on
    source_shifted_columns: float
    drift_share: float | None
    matured_snapshot: date | None
    matured_auc: float | None
    matured_ece: float | None
    matured_model: str  # the model version that scored the matured snapshot
    source_alerts: int  # raised by monitoring/source_drift this week
    other_alerts: int  # raised by the drift report against the champion's reference and by matured performance
    requested: str  # reason of a retraining request, "" if none
    decision: str  # the gate's decision on the run's challenger
    trained_through: str  # newest snapshot the challenger was fitted on
    trained_from: str  # oldest snapshot it was fitted on
    champion: str
    findings: list[str] = field(default_factory=list)
    challenger: str = ""  # the version the gate decided on this week


@contextmanager
def _environ(**values: str):
    """Set environment variables the sensors read (unless the caller set them), restoring them afterwards."""
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update({name: value for name, value in values.items() if saved[name] is None})
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)


def modelling_config(plan: ScenarioPlan) -> dict[str, dict]:
    """The replay's modelling defaults (ASSAY_MODELLING_CONFIG): short folds and a small tuning budget."""
    return {
        "lightgbm_params": {**plan.split, "n_trials": plan.tuning_trials, "timeout_seconds": 30, "n_folds": 2,
                            "fold_train_snapshots": 6},
        # groups at this size are too small for the default fairness limits to tell bias from chance
        "churn_model": {**plan.split, "max_equal_opportunity_difference": 0.5, "min_selection_rate_ratio": 0.2,
                        "ablation_rows": 20_000},
    }


def _metric(metrics: pl.DataFrame, snapshot: date, metric: str) -> float | None:
    hit = metrics.filter((pl.col("snapshot_date") == snapshot) & (pl.col("metric") == metric)
                         & (pl.col("column") == "*"))
    return float(hit.item(0, "value")) if hit.height else None


def _scored_by(metrics: pl.DataFrame, snapshot: date) -> str:
    hit = metrics.filter((pl.col("snapshot_date") == snapshot) & (pl.col("metric") == "auc"))
    return hit.item(0, "model_version") if hit.height else ""


def scenario_settings(home: Path, plan: ScenarioPlan):
    from domain.settings import AssaySettings

    return AssaySettings.from_env({"ASSAY_HOME": str(home), "ASSAY_LABEL_HORIZON_DAYS": str(plan.horizon_days),
                                   "ASSAY_MODELLING_CONFIG": json.dumps(modelling_config(plan))})


def run_scenario(home: Path, plan: ScenarioPlan, say: Callable[[str], None] = print, instance=None) -> list[Week]:
    """Replay `plan` in `home` (a fresh folder); `instance`: the Dagster instance (default: an ephemeral one)."""
    from dagster import DagsterInstance

    from assets.conditions import CATCH_UP_PERIODS
    from assets.modeling.training import fit_lag_weeks
    from assets.partitions import AssayPartitions
    from domain.pseudonym import install_synthetic_key
    from domain.synthetic import config_for_size, generate
    from orchestration.backfill import backfill_steps, run_backfill
    from orchestration.clock import Clock
    from orchestration.definitions import build_definitions
    from orchestration.feed import feed_for

    settings = scenario_settings(home, plan)
    # the world ends with the replay: later weeks would only cost generation
    config = config_for_size(plan.size, drift_kind=plan.kind, drift_onset=plan.onset,
                             label_horizon_days=plan.horizon_days, end=plan.weeks[-1] + timedelta(days=7))
    start = plan.first_week - timedelta(weeks=1)  # the home stands here; the first tick builds the first week
    generate(config, settings.landing, settings.ground_truth, land_until=start)
    install_synthetic_key(settings.home, config.seed)  # the same replay gives the same tokens, samples and models
    defs = build_definitions(settings)
    lake, registry = defs.resources["lake"], defs.resources["registry"]
    # the post-change refit comes when the replay's split (not the default one) first fits on a changed week
    refit = fit_lag_weeks(plan.horizon_days, plan.validation_snapshots, plan.early_stopping_snapshots,
                          plan.calibration_snapshots)
    weeks: list[Week] = []
    with (DagsterInstance.ephemeral() if instance is None else nullcontext(instance) as dagster_instance,
          _environ(ASSAY_RETRAIN_REFIT_WEEKS=str(refit), ASSAY_RETRAIN_REFIT_SNAPSHOTS=str(plan.refit_snapshots))):
        say(f"scenario {plan.kind} from {plan.onset}: backfilling the history before {start} and training the "
            "first champion")
        steps = backfill_steps(AssayPartitions.from_settings(settings), start, drift_snapshots=CATCH_UP_PERIODS + 1)
        run_backfill(defs, dagster_instance, steps, ["ingestion", "features", "labels", "tuning", "model", "scores",
                                                    "performance", "drift", "sources"], say=say, log_level="ERROR")
        clock = Clock(settings, dagster_instance, defs, feed=feed_for(settings), say=say, log_level="ERROR")
        clock.prime(start)
        clock.state.enabled["monthly_retraining_schedule"] = plan.monthly_retraining
        say(TIMELINE_HEADER)
        for snapshot in plan.weeks:
            day = clock.advance(snapshot, step_days=7)[-1]
            weeks.append(_week(day, plan, lake, registry))
            say(timeline_line(weeks[-1]))
    out = settings.reports_dir / "scenario"
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{plan.kind}.json").write_text(json.dumps({"plan": asdict(plan), "weeks": [asdict(w) for w in weeks]},
                                                      indent=2, default=str))
    return weeks


def _week(day, plan: ScenarioPlan, lake, registry) -> Week:
    """The timeline row of a weekly tick, read back from what its runs wrote."""
    snapshot = day.day
    metrics = lake.scan("gold", "monitoring_metrics").collect()
    started = min((run.started for run in day.runs), default=None)
    new_alerts = (lake.scan("gold", "alerts").filter(pl.col("raised_at") >= started).collect()
                  if started is not None and lake.exists("gold", "alerts")
                  else pl.DataFrame(schema={"source": pl.Utf8}))
    retraining = [run for run in day.runs if run.target == "retraining_job"]
    requested = retraining[-1].reason if retraining else ""
    decision = trained_through = trained_from = version = ""
    if retraining and day.decisions:
        decision, version = day.decisions[-1]
        card = registry.load(version).card
        trained_through, trained_from = max(card["split"]["early_stopping"]), min(card["split"]["train"])
    matured = snapshot - timedelta(days=plan.horizon_days)
    return Week(
        snapshot=snapshot, after_onset=snapshot > plan.onset,
        source_shifted_columns=_metric(metrics, snapshot, "source_shifted_columns") or 0.0,
        drift_share=_metric(metrics, snapshot, "drift_share"),
        matured_snapshot=matured if matured >= plan.first_week else None,
        matured_auc=_metric(metrics, matured, "auc"), matured_ece=_metric(metrics, matured, "ece"),
        matured_model=_scored_by(metrics, matured),
        source_alerts=new_alerts.filter(pl.col("source") == "monitoring/source_drift").height,
        other_alerts=new_alerts.filter(pl.col("source") != "monitoring/source_drift").height,
        requested=requested, decision=decision, trained_through=trained_through, trained_from=trained_from,
        champion=day.champion, challenger=version,
        findings=sorted({f"{r['column']} {r['metric']} {r['value']:.2f} ({r['severity']})"
                         for r in new_alerts.filter(pl.col("source") == "monitoring/source_drift")
                         .iter_rows(named=True)}) if new_alerts.height else [],
    )


TIMELINE_HEADER = (f"{'snapshot':<10} {'onset':<5} {'shifted':>7} {'drift':>6} {'AUC@':<10} {'AUC':>6} {'ECE':>6} "
                   f"{'src':>3} {'other':>5}  {'requested':<28} {'gate':<9} {'trained to':<10} champion")


def timeline_line(week: Week) -> str:
    def num(value: float | None, fmt: str) -> str:
        return format(value, fmt) if value is not None else "-"

    return (f"{week.snapshot} {'after' if week.after_onset else 'before':<5} {week.source_shifted_columns:>7.0f} "
            f"{num(week.drift_share, '.2f'):>6} {str(week.matured_snapshot or '-'):<10} "
            f"{num(week.matured_auc, '.3f'):>6} {num(week.matured_ece, '.3f'):>6} {week.source_alerts:>3} "
            f"{week.other_alerts:>5}  {week.requested or '-':<28} {week.decision or '-':<9} "
            f"{week.trained_through or '-':<10} {week.champion[-12:]}")
