"""Replay a drift scenario week by week through the real assets and sensors, and report what happened when.

The world is generated with a drift kind and onset; ingestion and the dbt features run once over the whole
history (a feature for snapshot T reads only data before T, so computing it early changes nothing). Then each
simulated week N, in one Dagster instance:
1. score N with the current champion, profile the sources (monitoring/source_drift) and, optionally, run the
   Evidently drift report against the champion's reference;
2. measure the matured performance of the snapshot whose labels complete at N (N - horizon);
3. tick the retraining sensor; a request becomes a run of the modelling assets trained `as_of` N, so it sees only
   labels matured by then; the gate decides;
4. on the first snapshot of a month, tick the monthly retraining schedule (unless the sensor just asked);
5. tick the re-scoring sensor; after a promotion it re-scores N with the new champion.
The timeline keeps, per week: the source shift, the drift share, the matured AUC and ECE, the alerts raised by the
source monitor and by the rest (drift against the champion's reference, performance), runs requested (and why), the
gate's decision, the newest snapshot the challenger was fitted on, and the champion.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, time, timedelta
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
    evidently: bool = True
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


def modelling_run_config(plan: ScenarioPlan, as_of: date, requested: dict | None = None) -> dict:
    """The replay's modelling config as of a date; `requested` (a run request's config, e.g. a refit's fit_from)
    is laid over it."""
    split = {"as_of": as_of.isoformat(), **plan.split}
    churn_model = {**split, "max_equal_opportunity_difference": 0.5, "min_selection_rate_ratio": 0.2,
                   "ablation_rows": 20_000}
    churn_model.update((requested or {}).get("ops", {}).get("models__churn_model", {}).get("config", {}))
    return {"ops": {
        "models__lightgbm_params": {"config": {**split, "n_trials": plan.tuning_trials, "timeout_seconds": 30,
                                               "n_folds": 2, "fold_train_snapshots": 6}},
        # groups at this size are too small for the default fairness limits to tell bias from chance
        "models__churn_model": {"config": churn_model},
    }}


def _metric(metrics: pl.DataFrame, snapshot: date, metric: str) -> float | None:
    hit = metrics.filter((pl.col("snapshot_date") == snapshot) & (pl.col("metric") == metric)
                         & (pl.col("column") == "*"))
    return float(hit.item(0, "value")) if hit.height else None


def _scored_by(metrics: pl.DataFrame, snapshot: date) -> str:
    hit = metrics.filter((pl.col("snapshot_date") == snapshot) & (pl.col("metric") == "auc"))
    return hit.item(0, "model_version") if hit.height else ""


def run_scenario(home: Path, plan: ScenarioPlan, say: Callable[[str], None] = print) -> list[Week]:
    from dagster import (
        AssetKey,
        AssetSelection,
        DagsterInstance,
        RunRequest,
        build_schedule_context,
        build_sensor_context,
        materialize,
    )

    from assets.modeling.training import fit_lag_weeks
    from domain.pseudonym import install_synthetic_key
    from domain.settings import AssaySettings
    from domain.synthetic import config_for_size, generate
    from orchestration.automation import monthly_retraining_schedule, rescore_after_promotion, retraining_sensor
    from orchestration.definitions import build_definitions
    from orchestration.partitions import daily_partitions, snapshot_partitions

    settings = AssaySettings.from_env({"ASSAY_HOME": str(home), "ASSAY_LABEL_HORIZON_DAYS": str(plan.horizon_days)})
    # the world ends with the replay: later weeks would only cost generation, ingestion and features
    end = plan.weeks[-1] + timedelta(days=7)
    config = config_for_size(plan.size, drift_kind=plan.kind, drift_onset=plan.onset,
                             label_horizon_days=plan.horizon_days, end=end)
    generate(config, settings.landing, settings.ground_truth)
    install_synthetic_key(settings.home, config.seed)  # the same replay gives the same tokens, samples and models
    defs = build_definitions(settings)
    assets, resources = list(defs.assets), defs.resources
    lake = resources["lake"]
    quiet = {"loggers": {"console": {"config": {"log_level": "ERROR"}}}}

    def run(selection, tags=None, partition_key=None, run_config=None):
        result = materialize(assets, selection=selection, instance=instance, resources=resources, tags=tags or {},
                             partition_key=partition_key, run_config={**quiet, **(run_config or {})})
        if not result.success:
            raise RuntimeError(f"scenario: materialization of {selection} failed")
        return result

    def keys(*names: tuple[str, ...]):
        return AssetSelection.assets(*[AssetKey(list(n)) for n in names])

    def span(partition_keys: list[str]) -> dict[str, str]:
        return {"dagster/asset_partition_range_start": partition_keys[0],
                "dagster/asset_partition_range_end": partition_keys[-1]}

    weeks: list[Week] = []
    # the post-change refit comes when the replay's split (not the default one) first fits on a changed week
    refit = fit_lag_weeks(plan.horizon_days, plan.validation_snapshots, plan.early_stopping_snapshots,
                          plan.calibration_snapshots)
    with (DagsterInstance.ephemeral() as instance,
          _environ(ASSAY_RETRAIN_REFIT_WEEKS=str(refit), ASSAY_RETRAIN_REFIT_SNAPSHOTS=str(plan.refit_snapshots))):
        say(f"scenario {plan.kind} from {plan.onset}: ingesting and building features once over the history")
        run(AssetSelection.groups("ingestion"),
            tags=span([k for k in daily_partitions.get_partition_keys() if k < end.isoformat()]))
        run(AssetSelection.groups("features"),
            tags=span([k for k in snapshot_partitions.get_partition_keys() if k <= plan.weeks[-1].isoformat()]))
        say(f"training the first champion as of {plan.first_week}")
        run(AssetSelection.groups("modeling"), tags={"assay/reason": "scenario-initial-champion"},
            run_config=modelling_run_config(plan, plan.first_week))
        say(TIMELINE_HEADER)
        retrain_cursor, rescore_cursor = None, None
        monitoring = [("gold", "customer_scores"), ("monitoring", "source_drift")]
        if plan.evidently:
            monitoring.append(("monitoring", "drift_summary"))
        registry = resources["registry"]
        for snapshot in plan.weeks:
            week_started = datetime.now(UTC)
            run(keys(*monitoring), partition_key=snapshot.isoformat())
            matured = snapshot - timedelta(days=plan.horizon_days)
            if matured >= plan.first_week:
                run(keys(("monitoring", "model_performance")), partition_key=matured.isoformat())
            context = build_sensor_context(instance=instance, cursor=retrain_cursor, resources={"lake": lake})
            request = retraining_sensor(context)
            retrain_cursor = context.cursor
            requested = decision = trained_through = trained_from = ""
            if not isinstance(request, RunRequest) and plan.monthly_retraining and snapshot.day <= 7:
                tick = monthly_retraining_schedule.evaluate_tick(build_schedule_context(
                    instance=instance, scheduled_execution_time=datetime.combine(snapshot, time(5), UTC)))
                request = tick.run_requests[0] if tick.run_requests else None
            if isinstance(request, RunRequest):
                requested = request.tags["assay/reason"]
                say(f"{snapshot}: {requested} ({request.tags.get('assay/trigger_detail', 'schedule')}) → "
                    f"retraining as of {snapshot}")
                result = run(AssetSelection.groups("modeling"), tags=request.tags,
                             run_config=modelling_run_config(plan, snapshot, request.run_config))
                gate = result.asset_materializations_for_node("models__champion")[0].metadata
                decision = gate["decision"].value
                challenger = registry.load(gate["challenger_version"].value)
                trained_through = max(challenger.card["split"]["early_stopping"])
                trained_from = min(challenger.card["split"]["train"])
                say(f"{snapshot}: gate {decision}: {'; '.join(gate['reasons'].value)}")
                rescore = build_sensor_context(instance=instance, cursor=rescore_cursor, resources={"lake": lake})
                rescore_request = rescore_after_promotion(rescore)
                rescore_cursor = rescore.cursor
                if isinstance(rescore_request, RunRequest):
                    run(keys(("gold", "customer_scores")), tags=rescore_request.tags,
                        partition_key=rescore_request.partition_key)
            metrics = lake.scan("gold", "monitoring_metrics").collect()
            new_alerts = (lake.scan("gold", "alerts").filter(pl.col("raised_at") >= week_started).collect()
                          if lake.exists("gold", "alerts") else pl.DataFrame(schema={"source": pl.Utf8}))
            week = Week(
                snapshot=snapshot, after_onset=snapshot > plan.onset,
                source_shifted_columns=_metric(metrics, snapshot, "source_shifted_columns") or 0.0,
                drift_share=_metric(metrics, snapshot, "drift_share"),
                matured_snapshot=matured if matured >= plan.first_week else None,
                matured_auc=_metric(metrics, matured, "auc"), matured_ece=_metric(metrics, matured, "ece"),
                matured_model=_scored_by(metrics, matured),
                source_alerts=new_alerts.filter(pl.col("source") == "monitoring/source_drift").height,
                other_alerts=new_alerts.filter(pl.col("source") != "monitoring/source_drift").height,
                requested=requested, decision=decision, trained_through=trained_through, trained_from=trained_from,
                champion=registry.champion_version() or "",
                findings=sorted({f"{r['column']} {r['metric']} {r['value']:.2f} ({r['severity']})"
                                 for r in new_alerts.filter(pl.col("source") == "monitoring/source_drift")
                                 .iter_rows(named=True)}) if new_alerts.height else [],
            )
            weeks.append(week)
            say(timeline_line(week))
    out = settings.reports_dir / "scenario"
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{plan.kind}.json").write_text(json.dumps({"plan": asdict(plan), "weeks": [asdict(w) for w in weeks]},
                                                      indent=2, default=str))
    return weeks


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
