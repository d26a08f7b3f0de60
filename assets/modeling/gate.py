"""Champion–challenger gate: a challenger goes live only when it beats the champion out of time by a margin,
without worse calibration or fairness beyond the configured limits. Pure: figures in, a decision out."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import date, timedelta

import polars as pl

MAX_ECE = 0.05  # no champion's calibration error may exceed this; the challenger's candidates are held to it too


@dataclass(frozen=True)
class GatePolicy:
    metric: str = "auc"  # any key of the validation metrics; see `higher_is_better`
    min_improvement: float = 0.002  # challenger must beat the champion by at least this much on `metric`
    max_ece_increase: float = 0.005  # calibration may not get worse than this
    max_ece: float = MAX_ECE  # and never above this, even for a first model
    # A champion that itself breaks `max_ece` on the challenger's validation rows (the world's churn rate moved
    # under it) is not fit for use: a challenger within the limit replaces it unless it loses more than this on
    # `metric`. AUC alone cannot see a shifted churn rate, and the threshold simulation runs on the probabilities.
    max_metric_loss: float = 0.005
    # ECE differences are noisy on a few thousand rows: a worsening counts only beyond `max_ece_increase` plus this
    # many standard errors of the paired difference (`ece_difference_se`, bootstrap on the validation rows)
    ece_noise_ses: float = 2.0

    @property
    def higher_is_better(self) -> bool:
        return self.metric not in ("log_loss", "brier", "ece")


@dataclass(frozen=True)
class GateDecision:
    promote: bool
    reasons: list[str]
    challenger_version: str
    champion_version: str | None
    figures: dict[str, float | None] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)


def decide(
    policy: GatePolicy, challenger_version: str, challenger: dict[str, float], fairness_violations: list[str],
    champion_version: str | None = None, champion: dict[str, float] | None = None,
    broken_inputs: list[str] | None = None, ece_difference_se: float = 0.0,
) -> GateDecision:
    """`challenger` and `champion` are metrics of both models on the SAME out-of-time rows (the challenger's
    validation snapshots), so the comparison is like for like. `broken_inputs` names data-quality errors in the
    weeks the challenger was trained or validated on: such a model is refused whatever its figures, because its
    figures are measured on the same broken data. `ece_difference_se` is the standard error of the challenger's ECE
    minus the champion's on those rows."""
    reasons: list[str] = []
    ok = True
    if broken_inputs:
        ok = False
        reasons += [f"trained or validated on broken input: {b}" for b in broken_inputs]
    figures: dict[str, float | None] = {
        f"challenger_{policy.metric}": challenger[policy.metric], "challenger_ece": challenger["ece"],
        f"champion_{policy.metric}": champion[policy.metric] if champion else None,
        "champion_ece": champion["ece"] if champion else None,
    }
    if fairness_violations:
        ok = False
        reasons += [f"fairness limit violated: {v}" for v in fairness_violations]
    if challenger["ece"] > policy.max_ece:
        ok = False
        reasons.append(f"ECE {challenger['ece']:.4f} above the limit {policy.max_ece:.4f}")
    if champion is None:
        reasons.append("no champion yet: the first model that passes the limits becomes champion")
    else:
        sign = 1.0 if policy.higher_is_better else -1.0
        gain = sign * (challenger[policy.metric] - champion[policy.metric])
        figures["improvement"] = gain
        required = policy.min_improvement
        if champion["ece"] > policy.max_ece >= challenger["ece"]:
            required = -policy.max_metric_loss
            reasons.append(f"the champion's ECE {champion['ece']:.4f} on these rows is above the limit "
                           f"{policy.max_ece:.4f}: it may be replaced by a calibrated challenger that loses at most "
                           f"{policy.max_metric_loss:.4f} {policy.metric}")
        if gain < required:
            ok = False
            reasons.append(f"{policy.metric} improves by {gain:+.4f}, less than the required {required:+.4f}")
        else:
            reasons.append(f"{policy.metric} improves by {gain:+.4f} (required {required:+.4f})")
        ece_increase = challenger["ece"] - champion["ece"]
        allowed = policy.max_ece_increase + policy.ece_noise_ses * ece_difference_se
        figures["ece_difference_se"] = ece_difference_se
        if ece_increase > allowed:
            ok = False
            reasons.append(f"ECE worsens by {ece_increase:+.4f}, more than {policy.max_ece_increase:.4f} + "
                           f"{policy.ece_noise_ses:g} x {ece_difference_se:.4f} (its standard error)")
    return GateDecision(promote=ok, reasons=reasons, challenger_version=challenger_version,
                        champion_version=champion_version, figures=figures)


def broken_fields(source_metrics: pl.LazyFrame, min_increase: float, first: date, last: date,
                  lookback_days: int) -> list[str]:
    """Data-quality errors that reach snapshots first..last: a field whose null share rose by `min_increase` or
    more in the week before snapshot S breaks every snapshot from S to S + `lookback_days` (the longest feature
    window). `source_metrics` is monitoring/source_drift's table (rows of other sources are ignored)."""
    hits = (source_metrics.filter((pl.col("source") == "source") & (pl.col("metric") == "null_share_increase")
                                  & (pl.col("value") >= min_increase) & (pl.col("snapshot_date") <= last)
                                  & (pl.col("snapshot_date") >= first - timedelta(days=lookback_days)))
            .select("snapshot_date", "column", "value").sort("snapshot_date", "column").collect())
    return [f"{r['column']} null share +{r['value']:.2f} in the week before {r['snapshot_date']}"
            for r in hits.iter_rows(named=True)]
