"""Audience exports for campaign tools and the aggregate risk report, as pure functions over polars frames."""

from __future__ import annotations

import polars as pl

from assets.governance.anonymity import suppress_small_cells
from domain.contract import VAULT_SOURCE_ID

AUDIENCE_COLUMNS = ("customer_id", "snapshot_date", "segment", "decile", "p_churn", "reason_1_feature",
                    "reason_1_direction", "model_version")


def build_audience(scores: pl.DataFrame, max_decile: int) -> pl.DataFrame:
    """Customers in risk deciles 1..max_decile, segmented by decile and main reason (e.g. `d1:recency_days`), so a
    campaign can pick a message per reason. Scores without reasons (old backfilled snapshots) get `d1:unknown`."""
    if not 1 <= max_decile <= 10:
        raise ValueError("max_decile must be between 1 and 10")
    return (
        scores.filter(pl.col("decile") <= max_decile)
        .with_columns(pl.format("d{}:{}", pl.col("decile"), pl.col("reason_1_feature").fill_null("unknown"))
                      .alias("segment"))
        .select(AUDIENCE_COLUMNS)
        .sort("decile", "p_churn", "customer_id", descending=[False, True, False])
    )


def with_source_ids(audience: pl.DataFrame, vault: pl.LazyFrame) -> pl.DataFrame:
    """The audience with each customer's own id from the pii_vault (the latest record per token), for the hand-off
    file a campaign tool reads: tokens mean nothing outside Assay. A customer missing from the vault stays in the
    file with a null id, so the count handed off always equals the audience."""
    ids = (
        vault.filter(pl.col("customer_id").is_in(audience.get_column("customer_id").implode()))
        .sort("_partition_date", "_ingested_at")
        .group_by("customer_id").agg(pl.col(VAULT_SOURCE_ID).last())
        .collect()
    )
    return audience.join(ids, on="customer_id", how="left").select(VAULT_SOURCE_ID, *audience.columns)


def risk_by_segment(scores: pl.DataFrame, profile: pl.DataFrame, k: int) -> pl.DataFrame:
    """Customers and mean calibrated churn probability by country, acquisition channel and decile, with every
    cell under k customers suppressed (and its complement, see suppress_small_cells)."""
    table = (
        scores.join(profile.select("customer_id", "snapshot_date", "country", "acquisition_channel"),
                    on=["customer_id", "snapshot_date"], how="left")
        .group_by("snapshot_date", "country", "acquisition_channel", "decile")
        .agg(pl.len().cast(pl.Int64).alias("customers"), pl.col("p_churn").mean().alias("mean_p_churn"))
        .sort("snapshot_date", "country", "acquisition_channel", "decile")
    )
    return suppress_small_cells(table, "customers", k, ["mean_p_churn"],
                                margin_columns=["country", "acquisition_channel", "decile"])
