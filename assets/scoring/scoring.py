"""Batch scoring of one or more snapshots with a registered model."""

from __future__ import annotations

import polars as pl

from assets.modeling.training import predict
from resources.registry import LoadedModel

SCORE_COLUMNS = ("customer_id", "snapshot_date", "p_churn", "decile", "model_version")


def score_features(features: pl.DataFrame, model: LoadedModel) -> pl.DataFrame:
    """p_churn per customer and snapshot, with deciles within each snapshot (1 = highest risk)."""
    if features.height == 0:
        return pl.DataFrame(schema={"customer_id": pl.Utf8, "snapshot_date": pl.Date, "p_churn": pl.Float64,
                                    "decile": pl.Int8, "model_version": pl.Utf8})
    ordered = features.sort(["snapshot_date", "customer_id"])
    p = predict(model.booster, ordered, model.features, model.categories, model.best_iteration)
    scored = ordered.select("customer_id", "snapshot_date").with_columns(pl.Series("p_churn", p, pl.Float64))
    # Rank with a deterministic tie-break so deciles are reproducible.
    rank = pl.col("p_churn").rank("ordinal", descending=True).over("snapshot_date")
    size = pl.len().over("snapshot_date")
    return scored.with_columns(
        ((rank - 1) * 10 // size + 1).cast(pl.Int8).alias("decile"),
        pl.lit(model.version).alias("model_version"),
    ).select(SCORE_COLUMNS)
