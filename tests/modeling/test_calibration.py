"""Calibration error, reliability curves, calibrators that survive JSON, and validated method choice."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.isotonic import IsotonicRegression

from assets.modeling.calibration import (
    Calibrator,
    choose_calibrator,
    expected_calibration_error,
    fit_calibrator,
    reliability_curve,
    split_halves,
)


def squared_scores(seed: int, n: int = 20_000) -> tuple[np.ndarray, np.ndarray]:
    """Churn-like true probabilities (Beta(2, 5), base rate ~0.29) reported squared: systematically too low."""
    rng = np.random.default_rng(seed)
    true_p = rng.beta(2, 5, n)
    y = (rng.uniform(size=n) < true_p).astype(np.int8)
    return y, true_p**2


def logistic_shift(seed: int, n: int = 20_000) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Scores whose logit is the true logit + 1.2: exactly the family Platt scaling can undo."""
    rng = np.random.default_rng(seed)
    z = rng.normal(-1.0, 1.5, n)
    y = (rng.uniform(size=n) < 1 / (1 + np.exp(-z))).astype(np.int8)
    ids = rng.integers(0, 5_000, n)  # ~4 rows (snapshots) per customer
    return y, 1 / (1 + np.exp(-(z + 1.2))), ids


def test_ece_matches_a_hand_computation():
    y = np.array([0, 1, 0, 1, 1, 1])
    p = np.array([0.1, 0.2, 0.4, 0.5, 0.8, 1.0])
    # 2 bins: [0, .5) holds .1 .2 .4 -> mean .2333, observed 1/3, gap .1; [.5, 1] holds .5 .8 1.0 -> mean .7667,
    # observed 1, gap .2333. Each bin has half the rows: ECE = .5 * .1 + .5 * .2333 = 1/6.
    assert expected_calibration_error(y, p, bins=2) == pytest.approx(1 / 6)
    # 10 bins: one row per bin, gaps .1 .8 .4 .5 .2 0 -> sum 2.0 over 6 rows.
    assert expected_calibration_error(y, p, bins=10) == pytest.approx(2.0 / 6)
    assert expected_calibration_error(np.array([0, 1]), np.array([0.0, 1.0])) == 0.0
    # Unequal bins are weighted by size: gaps .2 (3 rows, mean p .2, none churned) and .1 (1 row) -> .75*.2 + .25*.1.
    assert expected_calibration_error(np.array([0, 0, 0, 1]), np.array([0.1, 0.2, 0.3, 0.9]), bins=2) == (
        pytest.approx(0.175))


def test_reliability_curve_omits_empty_bins_and_keeps_one_in_the_last_bin():
    curve = reliability_curve(np.array([0, 1, 0, 1, 1, 1]), np.array([0.1, 0.2, 0.4, 0.5, 0.8, 1.0]), bins=10)
    assert curve.columns == ["bin", "lower", "upper", "mean_predicted", "observed_rate", "rows"]
    assert curve["bin"].to_list() == [1, 2, 4, 5, 8, 9]
    last = curve.row(-1, named=True)
    assert (last["lower"], last["upper"], last["mean_predicted"], last["rows"]) == (pytest.approx(0.9), 1.0, 1.0, 1)
    assert curve.filter(curve["bin"] == 5)["mean_predicted"].item() == 0.5  # lower edge is inclusive
    assert curve["rows"].sum() == 6
    # Decimal edges are exact: 0.3, 0.6 and 0.7 open bins 3, 6 and 7 (linspace would put 0.3 in bin 2).
    edges = reliability_curve(np.array([0, 1, 1]), np.array([0.3, 0.6, 0.7]), bins=10)
    assert edges["bin"].to_list() == [3, 6, 7]
    assert edges["lower"].to_list() == [0.3, 0.6, 0.7]


def test_isotonic_and_platt_each_bring_held_out_ece_below_two_percent():
    y_fit, p_fit = squared_scores(seed=0)
    y_test, p_test = squared_scores(seed=100)
    assert expected_calibration_error(y_test, p_test) > 0.15
    for method in ("isotonic", "platt"):
        calibrated = fit_calibrator(y_fit, p_fit, method).apply(p_test)
        assert expected_calibration_error(y_test, calibrated) < 0.02, method


@pytest.mark.parametrize("method", ["isotonic", "platt", "identity"])
def test_json_round_trip_reproduces_outputs_bit_for_bit(method):
    y, p = squared_scores(seed=1, n=5_000)
    calibrator = fit_calibrator(y, p, method)
    restored = Calibrator.from_dict(json.loads(json.dumps(calibrator.to_dict())))
    probe = np.concatenate([p, [0.0, 1e-9, 0.5, 1.0]])  # includes scores outside the fitted range
    assert restored == calibrator
    assert np.array_equal(restored.apply(probe), calibrator.apply(probe))


def test_isotonic_thresholds_reproduce_sklearn_predictions():
    y, p = squared_scores(seed=2, n=5_000)
    reference = IsotonicRegression(out_of_bounds="clip", y_min=0, y_max=1).fit(p, y)
    probe = np.linspace(-0.1, 1.1, 500)
    np.testing.assert_allclose(fit_calibrator(y, p, "isotonic").apply(probe), reference.predict(probe), atol=1e-12)


def test_platt_recovers_a_known_logistic_shift():
    y, p, _ = logistic_shift(seed=3)
    calibrator = fit_calibrator(y, p, "platt")
    assert calibrator.a == pytest.approx(1.0, abs=0.06)
    assert calibrator.b == pytest.approx(-1.2, abs=0.06)
    assert calibrator.apply(np.array([0.0, 1.0])).tolist() == pytest.approx([0.0, 1.0], abs=1e-6)  # clipped logit


def test_choose_calibrator_picks_platt_for_a_logistic_shift():
    y, p, ids = logistic_shift(seed=4)
    calibrator, table = choose_calibrator(y, p, customer_ids=ids, seed=7)
    assert table.columns == ["method", "log_loss", "brier", "ece", "chosen"]
    assert sorted(table["method"].to_list()) == ["isotonic", "platt"]
    assert table["chosen"].sum() == 1
    assert table.filter("chosen")["method"].item() == "platt" == calibrator.method
    assert table["log_loss"].arg_min() == table["chosen"].arg_max()
    assert calibrator == fit_calibrator(y, p, "platt")  # refit on the whole fold


def test_choose_calibrator_picks_isotonic_for_a_step_platt_cannot_bend_to():
    rng = np.random.default_rng(5)
    p = rng.uniform(0, 1, 20_000)
    y = (rng.uniform(size=p.size) < np.where(p < 0.5, 0.1, 0.6)).astype(np.int8)
    calibrator, table = choose_calibrator(y, p)
    assert calibrator.method == "isotonic"
    assert table.filter("chosen")["method"].to_list() == ["isotonic"]
    platt_ll = table.filter(table["method"] == "platt")["log_loss"].item()
    assert table.filter("chosen")["log_loss"].item() < platt_ll


def test_split_by_customer_never_puts_a_customer_on_both_sides():
    ids = np.repeat(np.arange(1_000), 4)  # 4 snapshots per customer
    half = split_halves(ids.size, ids, seed=7)
    per_customer = np.bincount(ids, weights=half)
    assert set(np.unique(per_customer)) == {0.0, 4.0}
    assert 0.4 < half.mean() < 0.6
    assert np.array_equal(half, split_halves(ids.size, ids, seed=7))
    assert not np.array_equal(half, split_halves(ids.size, ids, seed=8))
    assert split_halves(11, None, seed=7).sum() == 5


def test_fitting_refuses_one_class_and_unknown_methods():
    with pytest.raises(ValueError, match="both classes"):
        fit_calibrator(np.zeros(10), np.linspace(0, 1, 10), "platt")
    with pytest.raises(ValueError, match="unknown calibration method"):
        fit_calibrator(np.array([0, 1]), np.array([0.2, 0.8]), "beta")
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        expected_calibration_error(np.array([0, 1]), np.array([0.2, 1.2]))


def test_the_ece_difference_standard_error_is_zero_for_one_model_and_shrinks_with_rows():
    from assets.modeling.calibration import ece_difference_se

    rng = np.random.default_rng(3)
    p = rng.uniform(0.0, 1.0, 60_000)
    y = (rng.random(p.size) < p).astype(np.int8)
    other = np.clip(p + rng.normal(0.0, 0.05, p.size), 0.0, 1.0)
    assert ece_difference_se(y, p, p) == 0.0
    small, large = ece_difference_se(y[:1_900], other[:1_900], p[:1_900]), ece_difference_se(y, other, p)
    assert 0.003 < small < 0.015 and large < small / 3  # about sqrt(60,000 / 1,900) = 5.6 times smaller
    assert ece_difference_se(y, other, p) == large  # seeded
