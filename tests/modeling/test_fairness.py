"""Age bands, per-group error rates, summary gaps and the release limits on them."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from assets.modeling.fairness import (
    FairnessLimits,
    age_band,
    fairness_intervals,
    fairness_summary,
    fairness_violations,
    group_fairness,
    operating_threshold,
)

# Group a: churners scored .9 and .2, non-churners .6 and .1. Group b: churner .7, non-churners .8 .3 .2.
Y = np.array([1, 1, 0, 0, 1, 0, 0, 0])
P = np.array([0.9, 0.2, 0.6, 0.1, 0.7, 0.8, 0.3, 0.2])
G = np.array(["a", "a", "a", "a", "b", "b", "b", "b"])


def test_age_bands_from_birth_year():
    born = np.array([2001, 2000, 1991, 1990, 1981, 1975, 1961, 1960, np.nan, 2030])
    # Ages in 2025: 24, 25, 34, 35, 44, 50, 64, 65, unknown, -5 (impossible -> unknown).
    assert age_band(born, 2025).tolist() == ["<25", "25-34", "25-34", "35-44", "35-44", "45-54", "55-64", "65+",
                                             "unknown", "unknown"]
    series = pl.Series([1990, None, 1950], dtype=pl.Int64)
    assert age_band(series, np.array([2014, 2024, 2024])).tolist() == ["<25", "unknown", "65+"]


def test_group_fairness_hand_example():
    table = group_fairness(Y, P, G, threshold=0.5, min_group_rows=1)
    assert table.columns == ["group", "rows", "churners", "auc", "tpr", "fpr", "selection_rate"]
    a, b = table.rows(named=True)
    # a: selected .9 (churner) and .6 (not): TPR 1/2, FPR 1/2, 2 of 4 selected. AUC: of the 4 churner/non-churner
    # pairs only (.2, .6) is misordered -> 3/4.
    assert (a["group"], a["rows"], a["churners"]) == ("a", 4, 2)
    assert (a["tpr"], a["fpr"], a["selection_rate"], a["auc"]) == (0.5, 0.5, 0.5, 0.75)
    # b: selected .7 (churner) and .8 (not): TPR 1, FPR 1/3, 2 of 4 selected; AUC .7 beats .3 and .2 but not .8.
    assert (b["tpr"], b["fpr"], b["selection_rate"]) == (1.0, pytest.approx(1 / 3), 0.5)
    assert b["auc"] == pytest.approx(2 / 3)
    # With the default minimum of 30 rows these groups are too small for an AUC.
    assert group_fairness(Y, P, G, threshold=0.5)["auc"].null_count() == 2


def test_summary_and_violations_for_the_hand_example():
    summary = fairness_summary(group_fairness(Y, P, G, threshold=0.5, min_group_rows=1), min_group_rows=1)
    assert summary["groups_compared"] == ["a", "b"]
    assert summary["equal_opportunity_difference"] == 0.5
    assert summary["selection_rate_ratio"] == 1.0
    assert summary["auc_gap"] == pytest.approx(0.75 - 2 / 3)
    lines = fairness_violations({"region": summary}, FairnessLimits(min_group_rows=1))
    assert len(lines) == 1
    assert lines[0].startswith("region: equal opportunity difference 0.500 exceeds 0.100")
    assert "'a'" in lines[0] and "'b'" in lines[0]


def test_a_group_that_is_never_selected_violates_the_four_fifths_rule():
    y = np.tile([1, 0, 0, 0], 20)
    p = np.r_[np.tile([0.9, 0.8, 0.1, 0.1], 10), np.full(40, 0.2)]
    groups = np.r_[np.full(40, "young"), np.full(40, "old")]
    summary = fairness_summary(group_fairness(y, p, groups, threshold=0.5))
    assert summary["selection_rate_ratio"] == 0.0
    assert summary["selection_min_group"] == "old"
    lines = fairness_violations({"age_band": summary}, FairnessLimits())
    assert any(line.startswith("age_band: selection rate ratio 0.000 is below 0.800") for line in lines)
    assert any("equal opportunity difference 1.000" in line for line in lines)  # TPR 1 vs 0


def test_identical_groups_pass():
    rng = np.random.default_rng(0)
    p = rng.uniform(0, 1, 200)
    y = (rng.uniform(size=200) < p).astype(int)
    table = group_fairness(np.r_[y, y], np.r_[p, p], np.r_[["x"] * 200, ["y"] * 200], threshold=0.5)
    summary = fairness_summary(table)
    assert (summary["equal_opportunity_difference"], summary["selection_rate_ratio"], summary["auc_gap"]) == (
        0.0, 1.0, 0.0)
    assert fairness_violations({"gender": summary}, FairnessLimits()) == []


def test_small_and_missing_groups():
    y = np.r_[np.tile([1, 0], 20), [1, 0]]
    p = np.r_[np.tile([0.9, 0.1], 20), [0.1, 0.9]]
    groups = np.array(["big"] * 40 + [None, None], dtype=object)
    table = group_fairness(y, p, groups, threshold=0.5)
    assert table["group"].to_list() == ["big", "unknown"]
    assert table.filter(pl.col("group") == "unknown")["auc"].item() is None  # 2 rows < 30
    summary = fairness_summary(table)
    # Only one group is large enough: nothing to compare, nothing to flag.
    assert summary["groups_compared"] == ["big"]
    assert summary["equal_opportunity_difference"] is None and summary["selection_rate_ratio"] is None
    assert fairness_violations({"gender": summary}, FairnessLimits()) == []
    codes = group_fairness(np.array([1, 0, 1, 0]), np.array([0.9, 0.1, 0.2, 0.8]), np.array([1, 1, 2, 2]), 0.5)
    assert codes["group"].to_list() == ["1", "2"] and codes["tpr"].to_list() == [1.0, 0.0]
    from_series = group_fairness(Y[:3], P[:3], pl.Series(["m", None, "f"]), threshold=0.5)
    assert from_series["group"].to_list() == ["f", "m", "unknown"]


def test_operating_threshold_is_the_score_of_the_last_customer_contacted():
    p = np.array([0.05, 0.9, 0.3, 0.6, 0.1, 0.8, 0.2, 0.7, 0.4, 0.5])
    assert operating_threshold(p, 0.2) == 0.8  # top 2 of 10: .9 and .8
    assert operating_threshold(p, 0.25) == 0.7  # ceil(2.5) = 3
    assert operating_threshold(p, 1.0) == 0.05
    assert (p >= operating_threshold(p, 0.3)).sum() == 3


def _population(rng: np.random.Generator, n: int, churn_rate: float, signal: float) -> tuple[np.ndarray, np.ndarray]:
    """Labels and scores where churners score higher by `signal` (in logit units) on average."""
    y = (rng.random(n) < churn_rate).astype(int)
    p = 1 / (1 + np.exp(-(rng.normal(size=n) + signal * y - 1.5)))
    return y, p


def _judged(y, p, groups, min_group_rows=30):
    threshold = operating_threshold(p, 0.2)
    summary = fairness_summary(group_fairness(y, p, groups, threshold, min_group_rows), min_group_rows)
    intervals = fairness_intervals(y, p, groups, threshold, min_group_rows)
    return summary, {**summary, **intervals}


def test_a_chance_gap_between_small_groups_is_not_a_violation():
    """Two groups drawn from the same population: the first seed whose sample shows an equal-opportunity gap over
    the limit. The figure alone would block the model; its interval reaches below the limit, so it does not."""
    for seed in range(100):
        rng = np.random.default_rng(seed)
        y, p = _population(rng, 300, 0.3, 1.5)
        groups = np.array(["f", "m"] * 150)
        bare, judged = _judged(y, p, groups)
        if bare["equal_opportunity_difference"] > 0.12:
            break
    else:
        raise AssertionError("no sample with a chance gap over the limit")
    assert fairness_violations({"gender": bare}, FairnessLimits()) != []
    low, high = judged["equal_opportunity_difference_ci"]
    assert low < 0.1 < high and low <= bare["equal_opportunity_difference"] <= high
    assert fairness_violations({"gender": judged}, FairnessLimits()) == []


def test_a_real_gap_is_a_violation_and_the_interval_is_reported():
    """The model ranks one group's churners far worse: the whole interval lies beyond the limit."""
    rng = np.random.default_rng(5)
    y_a, p_a = _population(rng, 2000, 0.3, 2.5)
    y_b, p_b = _population(rng, 2000, 0.3, 0.3)
    y, p = np.concatenate([y_a, y_b]), np.concatenate([p_a, p_b])
    groups = np.array(["a"] * 2000 + ["b"] * 2000)
    _, judged = _judged(y, p, groups)
    assert judged["equal_opportunity_difference_ci"][0] > 0.1
    lines = fairness_violations({"group": judged}, FairnessLimits())
    assert lines and "95% interval" in lines[0]


def test_intervals_are_seeded_and_narrow_with_many_rows():
    rng = np.random.default_rng(11)
    y, p = _population(rng, 20_000, 0.3, 1.5)
    groups = rng.choice(["x", "y"], size=y.size)
    threshold = operating_threshold(p, 0.2)
    first = fairness_intervals(y, p, groups, threshold)
    assert first == fairness_intervals(y, p, groups, threshold)
    assert first["equal_opportunity_difference_ci"][1] < 0.05
    assert first["selection_rate_ratio_ci"][0] > 0.85
    assert fairness_intervals(y, p, np.array(["x"] * y.size), threshold)["selection_rate_ratio_ci"] is None


def test_a_customer_seen_in_several_snapshots_is_one_piece_of_evidence():
    """The same customers in four snapshots with the same outcome: resampled as customers, the intervals are those
    of one snapshot; resampled as rows, four times the rows would make them narrower than the evidence is."""
    rng = np.random.default_rng(3)
    y, p = _population(rng, 400, 0.3, 1.5)
    groups = np.array(["f", "m"] * 200)
    threshold = operating_threshold(p, 0.1)
    once = fairness_intervals(y, p, groups, threshold)
    y4, p4, groups4 = np.tile(y, 4), np.tile(p, 4), np.tile(groups, 4)
    customers = np.tile(np.arange(y.size), 4)
    as_customers = fairness_intervals(y4, p4, groups4, threshold, customers=customers)
    as_rows = fairness_intervals(y4, p4, groups4, threshold)

    def width(result: dict) -> float:
        low, high = result["selection_rate_ratio_ci"]
        return high - low

    assert as_customers["selection_rate_ratio_ci"] == pytest.approx(once["selection_rate_ratio_ci"])
    assert as_customers["equal_opportunity_difference_ci"] == pytest.approx(once["equal_opportunity_difference_ci"])
    assert width(as_rows) < 0.7 * width(as_customers)
