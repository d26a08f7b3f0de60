"""Threshold simulation against hand-computed campaign economics."""

from __future__ import annotations

import numpy as np
import pytest

from assets.modeling.threshold import (
    ThresholdEconomics,
    best_threshold,
    plot_threshold_simulation,
    simulate_thresholds,
)

# Five customers (deliberately unsorted) with calibrated churn probabilities .9 .7 .4 .2 .1.
P = np.array([0.2, 0.9, 0.1, 0.7, 0.4])
THRESHOLDS = np.array([0.5, 0.15, 0.95, 0.8, 0.3])
COLUMNS = ["threshold", "eligible", "contacted", "capacity_bound", "expected_churners_contacted", "precision",
           "expected_saves", "cost", "value", "profit"]


def economics(capacity: int | None = None) -> ThresholdEconomics:
    return ThresholdEconomics(cost_per_contact=12.0, value_of_retained_customer=100.0, save_rate=0.5,
                              contact_capacity=capacity)


def test_simulation_without_capacity_matches_hand_numbers():
    table = simulate_thresholds(P, economics(), THRESHOLDS)
    assert table.columns == COLUMNS
    # t     eligible  contacted  E[churners]        saves (x.5)  cost (x12)  value (x100)  profit
    # .15   4         4          .9+.7+.4+.2 = 2.2  1.1          48          110           62
    # .30   3         3          .9+.7+.4    = 2.0  1.0          36          100           64
    # .50   2         2          .9+.7       = 1.6  .8           24          80            56
    # .80   1         1          .9               .45          12          45            33
    # .95   0         0          0                0            0           0             0
    assert table["threshold"].to_list() == [0.15, 0.3, 0.5, 0.8, 0.95]
    assert table["eligible"].to_list() == [4, 3, 2, 1, 0]
    assert table["contacted"].to_list() == [4, 3, 2, 1, 0]
    assert table["capacity_bound"].to_list() == [False] * 5
    assert table["expected_churners_contacted"].to_list() == pytest.approx([2.2, 2.0, 1.6, 0.9, 0.0])
    assert table["expected_saves"].to_list() == pytest.approx([1.1, 1.0, 0.8, 0.45, 0.0])
    assert table["cost"].to_list() == pytest.approx([48, 36, 24, 12, 0])
    assert table["value"].to_list() == pytest.approx([110, 100, 80, 45, 0])
    assert table["profit"].to_list() == pytest.approx([62, 64, 56, 33, 0])
    assert table["precision"].to_list()[:4] == pytest.approx([0.55, 2 / 3, 0.8, 0.9])
    assert table["precision"][4] is None  # nobody contacted
    best = best_threshold(table)
    assert (best["threshold"], best["contacted"], best["profit"]) == (0.3, 3, pytest.approx(64))


def test_simulation_with_capacity_matches_hand_numbers():
    table = simulate_thresholds(P, economics(capacity=2), THRESHOLDS)
    # Capacity 2: below .5 more than two are eligible, so only the .9 and .7 customers are contacted:
    # E[churners] 1.6, saves .8, cost 24, value 80, profit 56 for t = .15, .30 and .50.
    assert table["eligible"].to_list() == [4, 3, 2, 1, 0]
    assert table["contacted"].to_list() == [2, 2, 2, 1, 0]
    assert table["capacity_bound"].to_list() == [True, True, False, False, False]
    assert table["expected_churners_contacted"].to_list() == pytest.approx([1.6, 1.6, 1.6, 0.9, 0.0])
    assert table["cost"].to_list() == pytest.approx([24, 24, 24, 12, 0])
    assert table["profit"].to_list() == pytest.approx([56, 56, 56, 33, 0])
    # Equal profits: the highest threshold wins (smallest eligible pool for the same campaign).
    assert best_threshold(table)["threshold"] == 0.5


def test_default_grid_adds_the_threshold_that_fills_the_capacity():
    p = np.array([0.92, 0.62, 0.43, 0.21, 0.08])
    table = simulate_thresholds(p, economics(capacity=2))
    assert table.height == 20  # 0.05 .. 0.95 plus 0.62
    assert table["threshold"].is_sorted()
    fill = table.filter(table["threshold"] == 0.62).row(0, named=True)
    assert (fill["eligible"], fill["contacted"], fill["capacity_bound"]) == (2, 2, False)
    # .92 + .62 = 1.54 expected churners -> .77 saves -> 77 - 24 = 53.
    assert fill["profit"] == pytest.approx(53.0)
    below = table.filter(table["threshold"] == 0.4).row(0, named=True)
    assert (below["eligible"], below["contacted"], below["capacity_bound"]) == (3, 2, True)
    assert simulate_thresholds(p, economics()).height == 19


@pytest.mark.parametrize(
    "kwargs",
    [
        {"cost_per_contact": -1.0},
        {"value_of_retained_customer": -5.0},
        {"save_rate": 1.2},
        {"save_rate": -0.1},
        {"contact_capacity": -3},
        {"contact_capacity": 2.5},
    ],
)
def test_economics_reject_invalid_inputs(kwargs):
    base = {"cost_per_contact": 1.0, "value_of_retained_customer": 10.0, "save_rate": 0.3, "contact_capacity": None}
    with pytest.raises(ValueError):
        ThresholdEconomics(**{**base, **kwargs})


def test_simulation_rejects_scores_outside_unit_interval():
    with pytest.raises(ValueError, match="calibrated probabilities"):
        simulate_thresholds(np.array([0.2, 1.3]), economics())


def test_plot_writes_png(tmp_path):
    path = plot_threshold_simulation(simulate_thresholds(P, economics(capacity=2)), tmp_path / "threshold.png")
    assert path.stat().st_size > 1_000
    assert path.read_bytes()[:4] == b"\x89PNG"
