"""Build a challenger model and its evaluation pack from labelled snapshots (pure: frames in, model and figures out).

Order of work, each on its own out-of-time fold of the split (see `split_snapshots`):
1. fit BG/NBD on the training rows and derive `bgnbd_p_alive` for every row;
2. train LightGBM with and without that feature (early stopping on the early-stopping snapshots) and keep the
   feature only if it helps on the calibration snapshots;
3. choose and fit a calibrator (isotonic or Platt) on the calibration snapshots, for LightGBM and for each
   baseline (logistic regression, the RFM rule, BG/NBD), which are candidates like it;
4. evaluate on the validation snapshots, never touched before: of the candidates whose calibration error there is
   within the gate's limit, the one with the highest AUC is the challenger, whatever its kind. Then metrics
   before and after calibration, lift and gains, feature-group ablation (of LightGBM), fairness at the served
   model's operating threshold, global importance, plots.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import polars as pl

from assets.modeling.baselines import BGNBD_FEATURE, fit_bgnbd_baseline, fit_logistic_baseline, with_bgnbd_feature
from assets.modeling.calibration import (
    Calibrator,
    choose_calibrator,
    expected_calibration_error,
    reliability_curve,
    split_halves,
)
from assets.modeling.evaluation import (
    evaluation_metrics,
    gains_table,
    plot_gains,
    plot_importance,
    plot_precision_recall,
    plot_reliability,
    plot_roc,
)
from assets.modeling.fairness import (
    FairnessLimits,
    age_band,
    fairness_intervals,
    fairness_summary,
    fairness_violations,
    group_fairness,
    operating_threshold,
)
from assets.modeling.gate import MAX_ECE
from assets.modeling.parallel import Parallelism, concurrently
from assets.modeling.pipeline import ChurnPipeline, ScoringModel
from assets.modeling.scorers import BgNbdScorer, LogisticScorer, RfmRuleScorer
from assets.modeling.training import (
    CATEGORICAL_FEATURES,
    LABEL_COLUMN,
    SnapshotSplit,
    boost,
    feature_columns,
    fit_data,
    model_dataset,
    to_model_matrix,
    uninformative_features,
)

# Feature groups for the ablation table, by column name; anything unmatched falls in "profile".
FEATURE_GROUPS: dict[str, tuple[str, ...]] = {
    "recency": ("recency_days",),
    "frequency": ("orders_", "mean_days_between_orders", "order_trend_90d"),
    "monetary": ("revenue_", "avg_order_value", "items_per_order"),
    "engagement": ("events_", "add_to_cart", "support_", "days_since_last_event"),
    "campaign": ("touches_", "opens_", "clicks_", "open_rate", "click_rate", "days_since_last_open"),
    "consent": ("consent_", "days_since_marketing_withdrawal"),
    "bgnbd": (BGNBD_FEATURE,),
}

# The candidates for the served model, in tie-break order; the evaluation names them by these keys.
CANDIDATES = ("lightgbm_calibrated", "logistic_regression", "rfm_heuristic", "bgnbd")
IDENTITY = Calibrator("identity")


def feature_group(feature: str) -> str:
    for group, prefixes in FEATURE_GROUPS.items():
        if any(feature == p or feature.startswith(p) for p in prefixes):
            return group
    return "profile"


@dataclass(frozen=True)
class ChallengerSettings:
    max_rounds: int = 1000
    early_stopping_rounds: int = 50
    top_fraction: float = 0.1  # the operating point: the riskiest 10 % are contacted
    fairness_limits: FairnessLimits = field(default_factory=FairnessLimits)
    ablation_rows: int = 60_000
    ablation_validation_rows: int = 200_000
    ablation_rounds: int = 150
    seed: int = 7
    max_ece: float = MAX_ECE  # a candidate above it on the validation snapshots is not chosen (the gate would refuse)


@dataclass
class Challenger:
    pipeline: ScoringModel  # the served model: LightGBM or a baseline, whichever won on the validation snapshots
    params: dict  # LightGBM's parameters when it won; empty for a baseline
    evaluation: dict
    metrics: dict[str, float]  # the calibrated model's validation metrics (the registry's headline figures)
    reference: pl.DataFrame  # a sample of validation rows in model-input form with their customer ids, for drift
    fairness_violations: list[str]


def choose_candidate(metrics: dict[str, dict[str, float]], max_ece: float) -> dict:
    """The served model: the highest validation AUC among the candidates whose validation ECE is within `max_ece`
    (the gate refuses any other), or among all when none is; ties go to the earlier in CANDIDATES. Returns the
    choice with every candidate's AUC and ECE and the margin over the best of the others."""
    eligible = [name for name in CANDIDATES if metrics[name]["ece"] <= max_ece] or list(CANDIDATES)
    chosen = max(eligible, key=lambda name: metrics[name]["auc"])  # max() keeps the first of equal AUCs
    ranked = sorted(CANDIDATES, key=lambda name: -metrics[name]["auc"])
    runner_up = next(name for name in ranked if name != chosen)
    return {
        "chosen": chosen,
        "rule": f"highest AUC on the validation snapshots among the candidates with ECE within {max_ece} there, "
                "each calibrated on the calibration snapshots",
        "max_ece": max_ece,
        "runner_up": runner_up,
        "auc_margin": metrics[chosen]["auc"] - metrics[runner_up]["auc"],
        "candidates": [{"model": name, "auc": metrics[name]["auc"], "ece": metrics[name]["ece"],
                        "eligible": metrics[name]["ece"] <= max_ece} for name in ranked],
    }


def _rows(data: pl.DataFrame, dates: list) -> pl.DataFrame:
    """The rows of `dates`, in `data`'s order. When they are one block of a frame sorted by snapshot (as
    `training_frame` makes it), a slice that shares its memory: at the large size each fold is a gigabyte."""
    column = data.get_column("snapshot_date")
    if dates and column.is_sorted():
        start = column.search_sorted(min(dates), side="left")
        block = data.slice(start, column.search_sorted(max(dates), side="right") - start)
        if block.get_column("snapshot_date").is_in(dates).all():
            return block
    return data.filter(pl.col("snapshot_date").is_in(dates))


def _y(frame: pl.DataFrame) -> np.ndarray:
    return frame.get_column(LABEL_COLUMN).to_numpy().astype(np.int8)


def _sensitive_groups(validation: pl.DataFrame, sensitive: pl.DataFrame | None) -> dict[str, np.ndarray]:
    """Group labels per sensitive attribute for the validation rows; birth_year is reported as an age band."""
    if sensitive is None or sensitive.height == 0:
        return {}
    joined = validation.select("customer_id", "snapshot_date").join(sensitive, on="customer_id", how="left")
    groups: dict[str, np.ndarray] = {}
    for column in sensitive.columns:
        if column == "customer_id":
            continue
        if column == "birth_year":
            years = joined.get_column("snapshot_date").dt.year().to_numpy()
            groups["age_band"] = age_band(joined.get_column("birth_year"), years)
        else:
            groups[column] = joined.get_column(column).cast(pl.Utf8).fill_null("unknown").to_numpy()
    return groups


def _ablation(train: pl.DataFrame, validation: pl.DataFrame, features: list[str], categories: dict,
              params: dict, settings: ChallengerSettings) -> list[dict]:
    """AUC without each feature group, against the full feature set, both refit the same way (thinned rows,
    fixed rounds) so the deltas compare like with like, and scored on the same validation rows: a seeded sample of
    at most `ablation_validation_rows`, since every refit scores them again (docs/performance.md)."""
    import lightgbm as lgb

    from domain.metrics import binary_metrics

    if train.height > settings.ablation_rows:
        train = train.sample(n=settings.ablation_rows, seed=settings.seed)
    if validation.height > settings.ablation_validation_rows:
        validation = validation.sample(n=settings.ablation_validation_rows, seed=settings.seed)
    parallel = Parallelism.of(params.get("num_threads", 1))
    ablation_params = {k: v for k, v in params.items() if k not in ("num_iterations", "early_stopping_round")}
    ablation_params["num_threads"] = parallel.fit_threads
    y_train, y_val = _y(train), _y(validation)

    def auc_with(columns: list[str]) -> float:
        cats = {c: v for c, v in categories.items() if c in columns}
        booster = lgb.train(ablation_params, model_dataset(train, columns, cats, y_train),
                            num_boost_round=settings.ablation_rounds)
        return binary_metrics(y_val, booster.predict(to_model_matrix(validation, columns, cats),
                                                         num_threads=parallel.predict_threads))["auc"]

    groups = [group for group in sorted({feature_group(f) for f in features})
              if any(feature_group(f) != group for f in features)]
    kept = [features] + [[f for f in features if feature_group(f) != group] for group in groups]
    full, *without = concurrently([lambda columns=columns: auc_with(columns) for columns in kept], parallel.workers)
    rows = [{"group": "all features", "features": features, "auc": full, "auc_delta": 0.0}]
    for group, auc in zip(groups, without, strict=True):
        rows.append({"group": f"without {group}", "features": [f for f in features if feature_group(f) == group],
                     "auc": auc, "auc_delta": auc - full})
    return rows


def build_challenger(
    data: pl.DataFrame, split: SnapshotSplit, params: dict, horizon_days: int, reports_dir: Path,
    settings: ChallengerSettings, sensitive: pl.DataFrame | None = None, truth: pl.LazyFrame | None = None,
) -> Challenger:
    """Train, calibrate and evaluate a challenger; plots go to `reports_dir`."""
    from assets.modeling.training import oracle_auc
    from domain.metrics import normalised_auc

    params = {k: v for k, v in params.items() if k != "num_iterations"}  # early stopping decides the rounds
    # A feature without information in the fit window (a source the data lacks) is left out of every model here,
    # and the card says so: a baseline cannot fit a column of nulls, and no model learns from a constant.
    dropped = uninformative_features(_rows(data, split.train), feature_columns(data.columns))
    data = data.drop(list(dropped))
    bgnbd = fit_bgnbd_baseline(_rows(data, split.train), horizon_days, seed=settings.seed)
    data = with_bgnbd_feature(data, bgnbd)
    calibration = _rows(data, split.calibration)
    validation = _rows(data, split.validation)

    # With two or more LightGBM threads the two candidates fit at once, each on its share of them: a fit of a
    # few dozen columns gains little from a second thread, two fits side by side gain nearly twice.
    parallel = Parallelism.of(params.get("num_threads", 1))
    fit_params = {**params, "num_threads": parallel.fit_threads}
    # binned one after the other (each briefly holds its rows twice), then boosted side by side
    prepared = [fit_data(data, split, fit_params), fit_data(data.drop(BGNBD_FEATURE), split, fit_params)]
    fitted = concurrently([lambda fit=fit: boost(fit, split, fit_params, settings.max_rounds,
                                                 settings.early_stopping_rounds) for fit in prepared], parallel.workers)
    # (the trees do not depend on the thread count; the card keeps the configured one)
    with_feature, without_feature = (replace(model, params=params) for model in fitted)

    def pipeline_of(model, uses_bgnbd: bool) -> ChurnPipeline:
        from assets.modeling.calibration import Calibrator

        return ChurnPipeline(booster=model.booster, features=model.features, categories=model.categories,
                             best_iteration=model.best_iteration, calibrator=Calibrator("identity"),
                             bgnbd=bgnbd if uses_bgnbd else None)

    candidates = {True: pipeline_of(with_feature, True), False: pipeline_of(without_feature, False)}
    # Each candidate scores each fold once; everything below reads these (a fold is a million rows at the large
    # size, and the calibrated pipeline's scores are its calibrator applied to the same raw scores).
    scored = concurrently([lambda c=c, rows=rows: c.predict_uncalibrated(rows, parallel.predict_threads)
                           for c in candidates.values() for rows in (calibration, validation)], parallel.workers)
    cal_raw = dict(zip(candidates, scored[0::2], strict=True))
    val_raw = dict(zip(candidates, scored[1::2], strict=True))
    y_cal = _y(calibration)
    cal_auc = {k: evaluation_metrics(y_cal, raw)["auc"] for k, raw in cal_raw.items()}
    keep_bgnbd = cal_auc[True] >= cal_auc[False]
    chosen_model = with_feature if keep_bgnbd else without_feature

    p_cal_raw = cal_raw[keep_bgnbd]
    cal_ids = calibration.get_column("customer_id").to_numpy()
    halves = split_halves(y_cal.size, cal_ids, settings.seed)  # every candidate cross-fits on the same halves
    calibrator, selection = choose_calibrator(y_cal, p_cal_raw, half_a=halves)
    pipeline = ChurnPipeline(booster=chosen_model.booster, features=chosen_model.features,
                             categories=chosen_model.categories, best_iteration=chosen_model.best_iteration,
                             calibrator=calibrator, bgnbd=bgnbd if keep_bgnbd else None)

    # The baselines are candidates too, each calibrated on the same fold: the best on the validation fold is served.
    train_rows = _rows(data, split.train)
    logistic = fit_logistic_baseline(train_rows, pipeline.features,
                                     [c for c in CATEGORICAL_FEATURES if c in pipeline.features], seed=settings.seed)
    uncalibrated_baselines = {
        "logistic_regression": LogisticScorer.from_baseline(logistic, IDENTITY, bgnbd),
        "rfm_heuristic": RfmRuleScorer(calibrator=IDENTITY),
        "bgnbd": BgNbdScorer(bgnbd=bgnbd, reference=BgNbdScorer.reference_customer(train_rows), calibrator=IDENTITY),
    }
    models: dict[str, ScoringModel] = {"lightgbm_calibrated": pipeline}
    selections = {"lightgbm_calibrated": selection}
    for name, scorer in uncalibrated_baselines.items():
        fitted, selections[name] = choose_calibrator(y_cal, scorer.predict_uncalibrated(calibration),
                                                     half_a=halves)
        models[name] = replace(scorer, calibrator=fitted)

    y_val = _y(validation)
    scores = {name: pipeline.calibrator.apply(val_raw[keep_bgnbd]) if name == "lightgbm_calibrated"
              else model.predict(validation) for name, model in models.items()}
    scores["lightgbm_raw"] = val_raw[keep_bgnbd]
    metrics = {name: evaluation_metrics(y_val, s) for name, s in scores.items()}
    choice = choose_candidate(metrics, settings.max_ece)
    chosen = choice["chosen"]
    served = models[chosen]
    p = scores[chosen]
    p_raw = val_raw[keep_bgnbd] if chosen == "lightgbm_calibrated" else served.predict_uncalibrated(validation)
    oracle = oracle_auc(validation, truth) if truth is not None else None

    threshold = operating_threshold(p, settings.top_fraction)  # the served model's operating point
    per_group, summaries = {}, {}
    # the bootstrap groups rows by customer: numbers group as the ids do, without sorting strings
    customer_numbers = validation.get_column("customer_id").rank("dense").to_numpy()
    for attribute, groups in _sensitive_groups(validation, sensitive).items():
        table = group_fairness(y_val, p, groups, threshold, settings.fairness_limits.min_group_rows)
        per_group[attribute] = table.to_dicts()
        summaries[attribute] = {
            **fairness_summary(table, settings.fairness_limits.min_group_rows),
            **fairness_intervals(y_val, p, groups, threshold, settings.fairness_limits.min_group_rows,
                                 seed=settings.seed, customers=customer_numbers)}
    violations = fairness_violations(summaries, settings.fairness_limits)

    booster = pipeline.booster
    importance = dict(zip(pipeline.features, (float(v) for v in booster.feature_importance("gain")), strict=True))
    reports_dir.mkdir(parents=True, exist_ok=True)
    curves = {name: (y_val, scores[name]) for name in ("lightgbm_calibrated", "logistic_regression",
                                                        "rfm_heuristic", "bgnbd")}
    gains = gains_table(y_val, p)
    plots = {
        "roc": plot_roc(curves, reports_dir / "roc.png").name,
        "precision_recall": plot_precision_recall(curves, reports_dir / "precision_recall.png").name,
        "reliability": plot_reliability({"before calibration": reliability_curve(y_val, p_raw),
                                         "after calibration": reliability_curve(y_val, p)},
                                        reports_dir / "reliability.png").name,
        "gains": plot_gains({label: gains_table(y_val, scores[name]) for name, label in
                             (("lightgbm_calibrated", "LightGBM"), ("logistic_regression", "logistic regression"),
                              ("rfm_heuristic", "RFM heuristic"))},
                            reports_dir / "gains.png").name,
        "importance": plot_importance(importance, reports_dir / "importance.png").name,
    }
    ablation = _ablation(train_rows, validation, pipeline.features, pipeline.categories, params, settings)
    bgnbd_auc = {k: evaluation_metrics(y_val, raw)["auc"] for k, raw in val_raw.items()}
    evaluation = {
        "metrics": metrics,
        "oracle_auc": oracle,
        "normalised_auc": normalised_auc(metrics[chosen]["auc"], oracle) if oracle else None,
        "model_choice": choice,
        "calibration": {
            "method": served.calibrator.method,
            "ece_before": expected_calibration_error(y_val, p_raw),
            "ece_after": expected_calibration_error(y_val, p),
            "selection": selections[chosen].to_dicts(),
            "calibrator": served.calibrator.to_dict(),
        },
        "gains": gains.to_dicts(),
        "ablation": ablation,
        "bgnbd_feature": {"auc_with": bgnbd_auc[True], "auc_without": bgnbd_auc[False], "kept": keep_bgnbd,
                          "calibration_auc_with": cal_auc[True], "calibration_auc_without": cal_auc[False],
                          "params": bgnbd.to_dict()},
        "fairness": {"threshold": threshold, "top_fraction": settings.top_fraction, "summary": summaries,
                     "per_group": per_group, "violations": violations,
                     "limits": {"max_equal_opportunity_difference":
                                settings.fairness_limits.max_equal_opportunity_difference,
                                "min_selection_rate_ratio": settings.fairness_limits.min_selection_rate_ratio,
                                "min_group_rows": settings.fairness_limits.min_group_rows}},
        "importance": dict(sorted(importance.items(), key=lambda kv: -kv[1])),
        "plots": plots,
        "logistic_coefficients": logistic.coefficients(),
        "dropped_features": dropped,
    }
    headline = dict(metrics[chosen])
    headline.update({"auc_raw": evaluation_metrics(y_val, p_raw)["auc"],
                     "ece_raw": evaluation["calibration"]["ece_before"],
                     "train_rows": chosen_model.validation_metrics["train_rows"]})
    if oracle:
        headline.update({"oracle_auc": oracle, "normalised_auc": evaluation["normalised_auc"]})
    # The drift reference is the out-of-time validation rows: the newest data the model was judged on, and the only
    # rows whose predictions are out of sample like the monitored ones. Training rows lie a year further back
    # (lifetime and age features drift from them by construction) and carry in-sample, sharper predictions. The
    # customer ids stay with the rows, so an erasure finds the person's rows in every version's reference.
    reference = validation.sample(n=min(20_000, validation.height), seed=settings.seed)
    return Challenger(pipeline=served, params=chosen_model.params if chosen == "lightgbm_calibrated" else {},
                      evaluation=evaluation, metrics=headline,
                      reference=reference.select("customer_id", *[c for c in feature_columns(reference.columns)
                                                                 if c != BGNBD_FEATURE]),
                      fairness_violations=violations)
