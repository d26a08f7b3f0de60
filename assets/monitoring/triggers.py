"""When monitoring should ask for a new model: a threshold crossed on several consecutive snapshots, not once,
and not again while a recent request is still being answered (cooldown).

The default drift signal is the raw sources' shift against their own recent weeks (`source_shifted_columns`,
see source_drift.py), not Evidently's drift share against the champion's training reference: lifetime and age
features drift from any fixed reference by construction, so that share sits at 0.46-0.69 on a world without
drift (gold/monitoring_metrics after `make demo`). It stays recorded and checked; a team can still trigger on it
by setting ASSAY_RETRAIN_DRIFT_SHARE."""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import date, timedelta

import polars as pl


@dataclass(frozen=True)
class RetrainPolicy:
    source_shift: float = 1.0  # bronze fields past a warn limit against their baseline weeks, at or above
    auc_decay: float = 0.03  # validation AUC minus matured AUC, at or above
    drift_share: float | None = None  # Evidently share of drifted columns, at or above; None: not a trigger
    consecutive: int = 2  # snapshots in a row that must cross
    cooldown_days: int = 28  # snapshot days after a request during which no new one is made
    # A model retrained right after an input change is fitted on snapshots from before it (labels take a horizon to
    # mature and the held-out folds are purged). Once this many weeks have passed since the change, a second
    # retraining is requested, whose fit window reaches past it. 0: no follow-up.
    refit_weeks: int = 0

    @classmethod
    def from_env(cls) -> RetrainPolicy:
        """ASSAY_RETRAIN_SOURCE_SHIFT, _AUC_DECAY, _DRIFT_SHARE, _CONSECUTIVE, _COOLDOWN_DAYS, _REFIT_WEEKS
        override the defaults. The refit default is the fit lag of the modelling stage's default split at the
        label horizon (ASSAY_LABEL_HORIZON_DAYS): 49 weeks at 90 days."""
        from assets.modeling.assets import SplitConfig
        from assets.modeling.training import fit_lag_weeks

        split = {name: SplitConfig.model_fields[name].default
                 for name in ("validation_snapshots", "early_stopping_snapshots", "calibration_snapshots")}
        env = os.environ
        drift_share = env.get("ASSAY_RETRAIN_DRIFT_SHARE", "")
        refit = env.get("ASSAY_RETRAIN_REFIT_WEEKS", "")
        return cls(
            refit_weeks=int(refit) if refit else fit_lag_weeks(
                int(env.get("ASSAY_LABEL_HORIZON_DAYS", "90")), **split),
            source_shift=float(env.get("ASSAY_RETRAIN_SOURCE_SHIFT", cls.source_shift)),
            drift_share=float(drift_share) if drift_share else None,
            auc_decay=float(env.get("ASSAY_RETRAIN_AUC_DECAY", cls.auc_decay)),
            consecutive=int(env.get("ASSAY_RETRAIN_CONSECUTIVE", cls.consecutive)),
            cooldown_days=int(env.get("ASSAY_RETRAIN_COOLDOWN_DAYS", cls.cooldown_days)),
        )


@dataclass(frozen=True)
class Trigger:
    snapshot: date  # the newest snapshot of the crossing run
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


def retraining_trigger(metrics: pl.DataFrame, policy: RetrainPolicy, last_request: date | None) -> Trigger | None:
    """A trigger when source shift, AUC decay or (if enabled) drift share crossed on the newest `consecutive`
    snapshots that have it, and the newest of them is past the cooldown of the last request."""
    signals = (("source_shifted_columns", policy.source_shift, "input-drift"),
               ("auc_decay", policy.auc_decay, "performance-decay"),
               ("drift_share", policy.drift_share, "drift"))
    for metric, limit, reason in signals:
        if limit is None:
            continue
        run = _crossed(metrics, metric, limit, policy.consecutive)
        if run is None:
            continue
        if last_request is not None and run[-1] < last_request + timedelta(days=policy.cooldown_days):
            continue
        return Trigger(run[-1], reason, f"{metric} >= {limit} on {', '.join(d.isoformat() for d in run)}", run[0])
    return None


def refit_trigger(metrics: pl.DataFrame, changed_since: date | None, policy: RetrainPolicy) -> Trigger | None:
    """The follow-up of an input change first seen at `changed_since`: due once the newest monitored snapshot is
    `refit_weeks` past it, whatever the cooldown (it completes the same episode)."""
    if changed_since is None or policy.refit_weeks <= 0:
        return None
    monitored = metrics.filter(pl.col("metric") == "source_shifted_columns").get_column("snapshot_date")
    newest = monitored.max() if monitored.len() else None
    if newest is None or newest < changed_since + timedelta(weeks=policy.refit_weeks):
        return None
    return Trigger(newest, "post-change-refit",
                   f"{policy.refit_weeks} weeks after the input change first seen on {changed_since.isoformat()}",
                   changed_since)
