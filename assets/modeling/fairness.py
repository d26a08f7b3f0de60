"""Group fairness of churn scores: per-group error rates at the operating threshold and limits to gate a release."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl
from sklearn.metrics import roc_auc_score

from assets.modeling.evaluation import top_count

AGE_BANDS: tuple[str, ...] = ("<25", "25-34", "35-44", "45-54", "55-64", "65+")
UNKNOWN = "unknown"


def age_band(birth_year: np.ndarray | pl.Series, snapshot_year: int | np.ndarray) -> np.ndarray:
    """Age band from whole years (snapshot year minus birth year); missing or future birth years are "unknown",
    because an impossible age says nothing about the customer's band."""
    if isinstance(birth_year, pl.Series):
        birth_year = birth_year.cast(pl.Float64).to_numpy()
    born = np.asarray(birth_year, dtype=np.float64)
    age = np.asarray(snapshot_year, dtype=np.float64) - born
    age = np.broadcast_to(age, born.shape)
    valid = ~np.isnan(age) & (age >= 0)
    conditions = [valid & (age < 25), valid & (age < 35), valid & (age < 45), valid & (age < 55), valid & (age < 65),
                  valid]
    return np.select(conditions, list(AGE_BANDS), default=UNKNOWN)


def _group_labels(groups: np.ndarray | pl.Series) -> np.ndarray:
    """Group values as strings, with null/NaN as "unknown" so missing attributes stay visible as their own group."""
    values = groups.to_list() if isinstance(groups, pl.Series) else np.asarray(groups, dtype=object).tolist()
    return np.array(
        [UNKNOWN if v is None or (isinstance(v, float) and np.isnan(v)) else str(v) for v in values], dtype=object
    )


def _rate(numerator: int, denominator: int) -> float | None:
    return numerator / denominator if denominator else None


def group_fairness(
    y: np.ndarray, p: np.ndarray, groups: np.ndarray | pl.Series, threshold: float, min_group_rows: int = 30,
) -> pl.DataFrame:
    """Per group: size, churners, AUC (null if one class or fewer than `min_group_rows`), TPR and FPR at `threshold`
    (null without positives/negatives) and the selection rate, i.e. the share that would be contacted."""
    y = np.asarray(y)
    p = np.asarray(p, dtype=np.float64)
    labels = _group_labels(groups)
    if not (y.shape == p.shape == labels.shape) or y.ndim != 1:
        raise ValueError("y, p and groups must be 1-d arrays of equal length")
    if not np.isin(y, (0, 1)).all():
        raise ValueError("labels must be 0 or 1")
    selected = p >= threshold
    rows = []
    for group in sorted(set(labels.tolist())):
        mask = labels == group
        gy, gsel = y[mask], selected[mask]
        positives, n = int(gy.sum()), int(mask.sum())
        negatives = n - positives
        scorable = n >= min_group_rows and 0 < positives < n
        rows.append({
            "group": group,
            "rows": n,
            "churners": positives,
            "auc": float(roc_auc_score(gy, p[mask])) if scorable else None,
            "tpr": _rate(int((gsel & (gy == 1)).sum()), positives),
            "fpr": _rate(int((gsel & (gy == 0)).sum()), negatives),
            "selection_rate": float(gsel.mean()),
        })
    schema = {"group": pl.String, "rows": pl.Int64, "churners": pl.Int64, "auc": pl.Float64, "tpr": pl.Float64,
              "fpr": pl.Float64, "selection_rate": pl.Float64}
    return pl.DataFrame(rows, schema=schema)


def _spread(frame: pl.DataFrame, column: str) -> tuple[float, str, float, str] | None:
    """(min value, its group, max value, its group) over non-null values, or None with fewer than two groups."""
    known = frame.filter(pl.col(column).is_not_null()).sort([column, "group"])
    if known.height < 2:
        return None
    return known[column][0], known["group"][0], known[column][-1], known["group"][-1]


def fairness_summary(per_group: pl.DataFrame, min_group_rows: int = 30) -> dict:
    """Gaps between groups with at least `min_group_rows` rows; a metric is None when fewer than two such groups
    have a value (nothing to compare, so nothing to gate on)."""
    compared = per_group.filter(pl.col("rows") >= min_group_rows)
    summary: dict = {"groups_compared": compared["group"].to_list(), "min_group_rows": min_group_rows}
    tpr = _spread(compared, "tpr")
    summary["equal_opportunity_difference"] = None if tpr is None else tpr[2] - tpr[0]
    summary["tpr_min_group"], summary["tpr_max_group"] = (None, None) if tpr is None else (tpr[1], tpr[3])
    sel = _spread(compared, "selection_rate")
    if sel is None:
        summary["selection_rate_ratio"] = None
    else:
        summary["selection_rate_ratio"] = 1.0 if sel[2] == 0 else sel[0] / sel[2]
    summary["selection_min_group"], summary["selection_max_group"] = (None, None) if sel is None else (sel[1], sel[3])
    auc = _spread(compared, "auc")
    summary["auc_gap"] = None if auc is None else auc[2] - auc[0]
    return summary


def _customer_cells(selected: np.ndarray, churned: np.ndarray, customers: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each customer's counts of rows per cell (selected churner, missed churner, selected stayer, unselected
    stayer), folded into the distinct count patterns and how many customers have each."""
    _, customer = np.unique(customers, return_inverse=True)
    cell = np.where(selected & churned, 0, np.where(churned, 1, np.where(selected, 2, 3)))
    counts = np.zeros((customer.max() + 1, 4), dtype=np.int64)
    np.add.at(counts, (customer, cell), 1)
    return np.unique(counts, axis=0, return_counts=True)


def fairness_intervals(
    y: np.ndarray, p: np.ndarray, groups: np.ndarray | pl.Series, threshold: float, min_group_rows: int = 30,
    n_boot: int = 2000, level: float = 0.95, seed: int = 7, customers: np.ndarray | None = None,
) -> dict:
    """Seeded bootstrap intervals for the two gaps `fairness_summary` reports at `threshold`: the true-positive rate
    of the group with the highest minus that of the group with the lowest, and the selection rate of the least
    selected group over that of the most selected. Customers are resampled within each group (group sizes stay as
    observed), with all their rows: the rows of one customer in several snapshots are not independent evidence, and
    resampling them one by one would make the intervals too narrow. Without `customers` each row is its own customer.
    A customer counts only through their rows' cells (selected or not, churner or not), so a resample of a group is
    one multinomial draw over the customers' distinct cell patterns. The pair is picked after looking at the data,
    so each interval is widened for every pair it could have been (Bonferroni): the largest of many chance gaps is
    not evidence. None when fewer than two groups can be compared."""
    y = np.asarray(y)
    labels = _group_labels(groups)
    selected = np.asarray(p, dtype=np.float64) >= threshold
    customers = np.arange(y.size) if customers is None else np.asarray(customers)
    compared = [g for g in sorted(set(labels.tolist())) if (labels == g).sum() >= min_group_rows]
    out: dict = {"interval_level": level, "equal_opportunity_difference_ci": None, "selection_rate_ratio_ci": None}
    if len(compared) < 2:
        return out
    rng = np.random.default_rng(seed)
    observed_tpr, observed_rate = {}, {}
    tpr = np.full((n_boot, len(compared)), np.nan)
    rate = np.empty((n_boot, len(compared)))
    for j, group in enumerate(compared):
        mask = labels == group
        patterns, frequency = _customer_cells(selected[mask], y[mask] == 1, customers[mask])
        cells = patterns.T @ frequency
        if cells[0] + cells[1]:
            observed_tpr[j] = cells[0] / (cells[0] + cells[1])
        observed_rate[j] = (cells[0] + cells[2]) / cells.sum()
        draws = rng.multinomial(frequency.sum(), frequency / frequency.sum(), size=n_boot) @ patterns
        positives = draws[:, 0] + draws[:, 1]
        tpr[:, j] = np.where(positives > 0, draws[:, 0] / np.maximum(positives, 1), np.nan)
        rate[:, j] = (draws[:, 0] + draws[:, 2]) / draws.sum(axis=1)
    pairs = len(compared) * (len(compared) - 1) / 2
    tail = (1 - level) / 2 / pairs

    def extremes(observed: dict[int, float]) -> tuple[int, int]:
        ordered = sorted(observed, key=lambda j: (observed[j], compared[j]))
        return ordered[0], ordered[-1]

    if len(observed_tpr) >= 2:
        low, high = extremes(observed_tpr)
        gap = tpr[:, high] - tpr[:, low]
        gap = gap[~np.isnan(gap)]
        out["equal_opportunity_difference_ci"] = [float(np.quantile(gap, tail)), float(np.quantile(gap, 1 - tail))]
    low, high = extremes(observed_rate)
    ratio = np.where(rate[:, high] == 0, 1.0, rate[:, low] / np.where(rate[:, high] == 0, 1.0, rate[:, high]))
    out["selection_rate_ratio_ci"] = [float(np.quantile(ratio, tail)), float(np.quantile(ratio, 1 - tail))]
    return out


@dataclass(frozen=True)
class FairnessLimits:
    """Release limits; pass `min_group_rows` to group_fairness/fairness_summary so tiny groups don't gate."""

    max_equal_opportunity_difference: float = 0.1
    min_selection_rate_ratio: float = 0.8  # the four-fifths rule
    min_group_rows: int = 30


def _interval(s: dict, name: str) -> str:
    ci = s.get(f"{name}_ci")
    return f", {s.get('interval_level', 0.95):.0%} interval {ci[0]:.3f} to {ci[1]:.3f}" if ci else ""


def fairness_violations(summaries: dict[str, dict], limits: FairnessLimits) -> list[str]:
    """One readable line per violated limit per attribute (e.g. {"age_band": summary}); empty means pass.

    A summary with intervals (`fairness_intervals`) violates a limit only when its whole interval lies beyond it:
    the gap between small groups must be evidence, not the luck of one validation sample. Without intervals the
    figure itself is compared."""
    lines = []
    for attribute, s in summaries.items():
        eod, eod_ci = s.get("equal_opportunity_difference"), s.get("equal_opportunity_difference_ci")
        limit = limits.max_equal_opportunity_difference
        if eod is not None and (eod_ci[0] if eod_ci else eod) > limit:
            lines.append(
                f"{attribute}: equal opportunity difference {eod:.3f}{_interval(s, 'equal_opportunity_difference')}"
                f" exceeds {limit:.3f}"
                f" (lowest TPR in {s.get('tpr_min_group')!r}, highest in {s.get('tpr_max_group')!r})"
            )
        ratio, ratio_ci = s.get("selection_rate_ratio"), s.get("selection_rate_ratio_ci")
        if ratio is not None and (ratio_ci[1] if ratio_ci else ratio) < limits.min_selection_rate_ratio:
            lines.append(
                f"{attribute}: selection rate ratio {ratio:.3f}{_interval(s, 'selection_rate_ratio')}"
                f" is below {limits.min_selection_rate_ratio:.3f}"
                f" ({s.get('selection_min_group')!r} selected least, {s.get('selection_max_group')!r} most)"
            )
    return lines


def operating_threshold(p: np.ndarray, fraction: float) -> float:
    """The score of the ceil(fraction * n)-th highest customer: contacting everyone with p >= this value reaches the
    top `fraction` of customers (a few more if scores tie at the cut). Fairness is judged at this threshold because
    it is where the retention campaign actually acts."""
    p = np.asarray(p, dtype=np.float64)
    if p.ndim != 1 or p.size == 0:
        raise ValueError("p must be a non-empty 1-d array")
    return float(np.sort(p)[::-1][top_count(p.size, fraction) - 1])
