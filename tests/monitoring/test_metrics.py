"""PSI, data quality, prediction shift, performance decay and thresholds, on data with known answers."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from assets.monitoring.metrics import (
    Threshold,
    findings,
    performance_metrics,
    psi_categorical,
    psi_numeric,
    snapshot_metrics,
)

RNG = np.random.default_rng(11)


def _frame(n: int, shift: float = 0.0, null_share: float = 0.0, countries=("GB", "IE")) -> pl.DataFrame:
    x = RNG.normal(shift, 1.0, n)
    x[RNG.random(n) < null_share] = np.nan
    return pl.DataFrame({
        "recency_days": pl.Series(x).fill_nan(None),
        "country": RNG.choice(list(countries), n),
        "p_churn": np.clip(RNG.normal(0.3 + shift / 10, 0.1, n), 0, 1),
    })


def test_psi_is_near_zero_for_the_same_distribution_and_grows_with_the_shift():
    reference = pl.Series("x", RNG.normal(0, 1, 20_000))
    same = psi_numeric(reference, pl.Series("x", RNG.normal(0, 1, 20_000)))
    small = psi_numeric(reference, pl.Series("x", RNG.normal(0.25, 1, 20_000)))
    large = psi_numeric(reference, pl.Series("x", RNG.normal(1.0, 1, 20_000)))
    assert same < 0.01 < small < 0.25 < large
    # A normal shifted by d has PSI close to d**2 (symmetric KL divergence); quantile binning loses a little.
    assert large == pytest.approx(1.0, rel=0.25)


def test_psi_counts_missing_values_and_new_categories():
    reference = pl.Series("c", ["a"] * 500 + ["b"] * 500)
    assert psi_categorical(reference, pl.Series("c", ["a"] * 500 + ["b"] * 500)) == pytest.approx(0.0)
    assert psi_categorical(reference, pl.Series("c", ["a"] * 500 + ["z"] * 500)) > 1.0
    numbers = pl.Series("x", RNG.normal(0, 1, 5_000))
    with_nulls = pl.Series("x", list(RNG.normal(0, 1, 4_000)) + [None] * 1_000)
    assert psi_numeric(numbers, with_nulls) > 0.25  # a fifth of the values gone missing is a shift


def test_snapshot_metrics_report_quality_and_prediction_shift():
    reference = _frame(5_000)
    current = _frame(5_000, shift=1.0, null_share=0.3, countries=("GB", "FR"))
    metrics = snapshot_metrics(reference, current, ["country"])
    value = {(m, c): v for m, c, v in metrics.iter_rows()}
    assert value[("missing_share_increase", "recency_days")] == pytest.approx(0.3, abs=0.03)
    assert value[("new_category_share", "country")] == pytest.approx(0.5, abs=0.03)
    beyond = snapshot_metrics(reference, reference.with_columns(pl.col("recency_days") + 10), ["country"])
    assert beyond.filter(pl.col("metric") == "out_of_range_share").item(0, "value") == 1.0
    assert value[("out_of_range_share", "recency_days")] < 0.05  # a shift, not values beyond anything seen
    assert value[("mean_shift", "p_churn")] == pytest.approx(0.1, abs=0.01)
    assert value[("psi_drift_share", "*")] == 1.0  # both features drifted
    calm = {(m, c): v for m, c, v in snapshot_metrics(reference, _frame(5_000), ["country"]).iter_rows()}
    assert calm[("psi_drift_share", "*")] == 0.0 and abs(calm[("mean_shift", "p_churn")]) < 0.01


def test_performance_decay_is_measured_against_validation():
    y = RNG.random(4_000) < 0.3
    good = np.clip(0.3 + 0.4 * (y - 0.3) + RNG.normal(0, 0.15, y.size), 0.01, 0.99)
    figures = dict(performance_metrics(y, good, {"auc": 0.99, "ece": 0.0}).select("metric", "value").iter_rows())
    assert figures["auc_decay"] == pytest.approx(0.99 - figures["auc"])
    assert figures["ece_increase"] == pytest.approx(max(0.0, figures["ece"] - figures["ece_noise_floor"]))
    assert figures["labelled_rows"] == 4_000


def test_ece_increase_discounts_the_noise_of_a_small_snapshot_but_not_a_real_miscalibration():
    rng = np.random.default_rng(11)
    p = rng.uniform(0.05, 0.95, 1_500)
    calibrated = rng.random(p.size) < p  # labels drawn from the predictions: perfectly calibrated

    def figures(y, validation):
        return dict(performance_metrics(y, p, validation).select("metric", "value").iter_rows())

    quiet = figures(calibrated, {"auc": 0.8, "ece": 0.01})
    # the raw ECE of 1,500 calibrated rows sits well above a validation ECE of 0.01: that gap is sample noise
    assert quiet["ece"] > 0.02 and quiet["ece_noise_floor"] > 0.02
    assert quiet["ece_increase"] < 0.01
    # a validation ECE measured on as few rows carries the same floor: it is discounted too
    same_size = figures(calibrated, {"auc": 0.8, "ece": quiet["ece"], "rows": 1_500})
    assert same_size["ece_increase"] == pytest.approx(max(0.0, quiet["ece"] - quiet["ece_noise_floor"])
                                                      - max(0.0, quiet["ece"] - quiet["ece_noise_floor"]))
    shifted = rng.random(p.size) < np.clip(p + 0.15, 0, 1)  # the world churns 15 points more than predicted
    assert figures(shifted, {"auc": 0.8, "ece": 0.01})["ece_increase"] > 0.08


def test_thresholds_grade_findings_by_absolute_size():
    metrics = pl.DataFrame({"metric": ["psi", "psi", "psi", "mean_shift"], "column": ["a", "b", "c", "p_churn"],
                            "value": [0.05, 0.15, 0.4, -0.1]})
    found = findings(metrics, [Threshold("psi", 0.1, 0.25), Threshold("mean_shift", 0.03, 0.08, "p_churn")])
    graded = {(r["column"], r["severity"]) for r in found.iter_rows(named=True)}
    assert graded == {("b", "warn"), ("c", "error"), ("p_churn", "error")}
    assert findings(metrics, [Threshold("psi", 1.0, 2.0)]).height == 0
