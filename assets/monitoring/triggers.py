"""When monitoring should ask for a new model: a threshold crossed on several consecutive snapshots, not once,
and not again while a recent request is still being answered (cooldown)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import date, timedelta

import polars as pl


@dataclass(frozen=True)
class RetrainPolicy:
    drift_share: float = 0.5  # Evidently share of drifted columns, at or above
    auc_decay: float = 0.03  # validation AUC minus matured AUC, at or above
    consecutive: int = 2  # snapshots in a row that must cross
    cooldown_days: int = 28  # snapshot days after a request during which no new one is made

    @classmethod
    def from_env(cls) -> RetrainPolicy:
        """ASSAY_RETRAIN_DRIFT_SHARE, _AUC_DECAY, _CONSECUTIVE, _COOLDOWN_DAYS override the defaults."""
        env = os.environ
        return cls(
            drift_share=float(env.get("ASSAY_RETRAIN_DRIFT_SHARE", cls.drift_share)),
            auc_decay=float(env.get("ASSAY_RETRAIN_AUC_DECAY", cls.auc_decay)),
            consecutive=int(env.get("ASSAY_RETRAIN_CONSECUTIVE", cls.consecutive)),
            cooldown_days=int(env.get("ASSAY_RETRAIN_COOLDOWN_DAYS", cls.cooldown_days)),
        )


@dataclass(frozen=True)
class Trigger:
    snapshot: date  # the newest snapshot of the crossing run
    reason: str  # "drift" or "performance-decay"
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
    """A trigger when drift share or AUC decay crossed on the newest `consecutive` snapshots that have it, and the
    newest of them is past the cooldown of the last request."""
    for metric, limit, reason in (("drift_share", policy.drift_share, "drift"),
                                  ("auc_decay", policy.auc_decay, "performance-decay")):
        run = _crossed(metrics, metric, limit, policy.consecutive)
        if run is None:
            continue
        if last_request is not None and run[-1] < last_request + timedelta(days=policy.cooldown_days):
            continue
        return Trigger(run[-1], reason, f"{metric} >= {limit} on {', '.join(d.isoformat() for d in run)}")
    return None
