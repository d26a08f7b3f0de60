"""Gains/lift tables, the evaluation scorecard and chart files."""

from __future__ import annotations

import numpy as np
import pytest

from assets.modeling.calibration import expected_calibration_error, reliability_curve
from assets.modeling.evaluation import (
    evaluation_metrics,
    gains_table,
    lift_at,
    plot_gains,
    plot_importance,
    plot_precision_recall,
    plot_reliability,
    plot_roc,
)
from domain.metrics import binary_metrics

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def perfect_ranking() -> tuple[np.ndarray, np.ndarray]:
    """100 customers, 30 churners, every churner scored above every non-churner; rows shuffled."""
    rng = np.random.default_rng(0)
    y = rng.permutation(np.r_[np.ones(30, dtype=int), np.zeros(70, dtype=int)])
    p = np.where(y == 1, 0.6, 0.2) + rng.uniform(0, 0.1, 100)
    return y, p


def test_gains_of_a_perfect_ranking_capture_every_churner_by_the_base_rate_decile():
    table = gains_table(*perfect_ranking())
    assert table.columns == ["decile", "rows", "churners", "churn_rate", "lift", "cumulative_rows_share",
                             "cumulative_gain", "cumulative_lift"]
    assert table["decile"].to_list() == list(range(1, 11))
    assert table["rows"].to_list() == [10] * 10
    assert table["churners"].to_list() == [10, 10, 10] + [0] * 7
    # Base rate 30%: decile 3 is where all churners are in; deciles 1-3 each have lift 1 / 0.3.
    assert table["cumulative_gain"].to_list()[:3] == pytest.approx([1 / 3, 2 / 3, 1.0])
    assert table["cumulative_gain"].to_list()[3:] == [1.0] * 7
    assert table["lift"].to_list()[:3] == pytest.approx([10 / 3] * 3)
    assert table["cumulative_lift"].to_list()[3] == pytest.approx(1.0 / 0.4)
    assert table["cumulative_lift"][-1] == pytest.approx(1.0)
    assert table["cumulative_rows_share"].to_list() == pytest.approx([i / 10 for i in range(1, 11)])


def test_gains_break_ties_by_input_order_and_split_uneven_counts():
    y = np.r_[np.ones(10, dtype=int), np.zeros(90, dtype=int)]
    table = gains_table(y, np.full(100, 0.5))  # all tied: the first 10 input rows form decile 1
    assert table["churners"].to_list() == [10] + [0] * 9
    odd = gains_table(np.array([1, 0, 0, 1, 0, 0, 0]), np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3]), bins=3)
    # 7 rows into 3 groups by rank * 3 // 7: ranks 0-2, 3-4, 5-6.
    assert odd["rows"].to_list() == [3, 2, 2]
    assert odd["churners"].to_list() == [1, 1, 0]


def test_lift_at_hand_example():
    y = np.array([1, 0, 1, 0, 0, 0, 0, 0, 0, 1])  # base rate 0.3
    p = np.array([0.9, 0.8, 0.3, 0.1, 0.2, 0.4, 0.5, 0.6, 0.05, 0.7])
    # Top 20% = 2 rows: p .9 (churner) and .8 (not) -> rate .5, lift .5 / .3.
    assert lift_at(y, p, 0.2) == pytest.approx(5 / 3)
    # Top 30% = 3 rows: .9, .8, .7 -> two churners, lift (2/3) / .3.
    assert lift_at(y, p, 0.3) == pytest.approx(20 / 9)
    # ceil(0.1 * 30) must be 3 even though 0.1 * 30 == 3.0000000000000004 in floating point.
    y30 = np.r_[[1, 1, 1, 0], np.zeros(26, dtype=int)]
    assert lift_at(y30, np.linspace(1, 0, 30), 0.1) == pytest.approx(1.0 / 0.1)
    assert lift_at(y, p, 1.0) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="fraction"):
        lift_at(y, p, 0.0)


def test_evaluation_metrics_extend_binary_metrics():
    rng = np.random.default_rng(1)
    p = rng.uniform(0, 1, 2_000)
    y = (rng.uniform(size=p.size) < p).astype(int)
    metrics = evaluation_metrics(y, p)
    assert {k: metrics[k] for k in binary_metrics(y, p)} == binary_metrics(y, p)
    assert metrics["ece"] == expected_calibration_error(y, p, bins=10)
    assert metrics["lift_at_10"] == lift_at(y, p, 0.1)
    assert metrics["lift_at_10"] > 1.5  # p = true probability: the top decile churns at ~0.95 vs base ~0.5


def test_plots_write_png_files(tmp_path):
    y, p = perfect_ranking()
    rng = np.random.default_rng(2)
    noisy = np.clip(p + rng.normal(0, 0.3, p.size), 0, 1)
    curves = {"v1": (y, p), "v2": (y, noisy)}
    paths = [
        plot_roc(curves, tmp_path / "roc.png"),
        plot_precision_recall(curves, tmp_path / "pr.png"),
        plot_reliability({"raw": reliability_curve(y, noisy), "calibrated": reliability_curve(y, p)},
                         tmp_path / "reliability.png"),
        plot_gains({"v1": gains_table(y, p), "v2": gains_table(y, noisy)}, tmp_path / "gains.png"),
        plot_importance({f"feature_{i}": float(i) for i in range(30)}, tmp_path / "charts" / "importance.png", top=5),
    ]
    for path in paths:
        assert path.exists() and path.stat().st_size > 1_000
        assert path.read_bytes()[:8] == PNG_MAGIC
