"""BG/NBD ("buy till you die") model of Fader, Hardie & Lee (2005), fitted by maximum likelihood with scipy.

Why an own implementation: `lifetimes` is unmaintained (last release 0.11.3, 2020) and `btyd` 0.1a1 pins autograd 1.4,
which does not import on Python 3.11; `pymc-marketing` resolves but pulls in ~24 packages (pytensor, numba, llvmlite,
h5py, xarray, arviz) for what is a closed-form four-parameter likelihood.

Model (time in weeks, clock starting at each customer's first order, which is not counted):
- while alive, a customer buys as a Poisson process with rate lambda ~ Gamma(shape r, rate alpha);
- after every repeat purchase the customer drops out with probability p ~ Beta(a, b).
A customer is summarised by x (repeat purchases), t_x (time of the last purchase) and T (time observed).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import polars as pl
from scipy.optimize import minimize
from scipy.special import betaln, digamma, expit, gammaln, hyp2f1

DAYS_PER_WEEK = 7.0
_LOG_BOUND = 12.0  # log-parameters live in [-12, 12]: keeps exp() finite while allowing e.g. b -> "never drops out"


@dataclass(frozen=True)
class BgNbdParams:
    r: float
    alpha: float
    a: float
    b: float

    def to_dict(self) -> dict[str, float]:
        return {k: float(v) for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, data: dict[str, float]) -> BgNbdParams:
        return cls(r=float(data["r"]), alpha=float(data["alpha"]), a=float(data["a"]), b=float(data["b"]))


def bgnbd_inputs(frame: pl.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(x, t_x, T) in weeks from feature-mart columns, measured at each row's snapshot.

    x = orders_lifetime - 1 (the first order starts the clock), t_x = first_order_age_days - recency_days (first to
    last order), T = first_order_age_days. Customers without an order before the snapshot have no BG/NBD clock yet:
    they get x = t_x = T = 0, are excluded from fitting (T <= 0) and, under the model's convention, are alive with a
    prior-predictive purchase rate; `BgNbdBaseline` gives them a better exposure time from `tenure_days`.
    """
    missing = [c for c in ("orders_lifetime", "recency_days", "first_order_age_days") if c not in frame.columns]
    if missing:
        raise ValueError(f"BG/NBD inputs need feature-mart columns {missing}")
    cols = frame.select(
        pl.col("orders_lifetime").cast(pl.Float64).fill_null(0.0).alias("orders"),
        pl.col("recency_days").cast(pl.Float64).alias("recency"),
        pl.col("first_order_age_days").cast(pl.Float64).alias("age"),
    )
    orders = cols["orders"].to_numpy()
    recency = cols["recency"].to_numpy().astype(float)
    age = cols["age"].to_numpy().astype(float)
    has_order = (orders >= 1) & np.isfinite(age) & np.isfinite(recency)
    x = np.where(has_order, np.maximum(orders - 1.0, 0.0), 0.0)
    big_t = np.where(has_order, np.maximum(age, 0.0), 0.0) / DAYS_PER_WEEK
    t_x = np.where(has_order, np.clip(age - recency, 0.0, None), 0.0) / DAYS_PER_WEEK
    return x, np.minimum(t_x, big_t), big_t


def _as_arrays(*arrays: np.ndarray | float) -> list[np.ndarray]:
    return list(np.broadcast_arrays(*[np.asarray(a, dtype=float) for a in arrays]))


def _log_alive_odds_inverse(params: BgNbdParams, x: np.ndarray, t_x: np.ndarray, big_t: np.ndarray) -> np.ndarray:
    """log of P(dead at T)/P(alive at T); -inf when x == 0 because dropout only follows a repeat purchase."""
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    out = np.full(x.shape, -np.inf)
    rep = x > 0
    xr = x[rep]
    out[rep] = (np.log(a) - np.log(b + xr - 1.0)
                + (r + xr) * (np.log(alpha + big_t[rep]) - np.log(alpha + t_x[rep])))
    return out


def bgnbd_log_likelihood(params: BgNbdParams, x: np.ndarray, t_x: np.ndarray, T: np.ndarray) -> np.ndarray:
    """Per-customer log-likelihood (FHL 2005, eq. 6), computed in log space so large x and T do not overflow."""
    x, t_x, big_t = _as_arrays(x, t_x, T)
    ll, _ = _log_likelihood_and_grad(np.log([params.r, params.alpha, params.a, params.b]), x, t_x, big_t, grad=False)
    return ll


def _log_likelihood_and_grad(
    log_params: np.ndarray, x: np.ndarray, t_x: np.ndarray, big_t: np.ndarray, grad: bool = True
) -> tuple[np.ndarray, np.ndarray | None]:
    """Per-row log-likelihood and its gradient w.r.t. the log-parameters (analytic, so L-BFGS-B stays cheap)."""
    r, alpha, a, b = np.exp(log_params)
    rep = x > 0
    base = gammaln(r + x) - gammaln(r) + r * np.log(alpha)
    alive = betaln(a, b + x) - betaln(a, b) - (r + x) * np.log(alpha + big_t)
    # Dropped out right after the last purchase: only possible with x > 0 (b + x - 1 > 0 there).
    b_dead = np.where(rep, b + x - 1.0, 1.0)
    dead = np.where(rep, betaln(a + 1.0, b_dead) - betaln(a, b) - (r + x) * np.log(alpha + t_x), -np.inf)
    total = np.logaddexp(alive, dead)
    ll = base + total
    if not grad:
        return ll, None
    w_alive = np.exp(alive - total)
    w_dead = 1.0 - w_alive
    d_r = digamma(r + x) - digamma(r) + np.log(alpha) - w_alive * np.log(alpha + big_t) - w_dead * np.log(alpha + t_x)
    d_alpha = r / alpha - (r + x) * (w_alive / (alpha + big_t) + w_dead / (alpha + t_x))
    common_ab = digamma(a + b) - digamma(a + b + x)
    d_a = common_ab + w_dead * (digamma(a + 1.0) - digamma(a))
    d_b = common_ab - digamma(b) + w_alive * digamma(b + x) + w_dead * np.where(rep, digamma(b_dead), 0.0)
    jac = np.stack([d_r * r, d_alpha * alpha, d_a * a, d_b * b], axis=1)
    return ll, jac


def fit_bgnbd(
    x: np.ndarray, t_x: np.ndarray, T: np.ndarray, max_rows: int = 200_000, seed: int = 7, l2: float = 0.0,
) -> BgNbdParams:
    """Maximum-likelihood BG/NBD parameters; rows with T <= 0 carry no information and are dropped.

    Identical (x, t_x, T) rows are collapsed into weights (mart times are whole days, so many coincide); `l2` is an
    optional ridge on the log-parameters for populations where a parameter runs off to a bound.
    """
    x, t_x, big_t = _as_arrays(x, t_x, T)
    keep = big_t > 0
    x, t_x, big_t = x[keep], t_x[keep], big_t[keep]
    if x.size == 0:
        raise ValueError("BG/NBD needs at least one customer with T > 0")
    if x.size > max_rows:
        rows = np.random.default_rng(seed).choice(x.size, size=max_rows, replace=False)
        x, t_x, big_t = x[rows], t_x[rows], big_t[rows]
    unique, weights = np.unique(np.stack([x, t_x, big_t], axis=1), axis=0, return_counts=True)
    ux, ut, uT = unique[:, 0], unique[:, 1], unique[:, 2]
    weights = weights / weights.sum()

    def objective(theta: np.ndarray) -> tuple[float, np.ndarray]:
        ll, jac = _log_likelihood_and_grad(theta, ux, ut, uT)
        value = -float(weights @ ll) + l2 * float(theta @ theta)
        return value, -(weights @ jac) + 2.0 * l2 * theta

    rate = max(float(x.mean()), 0.05) / max(float(big_t.mean()), 1e-3)  # r / alpha ~ repeat purchases per week
    start = np.log([1.0, 1.0 / rate, 1.0, 3.0]).clip(-_LOG_BOUND + 1, _LOG_BOUND - 1)
    result = minimize(objective, start, jac=True, method="L-BFGS-B", bounds=[(-_LOG_BOUND, _LOG_BOUND)] * 4,
                      options={"maxiter": 1000, "ftol": 1e-12, "gtol": 1e-8})
    if not np.all(np.isfinite(result.x)):
        raise RuntimeError(f"BG/NBD fit failed: {result.message}")
    r, alpha, a, b = np.exp(result.x)
    return BgNbdParams(r=float(r), alpha=float(alpha), a=float(a), b=float(b))


def p_alive(params: BgNbdParams, x: np.ndarray, t_x: np.ndarray, T: np.ndarray) -> np.ndarray:
    """P(alive at T | x, t_x, T) = 1 / (1 + [x>0] a/(b+x-1) ((alpha+T)/(alpha+t_x))^(r+x)); 1 when x == 0."""
    x, t_x, big_t = _as_arrays(x, t_x, T)
    return expit(-_log_alive_odds_inverse(params, x, t_x, big_t))


def expected_purchases(
    params: BgNbdParams, t: float | np.ndarray, x: np.ndarray, t_x: np.ndarray, T: np.ndarray,
) -> np.ndarray:
    """E[purchases in (T, T+t] | x, t_x, T] (FHL 2005, eq. 10). Singular at exactly a == 1."""
    t, x, t_x, big_t = _as_arrays(t, x, t_x, T)
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    ratio = np.exp((r + x) * (np.log(alpha + big_t) - np.log(alpha + big_t + t)))
    hyp = hyp2f1(r + x, b + x, a + b + x - 1.0, t / (alpha + big_t + t))
    given_alive = (a + b + x - 1.0) / (a - 1.0) * (1.0 - ratio * hyp)
    return given_alive * p_alive(params, x, t_x, big_t)


def p_no_purchase(
    params: BgNbdParams, horizon_weeks: float | np.ndarray, x: np.ndarray, t_x: np.ndarray, T: np.ndarray,
) -> np.ndarray:
    """P(no purchase in (T, T+h] | x, t_x, T): the BG/NBD score for the label "no order in the next h".

    Dead customers never buy. Alive ones drop out only right after a purchase, so "no purchase in h" is exactly
    "the next Poisson arrival comes after h", with probability E[exp(-lambda h)] under the alive-posterior
    lambda ~ Gamma(r + x, alpha + T):  P0 = (1 - P_alive) + P_alive * ((alpha + T) / (alpha + T + h))^(r + x).
    """
    h, x, t_x, big_t = _as_arrays(horizon_weeks, x, t_x, T)
    alive = p_alive(params, x, t_x, big_t)
    log_silent = (params.r + x) * (np.log(params.alpha + big_t) - np.log(params.alpha + big_t + h))
    return (1.0 - alive) + alive * np.exp(log_silent)


def simulate_bgnbd(
    params: BgNbdParams, T: np.ndarray, horizon_weeks: float = 0.0, seed: int = 0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Draw customers from the BG/NBD process: (x, t_x) observed up to T and the purchase count in (T, T+horizon].

    Event-by-event simulation, independent of the closed forms above, so tests can check those against it.
    """
    rng = np.random.default_rng(seed)
    big_t = np.asarray(T, dtype=float)
    n = big_t.size
    rate = rng.gamma(params.r, 1.0 / params.alpha, n)
    dropout = rng.beta(params.a, params.b, n)
    end = big_t + horizon_weeks
    clock, x, t_x, future = np.zeros(n), np.zeros(n), np.zeros(n), np.zeros(n)
    active = np.ones(n, dtype=bool)
    while active.any():
        idx = np.flatnonzero(active)
        clock[idx] += rng.exponential(1.0 / rate[idx])
        ended = clock[idx] > end[idx]
        active[idx[ended]] = False
        bought = idx[~ended]
        observed = clock[bought] <= big_t[bought]
        x[bought[observed]] += 1.0
        t_x[bought[observed]] = clock[bought[observed]]
        future[bought[~observed]] += 1.0
        active[bought[rng.random(bought.size) < dropout[bought]]] = False
    return x, t_x, future
