"""k-anonymity of the aggregate report: small cells and the cells that would reveal them are suppressed."""

from __future__ import annotations

from datetime import date

import numpy as np
import polars as pl
import pytest

from assets.governance.anonymity import is_k_anonymous, suppress_small_cells
from assets.governance.exports import build_audience, risk_by_segment


def test_small_cells_and_their_complement_are_suppressed():
    table = pl.DataFrame({
        "country": ["GB", "GB", "GB", "IE", "IE"],
        "decile": [1, 2, 3, 1, 2],
        "customers": [4, 30, 12, 50, 60],
        "mean_p": [0.9, 0.5, 0.2, 0.8, 0.4],
    })
    out = suppress_small_cells(table, "customers", k=10, measures=["mean_p"], margin_columns=["country"])
    rows = {(r["country"], r["decile"]): r for r in out.iter_rows(named=True)}
    assert rows[("GB", 1)]["suppressed"] and rows[("GB", 1)]["customers"] is None
    assert rows[("GB", 1)]["mean_p"] is None
    # GB's total minus its other cells would give GB/1 away: its smallest other cell goes too
    assert rows[("GB", 3)]["suppressed"] and not rows[("GB", 2)]["suppressed"]
    assert not rows[("IE", 1)]["suppressed"] and rows[("IE", 2)]["customers"] == 60
    assert is_k_anonymous(out, "customers", 10)


def test_the_check_catches_a_published_small_cell():
    table = pl.DataFrame({"customers": [3, 40], "suppressed": [False, False]})
    assert not is_k_anonymous(table, "customers", 10)
    with pytest.raises(ValueError):
        suppress_small_cells(table, "customers", k=1, measures=[])


def _scores(n: int, seed: int = 3) -> tuple[pl.DataFrame, pl.DataFrame]:
    rng = np.random.default_rng(seed)
    snapshot = date(2025, 6, 2)
    ids = [f"C{i:05d}" for i in range(n)]
    p = rng.random(n)
    scores = pl.DataFrame({
        "customer_id": ids, "snapshot_date": [snapshot] * n, "p_churn": p,
        "decile": (pl.Series(p).rank("ordinal", descending=True).cast(pl.Int64) - 1) * 10 // n + 1,
        "reason_1_feature": rng.choice(["recency_days", "orders_90d"], n), "reason_1_direction": ["up"] * n,
        "model_version": ["v1"] * n,
    }).with_columns(pl.col("decile").cast(pl.Int8))
    profile = pl.DataFrame({
        "customer_id": ids, "snapshot_date": [snapshot] * n,
        "country": rng.choice(["GB", "IE", "FR", "LU"], n, p=[0.5, 0.3, 0.19, 0.01]),
        "acquisition_channel": rng.choice(["organic", "paid"], n),
    })
    return scores, profile


def test_risk_report_publishes_no_cell_under_k_and_keeps_the_rest_exact():
    scores, profile = _scores(2_000)
    report = risk_by_segment(scores, profile, k=10)
    assert is_k_anonymous(report, "customers", 10)
    assert report.get_column("suppressed").any()  # Luxembourg's ~20 customers spread over 20 cells
    direct = (scores.join(profile, on=["customer_id", "snapshot_date"])
              .group_by("country", "acquisition_channel", "decile").len())
    published = report.filter(~pl.col("suppressed")).join(direct, on=["country", "acquisition_channel", "decile"])
    assert (published["customers"] == published["len"]).all()
    assert report.filter("suppressed").get_column("customers").null_count() == report.filter("suppressed").height


def test_audience_takes_the_top_deciles_with_a_segment_per_reason():
    scores, _ = _scores(1_000)
    audience = build_audience(scores, max_decile=2)
    assert audience.height == scores.filter(pl.col("decile") <= 2).height
    assert set(audience.get_column("segment").unique()) <= {
        f"d{d}:{r}" for d in (1, 2) for r in ("recency_days", "orders_90d")}
    with pytest.raises(ValueError):
        build_audience(scores, max_decile=0)
