"""Contact-threshold simulation for retention campaigns, from calibrated churn probabilities.

Because the probabilities are calibrated, the sum of p over contacted customers is the expected number of
would-be churners reached, which is what turns a threshold into money."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

DEFAULT_THRESHOLDS = np.round(np.arange(1, 20) * 0.05, 2)  # 0.05, 0.10, ..., 0.95 as exact decimals


@dataclass(frozen=True)
class ThresholdEconomics:
    """Campaign economics: what a contact costs, what a saved customer is worth, the share of contacted
    would-be churners the offer saves, and how many customers the team can contact (None = no limit)."""

    cost_per_contact: float
    value_of_retained_customer: float
    save_rate: float
    contact_capacity: int | None = None

    def __post_init__(self) -> None:
        for name in ("cost_per_contact", "value_of_retained_customer", "save_rate"):
            value = getattr(self, name)
            if not math.isfinite(value) or value < 0:
                raise ValueError(f"{name} must be a non-negative number, got {value}")
        if self.save_rate > 1:
            raise ValueError(f"save_rate must be in [0, 1], got {self.save_rate}")
        if self.contact_capacity is not None and (
            isinstance(self.contact_capacity, bool) or int(self.contact_capacity) != self.contact_capacity
            or self.contact_capacity < 0
        ):
            raise ValueError(f"contact_capacity must be a non-negative integer or None, got {self.contact_capacity}")


def capacity_threshold(p: np.ndarray, capacity: int) -> float | None:
    """Score of the capacity-th highest customer (the threshold that just fills the capacity), or None when the
    capacity is zero or covers everyone."""
    p = np.asarray(p, dtype=np.float64)
    if capacity <= 0 or capacity >= p.size:
        return None
    return float(np.sort(p)[::-1][capacity - 1])


def simulate_thresholds(
    p: np.ndarray, economics: ThresholdEconomics, thresholds: np.ndarray | None = None,
) -> pl.DataFrame:
    """Expected campaign outcome per threshold: customers with p >= t are eligible, the highest-p eligible ones are
    contacted up to the capacity. Without explicit thresholds the grid 0.05..0.95 is used, plus the threshold that
    exactly fills the capacity when one is set; explicit thresholds are used as given."""
    p = np.asarray(p, dtype=np.float64)
    if p.ndim != 1 or p.size == 0:
        raise ValueError("p must be a non-empty 1-d array")
    if np.isnan(p).any() or p.min() < 0 or p.max() > 1:
        raise ValueError("p must be calibrated probabilities in [0, 1]")
    if thresholds is None:
        grid = DEFAULT_THRESHOLDS
        if economics.contact_capacity is not None:
            fill = capacity_threshold(p, economics.contact_capacity)
            grid = grid if fill is None else np.append(grid, fill)
    else:
        grid = np.asarray(thresholds, dtype=np.float64)
    grid = np.unique(grid)

    ascending = np.sort(p)
    expected_top = np.concatenate([[0.0], np.cumsum(ascending[::-1])])  # expected churners among the top k
    eligible = p.size - np.searchsorted(ascending, grid, side="left")
    capacity = p.size if economics.contact_capacity is None else economics.contact_capacity
    contacted = np.minimum(eligible, capacity)
    churners = expected_top[contacted]
    saves = economics.save_rate * churners
    cost = contacted * economics.cost_per_contact
    value = saves * economics.value_of_retained_customer
    return pl.DataFrame({
        "threshold": grid,
        "eligible": eligible.astype(np.int64),
        "contacted": contacted.astype(np.int64),
        "capacity_bound": eligible > capacity,
        "expected_churners_contacted": churners,
        "precision": [c / k if k else None for c, k in zip(churners.tolist(), contacted.tolist(), strict=True)],
        "expected_saves": saves,
        "cost": cost.astype(np.float64),
        "value": value,
        "profit": value - cost,
    }, schema_overrides={"precision": pl.Float64})


def best_threshold(table: pl.DataFrame) -> dict:
    """The most profitable row; among equal profits the highest threshold, i.e. the smallest eligible pool."""
    if table.is_empty():
        raise ValueError("empty simulation table")
    return table.sort(["profit", "threshold"], descending=[True, True]).row(0, named=True)


def plot_threshold_simulation(table: pl.DataFrame, path: Path) -> Path:
    """Profit, cost and value against the threshold, with customers contacted on a second axis."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t = table["threshold"].to_numpy()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    try:
        for column, style in (("profit", "-"), ("value", "--"), ("cost", ":")):
            ax.plot(t, table[column].to_numpy(), linestyle=style, marker="o", markersize=3, label=column)
        ax.axhline(0.0, color="grey", linewidth=0.8)
        ax.set(xlabel="Churn probability threshold", ylabel="Expected amount", title="Retention campaign by threshold")
        counts = ax.twinx()
        counts.step(t, table["contacted"].to_numpy(), where="mid", color="tab:purple", alpha=0.6, label="contacted")
        counts.set_ylabel("Customers contacted")
        lines, labels = ax.get_legend_handles_labels()
        more_lines, more_labels = counts.get_legend_handles_labels()
        ax.legend(lines + more_lines, labels + more_labels, loc="upper right")
        fig.tight_layout()
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=110)
    finally:
        plt.close(fig)
    return path
