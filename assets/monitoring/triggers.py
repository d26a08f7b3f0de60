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

    @classmethod
    def from_env(cls) -> RetrainPolicy:
        """ASSAY_RETRAIN_SOURCE_SHIFT, _AUC_DECAY, _DRIFT_SHARE, _CONSECUTIVE, _COOLDOWN_DAYS override the
        defaults."""
        env = os.environ
        drift_share = env.get("ASSAY_RETRAIN_DRIFT_SHARE", "")
        return cls(
            source_shift=float(env.get("ASSAY_RETRAIN_SOURCE_SHIFT", cls.source_shift)),
            drift_share=float(drift_share) if drift_share else None,
            auc_decay=float(env.get("ASSAY_RETRAIN_AUC_DECAY", cls.auc_decay)),
            consecutive=int(env.get("ASSAY_RETRAIN_CONSECUTIVE", cls.consecutive)),
            cooldown_days=int(env.get("ASSAY_RETRAIN_COOLDOWN_DAYS", cls.cooldown_days)),
        )


@dataclass(frozen=True)
class Trigger:
    snapshot: date  # the newest snapshot of the crossing run
    reason: str  # "input-drift", "drift" or "performance-decay"
    detail: str


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
        return Trigger(run[-1], reason, f"{metric} >= {limit} on {', '.join(d.isoformat() for d in run)}")
    return None
