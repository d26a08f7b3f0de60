"""BG/NBD: parameter recovery on simulated customers, closed forms against Monte-Carlo and the published example."""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest

from assets.modeling.bgnbd import (
    BgNbdParams,
    bgnbd_inputs,
    bgnbd_log_likelihood,
    expected_purchases,
    fit_bgnbd,
    p_alive,
    p_no_purchase,
    simulate_bgnbd,
)

TRUE = BgNbdParams(r=0.5, alpha=5.0, a=0.8, b=2.5)
# Fader, Hardie & Lee (2005), CDNOW estimates.
CDNOW = BgNbdParams(r=0.243, alpha=4.414, a=0.793, b=2.426)


@pytest.fixture(scope="module")
def population() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    big_t = np.random.default_rng(11).uniform(20, 80, 5_000)
    x, t_x, _ = simulate_bgnbd(TRUE, big_t, seed=12)
    return x, t_x, big_t


@pytest.fixture(scope="module")
def with_future() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    big_t = np.random.default_rng(21).uniform(10, 80, 60_000)
    x, t_x, future = simulate_bgnbd(CDNOW, big_t, horizon_weeks=13.0, seed=22)
    return x, t_x, big_t, future


def test_fit_recovers_simulated_parameters(population):
    x, t_x, big_t = population
    fitted = fit_bgnbd(x, t_x, big_t)
    # Tolerances: about 1.5x the worst relative error seen over 30 simulation seeds of this design
    # (r 7%, alpha 9%, a 21%, b 25%); the dropout Beta is the weakly identified part of BG/NBD.
    assert fitted.r == pytest.approx(TRUE.r, rel=0.15)
    assert fitted.alpha == pytest.approx(TRUE.alpha, rel=0.15)
    assert fitted.a == pytest.approx(TRUE.a, rel=0.35)
    assert fitted.b == pytest.approx(TRUE.b, rel=0.35)
    assert bgnbd_log_likelihood(fitted, x, t_x, big_t).sum() >= bgnbd_log_likelihood(TRUE, x, t_x, big_t).sum()


def test_fit_ignores_rows_without_exposure_and_subsamples_reproducibly(population):
    x, t_x, big_t = population
    padded = fit_bgnbd(np.r_[x, np.zeros(50)], np.r_[t_x, np.zeros(50)], np.r_[big_t, np.zeros(50)])
    assert padded == fit_bgnbd(x, t_x, big_t)
    first = fit_bgnbd(x, t_x, big_t, max_rows=2_000, seed=3)
    assert first == fit_bgnbd(x, t_x, big_t, max_rows=2_000, seed=3)
    assert first != fit_bgnbd(x, t_x, big_t, max_rows=2_000, seed=4)
    with pytest.raises(ValueError, match="T > 0"):
        fit_bgnbd(np.zeros(3), np.zeros(3), np.zeros(3))


def test_published_cdnow_example():
    # FHL 2005: x=2, t_x=30.43, T=38.86 expects 1.226 purchases in the next 39 weeks.
    assert expected_purchases(CDNOW, 39.0, 2, 30.43, 38.86)[()] == pytest.approx(1.226, abs=5e-4)


def test_p_alive_shape():
    later = p_alive(CDNOW, np.full(5, 3.0), np.array([5.0, 10.0, 20.0, 30.0, 39.0]), np.full(5, 40.0))
    assert np.all(np.diff(later) > 0)  # a recent last purchase means more likely alive
    longer_silence = p_alive(CDNOW, np.full(4, 3.0), np.full(4, 10.0), np.array([10.0, 20.0, 40.0, 80.0]))
    assert longer_silence[0] == pytest.approx(1.0 / (1.0 + CDNOW.a / (CDNOW.b + 2.0)))
    assert np.all(np.diff(longer_silence) < 0)
    assert np.all(p_alive(CDNOW, np.zeros(3), np.zeros(3), np.array([0.0, 5.0, 500.0])) == 1.0)
    assert np.all((later > 0) & (later < 1))


def test_p_alive_is_stable_for_heavy_buyers():
    value = p_alive(CDNOW, np.array([5_000.0]), np.array([1.0]), np.array([1_000.0]))
    assert np.isfinite(value).all() and value[0] < 1e-6
    assert np.isfinite(bgnbd_log_likelihood(CDNOW, np.array([5_000.0]), np.array([999.0]), np.array([1_000.0]))).all()


def test_p_no_purchase_matches_monte_carlo(with_future):
    x, t_x, big_t, future = with_future
    predicted = p_no_purchase(CDNOW, 13.0, x, t_x, big_t)
    silent = future == 0
    assert predicted.mean() == pytest.approx(silent.mean(), abs=0.02)
    for group in (x == 0, x == 1, (x >= 2) & (x <= 4), x >= 5):
        assert group.sum() > 1_000
        assert predicted[group].mean() == pytest.approx(silent[group].mean(), abs=0.02)
    deciles = np.quantile(predicted, np.linspace(0, 1, 11))
    bins = np.clip(np.searchsorted(deciles, predicted, side="right") - 1, 0, 9)
    for k in range(10):
        members = bins == k
        if members.sum() >= 1_000:
            assert predicted[members].mean() == pytest.approx(silent[members].mean(), abs=0.02)


def test_p_no_purchase_limits():
    x, t_x, big_t = np.array([0.0, 4.0]), np.array([0.0, 20.0]), np.array([30.0, 30.0])
    assert np.allclose(p_no_purchase(CDNOW, 0.0, x, t_x, big_t), 1.0)
    assert np.allclose(p_no_purchase(CDNOW, 1e40, x, t_x, big_t), 1.0 - p_alive(CDNOW, x, t_x, big_t), atol=1e-3)
    horizons = np.array([1.0, 4.0, 13.0, 52.0])
    assert np.all(np.diff(p_no_purchase(CDNOW, horizons, 4.0, 20.0, 30.0)) < 0)


def test_expected_purchases_match_monte_carlo(with_future):
    x, t_x, big_t, future = with_future
    predicted = expected_purchases(CDNOW, 13.0, x, t_x, big_t)
    assert predicted.mean() == pytest.approx(future.mean(), rel=0.05)
    for group in (x == 0, x >= 5):
        assert predicted[group].mean() == pytest.approx(future[group].mean(), rel=0.08)


def test_params_json_round_trip():
    params = BgNbdParams(r=0.2431, alpha=4.4135, a=0.7930, b=2.4259)
    assert BgNbdParams.from_dict(json.loads(json.dumps(params.to_dict()))) == params


def test_inputs_from_feature_mart_columns():
    frame = pl.DataFrame(
        {
            "orders_lifetime": [1, 4, 0, None],
            "recency_days": [14, 7, None, None],
            "first_order_age_days": [14, 70, None, None],
        },
        schema_overrides={"orders_lifetime": pl.Int32, "recency_days": pl.Int32},
    )
    x, t_x, big_t = bgnbd_inputs(frame)
    assert x.tolist() == [0.0, 3.0, 0.0, 0.0]
    assert t_x.tolist() == pytest.approx([0.0, 9.0, 0.0, 0.0])
    assert big_t.tolist() == pytest.approx([2.0, 10.0, 0.0, 0.0])
    assert p_alive(CDNOW, x, t_x, big_t)[[0, 2, 3]].tolist() == [1.0, 1.0, 1.0]
    with pytest.raises(ValueError, match="first_order_age_days"):
        bgnbd_inputs(frame.drop("first_order_age_days"))
