"""The raw-source monitor: each bronze field in the week before a snapshot against the weeks before it."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import polars as pl

from assets.monitoring.source_drift import (
    SourceShiftLimits,
    shift_findings,
    source_shift,
    summary_rows,
)
from domain.contract import SOURCES

SNAPSHOT = date(2025, 6, 9)
ONSET = SNAPSHOT - timedelta(days=7)


def _orders(days: int = 35, per_day: int = 200, seed: int = 1, **drift) -> pl.LazyFrame:
    """Bronze-shaped orders for the `days` landing days before SNAPSHOT; `drift` applies from ONSET on."""
    rng = np.random.default_rng(seed)
    day = pl.Series([SNAPSHOT - timedelta(days=d) for d in range(days, 0, -1)], dtype=pl.Date).to_numpy().repeat(
        per_day)
    after = day >= np.datetime64(ONSET)
    amount = rng.lognormal(4.0, 0.5, day.size) * np.where(after, drift.get("price", 1.0), 1.0)
    n_items = pl.Series("n_items", rng.integers(1, 5, day.size), dtype=pl.Int32)
    if drift.get("broken"):
        n_items = n_items.zip_with(pl.Series(~after), pl.Series([None] * day.size, dtype=pl.Int32))
    channel = rng.choice(["web", "app", "store"], day.size)
    if drift.get("new_channel"):
        channel = np.where(after & (rng.random(day.size) < 0.3), "marketplace", channel)
    return pl.LazyFrame({"order_id": [f"o{i}" for i in range(day.size)], "customer_id": "tok",
                         "order_ts": None, "amount": amount, "n_items": n_items, "channel": channel,
                         "_partition_date": pl.Series(day, dtype=pl.Date)})


def _value(shift: pl.DataFrame, metric: str, column: str) -> float:
    return shift.filter((pl.col("metric") == metric) & (pl.col("column") == column)).item(0, "value")


def test_a_stable_week_raises_nothing_and_keys_and_times_are_not_profiled():
    shift = source_shift(_orders(), SOURCES["orders"], SNAPSHOT)
    assert set(shift.get_column("column")) == {"orders.*", "orders.amount", "orders.n_items", "orders.channel"}
    assert shift_findings(shift, SourceShiftLimits()).height == 0
    assert summary_rows(shift_findings(shift, SourceShiftLimits())).get_column("value").to_list() == [0.0, 0.0]


def test_each_kind_of_break_is_named_in_the_week_it_lands():
    limits = SourceShiftLimits()
    price = shift_findings(source_shift(_orders(price=1.25), SOURCES["orders"], SNAPSHOT), limits)
    assert price.select("column", "metric", "severity").rows() == [
        ("orders.amount", "mean_change_beyond_noise", "error")]
    broken = source_shift(_orders(broken=True), SOURCES["orders"], SNAPSHOT)
    assert _value(broken, "null_share_increase", "orders.n_items") == 1.0
    assert shift_findings(broken, limits).filter(pl.col("severity") == "error").get_column("column").to_list() == [
        "orders.n_items"]
    channel = source_shift(_orders(new_channel=True), SOURCES["orders"], SNAPSHOT)
    assert 0.25 < _value(channel, "new_category_share", "orders.channel") < 0.35
    assert {"category_psi", "new_category_share"} <= set(shift_findings(channel, limits).get_column("metric"))


def test_one_large_order_is_not_a_price_level_but_every_order_dearer_is():
    rng = np.random.default_rng(5)
    days = [SNAPSHOT - timedelta(days=d) for d in range(42, 0, -1)]
    amounts = rng.lognormal(4.0, 0.8, 80 * len(days))  # 80 orders a day, heavy-tailed

    def orders(amount: np.ndarray) -> pl.LazyFrame:
        return pl.LazyFrame({"amount": amount,
                             "_partition_date": pl.Series([d for d in days for _ in range(80)], dtype=pl.Date)})

    spec = SOURCES["orders"]
    current = np.array([d >= ONSET for d in days]).repeat(80)
    outlier = amounts.copy()
    outlier[np.flatnonzero(current)[0]] = 0.2 * amounts[current].sum()  # one order worth a fifth of the week
    one_order = source_shift(orders(outlier), spec, SNAPSHOT)
    assert _value(one_order, "mean_change", "orders.amount") > 0.15  # the arithmetic mean jumps
    assert shift_findings(one_order, SourceShiftLimits()).height == 0
    dearer = source_shift(orders(np.where(current, amounts * 1.25, amounts)), spec, SNAPSHOT)
    assert shift_findings(dearer, SourceShiftLimits()).select("metric").to_series().to_list() == [
        "mean_change_beyond_noise"]
    assert 0.1 < _value(dearer, "mean_change_beyond_noise", "orders.amount") < 0.25


def test_small_weeks_and_calendar_driven_sources_are_profiled_but_not_judged():
    few = source_shift(_orders(per_day=20, price=2.0), SOURCES["orders"], SNAPSHOT)
    assert _value(few, "mean_change", "orders.amount") > 0.5
    assert shift_findings(few, SourceShiftLimits()).height == 0  # 140 rows < min_rows
    assert shift_findings(few, SourceShiftLimits(min_rows=100)).height == 1
    touches = few.with_columns(pl.col("column").str.replace("orders", "campaign_touches"))
    assert shift_findings(touches, SourceShiftLimits(min_rows=100)).height == 0


def test_no_baseline_means_no_figures():
    assert source_shift(_orders(days=7), SOURCES["orders"], SNAPSHOT).height == 0
