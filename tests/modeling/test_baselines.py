"""Baselines: the RFM rule, the logistic regression and BG/NBD on small synthetic snapshot frames."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal

import numpy as np
import polars as pl
import pytest
from sklearn.metrics import roc_auc_score

from assets.modeling.baselines import (
    BgNbdBaseline,
    fit_bgnbd_baseline,
    fit_logistic_baseline,
    rfm_heuristic_score,
)
from assets.modeling.bgnbd import BgNbdParams, simulate_bgnbd

SNAPSHOT = date(2025, 1, 6)


def test_rfm_score_is_a_bounded_rank_that_puts_lapsed_customers_first():
    frame = pl.DataFrame(
        {
            "customer_id": ["active", "lapsed", "middle", "never"],
            "recency_days": [2, 300, 40, None],
            "orders_365d": [25, 1, 5, 0],
            "revenue_365d": [Decimal("900.50"), Decimal("12.00"), Decimal("150.00"), None],
        }
    )
    score = rfm_heuristic_score(frame)
    assert score.shape == (4,)
    assert np.all((score >= 0) & (score <= 1))
    assert score[0] == 0.0  # best on all three rules
    assert score[1] > score[2] > score[0]
    assert score[3] == pytest.approx(1.0)  # no order at all: riskiest on every rule


def test_rfm_score_ranks_within_each_snapshot():
    one = {"recency_days": [5, 50], "orders_365d": [10, 2], "revenue_365d": [500.0, 40.0]}
    frame = pl.DataFrame({"snapshot_date": [date(2025, 1, 6)] * 2 + [date(2025, 1, 13)] * 2,
                          **{k: v + [x * 3 for x in v] for k, v in one.items()}})
    score = rfm_heuristic_score(frame)
    assert score.tolist() == [0.0, 1.0, 0.0, 1.0]
    assert rfm_heuristic_score(frame.head(1)).tolist() == [0.5]


def _logistic_problem(n: int, seed: int) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    recency = rng.exponential(60, n)
    country = rng.choice(["DE", "FR", "NL"], n)
    subscribed = rng.random(n) < 0.5
    revenue = rng.gamma(2.0, 50.0, n).round(2)
    logit = 0.03 * (recency - 60) + np.select([country == "DE", country == "FR"], [-1.5, 0.0], 1.5)
    churned = rng.random(n) < 1 / (1 + np.exp(-logit))
    frame = pl.DataFrame(
        {
            "recency_days": recency,
            "country": country,
            "is_subscribed": subscribed,
            "revenue_365d": [Decimal(f"{v:.2f}") for v in revenue],
            "churned": churned,
        }
    )
    # Punch holes: nulls in a numeric and in the category.
    holes = rng.random(n) < 0.1
    return frame.with_columns(
        pl.when(pl.Series(holes)).then(None).otherwise(pl.col("recency_days")).alias("recency_days"),
        pl.when(pl.Series(np.roll(holes, 1))).then(None).otherwise(pl.col("country")).alias("country"),
    )


FEATURES = ["recency_days", "is_subscribed", "revenue_365d", "country"]


def test_logistic_baseline_learns_numeric_and_category_signal():
    train, test = _logistic_problem(3_000, seed=1), _logistic_problem(2_000, seed=2)
    assert train.schema["revenue_365d"].is_decimal() and train["recency_days"].null_count() > 0
    model = fit_logistic_baseline(train, FEATURES, ["country"])
    p = model.predict_proba(test)
    assert p.shape == (test.height,) and np.all((p > 0) & (p < 1))
    assert roc_auc_score(test["churned"].to_numpy(), p) > 0.7

    coefficients = model.coefficients()
    assert {"intercept", "recency_days", "recency_days is missing", "country=DE", "country=NL",
            "country=missing", "is_subscribed", "revenue_365d"} <= set(coefficients)
    assert coefficients["recency_days"] > 0.5
    assert coefficients["country=NL"] > coefficients["country=DE"]
    assert abs(coefficients["is_subscribed"]) < 0.2  # pure noise stays near zero


def test_logistic_baseline_scores_unseen_categories_and_all_null_rows():
    model = fit_logistic_baseline(_logistic_problem(1_000, seed=3), FEATURES, ["country"])
    odd = pl.DataFrame(
        {
            "recency_days": [30.0, None],
            "country": ["BR", None],
            "is_subscribed": [True, None],
            "revenue_365d": [Decimal("10.00"), None],
        },
        schema_overrides={"revenue_365d": pl.Decimal(18, 2)},
    )
    p = model.predict_proba(odd)
    assert np.all(np.isfinite(p)) and np.all((p > 0) & (p < 1))


def test_logistic_baseline_subsamples_reproducibly_and_rejects_bad_input():
    train = _logistic_problem(1_500, seed=4)
    first = fit_logistic_baseline(train, FEATURES, ["country"], max_rows=500, seed=5)
    again = fit_logistic_baseline(train, FEATURES, ["country"], max_rows=500, seed=5)
    assert first.coefficients() == again.coefficients()
    assert first.coefficients() != fit_logistic_baseline(train, FEATURES, ["country"]).coefficients()
    with pytest.raises(ValueError, match="single class"):
        fit_logistic_baseline(train.with_columns(pl.lit(False).alias("churned")), FEATURES, ["country"])
    with pytest.raises(ValueError, match="not among the features"):
        fit_logistic_baseline(train, ["recency_days"], ["country"])


def _mart_like(params: BgNbdParams, n: int, horizon_days: int, seed: int) -> pl.DataFrame:
    """Snapshot rows in feature-mart units (whole days before T) with the label 'no order in the next horizon'."""
    age_days = np.random.default_rng(seed).integers(60, 600, n)
    x, t_x, future = simulate_bgnbd(params, age_days / 7.0, horizon_weeks=horizon_days / 7.0, seed=seed + 1)
    last_order_age = age_days - np.floor(t_x * 7.0).astype(int)
    return pl.DataFrame(
        {
            "customer_id": [f"c{i}" for i in range(n)],
            "snapshot_date": [SNAPSHOT] * n,
            "orders_lifetime": (x + 1).astype(int),
            "recency_days": last_order_age,
            "first_order_age_days": age_days,
            "tenure_days": age_days + 3,
            "churned": future == 0,
        }
    )


def test_bgnbd_baseline_ranks_churners_and_round_trips():
    truth = BgNbdParams(r=0.6, alpha=8.0, a=0.7, b=3.0)
    train = _mart_like(truth, 4_000, horizon_days=90, seed=10)
    # An older snapshot of the same customers must not count them twice.
    older = train.with_columns(
        pl.lit(date(2024, 12, 30)).alias("snapshot_date"), (pl.col("orders_lifetime") * 0 + 1).alias("orders_lifetime")
    )
    baseline = fit_bgnbd_baseline(pl.concat([older, train]), horizon_days=90)
    assert baseline == fit_bgnbd_baseline(train, horizon_days=90)
    assert baseline.params.r == pytest.approx(truth.r, rel=0.25)

    test = _mart_like(truth, 4_000, horizon_days=90, seed=20)
    p = baseline.predict_proba(test)
    assert np.all((p >= 0) & (p <= 1))
    assert roc_auc_score(test["churned"].to_numpy(), p) > 0.7
    assert p.mean() == pytest.approx(test["churned"].mean(), abs=0.03)
    assert BgNbdBaseline.from_dict(json.loads(json.dumps(baseline.to_dict()))) == baseline


def test_bgnbd_baseline_scores_customers_without_orders_by_tenure():
    baseline = BgNbdBaseline(params=BgNbdParams(r=0.6, alpha=8.0, a=0.7, b=3.0), horizon_days=90)
    frame = pl.DataFrame(
        {
            "orders_lifetime": [0, 0, 2],
            "recency_days": [None, None, 10],
            "first_order_age_days": [None, None, 200],
            "tenure_days": [7, 700, 250],
        },
        schema_overrides={"recency_days": pl.Int32, "first_order_age_days": pl.Int32},
    )
    p = baseline.predict_proba(frame)
    assert p[1] > p[0]  # two years registered without buying is riskier than one week
    assert np.all((p > 0) & (p < 1))
    without_tenure = baseline.predict_proba(frame.drop("tenure_days"))
    assert without_tenure[0] == without_tenure[1] == pytest.approx((8.0 / (8.0 + 90 / 7)) ** 0.6)
    assert without_tenure[2] == pytest.approx(p[2])
    with pytest.raises(ValueError, match="positive"):
        fit_bgnbd_baseline(frame, horizon_days=0)
