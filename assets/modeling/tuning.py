"""Hyperparameter search for the churn LightGBM on rolling-origin folds purged by the label horizon.

Tuning only ever sees snapshots whose labels close before the integrator's hold-out (`before`), so the final
out-of-time validation and calibration data stay untouched by model selection.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from assets.modeling.parallel import Parallelism, concurrently
from assets.modeling.training import (
    CATEGORICAL_FEATURES,
    KEY_COLUMNS,
    LABEL_COLUMN,
    early_stopping_customers,
    feature_columns,
    model_dataset,
    to_model_matrix,
)

if TYPE_CHECKING:
    import optuna

IMBALANCE_OPTIONS = ("none", "is_unbalance", "scale_pos_weight")
# name -> (low, high, log, kind); the ranges the search draws from.
SEARCH_SPACE: dict[str, tuple[float, float, bool, type]] = {
    "learning_rate": (0.02, 0.2, True, float),
    "num_leaves": (15, 255, True, int),
    "min_data_in_leaf": (20, 2000, True, int),
    "feature_fraction": (0.5, 1.0, False, float),
    "bagging_fraction": (0.5, 1.0, False, float),
    "lambda_l2": (1e-3, 10.0, True, float),
    "min_gain_to_split": (0.0, 1.0, False, float),
}
# LightGBM's own defaults, used to enqueue the baseline trial when base_params leaves a searched key unset.
_LIGHTGBM_DEFAULTS = {
    "learning_rate": 0.1, "num_leaves": 31, "min_data_in_leaf": 20, "feature_fraction": 1.0,
    "bagging_fraction": 1.0, "lambda_l2": 0.0, "min_gain_to_split": 0.0,
}
_IMBALANCE_KEYS = ("is_unbalance", "unbalance", "unbalanced_sets", "scale_pos_weight")
_ROUNDS_KEYS = (
    "num_iterations", "num_iteration", "n_iter", "num_tree", "num_trees", "num_round", "num_rounds", "nrounds",
    "num_boost_round", "n_estimators", "max_iter",
)
_DEFAULTS_ROLE = "defaults"
# One row per search, appended by models/lightgbm_params; models/churn_model trains with the newest row's
# best_params. A Delta table rather than the run's metadata: the lake outlives a Dagster instance.
TUNING_RESULTS = ("gold", "tuning_results")
TUNING_RESULTS_SCHEMA = {
    "tuned_at": pl.Datetime("us", "UTC"), "run_id": pl.Utf8, "best_params": pl.Utf8, "best_score": pl.Float64,
    "default_score": pl.Float64, "imbalance": pl.Utf8, "n_trials_completed": pl.Int64, "n_trials_pruned": pl.Int64,
    "elapsed_seconds": pl.Float64, "stopped_by": pl.Utf8, "skipped": pl.Utf8, "folds": pl.Utf8,
}


@dataclass(frozen=True)
class TuningBudget:
    n_trials: int = 20
    timeout_seconds: float = 600.0  # wall-clock cap for the whole study
    seed: int = 7
    n_folds: int = 3
    fold_snapshots: int = 2  # validation snapshots per fold
    train_snapshots: int = 16  # training snapshots per fold (sliding window), early-stopping ones excluded
    early_stopping_rounds: int = 50
    max_rounds: int = 1000
    max_fold_train_rows: int = 400_000


@dataclass(frozen=True)
class Fold:
    train: list[date]
    early_stopping: list[date]
    validation: list[date]


@dataclass(frozen=True)
class TuningResult:
    best_params: dict
    best_score: float
    default_score: float
    imbalance: str
    trials: pl.DataFrame
    n_trials_completed: int
    n_trials_pruned: int
    elapsed_seconds: float
    stopped_by: str  # "n_trials" | "timeout"
    best_rounds: int = 0


def early_stopping_snapshot_count(train_snapshots: int) -> int:
    """Two early-stopping snapshots once the window is long enough to spare them, else one."""
    return 2 if train_snapshots >= 8 else 1


def rolling_origin_folds(
    labelled: list[date], horizon_days: int, budget: TuningBudget, before: date | None = None,
) -> list[Fold]:
    """Sliding-window folds whose origins step back from the newest usable snapshot, oldest fold first.

    A snapshot T is usable only if its label window closes by `before` (T + horizon <= before); within a fold,
    every train and early-stopping snapshot closes its label window by the first validation snapshot."""
    if min(budget.n_folds, budget.fold_snapshots, budget.train_snapshots) < 1:
        raise ValueError("n_folds, fold_snapshots and train_snapshots must all be at least 1")
    horizon = timedelta(days=horizon_days)
    usable = sorted(d for d in set(labelled) if before is None or d + horizon <= before)
    n_early = early_stopping_snapshot_count(budget.train_snapshots)
    window = budget.train_snapshots + n_early
    scope = f" (only snapshots whose {horizon_days}-day labels close by {before} count)" if before else ""
    folds: list[Fold] = []
    for k in range(budget.n_folds):
        end = len(usable) - k * budget.fold_snapshots
        if end - budget.fold_snapshots < 0:
            raise ValueError(
                f"{budget.n_folds} folds of {budget.fold_snapshots} validation snapshots need more than the "
                f"{len(usable)} usable labelled snapshots{scope}: ingest more history or lower n_folds"
            )
        validation = usable[end - budget.fold_snapshots:end]
        eligible = [d for d in usable if d + horizon <= validation[0]]
        if len(eligible) < window:
            raise ValueError(
                f"fold {k + 1} of {budget.n_folds} validates from {validation[0]} but only {len(eligible)} labelled "
                f"snapshots close their {horizon_days}-day label window before it; need {window} "
                f"({budget.train_snapshots} train + {n_early} early-stopping){scope}: ingest more history or lower "
                "n_folds / train_snapshots"
            )
        fit = eligible[-window:]
        folds.append(Fold(train=fit[:-n_early], early_stopping=fit[-n_early:], validation=validation))
    return folds[::-1]


def fit_budget_to_history(
    labelled: list[date], horizon_days: int, budget: TuningBudget, before: date | None = None,
    min_train_snapshots: int = 4,
) -> TuningBudget | None:
    """The budget itself when its folds fit the labelled history, else the nearest one that does: fewer folds
    first, then shorter training windows (not below `min_train_snapshots`). None when not even one fold fits."""
    for n_folds in range(budget.n_folds, 0, -1):
        for train_snapshots in range(budget.train_snapshots, min_train_snapshots - 1, -1):
            candidate = replace(budget, n_folds=n_folds, train_snapshots=train_snapshots)
            try:
                rolling_origin_folds(labelled, horizon_days, candidate, before)
            except ValueError:
                continue
            return candidate
    return None


def search_space(trial: optuna.Trial) -> dict:
    """LightGBM params drawn for one trial, plus the "imbalance" choice that `imbalance_params` translates per
    fold (the positive weight depends on each fold's own class balance)."""
    params: dict[str, Any] = {}
    for name, (low, high, log, kind) in SEARCH_SPACE.items():
        if kind is int:
            params[name] = trial.suggest_int(name, int(low), int(high), log=log)
        else:
            params[name] = trial.suggest_float(name, low, high, log=log)
    params["imbalance"] = trial.suggest_categorical("imbalance", IMBALANCE_OPTIONS)
    return params


def imbalance_params(choice: str, labels: np.ndarray) -> dict:
    """LightGBM params for an imbalance option; scale_pos_weight is negatives/positives of `labels`."""
    if choice == "none":
        return {}
    if choice == "is_unbalance":
        return {"is_unbalance": True}
    if choice == "scale_pos_weight":
        y = np.asarray(labels)
        positives = int(np.count_nonzero(y == 1))
        if positives == 0:
            raise ValueError("scale_pos_weight needs at least one positive label")
        return {"scale_pos_weight": float((y.size - positives) / positives)}
    raise ValueError(f"unknown imbalance option {choice!r}; expected one of {IMBALANCE_OPTIONS}")


def base_imbalance(params: dict) -> str:
    """Which imbalance option a params dict already uses (for labelling the untuned baseline)."""
    if any(params.get(k) for k in ("is_unbalance", "unbalance", "unbalanced_sets")):
        return "is_unbalance"
    if params.get("scale_pos_weight", 1.0) != 1.0:
        return "scale_pos_weight"
    return "none"


def _without(params: dict, keys: tuple[str, ...]) -> dict:
    return {k: v for k, v in params.items() if k not in keys}


def _baseline_values(base_params: dict) -> dict:
    """The base params' searched values, clipped into range so the sampler can record the baseline trial."""
    values: dict[str, Any] = {}
    for name, (low, high, _, kind) in SEARCH_SPACE.items():
        value = min(max(base_params.get(name, _LIGHTGBM_DEFAULTS[name]), low), high)
        values[name] = kind(value)
    values["imbalance"] = base_imbalance(base_params)
    return values


def _candidate_params(base_params: dict, sampled: dict) -> tuple[dict, str]:
    """base_params with the sampled values; imbalance keys dropped (added per fold) and bagging switched on."""
    sampled = dict(sampled)
    choice = sampled.pop("imbalance")
    params = _without(base_params, _IMBALANCE_KEYS + _ROUNDS_KEYS) | sampled
    if not params.get("bagging_freq"):
        params["bagging_freq"] = 1  # otherwise bagging_fraction is ignored
    return params, choice


@dataclass(frozen=True)
class _FoldData:
    train: Any  # lightgbm.Dataset, constructed once and reused by every trial
    early_stopping: Any  # lightgbm.Dataset referencing `train`'s bins
    validation: np.ndarray  # the model matrix (to_model_matrix)
    validation_labels: np.ndarray
    train_labels: np.ndarray


def thin_customers(frame: pl.DataFrame, max_rows: int, seed: int) -> pl.DataFrame:
    """Seeded whole-customer sample down to about `max_rows`, so a customer's history stays together."""
    if frame.height <= max_rows:
        return frame
    buckets = 10_000
    keep = int(max_rows / frame.height * buckets)
    return frame.filter((pl.col("customer_id").hash(seed) % buckets) < keep)


def _labels(frame: pl.DataFrame, what: str, fold: int) -> np.ndarray:
    y = frame.get_column(LABEL_COLUMN).to_numpy()
    if y.size == 0 or y.min() == y.max():
        raise ValueError(f"fold {fold}: the {what} snapshots need rows of both classes, got {y.size} rows")
    return y


def _prepare_folds(
    data: pl.DataFrame, folds: list[Fold], base_params: dict, budget: TuningBudget,
) -> list[_FoldData]:
    """Build each fold's LightGBM datasets once: binning dominates the cost of a short trial."""
    features = feature_columns(list(data.columns))
    in_scope = data.filter(pl.col("snapshot_date").is_in(sorted({d for f in folds for d in
                                                                  f.train + f.early_stopping + f.validation})))
    categories = {
        c: sorted(in_scope.get_column(c).drop_nulls().unique().to_list()) for c in CATEGORICAL_FEATURES if c in features
    }
    # feature_pre_filter=False lets trials change min_data_in_leaf on an already binned dataset.
    dataset_params = _without(base_params, _IMBALANCE_KEYS + _ROUNDS_KEYS) | {"feature_pre_filter": False}

    def rows(dates: list[date]) -> pl.DataFrame:
        # A fixed row order: LightGBM's bagging draws by row index.
        return in_scope.filter(pl.col("snapshot_date").is_in(dates)).sort(list(KEY_COLUMNS))

    prepared = []
    for i, fold in enumerate(folds, start=1):
        # As in training: early stopping on customers kept out of the fit (see early_stopping_customers).
        held_out = early_stopping_customers(int(base_params.get("seed", budget.seed)))
        train = thin_customers(rows(fold.train).filter(~held_out), budget.max_fold_train_rows, budget.seed)
        early, validation = rows(fold.early_stopping).filter(held_out), rows(fold.validation)
        train_labels = _labels(train, "train", i)
        train_set = model_dataset(train, features, categories, train_labels, params=dataset_params,
                                  free_raw_data=False)
        early_set = model_dataset(early, features, categories, _labels(early, "early-stopping", i),
                                  reference=train_set, params=dataset_params, free_raw_data=False)
        # (the same categorical features as its reference, or lgb.train would rebuild it)
        train_set.construct()
        early_set.construct()
        prepared.append(_FoldData(
            train=train_set, early_stopping=early_set, validation=to_model_matrix(validation, features, categories),
            validation_labels=_labels(validation, "validation", i), train_labels=train_labels,
        ))
    return prepared


def _trials_table(trials: list[optuna.trial.FrozenTrial]) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "number": [t.number for t in trials],
            "state": [t.state.name for t in trials],
            "value": [t.value for t in trials],
            "duration_s": [t.duration.total_seconds() if t.duration else None for t in trials],
            "params": [json.dumps(t.params, sort_keys=True) for t in trials],
        },
        schema={"number": pl.Int64, "state": pl.Utf8, "value": pl.Float64, "duration_s": pl.Float64,
                "params": pl.Utf8},
    )


def tune_lightgbm(data: pl.DataFrame, folds: list[Fold], base_params: dict, budget: TuningBudget) -> TuningResult:
    """Search LightGBM params by mean validation AUC over `folds`, starting from `base_params` as trial 0.

    Deterministic for a seed (single-process multivariate TPE, seeded LightGBM) unless the timeout cuts the
    study short. The baseline trial is always completed, so best_score >= default_score."""
    import lightgbm as lgb
    import optuna
    from sklearn.metrics import roc_auc_score

    if not folds:
        raise ValueError("tuning needs at least one fold")
    if budget.n_trials < 1:
        raise ValueError("n_trials must be at least 1")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    prepared = _prepare_folds(data, folds, base_params, budget)
    baseline = _without(base_params, _ROUNDS_KEYS)
    last_step = len(prepared) - 1
    started = time.monotonic()
    deadline = started + budget.timeout_seconds

    parallel = Parallelism.of(base_params.get("num_threads", 1))

    def fit_fold(fold: _FoldData, params: dict) -> tuple[float, int]:
        booster = lgb.train(
            params | {"feature_pre_filter": False, "num_threads": parallel.fit_threads}, fold.train,
            num_boost_round=budget.max_rounds, valid_sets=[fold.early_stopping], valid_names=["early_stopping"],
            callbacks=[lgb.early_stopping(budget.early_stopping_rounds, verbose=False)],
        )
        best = int(booster.best_iteration or booster.current_iteration())
        p = booster.predict(fold.validation, num_iteration=best, num_threads=parallel.predict_threads)
        return float(roc_auc_score(fold.validation_labels, p)), best

    def objective(trial: optuna.Trial) -> float:
        sampled = search_space(trial)
        is_baseline = trial.user_attrs.get("role") == _DEFAULTS_ROLE
        params, choice = (baseline, "base") if is_baseline else _candidate_params(base_params, sampled)
        extras = [{} if is_baseline else imbalance_params(choice, fold.train_labels) for fold in prepared]
        fits = [lambda fold=fold, extra=extra: fit_fold(fold, params | extra)
                for fold, extra in zip(prepared, extras, strict=True)]
        # With two workers a trial's folds fit side by side and are then reported in fold order, so the pruner
        # decides on the same values as one after the other, and the search is the same; only the time differs.
        done = concurrently(fits, parallel.workers) if parallel.workers > 1 else None
        aucs: list[float] = []
        rounds: list[int] = []
        weights: list[float] = []
        for step, extra in enumerate(extras):
            auc, best = done[step] if done is not None else fits[step]()
            weights.append(float(extra.get("scale_pos_weight", 1.0)))
            aucs.append(auc)
            rounds.append(best)
            trial.set_user_attr("fold_auc", aucs)
            trial.set_user_attr("rounds", rounds)
            trial.set_user_attr("scale_pos_weight", weights)
            trial.report(float(np.mean(aucs)), step)
            out_of_time = done is None and time.monotonic() > deadline
            if step < last_step and not is_baseline and (trial.should_prune() or out_of_time):
                raise optuna.TrialPruned()
        return float(np.mean(aucs))

    study = optuna.create_study(
        direction="maximize",
        sampler=optuna.samplers.TPESampler(seed=budget.seed, multivariate=True),
        pruner=optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=0),
    )
    study.enqueue_trial(_baseline_values(base_params), user_attrs={"role": _DEFAULTS_ROLE})
    study.optimize(objective, n_trials=budget.n_trials, timeout=budget.timeout_seconds)
    elapsed = time.monotonic() - started

    trials = study.get_trials(deepcopy=False)
    best = study.best_trial
    finished = [t for t in trials if t.state.is_finished()]
    best_rounds = max(1, round(float(np.mean(best.user_attrs["rounds"]))))
    if best.user_attrs.get("role") == _DEFAULTS_ROLE:
        best_params, imbalance = dict(baseline), base_imbalance(base_params)
    else:
        best_params, imbalance = _candidate_params(base_params, best.params)
        if imbalance == "is_unbalance":
            best_params["is_unbalance"] = True
        elif imbalance == "scale_pos_weight":
            # Mean of the folds' ratios; imbalance_params on the final training labels gives the exact one.
            best_params["scale_pos_weight"] = float(np.mean(best.user_attrs["scale_pos_weight"]))
    best_params["num_iterations"] = best_rounds
    return TuningResult(
        best_params=best_params, best_score=float(best.value), default_score=float(trials[0].value),
        imbalance=imbalance, trials=_trials_table(trials),
        n_trials_completed=sum(t.state == optuna.trial.TrialState.COMPLETE for t in trials),
        n_trials_pruned=sum(t.state == optuna.trial.TrialState.PRUNED for t in trials),
        elapsed_seconds=elapsed, stopped_by="timeout" if len(finished) < budget.n_trials else "n_trials",
        best_rounds=best_rounds,
    )


def tuning_record(tuned_at: datetime, run_id: str, best_params: dict, result: TuningResult | None = None,
                  folds: list[Fold] | None = None, skipped: str | None = None) -> pl.DataFrame:
    """A row of gold/tuning_results: the search's outcome, or why it was skipped (figures then null)."""
    figures = {} if result is None else {
        "best_score": result.best_score, "default_score": result.default_score, "imbalance": result.imbalance,
        "n_trials_completed": result.n_trials_completed, "n_trials_pruned": result.n_trials_pruned,
        "elapsed_seconds": result.elapsed_seconds, "stopped_by": result.stopped_by,
    }
    row = {name: None for name in TUNING_RESULTS_SCHEMA} | figures | {
        "tuned_at": tuned_at, "run_id": run_id, "best_params": json.dumps(best_params, sort_keys=True),
        "skipped": skipped,
        "folds": json.dumps([{"train": [str(d) for d in f.train], "validation": [str(d) for d in f.validation]}
                             for f in folds or []]),
    }
    return pl.DataFrame([row], schema=TUNING_RESULTS_SCHEMA)


def newest_tuning(results: pl.DataFrame) -> dict:
    """The newest search of gold/tuning_results as a summary: best_params and folds parsed, and only the figures it
    has (a skipped search has none). Empty when there was no search."""
    if results.height == 0:
        return {}
    row = results.sort("tuned_at").row(-1, named=True)
    summary = {name: value for name, value in row.items() if value is not None}
    return summary | {"best_params": json.loads(row["best_params"]), "folds": json.loads(row["folds"] or "[]")}
