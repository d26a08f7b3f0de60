"""k-anonymous aggregate reports: no published cell describes fewer than k customers, directly or by subtraction."""

from __future__ import annotations

import polars as pl


def suppress_small_cells(table: pl.DataFrame, count_column: str, k: int, measures: list[str],
                         margin_columns: list[str] | None = None) -> pl.DataFrame:
    """Null the count and `measures` of every cell with fewer than `k` customers and mark it `suppressed`.

    Secondary suppression: when a margin (the rows sharing `margin_columns`) would have exactly one suppressed
    cell, its published total minus the other cells would reveal it, so the smallest other cell of that margin is
    suppressed too (the usual complementary suppression of statistics offices).
    """
    if k < 2:
        raise ValueError("k must be at least 2")
    out = table.with_columns((pl.col(count_column) < k).alias("suppressed"))
    # A suppression made for one margin can leave another margin with a single suppressed cell: repeat until stable.
    while True:
        before = int(out.get_column("suppressed").sum())
        for column in margin_columns or []:
            out = out.with_columns(
                pl.col("suppressed").sum().over(column).alias("_n_suppressed"),
                # the smallest unsuppressed cell of the margin ranks first
                pl.when(pl.col("suppressed")).then(None).otherwise(pl.col(count_column))
                .rank("ordinal").over(column).alias("_rank"),
            ).with_columns(
                (pl.col("suppressed") | ((pl.col("_n_suppressed") == 1) & (pl.col("_rank") == 1)))
                .alias("suppressed")
            ).drop("_n_suppressed", "_rank")
        if int(out.get_column("suppressed").sum()) == before:
            break
    hidden = [count_column, *measures]
    return out.with_columns(
        [pl.when(pl.col("suppressed")).then(None).otherwise(pl.col(c)).alias(c) for c in hidden])


def is_k_anonymous(table: pl.DataFrame, count_column: str, k: int) -> bool:
    """The check run before a report is written: every published count is at least k."""
    published = table.filter(~pl.col("suppressed")).get_column(count_column)
    return bool((published >= k).all())
