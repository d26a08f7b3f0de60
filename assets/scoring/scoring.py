"""Batch scoring of one or more snapshots with a registered model: calibrated probability, decile, reasons; and
the newest scores as the stages downstream (campaign economics, exports) read them."""

from __future__ import annotations

from datetime import date

import numpy as np
import polars as pl

from assets.modeling.calibration import sigmoid
from assets.modeling.pipeline import REASON_COUNT, RegisteredModel, top_reasons
from resources.lake import LakeResource

SCORE_COLUMNS = ("customer_id", "snapshot_date", "p_churn", "raw_score", "decile", "model_version")
REASON_COLUMNS = tuple(f"reason_{i}_{part}" for i in range(1, REASON_COUNT + 1)
                       for part in ("feature", "direction", "contribution"))
SCORES_SCHEMA = {
    "customer_id": pl.Utf8, "snapshot_date": pl.Date, "p_churn": pl.Float64, "raw_score": pl.Float64,
    "decile": pl.Int8, "model_version": pl.Utf8,
    **{c: (pl.Float64 if c.endswith("contribution") else pl.Utf8) for c in REASON_COLUMNS},
}


def latest_scores(lake: LakeResource, snapshot: str | None = None) -> pl.DataFrame:
    """Scores of one snapshot (the newest by default), as the threshold simulation and exports read them."""
    scores = lake.scan("gold", "customer_scores")
    if snapshot is None:
        newest = scores.select(pl.col("snapshot_date").max()).collect().item()
        if newest is None:
            raise LookupError("gold/customer_scores is empty: materialize scores first")
        return scores.filter(pl.col("snapshot_date") == newest).collect()
    return scores.filter(pl.col("snapshot_date") == date.fromisoformat(snapshot)).collect()


def score_features(features: pl.DataFrame, model: RegisteredModel, with_reasons: bool = True,
                   reason_deciles: int = 10) -> pl.DataFrame:
    """Calibrated p_churn per customer and snapshot, deciles within each snapshot (1 = highest risk), and the top
    reasons from the model's own contributions (LightGBM: TreeSHAP) for risk deciles 1..`reason_deciles`; null
    for the other rows, and for every row when `with_reasons` is off. TreeSHAP costs about 100 predictions per
    row, so large deployments keep reasons where campaigns read them (docs/performance.md)."""
    if features.height == 0:
        return pl.DataFrame(schema=SCORES_SCHEMA)
    if not 0 <= reason_deciles <= 10:
        raise ValueError(f"reason_deciles must be between 0 and 10, got {reason_deciles}")
    pipeline = model.pipeline
    ordered = pipeline.prepare(features.sort(["snapshot_date", "customer_id"]))
    # The probability always comes from the plain prediction (summing contributions differs in the last bits),
    # so a score is identical with or without reasons.
    raw = pipeline.raw_score(ordered)
    p = pipeline.calibrator.apply(sigmoid(raw))
    scored = ordered.select("customer_id", "snapshot_date").with_columns(
        pl.Series("p_churn", p, pl.Float64), pl.Series("raw_score", raw, pl.Float64))
    # Rank with a deterministic tie-break so deciles are reproducible.
    rank = pl.col("p_churn").rank("ordinal", descending=True).over("snapshot_date")
    size = pl.len().over("snapshot_date")
    scored = scored.with_columns(
        ((rank - 1) * 10 // size + 1).cast(pl.Int8).alias("decile"),
        pl.lit(model.version).alias("model_version"),
    )
    explained = (scored.get_column("decile") <= reason_deciles).to_numpy() if with_reasons else \
        np.zeros(ordered.height, dtype=bool)
    if explained.all():
        reasons = top_reasons(pipeline.contributions(ordered), pipeline.features)
    elif explained.any():
        chosen = top_reasons(pipeline.contributions(ordered.filter(explained)), pipeline.features)
        reasons = pl.DataFrame({"row": np.arange(ordered.height)}).join(
            chosen.with_columns(pl.Series("row", np.flatnonzero(explained))), on="row", how="left",
            maintain_order="left").drop("row")
    else:
        reasons = pl.DataFrame({c: pl.Series([None] * ordered.height, dtype=SCORES_SCHEMA[c])
                                for c in REASON_COLUMNS})
    return pl.concat([scored, reasons], how="horizontal").select(list(SCORES_SCHEMA))
