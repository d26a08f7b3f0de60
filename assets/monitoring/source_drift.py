"""Shift of the raw sources in the week before a snapshot against the weeks before that (a rolling baseline).

Feature drift against the champion's reference cannot carry a retraining trigger on its own: lifetime and age
features grow by construction, so on a world without drift some columns always test as drifted, more the older the
champion (measured in `gold/monitoring_metrics` after `make demo`). And some breaks never reach a feature quickly:
a field that starts arriving null is averaged away by a 365-day feature, a new sales channel is read by no feature
at all, and a price rise hides inside zero-inflated revenue deciles. Each of these is plain in bronze the first
week it happens.

Per source column of bronze, with the week [T - 7, T) as current and as baseline the `baseline_weeks` before it,
leaving `gap_weeks` out between them: a step change (a new price level) is then judged against clean weeks in its
first week and in its second, instead of half-absorbed by the baseline in its second week, so it can meet the
sensor's 2 consecutive snapshots:
- `null_share_increase`: missing share now minus in the baseline (a broken upstream field);
- `mean_change`: relative change of the mean of a numeric column (a price level), stored for reading, and
  `mean_change_beyond_noise`, the judged one: for a positive field the relative change of its geometric mean
  (a price level multiplies every amount; one large order moves the arithmetic mean of a few hundred orders by
  10 % in a quiet week, the mean of the logs hardly), in either case less NOISE_SES standard errors of the
  current week's (log-)mean;
- `category_psi` and `new_category_share`: for low-cardinality text and boolean columns (a new channel);
- `volume_change`: relative change of rows per landing day, per source (column "<source>.*").
Columns are named "<source>.<column>". Pure polars over lazy scans; nothing here knows Dagster.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, timedelta

import polars as pl

from assets.monitoring.metrics import ALL_COLUMNS, psi_categorical
from domain.contract import PARTITION_COLUMN, SourceSpec

MAX_CATEGORIES = 50  # text columns with more distinct baseline values are free text or keys: null share only
NOISE_SES = 2.0
# the metrics shift_findings judges (mean_change is stored for reading; its noise-discounted twin is judged)
SOURCE_SHIFT_METRICS = ("null_share_increase", "mean_change_beyond_noise", "category_psi", "new_category_share",
                        "volume_change")


@dataclass(frozen=True)
class SourceShiftLimits:
    """Warn/error limits on each metric (absolute values) and the least rows a week needs to be judged."""
    null_share_increase: tuple[float, float] = (0.05, 0.2)
    mean_change: tuple[float, float] = (0.1, 0.2)
    category_psi: tuple[float, float] = (0.1, 0.25)
    new_category_share: tuple[float, float] = (0.01, 0.05)
    volume_change: tuple[float, float] = (0.5, 1.0)
    min_rows: int = 500
    # Campaign touches follow the company's own calendar (one campaign, one channel, a week): their mix changes
    # every week by design. They are profiled and stored, but not judged.
    unjudged_sources: tuple[str, ...] = ("campaign_touches",)

    def limits(self, metric: str) -> tuple[float, float]:
        return getattr(self, metric.removesuffix("_beyond_noise"))


def profiled_columns(spec: SourceSpec, schema: pl.Schema) -> list[str]:
    """Bronze columns worth profiling: not keys, tokens, the event time or lineage."""
    skip = {spec.id_column, spec.time_column, *spec.pseudonymised_columns}
    return [c.name for c in spec.bronze_columns if c.name not in skip and c.name in schema]


def _week_windows(snapshot: date, baseline_weeks: int, gap_weeks: int) -> tuple[date, date, date, date]:
    """(baseline start, baseline end, current start, end)."""
    current_start = snapshot - timedelta(days=7)
    base_end = current_start - timedelta(days=7 * gap_weeks)
    return base_end - timedelta(days=7 * baseline_weeks), base_end, current_start, snapshot


def _mean_change_beyond_noise(base: pl.Series, cur: pl.Series) -> float:
    """Relative change of the (geometric, for a positive field) mean, shrunk towards 0 by NOISE_SES standard errors
    of the current week's (log-)mean."""
    base, cur = base.cast(pl.Float64).drop_nulls(), cur.cast(pl.Float64).drop_nulls()
    if cur.len() < 2:
        return 0.0
    if base.min() > 0 and cur.min() > 0:
        base_log, cur_log = base.log(), cur.log()
        shift = float(cur_log.mean()) - float(base_log.mean())
        beyond = math.copysign(max(0.0, abs(shift) - NOISE_SES * float(cur_log.std()) / cur.len() ** 0.5), shift)
        return math.exp(beyond) - 1.0
    change = float(cur.mean()) / float(base.mean()) - 1.0
    noise = NOISE_SES * float(cur.std()) / cur.len() ** 0.5 / abs(float(base.mean()))
    return math.copysign(max(0.0, abs(change) - noise), change)


def source_shift(bronze: pl.LazyFrame, spec: SourceSpec, snapshot: date, baseline_weeks: int = 4,
                 gap_weeks: int = 1) -> pl.DataFrame:
    """Long rows (metric, column, value, current_rows) comparing landing days [T-7, T) with the baseline weeks
    before them (and before the gap). Empty when either side has no rows (the first weeks of a history, a source
    not delivered)."""
    base_start, base_end, current_start, end = _week_windows(snapshot, baseline_weeks, gap_weeks)
    columns = profiled_columns(spec, bronze.collect_schema())
    window = (bronze.filter((pl.col(PARTITION_COLUMN) >= base_start) & (pl.col(PARTITION_COLUMN) < end))
              .select(PARTITION_COLUMN, *columns).collect())
    is_current = pl.col(PARTITION_COLUMN) >= current_start
    current, baseline = window.filter(is_current), window.filter(pl.col(PARTITION_COLUMN) < base_end)
    if current.height == 0 or baseline.height == 0:
        return pl.DataFrame(schema={"metric": pl.Utf8, "column": pl.Utf8, "value": pl.Float64,
                                    "current_rows": pl.Int64})
    rows: list[tuple[str, str, float]] = []
    base_days = baseline.get_column(PARTITION_COLUMN).n_unique()
    cur_days = current.get_column(PARTITION_COLUMN).n_unique()
    rows.append(("volume_change", f"{spec.name}.*",
                 (current.height / cur_days) / (baseline.height / base_days) - 1.0))
    for column in columns:
        cur, base = current.get_column(column), baseline.get_column(column)
        name = f"{spec.name}.{column}"
        rows.append(("null_share_increase", name, cur.null_count() / cur.len() - base.null_count() / base.len()))
        dtype = cur.dtype
        if dtype.is_numeric():
            base_mean, cur_mean = base.cast(pl.Float64).mean(), cur.cast(pl.Float64).mean()
            if base_mean is not None and cur_mean is not None and base_mean != 0:
                rows += [("mean_change", name, float(cur_mean) / float(base_mean) - 1.0),
                         ("mean_change_beyond_noise", name, _mean_change_beyond_noise(base, cur))]
        elif dtype in (pl.Utf8, pl.Boolean) and base.drop_nulls().n_unique() <= MAX_CATEGORIES:
            known = base.drop_nulls().cast(pl.Utf8).unique()
            present = cur.drop_nulls().cast(pl.Utf8)
            rows.append(("category_psi", name, psi_categorical(base.rename(column), cur.rename(column))))
            rows.append(("new_category_share", name,
                         float((~present.is_in(known.implode())).sum()) / cur.len() if present.len() else 0.0))
    frame = pl.DataFrame(rows, schema=["metric", "column", "value"], orient="row")
    return frame.with_columns(pl.lit(current.height, dtype=pl.Int64).alias("current_rows"))


def shift_findings(shift: pl.DataFrame, limits: SourceShiftLimits) -> pl.DataFrame:
    """The rows of `shift` at or over a warn or error limit, with severity and limit. Weeks with fewer than
    `min_rows` rows are not judged: a handful of sign-ups would swing any share."""
    out = []
    judged = shift.filter((pl.col("current_rows") >= limits.min_rows) & pl.col("metric").is_in(SOURCE_SHIFT_METRICS)
                          & ~pl.col("column").str.split(".").list.first().is_in(list(limits.unjudged_sources)))
    for row in judged.iter_rows(named=True):
        warn, error = limits.limits(row["metric"])
        size = row["value"] if row["metric"] == "null_share_increase" else abs(row["value"])
        if size >= error:
            out.append({**row, "severity": "error", "limit": error})
        elif size >= warn:
            out.append({**row, "severity": "warn", "limit": warn})
    return pl.DataFrame(out, schema={**shift.schema, "severity": pl.Utf8, "limit": pl.Float64})


def shifted_columns(findings: pl.DataFrame) -> float:
    """The snapshot's summary figure (metric `source_shifted_columns`, column "*"): columns with a finding."""
    return float(findings.get_column("column").n_unique()) if findings.height else 0.0


def summary_rows(findings: pl.DataFrame) -> pl.DataFrame:
    errors = findings.filter(pl.col("severity") == "error")
    values = [("source_shifted_columns", ALL_COLUMNS, shifted_columns(findings)),
              ("source_error_columns", ALL_COLUMNS, shifted_columns(errors))]
    return pl.DataFrame(values, schema=["metric", "column", "value"], orient="row")
