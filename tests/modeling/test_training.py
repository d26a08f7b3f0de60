"""Out-of-time split, feature selection and a real LightGBM fit on a small synthetic problem."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import polars as pl
import pytest

from assets.modeling.training import (
    default_params,
    early_stopping_customers,
    early_stopping_seed,
    feature_columns,
    fit_churn_model,
    oracle_auc,
    predict,
    split_snapshots,
    to_model_matrix,
    train_churn_model,
    training_frame,
)

MONDAYS = [date(2024, 7, 1) + timedelta(weeks=i) for i in range(40)]


def test_split_is_out_of_time_and_purged_by_the_label_horizon():
    split = split_snapshots(MONDAYS, horizon_days=90, train_snapshots=10, validation_snapshots=4,
                            early_stopping_snapshots=3)
    assert split.validation == MONDAYS[-4:]
    assert max(split.train) < min(split.early_stopping)
    # Every training and early-stopping label window [T, T+90d) closes before validation starts.
    assert max(split.early_stopping) + timedelta(days=90) <= min(split.validation)
    assert len(split.train) == 10 and len(split.early_stopping) == 3


def test_split_refuses_too_little_history():
    with pytest.raises(ValueError, match="labelled snapshots"):
        split_snapshots(MONDAYS[:8], horizon_days=90, train_snapshots=10, validation_snapshots=4,
                        early_stopping_snapshots=3)


def test_a_refit_from_a_change_fits_only_on_snapshots_from_it_and_says_so_when_there_are_too_few():
    full = split_snapshots(MONDAYS, 7, 10, 1, 1, 1)
    change = MONDAYS[30]
    refit = split_snapshots(MONDAYS, 7, 10, 1, 1, 1, fit_from=change)
    assert min(refit.train) == change and len(refit.train) < len(full.train)
    assert (refit.early_stopping, refit.calibration, refit.validation) == (
        full.early_stopping, full.calibration, full.validation)
    with pytest.raises(ValueError, match="on or after 2025-03-17"):
        split_snapshots(MONDAYS, 7, 10, 1, 1, 1, fit_from=MONDAYS[-3])


def test_sensitive_and_key_columns_are_never_features():
    cols = ["customer_id", "snapshot_date", "churned", "recency_days", "gender", "birth_year", "email", "country"]
    assert feature_columns(cols) == ["recency_days", "country"]


def synthetic_problem(seed: int = 0, customers: int = 600) -> tuple[pl.DataFrame, pl.DataFrame]:
    rng = np.random.default_rng(seed)
    frames, truths = [], []
    for snapshot in MONDAYS:
        recency = rng.exponential(40, customers)
        orders = rng.poisson(3, customers)
        logit = -1.0 + recency / 40 - 0.4 * orders
        p = 1 / (1 + np.exp(-logit))
        ids = [f"c{i}" for i in range(customers)]
        frames.append(pl.DataFrame({
            "customer_id": ids, "snapshot_date": [snapshot] * customers, "recency_days": recency,
            "orders_90d": orders, "country": rng.choice(["GB", "DE", "FR"], customers).tolist(),
            "churned": (rng.random(customers) < p).astype(np.int8),
        }))
        truths.append(pl.DataFrame({"customer_id": ids, "snapshot_date": [snapshot] * customers, "p_churn": p}))
    return pl.concat(frames), pl.concat(truths)


def test_lightgbm_learns_the_signal_and_is_reproducible():
    data, truth = synthetic_problem()
    split = split_snapshots(MONDAYS, 90, 12, 4, 3)
    params = default_params(seed=7, threads=1)
    first = train_churn_model(data, split, params, max_rounds=200, early_stopping_rounds=20)
    second = train_churn_model(data, split, params, max_rounds=200, early_stopping_rounds=20)
    validation = data.filter(pl.col("snapshot_date").is_in(split.validation))
    oracle = oracle_auc(validation, truth.lazy())
    assert oracle is not None and first.validation_metrics["auc"] > 0.5 + 0.8 * (oracle - 0.5)
    p1 = predict(first.booster, validation, first.features, first.categories, first.best_iteration)
    p2 = predict(second.booster, validation, second.features, second.categories, second.best_iteration)
    assert np.array_equal(p1, p2)


def test_the_thread_count_changes_the_speed_of_training_not_the_model():
    """`deterministic` with column-wise histograms: ASSAY_LGBM_THREADS may follow the machine's free cores without
    changing a single tree, and a prediction is the same on any number of threads."""
    data, _ = synthetic_problem()
    split = split_snapshots(MONDAYS, 90, 12, 4, 3)
    one, two = (train_churn_model(data, split, default_params(seed=7, threads=threads), max_rounds=200,
                                  early_stopping_rounds=20) for threads in (1, 2))
    assert one.booster.dump_model()["tree_info"] == two.booster.dump_model()["tree_info"]
    validation = data.filter(pl.col("snapshot_date").is_in(split.validation))
    frame = to_model_matrix(validation, one.features, one.categories)
    on_one, on_two = (one.booster.predict(frame, num_threads=threads) for threads in (1, 2))
    assert np.array_equal(on_one, on_two)


def test_training_frame_reads_only_split_snapshots_and_thins_whole_customers():
    data, _ = synthetic_problem(seed=4, customers=400)
    features, labels = data.drop("churned").lazy(), data.select("customer_id", "snapshot_date", "churned").lazy()
    split = split_snapshots(MONDAYS, 90, 10, 4, 3)
    full = training_frame(features, labels, split, train_rows=4000, max_train_rows=10_000, seed=7)
    assert set(full.get_column("snapshot_date").unique()) == set(split.train + split.early_stopping + split.validation)
    thinned = training_frame(features, labels, split, train_rows=4000, max_train_rows=1000, seed=7)
    fit = thinned.filter(pl.col("snapshot_date").is_in(split.train))
    assert 500 < fit.height < 1500
    # Whole customers: a sampled customer appears in every training snapshot.
    assert fit.group_by("customer_id").len().get_column("len").unique().to_list() == [len(split.train)]
    # Validation and early stopping are never thinned.
    assert thinned.filter(pl.col("snapshot_date").is_in(split.validation)).height == 4 * 400
    assert thinned.equals(training_frame(features, labels, split, 4000, 1000, seed=7))


def test_the_early_stopping_snapshots_keep_only_the_customers_the_fit_holds_out_and_the_model_is_the_same():
    data, _ = synthetic_problem(seed=5, customers=400)
    features, labels = data.drop("churned").lazy(), data.select("customer_id", "snapshot_date", "churned").lazy()
    split = split_snapshots(MONDAYS, 90, 10, 4, 3)
    params = default_params(seed=11, threads=1)
    whole = training_frame(features, labels, split, 4000, 10_000, seed=7)
    seed = early_stopping_seed(params)
    kept = training_frame(features, labels, split, 4000, 10_000, seed=7, early_stopping_seed=seed)
    in_early = pl.col("snapshot_date").is_in(split.early_stopping)
    held_out = whole.filter(in_early & early_stopping_customers(seed))
    assert 0 < held_out.height < whole.filter(in_early).height
    assert kept.filter(in_early).equals(held_out)
    assert kept.filter(~in_early).equals(whole.filter(~in_early))
    models = [fit_churn_model(frame, split, params, max_rounds=100, early_stopping_rounds=10)
              for frame in (whole, kept)]
    assert models[0].booster.model_to_string() == models[1].booster.model_to_string()
    assert models[0].validation_metrics == models[1].validation_metrics


def test_features_without_information_in_the_fit_rows_are_named_with_why():
    from assets.modeling.training import uninformative_features

    rows = pl.DataFrame({"country": [None, None, None], "events_30d": [0, 0, 0], "orders_90d": [1, 2, 1],
                         "open_rate_90d": [None, 0.5, None]}, schema_overrides={"country": pl.Utf8})
    # a single value beside missing ones still tells the two apart, so it stays
    assert uninformative_features(rows, rows.columns) == {"country": "no value", "events_30d": "one value"}
    assert uninformative_features(rows.clear(), rows.columns) == {}


def test_a_short_history_shrinks_the_folds_keeps_every_purge_and_records_why():
    """A year of weekly snapshots with a 90-day horizon: 39 whose labels matured. The default folds (4 each, two
    purges of 13 weeks, 26 training snapshots) need more; the split shrinks the folds together instead."""
    from assets.modeling.training import adaptive_split

    labelled = [date(2024, 1, 1) + timedelta(weeks=i) for i in range(39)]
    split = adaptive_split(labelled, 90, train_snapshots=26, validation_snapshots=4, early_stopping_snapshots=4,
                           calibration_snapshots=4)
    sizes = {k: len(getattr(split, k)) for k in ("train", "early_stopping", "calibration", "validation")}
    assert sizes["validation"] == sizes["calibration"] == sizes["early_stopping"] < 4
    assert sizes["train"] >= 2 * sizes["validation"]
    assert max(split.early_stopping) + timedelta(days=90) <= min(split.calibration)
    assert max(split.calibration) + timedelta(days=90) <= min(split.validation)
    assert split.adapted["requested"]["train"] == 26 and split.adapted["used"]["validation"] == sizes["validation"]
    assert "training snapshots" in split.adapted["because"]
    assert split.to_json()["adapted"] == split.adapted
    # a history that holds the requested split keeps it, unmarked
    long = [date(2023, 1, 2) + timedelta(weeks=i) for i in range(90)]
    assert adaptive_split(long, 90, 26, 4, 4, 4).adapted is None


def test_too_short_a_history_fails_saying_what_the_horizon_needs_and_what_the_data_has():
    from assets.modeling.training import ShortHistoryError, adaptive_split, minimum_labelled_snapshots

    labelled = [date(2024, 1, 1) + timedelta(weeks=i) for i in range(20)]
    needed = minimum_labelled_snapshots(labelled, 90, with_calibration=True)
    assert needed == 29  # 1 + 12 purged (13 weeks is 91 days) + 1 + 12 purged + 1 + 2
    with pytest.raises(ShortHistoryError, match=r"90-day churn horizon.*needs 29 .*the data has 20 \(from 2024-01-01"):
        adaptive_split(labelled, 90, 26, 4, 4, 4)
    grid = [date(2024, 1, 1) + timedelta(weeks=i) for i in range(needed)]
    assert len(adaptive_split(grid, 90, 26, 4, 4, 4).train) == 2


def test_a_code_version_of_digits_only_does_not_read_as_personal_data():
    import re

    from assets.ingestion.pii_scan import PII_PATTERNS
    from assets.modeling.provenance import code_version, trainer_code_version

    version = code_version("149012396392", "523406187723")
    assert version == "src-149012396392 git-523406187723"
    assert not [kind for kind, pattern in PII_PATTERNS.items() if re.search(pattern, version)]
    assert trainer_code_version().startswith("src-")
