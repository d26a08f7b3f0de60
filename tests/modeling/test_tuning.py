"""Rolling-origin folds that never leak labels or touch the hold-out, and a real, seeded Optuna search."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import timedelta

import numpy as np
import polars as pl
import pytest

from assets.modeling.training import default_params, split_snapshots, train_churn_model
from assets.modeling.tuning import (
    IMBALANCE_OPTIONS,
    SEARCH_SPACE,
    TuningBudget,
    fit_budget_to_history,
    imbalance_params,
    rolling_origin_folds,
    thin_customers,
    tune_lightgbm,
)
from tests.modeling.test_training import MONDAYS, synthetic_problem

HORIZON = 28
HOLDOUT_STARTS = MONDAYS[-8]  # the integrator keeps the last snapshots for out-of-time validation and calibration
FAST = TuningBudget(n_trials=6, max_rounds=300, early_stopping_rounds=20)


@pytest.mark.parametrize(("horizon", "n_folds", "train_snapshots", "early_stopping"),
                         [(HORIZON, 3, 10, 2), (90, 2, 3, 1)])
def test_folds_are_purged_and_never_reach_past_the_holdout(horizon, n_folds, train_snapshots, early_stopping):
    budget = TuningBudget(n_folds=n_folds, train_snapshots=train_snapshots)
    folds = rolling_origin_folds(MONDAYS, horizon, budget, before=HOLDOUT_STARTS)
    assert len(folds) == n_folds
    for fold in folds:
        fit = fold.train + fold.early_stopping
        # Every fit label window [T, T + horizon) closes before the fold's first validation snapshot.
        assert max(fit) + timedelta(days=horizon) <= min(fold.validation)
        # Nothing tuning reads has a label that looks into the hold-out.
        assert all(d + timedelta(days=horizon) <= HOLDOUT_STARTS for d in fit + fold.validation)
        assert max(fold.train) < min(fold.early_stopping)
        assert (len(fold.train), len(fold.early_stopping), len(fold.validation)) == (
            train_snapshots, early_stopping, 2)


def test_folds_are_out_of_time_ordered_sliding_windows():
    folds = rolling_origin_folds(MONDAYS, HORIZON, TuningBudget(), before=HOLDOUT_STARTS)
    newest_usable = max(d for d in MONDAYS if d + timedelta(days=HORIZON) <= HOLDOUT_STARTS)
    assert folds[-1].validation[-1] == newest_usable
    for older, newer in zip(folds, folds[1:], strict=False):
        # Validation blocks step back by fold_snapshots, do not overlap, and the train window slides with them.
        assert max(older.validation) < min(newer.validation)
        assert newer.validation[0] - older.validation[0] == timedelta(weeks=2)
        assert newer.train[0] - older.train[0] == timedelta(weeks=2)
    for fold in folds:
        index = MONDAYS.index(fold.validation[0])
        assert fold.validation == MONDAYS[index:index + 2]  # consecutive labelled snapshots
        assert fold.train == sorted(fold.train) and len(fold.train) == 16
        # The window is the newest one the purge allows: the next snapshot would see validation outcomes.
        next_snapshot = fold.early_stopping[-1] + timedelta(weeks=1)
        assert next_snapshot + timedelta(days=HORIZON) > fold.validation[0]
    without_holdout = rolling_origin_folds(MONDAYS, HORIZON, TuningBudget())
    assert without_holdout[-1].validation[-1] == MONDAYS[-1]


def test_too_short_history_is_refused_with_a_reason():
    with pytest.raises(ValueError, match="labelled snapshots close their 90-day label window"):
        rolling_origin_folds(MONDAYS[:20], 90, TuningBudget())
    with pytest.raises(ValueError, match="labels close by"):
        rolling_origin_folds(MONDAYS, HORIZON, TuningBudget(), before=MONDAYS[16])
    with pytest.raises(ValueError, match="lower n_folds"):
        rolling_origin_folds(MONDAYS[:5], HORIZON, TuningBudget(n_folds=3, train_snapshots=1))


def test_a_short_history_shrinks_the_budget_before_giving_up():
    full = TuningBudget()
    assert fit_budget_to_history(MONDAYS, HORIZON, full, before=HOLDOUT_STARTS) == full  # fits: unchanged
    short = fit_budget_to_history(MONDAYS[:22], 90, full)
    assert short is not None and (short.n_folds, short.train_snapshots) < (full.n_folds, full.train_snapshots)
    folds = rolling_origin_folds(MONDAYS[:22], 90, short)  # the shrunk budget is one that builds
    assert len(folds) == short.n_folds and all(len(f.train) == short.train_snapshots for f in folds)
    assert fit_budget_to_history(MONDAYS[:12], 90, full) is None  # not one fold of 4 training snapshots fits


def test_imbalance_options_translate_to_lightgbm_params():
    labels = np.array([0, 0, 0, 1, 0, 0, 1, 0])
    assert imbalance_params("none", labels) == {}
    assert imbalance_params("is_unbalance", labels) == {"is_unbalance": True}
    assert imbalance_params("scale_pos_weight", labels) == {"scale_pos_weight": 3.0}
    with pytest.raises(ValueError, match="unknown imbalance option"):
        imbalance_params("smote", labels)


def test_thinning_keeps_whole_customers_and_is_seeded():
    data, _ = synthetic_problem(seed=5, customers=300)
    train = data.filter(pl.col("snapshot_date").is_in(MONDAYS[:10]))
    thinned = thin_customers(train, max_rows=1000, seed=7)
    assert 600 < thinned.height < 1400
    assert thinned.group_by("customer_id").len().get_column("len").unique().to_list() == [10]
    assert thinned.equals(thin_customers(train, max_rows=1000, seed=7))
    assert thin_customers(train, max_rows=train.height, seed=7).height == train.height


@pytest.fixture(scope="module")
def problem() -> pl.DataFrame:
    data, _ = synthetic_problem(seed=3, customers=300)
    return data


@pytest.fixture(scope="module")
def tuned(problem):
    folds = rolling_origin_folds(MONDAYS, HORIZON, FAST, before=HOLDOUT_STARTS)
    return folds, tune_lightgbm(problem, folds, default_params(seed=7, threads=1), FAST)


def test_tuning_never_loses_to_the_defaults_and_records_every_trial(tuned):
    _, result = tuned
    base = default_params(seed=7, threads=1)
    assert result.best_score >= result.default_score > 0.6
    assert result.trials.height == FAST.n_trials == result.n_trials_completed + result.n_trials_pruned
    assert result.trials.get_column("number").to_list() == list(range(FAST.n_trials))
    assert result.stopped_by == "n_trials"
    assert result.best_score == pytest.approx(result.trials.get_column("value").max())
    # Trial 0 is the untuned baseline.
    first = result.trials.row(0, named=True)
    assert first["value"] == pytest.approx(result.default_score)
    baseline = json.loads(first["params"])
    searched_base = ("learning_rate", "num_leaves", "min_data_in_leaf", "feature_fraction", "lambda_l2")
    assert {k: baseline[k] for k in searched_base} == {k: base[k] for k in searched_base}
    assert baseline["imbalance"] == "none"
    for row in result.trials.iter_rows(named=True):
        params = json.loads(row["params"])
        assert params["imbalance"] in IMBALANCE_OPTIONS
        for name, (low, high, _, _) in SEARCH_SPACE.items():
            assert low <= params[name] <= high
        assert row["duration_s"] > 0


def test_best_params_are_complete_lightgbm_params(tuned):
    _, result = tuned
    params = result.best_params
    assert params["num_threads"] == 1 and params["seed"] == 7 and params["objective"] == "binary"
    assert params["num_iterations"] == result.best_rounds >= 1
    assert result.imbalance in IMBALANCE_OPTIONS
    assert ("is_unbalance" in params) == (result.imbalance == "is_unbalance")
    assert ("scale_pos_weight" in params) == (result.imbalance == "scale_pos_weight")
    assert "imbalance" not in params


def test_best_params_train_through_the_production_path(problem, tuned):
    _, result = tuned
    split = split_snapshots(MONDAYS, HORIZON, train_snapshots=16, validation_snapshots=4, early_stopping_snapshots=2)
    model = train_churn_model(problem, split, result.best_params, max_rounds=300, early_stopping_rounds=20)
    assert model.booster.current_iteration() <= result.best_params["num_iterations"]
    assert model.validation_metrics["auc"] > 0.6


def test_same_seed_reproduces_the_search(problem, tuned):
    folds, first = tuned
    second = tune_lightgbm(problem, folds, default_params(seed=7, threads=1), FAST)
    assert second.best_params == first.best_params
    assert second.trials.drop("duration_s").equals(first.trials.drop("duration_s"))


def test_two_threads_fit_a_trials_folds_side_by_side_and_find_the_same_search(problem, tuned):
    """With two threads the folds of a trial fit at once, one thread each, and are reported in fold order: the
    pruner sees the same values, so every trial, pruned or not, and the best params are those of one thread."""
    folds, _ = tuned
    budget = replace(FAST, n_trials=10)
    one, two = (tune_lightgbm(problem, folds, default_params(seed=7, threads=threads), budget) for threads in (1, 2))
    assert "PRUNED" in one.trials.get_column("state").to_list()
    assert two.trials.drop("duration_s").equals(one.trials.drop("duration_s"))
    assert {**two.best_params, "num_threads": 1} == one.best_params


def test_timeout_stops_the_study_early(problem, tuned):
    folds, _ = tuned
    budget = TuningBudget(n_trials=200, timeout_seconds=0.01, max_rounds=300, early_stopping_rounds=20)
    result = tune_lightgbm(problem, folds, default_params(seed=7, threads=1), budget)
    assert result.stopped_by == "timeout"
    assert 1 <= result.trials.height < budget.n_trials
    # The baseline trial always completes, so the result is usable even when time runs out at once.
    assert result.n_trials_completed >= 1 and result.best_score >= result.default_score


def test_the_challenger_trains_with_the_newest_recorded_search(tmp_path, lake, tuned):
    """models/lightgbm_params hands its result to models/churn_model through gold/tuning_results, not a file."""
    from datetime import UTC, datetime

    from assets.modeling.assets import _tuned_params
    from assets.modeling.tuning import TUNING_RESULTS, newest_tuning, tuning_record
    from resources.assay import AssayResource

    assay = AssayResource(home=str(tmp_path), landing_dir=str(tmp_path / "landing"), lgbm_threads=2)
    assert _tuned_params(lake, assay, seed=3) == (default_params(seed=3, threads=2), {})  # before any search
    folds, result = tuned
    first = datetime(2025, 1, 1, tzinfo=UTC)
    lake.append(*TUNING_RESULTS, tuning_record(first, "run-1", result.best_params, result, folds))
    params, summary = _tuned_params(lake, assay, seed=3)
    assert params == {**result.best_params, "num_threads": 2}  # the threads are this machine's
    assert summary["best_score"] == result.best_score and summary["run_id"] == "run-1"
    assert summary["folds"][0]["validation"] == [str(d) for d in folds[0].validation]
    skipped = tuning_record(datetime(2025, 2, 1, tzinfo=UTC), "run-2", default_params(seed=9, threads=1),
                            skipped="too little history")
    lake.append(*TUNING_RESULTS, skipped)
    params, summary = _tuned_params(lake, assay, seed=3)
    assert params == {**default_params(seed=9, threads=1), "num_threads": 2}
    assert "best_score" not in summary and summary["skipped"] == "too little history"
    assert newest_tuning(lake.scan(*TUNING_RESULTS).collect().sort("tuned_at", descending=True))["run_id"] == "run-2"
