"""When monitoring should ask for a new model: a threshold crossed on several consecutive snapshots, not once,
and not again while a recent request is still being answered (cooldown).

The default drift signal is the raw sources' shift against their own recent weeks (`source_shifted_columns`,
see source_drift.py), not Evidently's drift share against the champion's reference: lifetime and age features
drift from any fixed reference by construction, so that share is never 0 on a world without drift (0.08-0.13
against the validation rows in gold/monitoring_metrics after `make demo`) and it grows with the champion's age.
It stays recorded and checked; a team can still trigger on it by setting ASSAY_RETRAIN_DRIFT_SHARE."""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import date, timedelta

import polars as pl


@dataclass(frozen=True)
class RetrainPolicy:
    source_shift: float = 1.0  # bronze fields past a warn limit against their baseline weeks, at or above
    auc_decay: float = 0.03  # validation AUC minus matured AUC, at or above
    ece_increase: float | None = 0.025  # matured ECE over its noise floor minus validation ECE, at or above
    drift_share: float | None = None  # Evidently share of drifted columns, at or above; None: not a trigger
    consecutive: int = 2  # snapshots in a row that must cross
    cooldown_days: int = 28  # snapshot days after a request during which no new one is made
    # A model retrained right after a change (in the inputs, or in performance) is fitted on snapshots from before
    # it: labels take a horizon to mature and the held-out folds are purged. `refit_weeks` is that lag (to the
    # newest training snapshot). Once it and `refit_snapshots` - 1 more weeks have passed since the change was
    # first seen, a second retraining is requested whose training snapshots are the `refit_snapshots` from the
    # change on, and only those (the old regime would teach the old relation); its early-stopping snapshots come
    # after them. refit_weeks 0: no follow-up.
    refit_weeks: int = 0
    refit_snapshots: int = 4

    @property
    def refit_due_weeks(self) -> int:
        return self.refit_weeks + self.refit_snapshots - 1

    @classmethod
    def from_env(cls) -> RetrainPolicy:
        """ASSAY_RETRAIN_SOURCE_SHIFT, _AUC_DECAY, _ECE_INCREASE, _DRIFT_SHARE, _CONSECUTIVE, _COOLDOWN_DAYS,
        _REFIT_WEEKS, _REFIT_SNAPSHOTS override the defaults (an empty _ECE_INCREASE turns that trigger off). The
        refit lag defaults to the fit lag of the modelling stage's default split at the label horizon
        (ASSAY_LABEL_HORIZON_DAYS): 49 weeks at 90 days, so the refit comes 52 weeks after a change."""
        from assets.modeling.assets import SplitConfig
        from assets.modeling.training import fit_lag_weeks

        split = {name: SplitConfig.model_fields[name].default
                 for name in ("validation_snapshots", "early_stopping_snapshots", "calibration_snapshots")}
        env = os.environ
        drift_share = env.get("ASSAY_RETRAIN_DRIFT_SHARE", "")
        refit = env.get("ASSAY_RETRAIN_REFIT_WEEKS", "")
        ece = env.get("ASSAY_RETRAIN_ECE_INCREASE", str(cls.ece_increase))
        return cls(
            refit_weeks=int(refit) if refit else fit_lag_weeks(
                int(env.get("ASSAY_LABEL_HORIZON_DAYS", "90")), **split),
            source_shift=float(env.get("ASSAY_RETRAIN_SOURCE_SHIFT", cls.source_shift)),
            drift_share=float(drift_share) if drift_share else None,
            auc_decay=float(env.get("ASSAY_RETRAIN_AUC_DECAY", cls.auc_decay)),
            ece_increase=float(ece) if ece else None,
            refit_snapshots=int(env.get("ASSAY_RETRAIN_REFIT_SNAPSHOTS", cls.refit_snapshots)),
            consecutive=int(env.get("ASSAY_RETRAIN_CONSECUTIVE", cls.consecutive)),
            cooldown_days=int(env.get("ASSAY_RETRAIN_COOLDOWN_DAYS", cls.cooldown_days)),
        )


@dataclass(frozen=True)
class Trigger:
    snapshot: date  # the newest monitored snapshot when it fired (the monitoring clock the cooldown runs on)
    reason: str  # "input-drift", "drift", "performance-decay" or "post-change-refit"
    detail: str
    since: date | None = None  # the first snapshot of the crossing run


def _crossed(metrics: pl.DataFrame, metric: str, limit: float, consecutive: int) -> list[date] | None:
    """The newest `consecutive` snapshots that have `metric`, if every one of them is at or over `limit`."""
    series = (metrics.filter((pl.col("metric") == metric) & (pl.col("column") == "*"))
              .group_by("snapshot_date").agg(pl.col("value").max()).sort("snapshot_date"))
    if series.height < consecutive:
        return None
    newest = series.tail(consecutive)
    return newest.get_column("snapshot_date").to_list() if (newest.get_column("value") >= limit).all() else None


PERFORMANCE_METRICS = ("auc_decay", "ece_increase")


def retraining_trigger(metrics: pl.DataFrame, policy: RetrainPolicy, last_request: date | None,
                       champion: str | None = None) -> Trigger | None:
    """A trigger when source shift, AUC decay, calibration decay or (if enabled) drift share crossed on the newest
    `consecutive` snapshots that have it, once the newest monitored snapshot is past the cooldown of the last
    request. For performance the snapshots are the matured ones (a horizon behind the newest monitored one), and
    with `champion` given only those it scored count: after a promotion, the decay of the model it replaced is
    no reason to retrain again."""
    if metrics.height == 0:
        return None
    now = metrics.get_column("snapshot_date").max()
    if last_request is not None and now < last_request + timedelta(days=policy.cooldown_days):
        return None
    if champion is not None and "model_version" in metrics.columns:
        metrics = metrics.filter(~pl.col("metric").is_in(PERFORMANCE_METRICS) | (pl.col("model_version") == champion))
    signals = (("source_shifted_columns", policy.source_shift, "input-drift"),
               ("auc_decay", policy.auc_decay, "performance-decay"),
               ("ece_increase", policy.ece_increase, "performance-decay"),
               ("drift_share", policy.drift_share, "drift"))
    for metric, limit, reason in signals:
        if limit is None:
            continue
        run = _crossed(metrics, metric, limit, policy.consecutive)
        if run is None:
            continue
        return Trigger(now, reason, f"{metric} >= {limit} on {', '.join(d.isoformat() for d in run)}", run[0])
    return None


def refit_trigger(metrics: pl.DataFrame, changed_since: date | None, policy: RetrainPolicy) -> Trigger | None:
    """The follow-up of a change first seen at snapshot `changed_since`: due once the newest monitored snapshot is
    `refit_due_weeks` past it, whatever the cooldown (it completes the same episode). The run fits from
    `changed_since` on (see `refit_run_config`)."""
    if changed_since is None or policy.refit_weeks <= 0:
        return None
    monitored = metrics.filter(pl.col("metric") == "source_shifted_columns").get_column("snapshot_date")
    newest = monitored.max() if monitored.len() else None
    if newest is None or newest < changed_since + timedelta(weeks=policy.refit_due_weeks):
        return None
    return Trigger(newest, "post-change-refit",
                   f"{policy.refit_due_weeks} weeks after the change first seen on {changed_since.isoformat()}; "
                   f"trains on the {policy.refit_snapshots} snapshots from it", changed_since)


def refit_run_config(trigger: Trigger) -> dict:
    """Run config of a post-change refit: the challenger fits only on snapshots from the change on."""
    if trigger.reason != "post-change-refit" or trigger.since is None:
        return {}
    return {"ops": {"models__churn_model": {"config": {"fit_from": trigger.since.isoformat()}}}}
