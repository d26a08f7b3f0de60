"""Monitoring figures of one snapshot against the champion's reference (its validation rows), as long rows
(metric, column, value): population stability, data quality, prediction shift and, once labels mature,
performance. Thresholds turn them into warn/error findings. Pure polars/numpy; no Evidently here (it runs
beside this for the HTML report and its own drift tests).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

PSI_BINS = 10
EPSILON = 1e-4  # floor on a bin's share so an empty bin costs a large but finite PSI
METRIC_SCHEMA = {"snapshot_date": pl.Date, "metric": pl.Utf8, "column": pl.Utf8, "value": pl.Float64,
                 "model_version": pl.Utf8}
# gold/monitoring_metrics, and each monitor's own table: the figures plus the monitor that measured them
MONITORING_SCHEMA = {**METRIC_SCHEMA, "source": pl.Utf8}
ALL_COLUMNS = "*"  # the `column` of a metric about the snapshot as a whole


def _psi(ref_share: np.ndarray, cur_share: np.ndarray) -> float:
    ref = np.clip(ref_share, EPSILON, None)
    cur = np.clip(cur_share, EPSILON, None)
    return float(np.sum((cur - ref) * np.log(cur / ref)))


def psi_numeric(reference: pl.Series, current: pl.Series, bins: int = PSI_BINS) -> float:
    """PSI over the reference's quantile bins, with missing values as a bin of their own."""
    ref = reference.cast(pl.Float64).to_numpy()
    cur = current.cast(pl.Float64).to_numpy()
    ref_ok, cur_ok = ref[~np.isnan(ref)], cur[~np.isnan(cur)]
    if ref_ok.size == 0:
        return 0.0
    edges = np.unique(np.quantile(ref_ok, np.linspace(0, 1, bins + 1)[1:-1]))
    ref_counts = np.bincount(np.searchsorted(edges, ref_ok, side="right"), minlength=edges.size + 1)
    cur_counts = np.bincount(np.searchsorted(edges, cur_ok, side="right"), minlength=edges.size + 1)
    ref_share = np.append(ref_counts, ref.size - ref_ok.size) / max(ref.size, 1)
    cur_share = np.append(cur_counts, cur.size - cur_ok.size) / max(cur.size, 1)
    return _psi(ref_share, cur_share)


def psi_categorical(reference: pl.Series, current: pl.Series) -> float:
    """PSI over the categories of both sides (missing counts as a category)."""
    ref = reference.cast(pl.Utf8).fill_null("(missing)").value_counts(normalize=True, name="share")
    cur = current.cast(pl.Utf8).fill_null("(missing)").value_counts(normalize=True, name="share")
    name = reference.name
    both = ref.join(cur, on=name, how="full", coalesce=True, suffix="_cur").fill_null(0.0)
    return _psi(both.get_column("share").to_numpy(), both.get_column("share_cur").to_numpy())


def snapshot_metrics(reference: pl.DataFrame, current: pl.DataFrame, categorical: list[str],
                     prediction: str = "p_churn") -> pl.DataFrame:
    """Per column: psi, missing_share and its increase over the reference, out_of_range_share (numeric values
    outside the reference's range),
    new_category_share; for the prediction also mean_shift; for the snapshot (column "*"): rows and the share of
    columns whose PSI exceeds 0.2 (psi_drift_share)."""
    rows = []
    columns = [c for c in reference.columns if c in current.columns]
    for column in columns:
        ref, cur = reference.get_column(column), current.get_column(column)
        is_cat = column in categorical
        psi = psi_categorical(ref, cur) if is_cat else psi_numeric(ref, cur)
        missing = cur.null_count() / max(cur.len(), 1)
        rows += [("psi", column, psi), ("missing_share", column, missing),
                 # many features are legitimately null (never opened an email): what matters is the change
                 ("missing_share_increase", column, missing - ref.null_count() / max(ref.len(), 1))]
        if is_cat:
            known = set(ref.drop_nulls().cast(pl.Utf8).to_list())
            present = cur.drop_nulls().cast(pl.Utf8)
            new = (~present.is_in(list(known))).sum() if present.len() else 0
            rows.append(("new_category_share", column, new / max(cur.len(), 1)))
        else:
            ref_num, cur_num = ref.cast(pl.Float64).drop_nulls(), cur.cast(pl.Float64).drop_nulls()
            if ref_num.len() and cur_num.len():
                outside = ((cur_num < ref_num.min()) | (cur_num > ref_num.max())).sum()
                rows.append(("out_of_range_share", column, outside / cur.len()))
        if column == prediction:
            rows.append(("mean_shift", column, float(cur.cast(pl.Float64).mean() - ref.cast(pl.Float64).mean())))
    psis = [v for m, c, v in rows if m == "psi" and c != prediction]
    rows += [("rows", ALL_COLUMNS, float(current.height)),
             ("psi_drift_share", ALL_COLUMNS, float(np.mean([p > 0.2 for p in psis])) if psis else 0.0)]
    return pl.DataFrame(rows, schema=["metric", "column", "value"], orient="row")


def ece_noise_floor(p: np.ndarray, draws: int = 20, seed: int = 0) -> float:
    """Expected ECE of perfectly calibrated predictions `p` on this many rows: the mean ECE against labels drawn
    from `p` itself (seeded). ECE is biased upward by sampling noise (0.014-0.021 on about 1,800 rows in the
    churn_process replay), so a raw rise over the validation ECE (measured on other rows) mostly measures the
    smaller sample."""
    from assets.modeling.calibration import expected_calibration_error

    if p.size == 0:
        return 0.0
    rng = np.random.default_rng(seed)
    return float(np.mean([expected_calibration_error((rng.random(p.size) < p).astype(np.int8), p)
                          for _ in range(draws)]))


def performance_metrics(y: np.ndarray, p: np.ndarray, validation: dict[str, float]) -> pl.DataFrame:
    """AUC and ECE of a matured snapshot, and their decay against the model's validation figures:
    auc_decay = validation AUC - AUC; ece_increase = the matured ECE less its noise floor on these rows, minus the
    validation ECE less its own (the floor scaled by the square root of the row counts, `rows` in `validation`),
    so two samples of different sizes compare on their excess over chance."""
    from assets.modeling.calibration import expected_calibration_error
    from domain.metrics import binary_metrics

    found = binary_metrics(y, p)
    ece = expected_calibration_error(y, p)
    noise = ece_noise_floor(p)
    rows = [("auc", found["auc"]), ("ece", ece), ("ece_noise_floor", noise), ("base_rate", found["base_rate"]),
            ("mean_p_churn", float(np.mean(p))), ("labelled_rows", found["rows"])]
    if "auc" in validation:
        rows.append(("auc_decay", validation["auc"] - found["auc"]))
    if "ece" in validation:
        validation_noise = noise * (y.size / validation["rows"]) ** 0.5 if validation.get("rows") else 0.0
        rows.append(("ece_increase", max(0.0, ece - noise) - max(0.0, validation["ece"] - validation_noise)))
    return pl.DataFrame([(m, ALL_COLUMNS, float(v)) for m, v in rows], schema=["metric", "column", "value"],
                        orient="row")


@dataclass(frozen=True)
class Threshold:
    metric: str
    warn: float
    error: float
    column: str | None = None  # None: every column of the metric


def findings(metrics: pl.DataFrame, thresholds: list[Threshold]) -> pl.DataFrame:
    """Rows of `metrics` at or over a threshold, with severity `warn` or `error` and the limit crossed.
    Thresholds apply to absolute values (a mean shift down is as much a shift as one up)."""
    out = []
    for t in thresholds:
        hits = metrics.filter((pl.col("metric") == t.metric) & (
            pl.lit(True) if t.column is None else pl.col("column") == t.column))
        for row in hits.iter_rows(named=True):
            size = abs(row["value"])
            if size >= t.error:
                out.append({**row, "severity": "error", "limit": t.error})
            elif size >= t.warn:
                out.append({**row, "severity": "warn", "limit": t.warn})
    schema = {**{k: v for k, v in METRIC_SCHEMA.items() if k in metrics.columns},
              "severity": pl.Utf8, "limit": pl.Float64}
    return pl.DataFrame(out, schema=schema)


def union_metrics(parts: list[pl.DataFrame]) -> pl.DataFrame:
    """Every monitor's rows of a window as one table (gold/monitoring_metrics), in a fixed order."""
    frames = [part.select([pl.col(c).cast(t) for c, t in MONITORING_SCHEMA.items()]) for part in parts if part.height]
    if not frames:
        return pl.DataFrame(schema=MONITORING_SCHEMA)
    return pl.concat(frames).sort("snapshot_date", "source", "metric", "column", nulls_last=True)
