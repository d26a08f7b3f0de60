"""Training a LightGBM churn classifier on labelled snapshots, validated out of time."""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field, replace
from datetime import date, timedelta

import numpy as np
import polars as pl

from domain.contract import tagged_columns
from domain.metrics import binary_metrics

KEY_COLUMNS = ("customer_id", "snapshot_date")
LABEL_COLUMN = "churned"
CATEGORICAL_FEATURES = ("country", "acquisition_channel")


@dataclass(frozen=True)
class SnapshotSplit:
    train: list[date]
    early_stopping: list[date]
    validation: list[date]
    calibration: list[date] = field(default_factory=list)
    # set when the history was too short for the requested fold sizes: what was asked for, and why it shrank
    adapted: dict | None = None

    @property
    def all(self) -> list[date]:
        return sorted({*self.train, *self.early_stopping, *self.calibration, *self.validation})

    def to_json(self) -> dict:
        out: dict = {k: [d.isoformat() for d in getattr(self, k)]
                     for k in ("train", "early_stopping", "calibration", "validation")}
        if self.adapted:
            out["adapted"] = self.adapted
        return out


@dataclass(frozen=True)
class TrainedModel:
    booster: object  # lightgbm.Booster
    features: list[str]
    categories: dict[str, list[str]]
    params: dict
    best_iteration: int
    split: SnapshotSplit
    validation_metrics: dict[str, float]
    fingerprint: str = ""
    extra: dict = field(default_factory=dict)


def _purged_before(labelled: list[date], first: date, horizon_days: int) -> list[date]:
    """Snapshots whose label window [T, T + horizon) closes on or before `first`."""
    cutoff = first - timedelta(days=horizon_days)
    return [d for d in labelled if d <= cutoff]


def split_snapshots(
    labelled: list[date], horizon_days: int, train_snapshots: int, validation_snapshots: int,
    early_stopping_snapshots: int, calibration_snapshots: int = 0, fit_from: date | None = None,
) -> SnapshotSplit:
    """Out-of-time split, newest first: the newest labelled snapshots validate; before them, purged by the label
    horizon, come the calibration snapshots (when asked for); before those, purged again, the training window,
    whose newest snapshots are held out for early stopping. Purging means no label of an earlier fold sees
    outcomes of a later one, so calibration and validation figures are honest. With `fit_from`, the training
    window starts no earlier than that snapshot (a refit after a change in the world)."""
    labelled = sorted(set(labelled))
    if len(labelled) < validation_snapshots + 2:
        raise ValueError(f"need at least {validation_snapshots + 2} labelled snapshots, have {len(labelled)}")
    validation = labelled[-validation_snapshots:]
    eligible = _purged_before(labelled, validation[0], horizon_days)
    calibration: list[date] = []
    if calibration_snapshots:
        if len(eligible) < calibration_snapshots:
            raise ValueError(
                f"only {len(eligible)} labelled snapshots end their label window before {validation[0]}; "
                f"need {calibration_snapshots} for calibration: ingest more history or shorten the label horizon"
            )
        calibration = eligible[-calibration_snapshots:]
        eligible = _purged_before(eligible, calibration[0], horizon_days)
    first_held_out = (calibration or validation)[0]
    if fit_from is not None:
        eligible = [d for d in eligible if d >= fit_from]
    if len(eligible) < early_stopping_snapshots + 1:
        raise ValueError(
            f"only {len(eligible)} labelled snapshots end their label window before {first_held_out}"
            + (f" and start on or after {fit_from}" if fit_from else "")
            + f"; need {early_stopping_snapshots + 1}: ingest more history or shorten the label horizon"
        )
    window = eligible[-(train_snapshots + early_stopping_snapshots):]
    return SnapshotSplit(
        train=window[:-early_stopping_snapshots], early_stopping=window[-early_stopping_snapshots:],
        validation=validation, calibration=calibration,
    )


class ShortHistoryError(ValueError):
    """Too few labelled snapshots for any honest split at this label horizon."""


MIN_TRAIN_SNAPSHOTS = 2


def adaptive_split(
    labelled: list[date], horizon_days: int, train_snapshots: int, validation_snapshots: int,
    early_stopping_snapshots: int, calibration_snapshots: int = 0, fit_from: date | None = None,
) -> SnapshotSplit:
    """The requested split when the labelled history holds it with at least two folds' worth of training snapshots;
    otherwise the same folds, each still purged by the horizon, shrunk together to the largest size k that leaves
    at least 2k training snapshots (and at least `MIN_TRAIN_SNAPSHOTS`), down to one snapshot each. Below that,
    `ShortHistoryError` says how much labelled history this horizon needs and how much the data has."""
    requested = {"train": train_snapshots, "validation": validation_snapshots,
                 "early_stopping": early_stopping_snapshots, "calibration": calibration_snapshots}
    largest = max(validation_snapshots, early_stopping_snapshots, calibration_snapshots)
    reason = ""
    for k in range(largest, 0, -1):
        sizes = (min(validation_snapshots, k), min(early_stopping_snapshots, k),
                 min(calibration_snapshots, k) if calibration_snapshots else 0)
        try:
            split = split_snapshots(labelled, horizon_days, train_snapshots, *sizes, fit_from)
        except ValueError as error:
            reason = reason or str(error)
            continue
        if len(split.train) < max(MIN_TRAIN_SNAPSHOTS, 2 * k):
            reason = reason or (f"the requested folds left {len(split.train)} training snapshots, fewer than twice "
                                "a fold")
            continue
        if k == largest:
            return split
        return replace(split, adapted={"requested": requested, "because": reason,
                                       "used": {"train": len(split.train), "validation": sizes[0],
                                                "early_stopping": sizes[1], "calibration": sizes[2]}})
    needed = minimum_labelled_snapshots(labelled, horizon_days, calibration_snapshots > 0)
    span = f" (from {min(labelled)} to {max(labelled)})" if labelled else ""
    raise ShortHistoryError(
        f"too little labelled history for a {horizon_days}-day churn horizon: an honest split (validation, "
        f"calibration and early stopping of one snapshot each, each purged by the horizon, and "
        f"{MIN_TRAIN_SNAPSHOTS} training snapshots) needs {needed} snapshots whose labels have matured; the data has "
        f"{len(labelled)}{span}. A snapshot's label matures {horizon_days} days after it, so land more history "
        "(or snapshot from earlier in it), or shorten ASSAY_LABEL_HORIZON_DAYS."
    )


def minimum_labelled_snapshots(labelled: list[date], horizon_days: int, with_calibration: bool) -> int:
    """The fewest labelled snapshots, at the data's own snapshot spacing, that `adaptive_split` can split."""
    step = (labelled[1] - labelled[0]) if len(labelled) > 1 else timedelta(days=7)
    end = date(2030, 1, 7)  # any date; only the spacing counts
    for n in range(3, 2000):
        grid = [end - step * i for i in range(n)][::-1]
        try:
            split = split_snapshots(grid, horizon_days, MIN_TRAIN_SNAPSHOTS, 1, 1, int(with_calibration))
        except ValueError:
            continue
        if len(split.train) >= MIN_TRAIN_SNAPSHOTS:
            return n
    raise ValueError(f"no split fits a {horizon_days}-day horizon at this spacing")


def fit_lag_weeks(horizon_days: int, validation_snapshots: int, early_stopping_snapshots: int,
                  calibration_snapshots: int) -> int:
    """Weeks from the day a model is trained to the newest snapshot it is fitted on, with weekly snapshots: the
    label horizon, then the validation and calibration folds each purged by the horizon, then early stopping. A
    change in the world reaches the fit only this long after it happened."""
    as_of = date(2030, 1, 7)  # any Monday; only differences count
    labelled = [as_of - timedelta(weeks=k) for k in range(400) if k * 7 >= horizon_days]
    split = split_snapshots(labelled, horizon_days, 1, validation_snapshots, early_stopping_snapshots,
                            calibration_snapshots)
    return math.ceil((as_of - max(split.train)).days / 7)


def labelled_snapshot_counts(labels: pl.LazyFrame) -> dict[date, int]:
    counts = labels.group_by("snapshot_date").len().collect()
    return dict(zip(counts.get_column("snapshot_date").to_list(), counts.get_column("len").to_list(), strict=True))


def training_frame(
    features: pl.LazyFrame, labels: pl.LazyFrame, split: SnapshotSplit, train_rows: int, max_train_rows: int,
    seed: int, early_stopping_seed: int | None = None,
) -> pl.DataFrame:
    """Features joined to labels for the split's snapshots only; the fit window is thinned to `max_train_rows`
    by a seeded hash of customer_id (whole customers in or out), before anything is collected. With
    `early_stopping_seed` (the fit's seed), the early-stopping snapshots keep only the customers the fit holds out
    for it (`early_stopping_customers`): the fit reads no other row of them."""
    keep = pl.col("snapshot_date").is_in(split.all)
    fraction = min(1.0, max_train_rows / train_rows) if train_rows else 1.0
    if fraction < 1.0:
        buckets = 10_000
        in_sample = (pl.col("customer_id").hash(seed) % buckets) < int(fraction * buckets)
        keep = keep & (~pl.col("snapshot_date").is_in(split.train) | in_sample)
    if early_stopping_seed is not None and split.early_stopping:
        held_out = early_stopping_customers(early_stopping_seed)
        keep = keep & (~pl.col("snapshot_date").is_in(split.early_stopping) | held_out)
    return (
        features.filter(keep)
        # the model reads float32 (to_model_matrix); holding money and rates so halves them (a Decimal takes 16 bytes)
        .with_columns(pl.col(pl.Decimal, pl.Float64).cast(pl.Float32))
        .join(labels.select(*KEY_COLUMNS, LABEL_COLUMN).filter(keep), on=list(KEY_COLUMNS))
        # Snapshot by snapshot: each fold of the split is then one contiguous block, which the challenger takes as
        # a slice instead of a copy (the fit orders its own rows: fit_data).
        .sort("snapshot_date", "customer_id")
        .collect()
    )


def feature_columns(frame_columns: list[str]) -> list[str]:
    """Model inputs: everything but keys, labels and columns the contract tags sensitive or PII."""
    excluded = set(KEY_COLUMNS) | {LABEL_COLUMN, "horizon_days"}
    for cols in (*tagged_columns("sensitive").values(), *tagged_columns("pii").values()):
        excluded |= set(cols)
    return [c for c in frame_columns if c not in excluded]


def uninformative_features(rows: pl.DataFrame, features: list[str]) -> dict[str, str]:
    """Features that cannot inform a model fitted on `rows`, with why: "no value" (null throughout: a source the data
    does not have, such as campaigns or a country) or "one value" (the same value in every row, none missing)."""
    if rows.height == 0:
        return {}
    nulls = rows.select(pl.col(features).null_count()).row(0, named=True)
    distinct = rows.select(pl.col(features).drop_nulls().n_unique()).row(0, named=True)
    found = {}
    for name in features:
        if nulls[name] == rows.height:
            found[name] = "no value"
        elif nulls[name] == 0 and distinct[name] == 1:
            found[name] = "one value"
    return found


def to_model_matrix(frame: pl.DataFrame, features: list[str], categories: dict[str, list[str]]) -> np.ndarray:
    """The model's input as one float32 matrix, built by polars without a pandas copy: numbers (Decimal money,
    0/1 booleans) as float32, a categorical as its position in the training categories, null or an unseen level as
    NaN, which LightGBM reads as missing. Training and scoring both go through here, so a split threshold learnt on
    float32 values meets float32 values."""
    columns = []
    for name in features:
        if name in categories:
            levels = categories[name]
            code = (pl.col(name).cast(pl.Utf8).replace_strict(levels, list(range(len(levels))), default=None,
                                                               return_dtype=pl.Float32)
                    if levels else pl.lit(None, dtype=pl.Float32))
            columns.append(code.alias(name))
        else:
            columns.append(pl.col(name).cast(pl.Float32))
    return frame.select(columns).to_numpy()


def model_dataset(frame: pl.DataFrame, features: list[str], categories: dict[str, list[str]], label, **kwargs):
    """A LightGBM Dataset of `frame`'s model matrix, its features and categoricals named."""
    import lightgbm as lgb

    return lgb.Dataset(to_model_matrix(frame, features, categories), label=label, feature_name=list(features),
                       categorical_feature=[name for name in features if name in categories], **kwargs)


def default_params(seed: int, threads: int) -> dict:
    return {
        "objective": "binary",
        "learning_rate": 0.1,
        "num_leaves": 31,
        "min_data_in_leaf": 200,
        "feature_fraction": 0.9,
        "bagging_fraction": 0.8,
        "bagging_freq": 1,
        "lambda_l2": 1.0,
        "seed": seed,
        "deterministic": True,
        "force_col_wise": True,
        "num_threads": threads,
        "verbosity": -1,
    }


def fingerprint(payload: dict) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:12]


EARLY_STOPPING_CUSTOMER_SHARE = 0.2


def early_stopping_seed(params: dict) -> int:
    """The seed that picks a fit's early-stopping customers: its LightGBM seed."""
    return int(params.get("seed", 7))


def early_stopping_customers(seed: int, share: float = EARLY_STOPPING_CUSTOMER_SHARE) -> pl.Expr:
    """A seeded, stable fifth of customers (by hash of customer_id) kept out of the fit for early stopping."""
    return (pl.col("customer_id").hash(seed + 1) % 1000) < int(share * 1000)


@dataclass(frozen=True)
class FitData:
    """A fit's inputs, binned: the training and early-stopping datasets (their rows already freed)."""

    train: object  # lightgbm.Dataset, constructed
    early_stopping: object  # lightgbm.Dataset referencing `train`'s bins
    features: list[str]
    categories: dict[str, list[str]]
    rows: dict[str, int]


def fit_data(data: pl.DataFrame, split: SnapshotSplit, params: dict) -> FitData:
    """Bin the rows of `split.train` (less the customers held out for early stopping) and the held-out customers'
    rows of `split.early_stopping`, with the fit's parameters (the same bins, and so the same trees, as when
    lgb.train builds them). The rows and their matrices are gone when this returns."""
    features = feature_columns([c for c in data.columns])
    categories = {
        c: sorted(data.get_column(c).drop_nulls().unique().to_list()) for c in CATEGORICAL_FEATURES if c in features
    }
    # Early stopping on other customers than the fit: the same customers a few weeks later reward learning
    # individual histories, which stops far too late (measured: 1000 rounds and a worse out-of-time AUC).
    held_out = early_stopping_customers(early_stopping_seed(params))
    # The fit's own row order, whatever the caller's: LightGBM's bagging draws by row index.
    train = data.filter(pl.col("snapshot_date").is_in(split.train) & ~held_out).sort(list(KEY_COLUMNS))
    early = data.filter(pl.col("snapshot_date").is_in(split.early_stopping) & held_out)
    train_set = model_dataset(train, features, categories, train.get_column(LABEL_COLUMN).to_numpy(),
                              params=params, free_raw_data=True).construct()
    early_set = model_dataset(early, features, categories, early.get_column(LABEL_COLUMN).to_numpy(),
                              reference=train_set, params=params, free_raw_data=True).construct()
    return FitData(train=train_set, early_stopping=early_set, features=features, categories=categories,
                   rows={"train_rows": train.height, "early_stopping_rows": early.height})


def boost(prepared: FitData, split: SnapshotSplit, params: dict, max_rounds: int,
          early_stopping_rounds: int) -> TrainedModel:
    """Fit LightGBM on prepared datasets, stopping early; `validation_metrics` holds only the row counts."""
    import lightgbm as lgb

    booster = lgb.train(
        params, prepared.train, num_boost_round=max_rounds, valid_sets=[prepared.early_stopping],
        valid_names=["early_stopping"], callbacks=[lgb.early_stopping(early_stopping_rounds, verbose=False)],
    )
    return TrainedModel(
        booster=booster, features=prepared.features, categories=prepared.categories, params=params,
        best_iteration=int(booster.best_iteration or max_rounds), split=split, validation_metrics=dict(prepared.rows),
    )


def fit_churn_model(
    data: pl.DataFrame, split: SnapshotSplit, params: dict, max_rounds: int, early_stopping_rounds: int,
) -> TrainedModel:
    """Fit on `split.train` and stop early on `split.early_stopping`; `validation_metrics` holds only the row counts
    (a caller that scores the validation fold anyway, as the challenger does, need not score it twice)."""
    return boost(fit_data(data, split, params), split, params, max_rounds, early_stopping_rounds)


def train_churn_model(
    data: pl.DataFrame, split: SnapshotSplit, params: dict, max_rounds: int, early_stopping_rounds: int,
) -> TrainedModel:
    """Fit on `split.train`, stop early on `split.early_stopping`, report metrics on `split.validation`."""
    model = fit_churn_model(data, split, params, max_rounds, early_stopping_rounds)
    validation = data.filter(pl.col("snapshot_date").is_in(split.validation))
    p_validation = predict(model.booster, validation, model.features, model.categories, model.best_iteration)
    metrics = binary_metrics(validation.get_column(LABEL_COLUMN).to_numpy(), p_validation)
    return replace(model, validation_metrics={**metrics, **model.validation_metrics})


def predict(booster, frame: pl.DataFrame, features: list[str], categories: dict[str, list[str]],
            best_iteration: int) -> np.ndarray:
    return booster.predict(to_model_matrix(frame, features, categories), num_iteration=best_iteration)


def oracle_auc(validation: pl.DataFrame, truth: pl.LazyFrame) -> float | None:
    """AUC of the generator's true churn probabilities on the same validation rows (synthetic data only)."""
    from sklearn.metrics import roc_auc_score

    snapshots = validation.get_column("snapshot_date").unique().to_list()
    # Filter before collecting: at the large size the truth file holds ~67M rows.
    truth_rows = truth.select("customer_id", pl.col("snapshot_date").cast(pl.Date), "p_churn").filter(
        pl.col("snapshot_date").is_in(snapshots)).collect()
    joined = validation.select("customer_id", "snapshot_date", LABEL_COLUMN).join(
        truth_rows, on=["customer_id", "snapshot_date"], how="inner")
    if joined.height != validation.height or joined.get_column(LABEL_COLUMN).n_unique() < 2:
        return None
    return float(roc_auc_score(joined.get_column(LABEL_COLUMN).to_numpy(), joined.get_column("p_churn").to_numpy()))
