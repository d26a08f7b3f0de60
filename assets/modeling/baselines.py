"""Baselines the LightGBM model has to beat: a fit-free RFM rule, an interpretable logistic regression and BG/NBD.

A churn model is only worth its complexity if it clearly outranks what a marketer can compute with a spreadsheet
(RFM), a linear model with readable coefficients and the classic probabilistic "probability alive" model.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import polars as pl
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from assets.modeling.bgnbd import DAYS_PER_WEEK, BgNbdParams, bgnbd_inputs, fit_bgnbd, p_alive, p_no_purchase

KEY_COLUMNS = ("customer_id", "snapshot_date")
BGNBD_FEATURE = "bgnbd_p_alive"


def _percentile_rank(expr: pl.Expr, by_snapshot: bool) -> pl.Expr:
    """Average-tie rank scaled to [0, 1] (0 = smallest); 0.5 when a group has a single row."""
    rank = expr.rank(method="average")
    count = expr.count()
    if by_snapshot:
        rank, count = rank.over("snapshot_date"), count.over("snapshot_date")
    return pl.when(count > 1).then((rank - 1.0) / (count - 1.0)).otherwise(0.5)


RFM_FEATURES = ("recency_days", "orders_365d", "revenue_365d")


def rfm_ranks(frame: pl.DataFrame) -> np.ndarray:
    """The RFM rule's three percentile ranks (rows × recency, frequency, monetary), each in [0, 1] and rising with risk:
    recency_days (no order at all = riskiest), minus orders_365d, minus revenue_365d (nulls count as zero). Ranks are
    taken within each snapshot_date when that column is present, so customers are ordered against their
    contemporaries rather than across time."""
    by_snapshot = "snapshot_date" in frame.columns
    recency = pl.col("recency_days").cast(pl.Float64).fill_null(float("inf"))
    orders = pl.col("orders_365d").cast(pl.Float64).fill_null(0.0)
    revenue = pl.col("revenue_365d").cast(pl.Float64).fill_null(0.0)
    return frame.select(_percentile_rank(recency, by_snapshot).alias("recency"),
                        _percentile_rank(-orders, by_snapshot).alias("frequency"),
                        _percentile_rank(-revenue, by_snapshot).alias("monetary")).to_numpy().astype(float)


def rfm_heuristic_score(frame: pl.DataFrame) -> np.ndarray:
    """Rule-based churn risk in [0, 1], no fitting: the mean of the three RFM ranks (`rfm_ranks`)."""
    return rfm_ranks(frame).mean(axis=1)


def _onehot_name(feature: str, category: object) -> str:
    """Readable one-hot column names ("country=DE"); module level so fitted pipelines stay picklable."""
    return f"{feature}={category}"


def _design_frame(frame: pl.DataFrame, numeric: list[str], categorical: list[str]) -> pd.DataFrame:
    """pandas view sklearn accepts: numerics (incl. booleans, Decimals) as float64, categories as str with NaN."""
    selected = frame.select(
        *[pl.col(c).cast(pl.Float64) for c in numeric],
        *[pl.col(c).cast(pl.String) for c in categorical],
    ).to_pandas()
    for column in categorical:
        # SimpleImputer does not recognise None as missing in object columns; NaN it is.
        selected[column] = selected[column].astype(object).where(selected[column].notna(), np.nan)
    return selected


@dataclass(frozen=True)
class LogisticBaseline:
    pipeline: Pipeline
    numeric: list[str]
    categorical: list[str]

    @property
    def features(self) -> list[str]:
        return [*self.numeric, *self.categorical]

    def predict_proba(self, frame: pl.DataFrame) -> np.ndarray:
        """P(churn) per row; unseen categories contribute nothing (all one-hot columns zero)."""
        design = _design_frame(frame, self.numeric, self.categorical)
        return self.pipeline.predict_proba(design)[:, 1]

    def coefficients(self) -> dict[str, float]:
        """Log-odds per standard deviation of each numeric feature, per category level and per missing-indicator."""
        names = self.pipeline[:-1].get_feature_names_out()
        model: LogisticRegression = self.pipeline[-1]
        out = {"intercept": float(model.intercept_[0])}
        for name, value in zip(names, model.coef_[0], strict=True):
            readable = str(name).split("__", 1)[-1]
            if readable.startswith("missingindicator_"):
                readable = f"{readable.removeprefix('missingindicator_')} is missing"
            out[readable] = float(value)
        return out


def fit_logistic_baseline(
    train: pl.DataFrame, features: list[str], categorical: list[str], label: str = "churned", seed: int = 7,
    max_rows: int = 500_000,
) -> LogisticBaseline:
    """Median-imputed, standardised numerics plus one-hot categories into an L2 logistic regression."""
    unknown = sorted(set(categorical) - set(features))
    if unknown:
        raise ValueError(f"categorical columns {unknown} are not among the features")
    numeric = [c for c in features if c not in categorical]
    categorical = [c for c in features if c in categorical]
    if train.height > max_rows:
        train = train.sample(n=max_rows, seed=seed)
    y = train[label].cast(pl.Int8).to_numpy()
    if np.unique(y).size < 2:
        raise ValueError(f"label {label!r} has a single class in the training rows")
    preprocess = ColumnTransformer(
        [
            ("num", make_pipeline(SimpleImputer(strategy="median", add_indicator=True, keep_empty_features=True),
                                  StandardScaler()), numeric),
            ("cat", make_pipeline(SimpleImputer(strategy="constant", fill_value="missing"),
                                  OneHotEncoder(handle_unknown="ignore", feature_name_combiner=_onehot_name)),
             categorical),
        ]
    )
    pipeline = Pipeline([("preprocess", preprocess),
                         ("model", LogisticRegression(max_iter=1000, C=1.0, random_state=seed))])
    pipeline.fit(_design_frame(train, numeric, categorical), y)
    return LogisticBaseline(pipeline=pipeline, numeric=numeric, categorical=categorical)


def _latest_row_per_customer(frame: pl.DataFrame) -> pl.DataFrame:
    """One row per customer (their newest snapshot): stacked snapshots would count a customer's history repeatedly."""
    if not all(c in frame.columns for c in KEY_COLUMNS):
        return frame
    return frame.sort(KEY_COLUMNS).unique(subset="customer_id", keep="last", maintain_order=True)


@dataclass(frozen=True)
class BgNbdBaseline:
    params: BgNbdParams
    horizon_days: int

    def predict_proba(self, frame: pl.DataFrame) -> np.ndarray:
        """P(no order in the next horizon_days) per row, the BG/NBD reading of the churn label.

        Customers who never ordered have no BG/NBD clock; when tenure_days is present their signup stands in for
        the first order (x = 0 over tenure_days), so a long-registered non-buyer scores riskier than a new one.
        """
        x, t_x, big_t = bgnbd_inputs(frame)
        if "tenure_days" in frame.columns:
            tenure = frame["tenure_days"].cast(pl.Float64).fill_null(0.0).to_numpy() / DAYS_PER_WEEK
            big_t = np.where(big_t > 0, big_t, np.maximum(tenure, 0.0))
        return p_no_purchase(self.params, self.horizon_days / DAYS_PER_WEEK, x, t_x, big_t)

    def to_dict(self) -> dict:
        return {"params": self.params.to_dict(), "horizon_days": self.horizon_days}

    @classmethod
    def from_dict(cls, data: dict) -> BgNbdBaseline:
        return cls(params=BgNbdParams.from_dict(data["params"]), horizon_days=int(data["horizon_days"]))


def fit_bgnbd_baseline(train: pl.DataFrame, horizon_days: int, max_rows: int = 200_000, seed: int = 7) -> BgNbdBaseline:
    """Fit BG/NBD on each training customer's newest snapshot; labels are not used (the model is unsupervised).

    Caveat: the feature mart only keeps recently active customers, so long-lapsed buyers are under-represented and
    the fitted dropout rate leans low; the baseline is a ranking reference, not a calibrated forecast.
    """
    if horizon_days <= 0:
        raise ValueError("horizon_days must be positive")
    x, t_x, big_t = bgnbd_inputs(_latest_row_per_customer(train))
    return BgNbdBaseline(params=fit_bgnbd(x, t_x, big_t, max_rows=max_rows, seed=seed), horizon_days=horizon_days)


def with_bgnbd_feature(frame: pl.DataFrame, bgnbd: BgNbdBaseline) -> pl.DataFrame:
    """Add P(alive at T) from the fitted BG/NBD model, computed from the row's own history only (point in time)."""
    x, t_x, big_t = bgnbd_inputs(frame)
    return frame.with_columns(pl.Series(BGNBD_FEATURE, p_alive(bgnbd.params, x, t_x, big_t), pl.Float64))


def prepared_with_bgnbd(frame: pl.DataFrame, features: list[str], bgnbd: BgNbdBaseline | None) -> pl.DataFrame:
    """The frame with the BG/NBD feature added when a model uses it and it is not there yet."""
    if BGNBD_FEATURE not in features or BGNBD_FEATURE in frame.columns:
        return frame
    if bgnbd is None:
        raise ValueError(f"the model uses {BGNBD_FEATURE} but carries no BG/NBD parameters")
    return with_bgnbd_feature(frame, bgnbd)
