"""Seeded, vectorised generator of synthetic landing files plus the ground truth only tests and benchmarks read.

Latent churn process (weekly steps on a Monday-aligned grid; numpy over all customers, a loop over weeks only)
--------------------------------------------------------------------------------------------------------------
Every customer i has static traits drawn once:

* a base weekly order rate λ_i ~ Gamma(shape 1.5, mean RATE_MEAN), tuned so that `large` yields ~20 orders per
  customer over two years;
* an engagement level e_i (events per week multiplier, mean 1, mildly correlated with λ_i);
* a spend level s_i = exp(0.5·u_i) (normalised to mean 1, u_i standard normal) scaling the basket size;

and a latent satisfaction z_{i,t}, AR(1): z_{t+1} = ρ·z_t + σ·ε_t (ρ = 0.97, stationary sd ≈ 1), plus a positive
jump CLICK_JUMP in the week after the customer clicked a campaign message (control-group members are never contacted,
so the randomised control group shows the campaign effect).

Each week, for customers present (signed up before the week starts) and alive, death is checked first:
hazard h_{i,t} = sigmoid(a + b·(−z_t) + c·(low spend) + d·(low engagement) + e·[tenure < 8 weeks]), where
low spend = −u_i and low engagement = −standardised log e_i. Survivors (and customers signing up during the week,
who skip that week's death check) then place Poisson(λ_i·exp(γ·z_t)·f) orders and generate
Poisson(k·e_i·exp(δ·z_t)·f) events, f being the share of the week they are present inside [start, end), so the
order-frequency trend, basket size (amount ∝ s_i·exp(0.1·z)) and browsing intensity all reveal z; so do the share
of events that are help-centre visits (sigmoid(SUPPORT_A + SUPPORT_B·z)) and the chance of opening a campaign message.
Dead customers place no orders and produce no events, except for traces in the week they leave: a last help-centre
visit (LEAVER_SUPPORT_VISIT) and an unsubscribe from marketing (LEAVER_UNSUBSCRIBE). Marketing only learns of the
death late, so they keep receiving a few touches for RECENT_DEATH_WEEKS weeks. The existing base (60 % of customers,
signed up in the 3 years before `start`) runs a silent burn-in of BURN_IN_WEEKS weeks before `start`, so some of it
is already lapsed when the data begins.

Ground truth (in `ground_truth_dir`, never in `landing_dir`)
------------------------------------------------------------
* `churn_probability.parquet` (a single file, one row group per snapshot): customer_id (str), snapshot_date (date),
  p_churn (float64) for every Monday in `snapshot_dates(config.snapshot_start, config.end)` and every customer with
  signup_ts < snapshot_date. p_churn is the probability of NO order in [T, T + horizon) given the latent state at T:
  1.0 if dead; if alive, z_T and λ_i are frozen over the horizon of H = horizon/7 weeks and
  p = Σ_{k<H} (Π_{j<k} q_j)·h_k + Π_{k<H} q_k with q_k = (1 − h_k)·exp(−λ_i·exp(γ·z_T)·f_k) (death checked at the
  start of each week, then orders; f_k < 1 only for the last, partial week; h_k only changes when the tenure term
  expires). With a constant tenure term and integer H this is the closed form Σ_{k=0}^{H−1} q^k·h + q^H. It is the
  oracle given the latent state at T, and an approximation of the true label probability because z keeps moving
  (and campaigns still move it) after T. Read it with `pl.scan_parquet(path)`.
* `bad_rows.parquet`: source, kind, n_rows.
* `generation.json`: config (drift kind and onset included), landed_until, row counts, bad-row counts, extra-column
  info, latent parameters, drift-scenario parameters, seconds.

All three describe the world landed so far, [start, landed_until): snapshots before landed_until, rows and bad rows
of the landed days.

Landing a world a piece at a time
---------------------------------
The config defines the world up to its horizon `end`; `generate(..., land_from, land_until)` writes only the landing
days in [land_from, land_until) and simulates only the weeks that reach a day before land_until. The simulation is
causal (streams read in week order, nothing about a week drawn from later ones), so landing [start, X) and then
[X, Y) gives the same files as landing [start, Y) at once. `landing_dir/.assay-synthetic.json` records the world's
config and landed_until; only with it does a full regeneration delete anything, and then only the generator's own
source folders. `extend_world` lands the next days of the world recorded there.

Landing layout and deliberate defects
-------------------------------------
`landing_dir/<source>/date=YYYY-MM-DD/part-00000.parquet` for customers, orders, events, campaign_touches, consents
(one folder per day with rows; no `date` column inside the files). Columns and dtypes follow `domain.contract`,
except for these defects, each at about `bad_row_rate` of the source's rows:

* orders `null_key`, `negative_amount`, `future_timestamp`: EXTRA rows copied from a good row of the same day, with
  a fresh order_id and respectively customer_id null / amount negated / order_ts moved days ahead or into 2099;
* orders `duplicate_id`: an exact copy (same order_id) of a good row, appended to the same day's file;
* events `null_key`: EXTRA copies of a good event with event_id null;
* customers `malformed_email`: the email of an existing customer row is replaced in place (e.g. "john.doe#example",
  "@@", "john.doeexample.com"); the customer itself is real.

Bad rows are appended after the day's good rows. Dropping the extra rows leaves exactly the simulated data, so the
defects never change the ground truth. Schema evolution (not a defect): orders files landing on or after
`extra_column_from` carry an extra Utf8 column `coupon_code` (mostly null) that is not in the contract.
"""

from __future__ import annotations

import json
import math
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, fields
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from domain.contract import SOURCES, TIMESTAMP
from domain.settings import DEFAULT_END, DEFAULT_SNAPSHOT_START, DEFAULT_START

SIZES: dict[str, int] = {"tiny": 300, "small": 3_000, "demo": 20_000, "large": 1_000_000}

# --- latent process parameters (tuned: ~20 orders/customer over 2 years, 25-40 % 90-day churn among actives) ---
RHO = 0.97
SIGMA = 0.25
RATE_SHAPE = 1.5
RATE_MEAN = 0.215  # weekly orders at z = 0
GAMMA_ORDERS = 0.6
DELTA_EVENTS = 0.5
EVENTS_PER_WEEK = 0.33  # default of SyntheticConfig.events_per_week; ~1.5 events per order
# Share of a customer's events that are help-centre visits: sigmoid(SUPPORT_A + SUPPORT_B·z). Unhappy customers
# look for help (returns, complaints, how to cancel); at z = 0 about 1 event in 10, at z = −1 almost half.
SUPPORT_A = -2.2
SUPPORT_B = -2.0
HAZARD_A = -5.6
HAZARD_B = 1.1
HAZARD_C = 0.35
HAZARD_D = 0.35
HAZARD_E = 1.8
NEW_WEEKS = 8
CLICK_JUMP = 0.6
BURN_IN_WEEKS = 26
BASE_SHARE = 0.6
BASE_YEARS = 3
ORDER_MEAN_AMOUNT = 55.0
# --- marketing and consent ---
RECENT_DEATH_WEEKS = 8
TARGET_SHARE = 0.29  # share of eligible customers each campaign reaches
CONTROL_SHARE = 0.10
CLICK_GIVEN_OPEN = 0.35
OPEN_Z = 0.9  # how strongly satisfaction drives opening a campaign message (logit per unit of z)
CAMPAIGNS_PER_WEEK_P = (0.05, 0.8, 0.15)  # P(0, 1, 2 campaigns in a week)
PROFILING_AT_SIGNUP = 0.95
MARKETING_AT_SIGNUP = 0.70
MARKETING_WITHDRAW = 0.003  # weekly, raised for dissatisfied customers
# A customer who leaves (dies) often says so on the way out, in the week of leaving: a last help-centre visit, and
# an unsubscribe from marketing (when subscribed), each with this probability.
LEAVER_SUPPORT_VISIT = 0.5
LEAVER_UNSUBSCRIBE = 0.4
MARKETING_REGRANT = 0.002
PROFILING_WITHDRAW = 0.0005
PROFILING_REGRANT = 0.002

US_PER_SECOND = 1_000_000
DAY_US = 86_400 * US_PER_SECOND
WEEK_US = 7 * DAY_US
EPOCH = date(1970, 1, 1)
FAR_FUTURE = date(2099, 1, 1)

ORDER_CHANNELS = ("web", "app", "store", "marketplace")  # marketplace only in the new_channel drift scenario
TOUCH_CHANNELS = ("email", "sms", "push")
EVENT_TYPES = ("page_view", "search", "add_to_cart", "login", "support")
COUPONS = ("SAVE10", "WELCOME5", "FREESHIP")
GENDERS = ("f", "m", "x")
COUNTRIES = ("GB", "IE", "FR", "DE", "NL", "ES")
ACQUISITION_CHANNELS = ("organic", "paid_search", "social", "referral", "affiliate")
FIRST_NAMES = (
    "Olivia", "Amelia", "Isla", "Ava", "Mia", "Grace", "Freya", "Lily", "Sophie", "Emily", "Ella", "Chloe", "Anna",
    "Lucy", "Sara", "Noah", "Oliver", "George", "Leo", "Arthur", "Oscar", "Harry", "Jack", "Charlie", "Thomas",
    "James", "Henry", "Jacob", "Luca", "Max", "Finn", "Adam", "Samuel", "Daniel", "Liam", "Hugo", "Paul", "Marie",
)  # fmt: skip
LAST_NAMES = (
    "Smith", "Jones", "Taylor", "Brown", "Williams", "Wilson", "Johnson", "Davies", "Patel", "Wright", "Walker",
    "Evans", "Murphy", "Kelly", "Martin", "Bernard", "Dubois", "Muller", "Schmidt", "Weber", "DeVries", "Jansen",
    "Garcia", "Lopez", "Fernandez", "Roberts", "Clarke", "Hughes", "Green", "Hall", "Wood", "Harris", "Lewis",
)  # fmt: skip

BAD_KINDS: dict[str, tuple[str, ...]] = {
    "customers": ("malformed_email",),
    "orders": ("null_key", "negative_amount", "future_timestamp", "duplicate_id"),
    "events": ("null_key",),
}
EXTRA_COLUMN = ("orders", "coupon_code")
# Drift scenarios, from `drift_onset` on (the default world has none):
# price_level   basket amounts 25 % higher (inflation, a price change);
# new_channel   a new sales channel ("marketplace") takes 30 % of orders;
# churn_process a competitor opens in one country (DRIFT_COMPETITOR_COUNTRY): its customers keep browsing but
#               order DRIFT_ORDER_FACTOR as often and their weekly hazard's log-odds rise by DRIFT_HAZARD_SHIFT.
#               The relation between history and churn changes for a segment the model can see (country is a
#               feature), so a model fitted before ranks them wrongly until a refit learns it; the oracle follows;
# broken_field  orders arrive with n_items null (an upstream export breaks).
DRIFT_KINDS = ("price_level", "new_channel", "churn_process", "broken_field")
DRIFT_PRICE_FACTOR = 1.25
DRIFT_NEW_CHANNEL_SHARE = 0.3
DRIFT_HAZARD_SHIFT = 2.0
DRIFT_ORDER_FACTOR = 0.3
DRIFT_COMPETITOR_COUNTRY = "GB"  # the home market: half the customers
PART_FILE = "part-00000.parquet"
DAY_PREFIX = "date="
# Written into the landing folder by every generation: the world's config and how far it has landed. Its presence
# is what allows a later generation to delete (only) the generator's own source folders there.
MARKER_FILE = ".assay-synthetic.json"
WRITE_THREADS = 4  # file creation/unlink latency dominates small writes; threads overlap it


@dataclass(frozen=True)
class SyntheticConfig:
    n_customers: int
    start: date  # first landing day
    end: date  # exclusive
    snapshot_start: date  # first snapshot date (a Monday)
    label_horizon_days: int = 90
    seed: int = 7
    bad_row_rate: float = 0.003  # per kind, share of rows
    extra_column_from: date | None = None  # default: midpoint of [start, end)
    drift_kind: str | None = None  # one of DRIFT_KINDS; None: the world does not change
    drift_onset: date | None = None  # first day the drift applies (required with drift_kind)
    # Clickstream density: browsing events per week at z = 0, times engagement. Events are the densest view of the
    # latent state (their rate, their help-centre share, their silence after a customer leaves), so this sets how
    # much of the oracle's knowledge any model can recover (`bench/diagnose.py information-ceiling`).
    events_per_week: float = EVENTS_PER_WEEK
    # A planted dependence for fairness checks: log-odds added to the weekly hazard of customers of gender "f", from
    # the first week on. 0 (the default): churn does not depend on gender or age, so any gap between those groups
    # is chance. It draws nothing of its own: the customers are the same, what follows from who leaves when is not.
    gender_hazard_shift: float = 0.0

    def __post_init__(self) -> None:
        if (self.drift_kind is None) != (self.drift_onset is None):
            raise ValueError("drift_kind and drift_onset go together")
        if self.drift_kind is not None and self.drift_kind not in DRIFT_KINDS:
            raise ValueError(f"unknown drift_kind {self.drift_kind!r}; choose one of {DRIFT_KINDS}")
        if not self.events_per_week > 0:
            raise ValueError(f"events_per_week must be positive, got {self.events_per_week}")

    @property
    def extra_from(self) -> date:
        return self.extra_column_from or self.start + timedelta(days=(self.end - self.start).days // 2)


@dataclass
class GenerationSummary:
    rows: dict[str, int]  # rows written per source by this call, bad rows included
    bad_rows: dict[str, dict[str, int]]  # source -> kind -> count written by this call
    seconds: float
    land_from: date | None = None  # the days written, [land_from, land_until); None: nothing to land
    land_until: date | None = None


def config_for_size(size: str, **overrides: object) -> SyntheticConfig:
    """Config for a named size with the settings' default dates; keyword overrides win, None means default."""
    if size not in SIZES:
        raise ValueError(f"unknown size {size!r}; choose one of {sorted(SIZES)}")
    values: dict[str, object] = {
        "n_customers": SIZES[size],
        "start": date.fromisoformat(DEFAULT_START),
        "end": date.fromisoformat(DEFAULT_END),
        "snapshot_start": date.fromisoformat(DEFAULT_SNAPSHOT_START),
    }
    values.update({key: value for key, value in overrides.items() if value is not None})  # e.g. an open end date
    return SyntheticConfig(**values)  # type: ignore[arg-type]


def snapshot_dates(start: date, end: date) -> list[date]:
    """Mondays >= start and < end."""
    first = start + timedelta(days=(-start.weekday()) % 7)
    return [first + timedelta(weeks=k) for k in range(max(0, math.ceil((end - first).days / 7)))]


# ----------------------------------------------------------------------------------------------- small helpers


def _us(day: date) -> int:
    return (day - EPOCH).days * DAY_US


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def weekly_hazard(z: np.ndarray, low_spend: np.ndarray, low_engagement: np.ndarray, is_new: np.ndarray,
                  shift: float | np.ndarray = 0.0) -> np.ndarray:
    """Weekly death probability of an alive customer (`shift` moves the log-odds: the churn_process drift)."""
    logit = HAZARD_A + HAZARD_B * (-z) + HAZARD_C * low_spend + HAZARD_D * low_engagement + HAZARD_E * is_new
    return _sigmoid(logit + shift)


def oracle_no_order_probability(
    z: np.ndarray,
    rate: np.ndarray,
    low_spend: np.ndarray,
    low_engagement: np.ndarray,
    tenure_us: np.ndarray,
    alive: np.ndarray,
    horizon_days: int,
    shifted_from_week: int | None = None,
    targeted: np.ndarray | None = None,
    hazard_offset: float | np.ndarray = 0.0,
) -> np.ndarray:
    """P(no order in the next `horizon_days`) with z frozen at its current value (see module docstring). From week
    `shifted_from_week` of the horizon on, the `targeted` customers carry the churn_process drift; `hazard_offset`
    moves every week's hazard (the planted gender dependence)."""
    weeks = horizon_days / 7
    weekly_orders = rate * np.exp(GAMMA_ORDERS * z)
    survive = np.ones_like(z)
    p_none = np.zeros_like(z)
    for k in range(math.ceil(weeks)):
        fraction = min(1.0, weeks - k)
        hit = (targeted if targeted is not None and shifted_from_week is not None and k >= shifted_from_week
               else np.zeros(z.shape[0], dtype=bool))
        hazard = weekly_hazard(z, low_spend, low_engagement, (tenure_us + k * WEEK_US) < NEW_WEEKS * WEEK_US,
                               DRIFT_HAZARD_SHIFT * hit + hazard_offset)
        p_none += survive * hazard
        survive *= (1.0 - hazard) * np.exp(-weekly_orders * np.where(hit, DRIFT_ORDER_FACTOR, 1.0) * fraction)
    return np.where(alive, p_none + survive, 1.0)


def _id_series(name: str, prefix: str, numbers: np.ndarray, width: int) -> pl.Series:
    digits = pl.Series(name, numbers, dtype=pl.Int64).cast(pl.Utf8).str.zfill(width)
    return pl.select(pl.concat_str(pl.lit(prefix), digits).alias(name)).to_series()


def _timestamps(name: str, micros: np.ndarray) -> pl.Series:
    return pl.Series(name, micros, dtype=pl.Int64).cast(TIMESTAMP)


def _labels(name: str, values: tuple[str, ...], codes: np.ndarray) -> pl.Series:
    return pl.Series(name, values, dtype=pl.Utf8).gather(codes)


def _uniform_in(rng: np.random.Generator, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Integer microseconds uniform in [lo, hi)."""
    return lo + (rng.random(lo.shape[0]) * (hi - lo)).astype(np.int64)


def _null_where(frame: pl.DataFrame, column: str, mask: np.ndarray) -> pl.DataFrame:
    return frame.with_columns(pl.when(pl.Series(mask)).then(None).otherwise(pl.col(column)).alias(column))


def _sort_good_then_bad(day: np.ndarray, is_bad: np.ndarray) -> np.ndarray:
    """Row order grouping by day with each day's bad rows after its good rows (stable, keeps time order)."""
    return np.lexsort((is_bad, day))


# ----------------------------------------------------------------------------------------------- population


@dataclass
class _Population:
    signup_us: np.ndarray  # sorted ascending; index = customer number - 1
    landing_day: np.ndarray  # day index (from start) of the customers file holding the record
    rate: np.ndarray
    engagement: np.ndarray
    spend: np.ndarray
    low_spend: np.ndarray
    low_engagement: np.ndarray
    ids: pl.Series
    anonymous_ids: pl.Series
    device_ids: pl.Series

    @property
    def size(self) -> int:
        return int(self.signup_us.shape[0])


def _draw_population(config: SyntheticConfig, rng: np.random.Generator) -> _Population:
    n = config.n_customers
    start_us, end_us = _us(config.start), _us(config.end)
    n_base = int(round(BASE_SHARE * n))
    base_from = start_us - BASE_YEARS * 365 * DAY_US
    signup = np.sort(
        np.concatenate(
            [
                base_from + (rng.random(n_base) * (start_us - base_from)).astype(np.int64),
                start_us + (rng.random(n - n_base) * (end_us - start_us)).astype(np.int64),
            ]
        )
    )
    # Rates, engagement and spend are drawn independently of signup order, so sorting signups keeps them iid.
    rate = rng.gamma(RATE_SHAPE, RATE_MEAN / RATE_SHAPE, n)
    engagement_raw = rng.gamma(2.0, 0.5, n) * (rate / RATE_MEAN) ** 0.3  # engaged browsers also buy more often
    log_engagement = np.log(engagement_raw)
    engagement = engagement_raw / engagement_raw.mean()
    spend_u = rng.standard_normal(n)
    numbers = np.arange(1, n + 1)
    return _Population(
        signup_us=signup,
        landing_day=np.maximum(0, (signup - start_us) // DAY_US),
        rate=rate,
        engagement=engagement,
        spend=np.exp(0.5 * spend_u - 0.125),
        low_spend=-spend_u,
        low_engagement=-(log_engagement - log_engagement.mean()) / log_engagement.std(),
        ids=_id_series("customer_id", "C", numbers, 7),
        anonymous_ids=_id_series("anonymous_id", "A", rng.permutation(n) + 1, 9),
        device_ids=_id_series("device_id", "D", rng.permutation(n) + 1, 9),
    )


def _malform_emails(emails: np.ndarray, rng: np.random.Generator, rate: float) -> tuple[np.ndarray, np.ndarray]:
    """Break the email of about `rate` of customers (at least one when rate > 0); returns the emails and which rows
    were broken."""
    n = emails.shape[0]
    n_bad = max(1, int(rng.binomial(n, rate))) if rate > 0 else 0
    rows = rng.choice(n, size=min(n_bad, n), replace=False)
    for k, row in enumerate(rows):
        local = emails[row].split("@")[0]
        emails[row] = (f"{local}#example", "@@", f"{local}example.com")[k % 3]
    return emails, rows


def _customers_frame(pop: _Population, rng: np.random.Generator, rate: float) -> tuple[pl.DataFrame, np.ndarray]:
    """All customers of the world and each row's bad-kind index (-1: good; 0: malformed_email)."""
    n = pop.size
    first = rng.integers(0, len(FIRST_NAMES), n)
    last = rng.integers(0, len(LAST_NAMES), n)
    first_s = _labels("first", FIRST_NAMES, first)
    last_s = _labels("last", LAST_NAMES, last)
    suffix = pl.Series("suffix", rng.integers(1, 1000, n)).cast(pl.Utf8)
    frame = pl.DataFrame({"first": first_s, "last": last_s, "suffix": suffix}).select(
        pl.concat_str(
            pl.col("first").str.to_lowercase(), pl.lit("."), pl.col("last").str.to_lowercase(), pl.col("suffix"),
            pl.lit("@example.com"),
        ).alias("email"),
        pl.concat_str(pl.col("first"), pl.lit(" "), pl.col("last")).alias("full_name"),
    )  # fmt: skip
    emails, broken = _malform_emails(frame["email"].to_numpy().astype(object), rng, rate)
    phone = _id_series("phone", "+44 7700 900", rng.integers(0, 1000, n), 3)
    result = pl.DataFrame(
        [
            pop.ids,
            pl.Series("email", emails, dtype=pl.Utf8),
            phone,
            frame["full_name"],
            _labels("gender", GENDERS, rng.choice(3, n, p=[0.49, 0.49, 0.02])),
            pl.Series("birth_year", rng.integers(1940, 2007, n), dtype=pl.Int32),
            _labels("country", COUNTRIES, rng.choice(len(COUNTRIES), n, p=[0.5, 0.1, 0.12, 0.12, 0.08, 0.08])),
            _labels("acquisition_channel", ACQUISITION_CHANNELS, rng.choice(5, n, p=[0.35, 0.25, 0.2, 0.1, 0.1])),
            _timestamps("signup_ts", pop.signup_us),
        ]
    )
    kind = np.full(n, -1, dtype=np.int64)
    kind[broken] = 0
    return result, kind


# ----------------------------------------------------------------------------------------------- weekly rows


@dataclass
class _Counters:
    order: int = 0
    event: int = 0
    touch: int = 0
    campaign: int = 0


def _poisson_rows(rng: np.random.Generator, who: np.ndarray, mean: np.ndarray) -> np.ndarray:
    """Customer index per generated row."""
    return np.repeat(who, rng.poisson(mean))


def _orders_frame(
    rng: np.random.Generator,
    cust: np.ndarray,
    ts: np.ndarray,
    z: np.ndarray,
    pop: _Population,
    counters: _Counters,
    rate: float,
    start_us: int,
    drift: tuple[str, int] | None = None,
) -> tuple[pl.DataFrame, np.ndarray, np.ndarray]:
    """Good orders of one week plus injected bad rows; returns the frame, each row's day index and bad-kind index
    (-1: good, else an index into BAD_KINDS["orders"]).
    `drift` (kind, onset in µs) applies an orders drift scenario to the orders from the onset on."""
    order = np.argsort(ts, kind="stable")
    cust, ts = cust[order], ts[order]
    n = cust.shape[0]
    noise = rng.lognormal(-0.18, 0.6, n)
    amount = np.maximum(1.0, np.round(ORDER_MEAN_AMOUNT * pop.spend[cust] * np.exp(0.1 * z[cust]) * noise, 2))
    n_items = (1 + rng.poisson(amount / 40.0)).astype(np.int32)
    channel = rng.choice(3, n, p=[0.55, 0.35, 0.10])
    coupon = np.where(rng.random(n) < 0.08, rng.integers(0, len(COUPONS), n), -1)
    drifted = np.zeros(n, dtype=bool) if drift is None else ts >= drift[1]
    if drift is not None and drift[0] == "price_level":
        amount = np.where(drifted, np.round(amount * DRIFT_PRICE_FACTOR, 2), amount)  # same basket, dearer
    if drift is not None and drift[0] == "new_channel":
        channel = np.where(drifted & (rng.random(n) < DRIFT_NEW_CHANNEL_SHARE), ORDER_CHANNELS.index("marketplace"),
                           channel)
    number = counters.order + np.arange(n)
    day = (ts - start_us) // DAY_US

    # Bad rows are extra copies of good rows of the same week, each with one defect.
    kinds = BAD_KINDS["orders"]
    counts = {kind: int(rng.binomial(n, rate)) if n else 0 for kind in kinds}
    kind = np.concatenate([np.full(n, -1), np.repeat(np.arange(len(kinds)), list(counts.values()))])
    pick = np.concatenate([np.arange(n), rng.integers(0, max(n, 1), kind.shape[0] - n)])
    fresh_id = kind[n:] != kinds.index("duplicate_id")
    numbers = np.concatenate([number, counters.order + n + np.cumsum(fresh_id) - 1])
    numbers[n:][~fresh_id] = number[pick[n:][~fresh_id]]
    counters.order += n + int(fresh_id.sum())
    order_ts = ts[pick]
    future = kind == kinds.index("future_timestamp")
    far = _us(FAR_FUTURE) + (order_ts[future] - start_us)  # same offset from 2099-01-01 as from start
    order_ts[future] = np.where(rng.random(int(future.sum())) < 0.5, order_ts[future] + 3 * DAY_US, far)
    amounts = np.where(kind == kinds.index("negative_amount"), -amount[pick], amount[pick])

    order = _sort_good_then_bad(day[pick], kind >= 0)
    pick, kind = pick[order], kind[order]
    frame = pl.DataFrame(
        [
            _id_series("order_id", "O", numbers[order], 10),
            pop.ids.gather(cust[pick]),
            _timestamps("order_ts", order_ts[order]),
            pl.Series("amount", amounts[order], dtype=pl.Float64),
            pl.Series("n_items", n_items[pick], dtype=pl.Int32),
            _labels("channel", ORDER_CHANNELS, channel[pick]),
            _labels("coupon_code", COUPONS, np.maximum(coupon[pick], 0)),
        ]
    )
    frame = _null_where(frame, "customer_id", kind == kinds.index("null_key"))
    frame = _null_where(frame, "coupon_code", coupon[pick] < 0)
    if drift is not None and drift[0] == "broken_field":
        frame = _null_where(frame, "n_items", drifted[pick])
    return frame, day[pick], kind


def _event_types(rng: np.random.Generator, z: np.ndarray) -> np.ndarray:
    """Index into EVENT_TYPES per event: help-centre visits grow as satisfaction z falls, the rest keep their mix."""
    support = rng.random(z.shape[0]) < _sigmoid(SUPPORT_A + SUPPORT_B * z)
    other = rng.choice(4, z.shape[0], p=[0.6, 0.2, 0.12, 0.08])
    return np.where(support, EVENT_TYPES.index("support"), other)


def _events_frame(
    rng: np.random.Generator,
    cust: np.ndarray,
    ts: np.ndarray,
    z: np.ndarray,
    pop: _Population,
    counters: _Counters,
    rate: float,
    start_us: int,
) -> tuple[pl.DataFrame, np.ndarray, np.ndarray]:
    """Events of one week plus copies with a null event_id; returns the frame, day index per row and bad-kind index
    (-1: good, 0: null_key).

    `z` is the latent satisfaction behind each event (aligned with `cust`); it sets the event type mix."""
    order = np.argsort(ts, kind="stable")
    cust, ts, z = cust[order], ts[order], z[order]
    n = cust.shape[0]
    event_type = _event_types(rng, z)
    logged_in = (rng.random(n) < 0.78) | (event_type == EVENT_TYPES.index("login"))
    product = rng.integers(1, 5000, n)
    number = counters.event + np.arange(n)
    counters.event += n
    day = (ts - start_us) // DAY_US

    n_bad = int(rng.binomial(n, rate)) if n else 0
    src = rng.integers(0, max(n, 1), n_bad)
    order = _sort_good_then_bad(np.concatenate([day, day[src]]), np.arange(n + n_bad) >= n)
    pick = np.concatenate([np.arange(n), src])[order]
    is_bad = (np.arange(n + n_bad) >= n)[order]
    etype = event_type[pick]
    frame = pl.DataFrame(
        [
            _id_series("event_id", "E", number[pick], 10),
            pop.anonymous_ids.gather(cust[pick]),
            pop.device_ids.gather(cust[pick]),
            pop.ids.gather(cust[pick]),
            _timestamps("event_ts", ts[pick]),
            _labels("event_type", EVENT_TYPES, etype),
            pl.Series("_product", product[pick]).cast(pl.Utf8),
            pl.Series("_etype", etype),
        ]
    )
    page = (
        pl.when(pl.col("_etype") == EVENT_TYPES.index("search"))
        .then(pl.lit("/search"))
        .when(pl.col("_etype") == EVENT_TYPES.index("login"))
        .then(pl.lit("/account/login"))
        .when(pl.col("_etype") == EVENT_TYPES.index("support"))
        .then(pl.lit("/help"))
        .otherwise(pl.concat_str(pl.lit("/product/"), pl.col("_product")))
    )
    frame = frame.with_columns(page.alias("page")).drop("_product", "_etype")
    frame = _null_where(_null_where(frame, "customer_id", ~logged_in[pick]), "event_id", is_bad)
    return frame, day[pick], np.where(is_bad, 0, -1)


# ----------------------------------------------------------------------------------------------- writing


class _Landing:
    """Writes day partitions of the landing sources, a few files at a time (the disk, not the CPU, is the limit).

    Only day indices in `window` = [lo, hi) are written. Rows before `landed_hi` are counted as the landed world,
    which the ground truth describes; rows written are counted for the summary of this call.
    """

    def __init__(
        self, root: Path, start: date, pool: ThreadPoolExecutor, window: tuple[int, int], landed_hi: int
    ) -> None:
        self.root = root
        self.start = start
        self.pool = pool
        self.lo, self.hi = window
        self.landed_hi = landed_hi
        self.rows = {name: 0 for name in SOURCES}  # written by this call
        self.landed = {name: 0 for name in SOURCES}  # in the landed world [start, landed_hi)

    def written(self, day: np.ndarray) -> np.ndarray:
        return (day >= self.lo) & (day < self.hi)

    def landed_rows(self, day: np.ndarray) -> np.ndarray:
        return day < self.landed_hi

    def clear(self) -> None:
        """Remove the generator's previous output: its source folders and nothing else under root. Everything is
        checked before anything is deleted, so a folder holding a file the generator does not write stays whole."""
        owned = [_generator_output(self.root, source) for source in SOURCES]
        list(self.pool.map(Path.unlink, [path for files, _ in owned for path in files]))
        for _, folders in owned:
            for folder in folders:  # day folders, then the source folder
                folder.rmdir()

    def write(self, source: str, frame: pl.DataFrame, day: np.ndarray, optional: tuple[str, int] | None = None) -> None:
        """Write rows (grouped by ascending day index) of the window to <source>/date=YYYY-MM-DD/part-00000.parquet.

        `optional` = (column, first day index): the column is only kept in files from that day on.
        """
        self.landed[source] += int(self.landed_rows(day).sum())
        keep = self.written(day)
        if not keep.all():
            frame, day = frame.filter(pl.Series(keep)), day[keep]
        if frame.height == 0:
            return
        cuts = np.flatnonzero(np.diff(day)) + 1
        starts = np.concatenate([[0], cuts]).tolist()
        ends = np.concatenate([cuts, [frame.height]]).tolist()
        parts = []
        for lo, hi in zip(starts, ends, strict=True):
            part = frame.slice(lo, hi - lo)
            if optional is not None and int(day[lo]) < optional[1]:
                part = part.drop(optional[0])
            parts.append((part, self.root / source / _day_folder_name(self.start + timedelta(days=int(day[lo])))))
        list(self.pool.map(_write_part, parts))
        self.rows[source] += frame.height


def _day_folder_name(day: date) -> str:
    return f"{DAY_PREFIX}{day.isoformat()}"


def _folder_day(name: str) -> date | None:
    """The day of a `date=YYYY-MM-DD` folder name; None for any other name."""
    if not name.startswith(DAY_PREFIX):
        return None
    try:
        return date.fromisoformat(name.removeprefix(DAY_PREFIX))
    except ValueError:
        return None


def _foreign_files(folder: Path) -> ValueError:
    return ValueError(f"{folder} holds files Assay did not create; it will not touch them (move them away, or "
                      "generate synthetic data into an empty folder)")


def _generator_output(root: Path, source: str) -> tuple[list[Path], list[Path]]:
    """Files and folders the generator writes under root/source (day folders first, the source folder last).

    Raises ValueError if anything else is there: it is not the generator's to delete. Links count as foreign, so a
    deletion never follows one out of the folder."""
    folder = root / source
    if not folder.exists() and not folder.is_symlink():
        return [], []
    if folder.is_symlink() or not folder.is_dir():
        raise _foreign_files(root)
    files: list[Path] = []
    days: list[Path] = []
    for child in folder.iterdir():
        if child.is_symlink() or not child.is_dir() or _folder_day(child.name) is None:
            raise _foreign_files(folder)
        for item in child.iterdir():
            if item.name != PART_FILE or item.is_symlink() or not item.is_file():
                raise _foreign_files(folder)
            files.append(item)
        days.append(child)
    return files, [*days, folder]


def _day_folders(root: Path, source: str) -> list[date]:
    """Days that have a folder under root/source."""
    folder = root / source
    if not folder.is_dir():
        return []
    return sorted(day for day in (_folder_day(child.name) for child in folder.iterdir()) if day is not None)


def _write_part(item: tuple[pl.DataFrame, Path]) -> None:
    frame, folder = item
    folder.mkdir(parents=True, exist_ok=True)
    frame.write_parquet(folder / PART_FILE)


class _TruthWriter:
    """Streams churn probabilities into one parquet file, one row group per snapshot."""

    SCHEMA = pa.schema([("customer_id", pa.string()), ("snapshot_date", pa.date32()), ("p_churn", pa.float64())])

    def __init__(self, path: Path, ids: pl.Series) -> None:
        self._path = path
        self._ids = ids.to_arrow()
        self._writer: pq.ParquetWriter | None = None
        self.rows = 0
        self.snapshots = 0

    def write(self, snapshot: date, p_churn: np.ndarray) -> None:
        if self._writer is None:
            self._writer = pq.ParquetWriter(self._path, self.SCHEMA, compression="zstd")
        n = p_churn.shape[0]
        table = pa.table(
            [
                pa.array(self._ids.slice(0, n).cast(pa.string())),
                pa.array(np.full(n, (snapshot - EPOCH).days, dtype=np.int32), type=pa.int32()).cast(pa.date32()),
                pa.array(p_churn.astype(np.float64)),
            ],
            schema=self.SCHEMA,
        )
        self._writer.write_table(table)
        self.rows += n
        self.snapshots += 1

    def close(self) -> None:
        if self._writer is None:
            pq.write_table(self.SCHEMA.empty_table(), self._path)
        else:
            self._writer.close()


# ----------------------------------------------------------------------------------------------- simulation


@dataclass
class _State:
    z: np.ndarray
    alive: np.ndarray
    death_week: np.ndarray
    marketing: np.ndarray
    profiling: np.ndarray
    consent_from_us: np.ndarray  # when the signup consents were recorded


def _signup_consents(pop: _Population, rng: np.random.Generator, start_us: int) -> tuple[_State, dict[str, np.ndarray]]:
    n = pop.size
    profiling = rng.random(n) < PROFILING_AT_SIGNUP
    marketing = rng.random(n) < MARKETING_AT_SIGNUP
    base_time = start_us + (rng.random(n) * DAY_US).astype(np.int64)  # base cohort: somewhere in the first day
    consent_ts = np.where(pop.signup_us < start_us, base_time, pop.signup_us)
    state = _State(
        z=rng.standard_normal(n) * SIGMA / math.sqrt(1 - RHO**2),  # stationary start
        alive=np.ones(n, dtype=bool),
        death_week=np.full(n, np.iinfo(np.int32).max, dtype=np.int32),
        marketing=marketing,
        profiling=profiling,
        consent_from_us=consent_ts,
    )
    rows = {
        "cust": np.concatenate([np.arange(n), np.arange(n)]),
        "ts": np.concatenate([consent_ts, consent_ts]),
        "purpose": np.concatenate([np.zeros(n, np.int8), np.ones(n, np.int8)]),  # 0 profiling, 1 marketing
        "granted": np.concatenate([profiling, marketing]),
    }
    return state, rows


def _campaigns(
    rng: np.random.Generator,
    plan: np.random.Generator,
    week: int,
    week_lo: int,
    week_hi: int,
    state: _State,
    population: _Population,
    changes: dict[str, np.ndarray],
    counters: _Counters,
    end_us: int,
) -> tuple[list[pl.DataFrame], list[np.ndarray], np.ndarray]:
    """Campaign touches sent this week; returns frames, their sent times, and who clicked (alive, treated)."""
    n = population.size
    clicked_any = np.zeros(n, dtype=bool)
    frames: list[pl.DataFrame] = []
    sent: list[np.ndarray] = []
    is_marketing = changes["purpose"] == 1
    change_cust, change_ts = changes["cust"][is_marketing], changes["ts"][is_marketing]
    change_value = changes["granted"][is_marketing]
    n_days = max(1, (week_hi - week_lo) // DAY_US)
    # The schedule has its own stream so that it is the same at every size (campaigns move z, hence volumes).
    for _ in range(int(plan.choice(3, p=CAMPAIGNS_PER_WEEK_P))):
        send_base = week_lo + int(plan.integers(0, n_days)) * DAY_US + int(plan.integers(7, 16)) * 3600 * US_PER_SECOND
        channel = int(plan.choice(3, p=[0.6, 0.2, 0.2]))
        # Marketing consent as of the send time: this week's change counts only if it happened before sending.
        marketing = state.marketing.copy()
        before = change_ts < send_base
        marketing[change_cust[before]] = change_value[before]
        recently = state.alive | (state.death_week >= week - RECENT_DEATH_WEEKS)
        eligible = (state.consent_from_us < send_base) & marketing & recently
        targeted = np.flatnonzero(eligible & (rng.random(n) < TARGET_SHARE))
        m = targeted.shape[0]
        counters.campaign += 1
        if m == 0:
            continue
        sent_ts = send_base + (rng.random(m) * 2 * 3600 * US_PER_SECOND).astype(np.int64)
        by_time = np.argsort(sent_ts, kind="stable")  # touch ids follow send order
        targeted, sent_ts = targeted[by_time], sent_ts[by_time]
        control = rng.random(m) < CONTROL_SHARE
        alive = state.alive[targeted]
        p_open = np.where(
            alive, _sigmoid(-1.0 + OPEN_Z * state.z[targeted] + 0.5 * np.log(population.engagement[targeted])), 0.02
        )
        opened = ~control & (rng.random(m) < p_open)
        clicked = opened & alive & (rng.random(m) < CLICK_GIVEN_OPEN)
        opened_ts = sent_ts + (rng.exponential(6 * 3600, m) * US_PER_SECOND).astype(np.int64)
        clicked_ts = opened_ts + (rng.exponential(15 * 60, m) * US_PER_SECOND).astype(np.int64)
        opened &= opened_ts < end_us  # not observed yet when the data was extracted
        clicked &= opened & (clicked_ts < end_us)
        clicked_any[targeted[clicked]] = True
        frame = pl.DataFrame(
            [
                _id_series("touch_id", "T", counters.touch + np.arange(m), 10),
                population.ids.gather(targeted),
                pl.Series("campaign_id", [f"CMP{counters.campaign:04d}"] * m, dtype=pl.Utf8),
                pl.Series("channel", [TOUCH_CHANNELS[channel]] * m, dtype=pl.Utf8),
                _timestamps("sent_ts", sent_ts),
                _timestamps("opened_ts", opened_ts),
                _timestamps("clicked_ts", clicked_ts),
                pl.Series("is_control", control, dtype=pl.Boolean),
            ]
        )
        counters.touch += m
        frames.append(_null_where(_null_where(frame, "opened_ts", ~opened), "clicked_ts", ~clicked))
        sent.append(sent_ts)
    return frames, sent, clicked_any


def _consent_changes(
    rng: np.random.Generator, state: _State, pop: _Population, week_lo: int, week_hi: int, leaving: np.ndarray
) -> dict[str, np.ndarray]:
    """Rare withdrawals and re-grants during [week_lo, week_hi) for customers whose signup consents exist.

    `leaving` marks customers who died at the start of this week: some of them unsubscribe on the way out."""
    n = pop.size
    lo = np.maximum(week_lo, state.consent_from_us + US_PER_SECOND)
    present = lo < week_hi
    withdraw_mkt = MARKETING_WITHDRAW * np.where(state.z < -1.0, 3.0, 1.0)  # unhappy customers unsubscribe
    withdraw_mkt = np.where(leaving, LEAVER_UNSUBSCRIBE, withdraw_mkt)
    flip_mkt = present & (rng.random(n) < np.where(state.marketing, withdraw_mkt, MARKETING_REGRANT))
    flip_prof = present & (rng.random(n) < np.where(state.profiling, PROFILING_WITHDRAW, PROFILING_REGRANT))
    cust = np.concatenate([np.flatnonzero(flip_prof), np.flatnonzero(flip_mkt)])
    purpose = np.concatenate([np.zeros(int(flip_prof.sum()), np.int8), np.ones(int(flip_mkt.sum()), np.int8)])
    ts = _uniform_in(rng, lo[cust], np.full(cust.shape[0], week_hi, dtype=np.int64))
    granted = np.where(purpose == 0, ~state.profiling[cust], ~state.marketing[cust])
    return {"cust": cust, "ts": ts, "purpose": purpose, "granted": granted}


def _consents_frame(
    rows: list[dict[str, np.ndarray]], pop: _Population, start_us: int
) -> tuple[pl.DataFrame, np.ndarray]:
    cust = np.concatenate([r["cust"] for r in rows])
    ts = np.concatenate([r["ts"] for r in rows])
    purpose = np.concatenate([r["purpose"] for r in rows])
    granted = np.concatenate([r["granted"] for r in rows])
    order = np.lexsort((purpose, cust, ts))
    n = order.shape[0]
    frame = pl.DataFrame(
        [
            _id_series("consent_id", "CN", np.arange(n), 10),
            pop.ids.gather(cust[order]),
            _labels("purpose", ("profiling", "marketing"), purpose[order]),
            pl.Series("granted", granted[order], dtype=pl.Boolean),
            _timestamps("event_ts", ts[order]),
        ]
    )
    return frame, (ts[order] - start_us) // DAY_US


class _Simulation:
    """One generation run: owns the random streams, the latent state and the writers."""

    def __init__(self, config: SyntheticConfig, landing: _Landing, truth: _TruthWriter, pop: _Population) -> None:
        self.config = config
        self.landing = landing
        self.truth = truth
        self.pop = pop
        # Independent streams so that a change in one part (e.g. campaigns) does not reshuffle the others.
        streams = [np.random.default_rng(s) for s in np.random.SeedSequence([config.seed, 1]).spawn(7)]
        self.rng_cust, self.rng_dyn, self.rng_ord, self.rng_evt, self.rng_cmp, self.rng_cns, self.rng_plan = streams
        self.start_us, self.end_us = _us(config.start), _us(config.end)
        self.extra_day = (config.extra_from - config.start).days
        self.counters = _Counters()
        self.bad = {source: {kind: 0 for kind in kinds} for source, kinds in BAD_KINDS.items()}  # written now
        self.bad_landed = {source: {kind: 0 for kind in kinds} for source, kinds in BAD_KINDS.items()}
        self.snapshots = {_us(d): d for d in snapshot_dates(config.snapshot_start, config.end)}
        self.drift = None if config.drift_kind is None else (config.drift_kind, _us(config.drift_onset))
        self.targeted = np.zeros(pop.size, dtype=bool)  # the churn_process segment, known once countries are drawn
        self.hazard_offset = np.zeros(pop.size)  # the planted gender dependence, known once genders are drawn
        self.state, signup_consents = _signup_consents(pop, self.rng_cns, self.start_us)
        self.consent_rows = [signup_consents]

    def run(self, until_us: int) -> None:
        """Simulate the weeks that can land a day before `until_us` (<= the world's end).

        Later weeks cannot change what earlier days hold: each stream is read in week order and a week's draws
        depend only on the state it starts from, so stopping early leaves every earlier draw as it was. What is
        drawn for the whole world up front (population, customers, signup consents) is drawn in full either way."""
        customers, kind = _customers_frame(self.pop, self.rng_cust, self.config.bad_row_rate)
        self._tally("customers", kind, self.pop.landing_day)
        self.landing.write("customers", customers, self.pop.landing_day)
        if self.drift is not None and self.drift[0] == "churn_process":
            self.targeted = (customers.get_column("country") == DRIFT_COMPETITOR_COUNTRY).to_numpy()
        if self.config.gender_hazard_shift:
            self.hazard_offset = self.config.gender_hazard_shift * (customers.get_column("gender") == "f").to_numpy()
        week0 = self.start_us - self.config.start.weekday() * DAY_US  # Monday on or before start
        for week in range(-BURN_IN_WEEKS, math.ceil((min(until_us, self.end_us) - week0) / WEEK_US)):
            self._step(week, week0 + week * WEEK_US)
        # Consent ids number the rows in time order, so the rows before `until_us` get the same ids in a shorter run:
        # the weeks left out only add rows at or after `until_us`.
        consents, consent_day = _consents_frame(self.consent_rows, self.pop, self.start_us)
        self.landing.write("consents", consents, consent_day)

    def _tally(self, source: str, kind: np.ndarray, day: np.ndarray) -> None:
        """Count bad rows by kind: those written now (the summary) and those in the landed world (ground truth)."""
        written, landed = self.landing.written(day), self.landing.landed_rows(day)
        for index, name in enumerate(BAD_KINDS[source]):
            hit = kind == index
            self.bad[source][name] += int((hit & written).sum())
            self.bad_landed[source][name] += int((hit & landed).sum())

    def _step(self, week: int, w_us: int) -> None:
        pop, state = self.pop, self.state
        tenure = w_us - pop.signup_us
        if w_us in self.snapshots:
            n_t = int(np.searchsorted(pop.signup_us, w_us, side="left"))  # signups are sorted: a prefix
            p = oracle_no_order_probability(
                state.z[:n_t], pop.rate[:n_t], pop.low_spend[:n_t], pop.low_engagement[:n_t], tenure[:n_t],
                state.alive[:n_t], self.config.label_horizon_days, self._hazard_shift_from(w_us), self.targeted[:n_t],
                self.hazard_offset[:n_t],
            )  # fmt: skip
            self.truth.write(self.snapshots[w_us], p)

        # Death first, then behaviour of the survivors (the oracle assumes the same order).
        shifted = self._hazard_shift_from(w_us) == 0
        hazard = weekly_hazard(state.z, pop.low_spend, pop.low_engagement, tenure < NEW_WEEKS * WEEK_US,
                               DRIFT_HAZARD_SHIFT * (self.targeted & shifted) + self.hazard_offset)
        dies = (pop.signup_us < w_us) & state.alive & (self.rng_dyn.random(pop.size) < hazard)
        state.alive &= ~dies
        state.death_week[dies] = week

        boost = np.zeros(pop.size)
        lo_week, hi_week = max(w_us, self.start_us), min(w_us + WEEK_US, self.end_us)
        if hi_week > lo_week:  # burn-in weeks only move the latent state
            boost[self._behaviour(week, lo_week, hi_week, shifted)] = CLICK_JUMP
        state.z = RHO * state.z + SIGMA * self.rng_dyn.standard_normal(pop.size) + boost

    def _hazard_shift_from(self, w_us: int) -> int | None:
        """Week of a horizon starting at w_us from which the churn_process drift applies (None: never)."""
        if self.drift is None or self.drift[0] != "churn_process":
            return None
        return max(0, math.ceil((self.drift[1] - w_us) / WEEK_US))

    def _behaviour(self, week: int, lo_week: int, hi_week: int, shifted: bool) -> np.ndarray:
        """Write this week's orders, events, touches; record consent changes; return who clicked a campaign.
        `shifted`: the churn_process drift applies this week (its segment orders less)."""
        pop, state, rate = self.pop, self.state, self.config.bad_row_rate
        lo = np.maximum(lo_week, pop.signup_us)
        frac = np.clip((hi_week - lo) / WEEK_US, 0.0, None)  # share of the week the customer exists in the data
        who = np.flatnonzero(state.alive & (frac > 0))

        buying = np.where(self.targeted[who] & shifted, DRIFT_ORDER_FACTOR, 1.0)
        cust = _poisson_rows(self.rng_ord, who,
                             pop.rate[who] * buying * np.exp(GAMMA_ORDERS * state.z[who]) * frac[who])
        ts = _uniform_in(self.rng_ord, lo[cust], np.full(cust.shape[0], hi_week, dtype=np.int64))
        frame, day, kind = _orders_frame(self.rng_ord, cust, ts, state.z, pop, self.counters, rate, self.start_us,
                                         self.drift)
        self._tally("orders", kind, day)
        self.landing.write("orders", frame, day, optional=(EXTRA_COLUMN[1], self.extra_day))

        event_mean = self.config.events_per_week * pop.engagement[who] * np.exp(DELTA_EVENTS * state.z[who]) * frac[who]
        browsing = _poisson_rows(self.rng_evt, who, event_mean)
        leaving = state.death_week == week  # died at the start of this week
        leavers = np.flatnonzero(leaving & (frac > 0) & (self.rng_evt.random(pop.size) < LEAVER_SUPPORT_VISIT))
        cust = np.concatenate([browsing, leavers])
        # a leaver's last visit is to the help centre (how to close the account, return an item): z = -inf makes
        # its event type "support" for certain
        row_z = np.concatenate([state.z[browsing], np.full(leavers.shape[0], -np.inf)])
        ts = _uniform_in(self.rng_evt, lo[cust], np.full(cust.shape[0], hi_week, dtype=np.int64))
        frame, day, kind = _events_frame(self.rng_evt, cust, ts, row_z, pop, self.counters, rate, self.start_us)
        self._tally("events", kind, day)
        self.landing.write("events", frame, day)

        changes = _consent_changes(self.rng_cns, state, pop, lo_week, hi_week, leaving=leaving)
        frames, sent, clicked = _campaigns(
            self.rng_cmp, self.rng_plan, week, lo_week, hi_week, state, pop, changes, self.counters, self.end_us
        )
        if frames:
            sent_ts = np.concatenate(sent)
            order = np.argsort(sent_ts, kind="stable")
            self.landing.write("campaign_touches", pl.concat(frames)[order], (sent_ts[order] - self.start_us) // DAY_US)
        self.consent_rows.append(changes)
        _apply_consent_changes(state, changes)
        return clicked


def generate(
    config: SyntheticConfig,
    landing_dir: Path,
    ground_truth_dir: Path,
    *,
    land_from: date | None = None,
    land_until: date | None = None,
) -> GenerationSummary:
    """Simulate the world of `config` and write its landing days in [land_from, land_until) (default: the whole
    world, [config.start, config.end)) plus the ground truth of the world landed so far (see module docstring).

    From config.start it is a full regeneration: the generator's earlier output is replaced, which needs its marker
    file in `landing_dir` (a folder holding anything else is refused). From a later day it extends the world landed
    there (same config, no gap) by new day folders only, and refuses to overwrite a day. Each day holds the same rows
    however the world was landed: an extension replays the simulation from the start and writes only its days.
    """
    if config.end <= config.start or config.n_customers <= 0:
        raise ValueError("need start < end and n_customers > 0")
    land_from, land_until = land_from or config.start, land_until or config.end
    _check_window(config, land_from, land_until)
    began = time.perf_counter()
    landing_dir, ground_truth_dir = Path(landing_dir), Path(ground_truth_dir)
    marker = _read_marker(landing_dir)
    if marker is None and landing_dir.is_dir() and any(landing_dir.iterdir()):
        raise _foreign_files(landing_dir)
    full = land_from == config.start
    landed = land_until if full else _extended_until(landing_dir, config, marker, land_from, land_until)
    ground_truth_dir.mkdir(parents=True, exist_ok=True)
    landing_dir.mkdir(parents=True, exist_ok=True)
    with ThreadPoolExecutor(WRITE_THREADS) as pool:
        window = ((land_from - config.start).days, (land_until - config.start).days)
        landing = _Landing(landing_dir, config.start, pool, window, (landed - config.start).days)
        if full:
            landing.clear()
            _write_marker(landing_dir, config, config.start)  # claims the folder before its first file lands
        pop = _draw_population(config, np.random.default_rng(np.random.SeedSequence([config.seed, 0])))
        truth = _TruthWriter(ground_truth_dir / "churn_probability.parquet", pop.ids)
        sim = _Simulation(config, landing, truth, pop)
        sim.run(_us(landed))
    truth.close()
    summary = GenerationSummary(rows=landing.rows, bad_rows=sim.bad, seconds=round(time.perf_counter() - began, 3),
                                land_from=land_from, land_until=land_until)
    _write_ground_truth_meta(config, landing.landed, sim.bad_landed, summary.seconds, truth, ground_truth_dir, landed)
    _write_marker(landing_dir, config, landed)
    return summary


def extend_world(landing_dir: Path, ground_truth_dir: Path, until: date) -> GenerationSummary:
    """Land the days [landed_until, until) of the world already in `landing_dir`, as its marker file describes it.

    `until` at or before what is landed changes nothing (a summary with zero rows)."""
    marker = _read_marker(Path(landing_dir))
    if marker is None:
        raise ValueError(f"{landing_dir} holds no synthetic world to extend (no {MARKER_FILE}); "
                         "generate one first (assay generate)")
    config, landed = marker
    if until > config.end:
        raise _beyond_horizon(until, config)
    if until <= landed:
        return GenerationSummary(rows={name: 0 for name in SOURCES},
                                 bad_rows={source: {kind: 0 for kind in kinds} for source, kinds in BAD_KINDS.items()},
                                 seconds=0.0)
    return generate(config, landing_dir, ground_truth_dir, land_from=landed, land_until=until)


def world_config(landing_dir: Path) -> SyntheticConfig | None:
    """The config of the synthetic world in `landing_dir` (None: no marker file there)."""
    marker = _read_marker(Path(landing_dir))
    return None if marker is None else marker[0]


def landed_until(landing_dir: Path) -> date | None:
    """First day not yet landed of the synthetic world in `landing_dir` (None: no marker file there)."""
    marker = _read_marker(Path(landing_dir))
    return None if marker is None else marker[1]


def _beyond_horizon(until: date, config: SyntheticConfig) -> ValueError:
    return ValueError(f"{until} is beyond this world's horizon {config.end} (exclusive); generate a longer world "
                      "(assay generate --world-end)")


def _check_window(config: SyntheticConfig, land_from: date, land_until: date) -> None:
    if land_until > config.end:
        raise _beyond_horizon(land_until, config)
    if not config.start <= land_from < land_until:
        raise ValueError(f"need {config.start} <= land_from < land_until, got [{land_from}, {land_until})")


def _extended_until(
    landing_dir: Path, config: SyntheticConfig, marker: tuple[SyntheticConfig, date] | None, land_from: date,
    land_until: date,
) -> date:
    """Check that [land_from, land_until) extends the world landed in `landing_dir`; return the new landed_until."""
    if marker is None:
        raise ValueError(f"{landing_dir} holds no synthetic world to extend; land from the world's start "
                         f"({config.start}) first")
    world, landed = marker
    if world != config:
        raise ValueError(f"{landing_dir} holds another synthetic world (other settings); extend it with its own "
                         "(extend_world) or regenerate it in full")
    if land_from > landed:
        raise ValueError(f"landing from {land_from} would leave a gap: the world in {landing_dir} is landed up to "
                         f"{landed} (exclusive)")
    clashes = sorted((day, source) for source in SOURCES for day in _day_folders(landing_dir, source)
                     if land_from <= day < land_until)
    if clashes:
        day, source = clashes[0]
        raise ValueError(f"{landing_dir / source} already holds day {day}; an extension never overwrites a landed "
                         "day (regenerate the world in full to rewrite it)")
    return max(landed, land_until)


def mark_landed(landing_dir: Path, until: date) -> None:
    """Record that the world's days before `until` are in `landing_dir` (a feed moved them there from a folder the
    generator ran ahead into)."""
    marker = _read_marker(landing_dir)
    if marker is None:
        raise ValueError(f"{landing_dir} holds no synthetic world (no {MARKER_FILE})")
    config, landed = marker
    if until > config.end:
        raise ValueError(f"{until} is beyond this world's horizon {config.end} (exclusive)")
    _write_marker(landing_dir, config, max(landed, until))


def _config_json(config: SyntheticConfig) -> dict[str, object]:
    return {k: v.isoformat() if isinstance(v, date) else v for k, v in asdict(config).items()}


def _write_marker(landing_dir: Path, config: SyntheticConfig, landed: date) -> None:
    # One line of JSON: a reader that takes every *.json under the landing folder as JSON lines (the DSAR erasure
    # does) sees one row without personal data instead of failing.
    values = {**_config_json(config), "landed_until": landed.isoformat()}
    (landing_dir / MARKER_FILE).write_text(json.dumps(values) + "\n")


def _read_marker(landing_dir: Path) -> tuple[SyntheticConfig, date] | None:
    """The world config and landed_until recorded in `landing_dir` (None: no marker file)."""
    path = landing_dir / MARKER_FILE
    if not path.is_file():
        return None
    try:
        values = json.loads(path.read_text())
        landed = date.fromisoformat(values.pop("landed_until"))
        return _config_from_json(values), landed
    except (ValueError, KeyError, TypeError, AttributeError) as error:
        raise ValueError(f"{path} is not a readable Assay marker file") from error


def _config_from_json(values: dict[str, object]) -> SyntheticConfig:
    """Inverse of `_config_json`; unknown keys are refused (a world this version cannot rebuild exactly)."""
    names = {f.name: str(f.type) for f in fields(SyntheticConfig)}
    if set(values) - set(names):
        raise ValueError("unknown config fields")
    return SyntheticConfig(**{  # type: ignore[arg-type]
        key: date.fromisoformat(value) if names[key].startswith("date") and isinstance(value, str) else value
        for key, value in values.items()
    })


def _apply_consent_changes(state: _State, changes: dict[str, np.ndarray]) -> None:
    prof = changes["purpose"] == 0
    state.profiling[changes["cust"][prof]] = changes["granted"][prof]
    state.marketing[changes["cust"][~prof]] = changes["granted"][~prof]


def _write_ground_truth_meta(
    config: SyntheticConfig, rows: dict[str, int], bad_rows: dict[str, dict[str, int]], seconds: float,
    truth: _TruthWriter, out_dir: Path, landed: date,
) -> None:
    """Describe the landed world [config.start, landed): the same however it was landed, bar the timing fields."""
    pl.DataFrame(
        [{"source": source, "kind": kind, "n_rows": count} for source, kinds in bad_rows.items()
         for kind, count in kinds.items()],
        schema={"source": pl.Utf8, "kind": pl.Utf8, "n_rows": pl.Int64},
    ).write_parquet(out_dir / "bad_rows.parquet")
    meta = {
        "config": _config_json(config),
        "landed_until": landed.isoformat(),
        "rows": rows,
        "bad_rows": bad_rows,
        "extra_column": {"source": EXTRA_COLUMN[0], "column": EXTRA_COLUMN[1], "from": config.extra_from.isoformat()},
        "churn_probability": {"path": "churn_probability.parquet", "snapshots": truth.snapshots, "rows": truth.rows},
        "latent": {
            "rho": RHO,
            "sigma": SIGMA,
            "rate_mean": RATE_MEAN,
            "rate_shape": RATE_SHAPE,
            "gamma_orders": GAMMA_ORDERS,
            "delta_events": DELTA_EVENTS,
            "support": [SUPPORT_A, SUPPORT_B],
            "leaver_support_visit": LEAVER_SUPPORT_VISIT,
            "leaver_unsubscribe": LEAVER_UNSUBSCRIBE,
            "open_z": OPEN_Z,
            "hazard": [HAZARD_A, HAZARD_B, HAZARD_C, HAZARD_D, HAZARD_E],
            "new_weeks": NEW_WEEKS,
            "click_jump": CLICK_JUMP,
            "burn_in_weeks": BURN_IN_WEEKS,
        },  # fmt: skip
        "drift": {"price_factor": DRIFT_PRICE_FACTOR, "new_channel_share": DRIFT_NEW_CHANNEL_SHARE,
                  "competitor_country": DRIFT_COMPETITOR_COUNTRY, "hazard_shift": DRIFT_HAZARD_SHIFT,
                  "order_factor": DRIFT_ORDER_FACTOR},
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "seconds": seconds,
    }
    (out_dir / "generation.json").write_text(json.dumps(meta, indent=2))
