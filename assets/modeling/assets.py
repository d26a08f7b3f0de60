"""Modelling assets: tuning → challenger (trained, calibrated, evaluated, registered) → champion gate → model card."""


import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import polars as pl
from dagster import (
    AssetExecutionContext,
    AssetKey,
    Config,
    MaterializeResult,
    MetadataValue,
    asset,
)
from pydantic import Field

from assets.consent import current_consents, split_by_consent
from assets.features.dbt import MANIFEST_PATH
from assets.markdown import markdown_figures, markdown_table, png_data_uri
from assets.modeling.challenger import ChallengerSettings, build_challenger
from assets.modeling.fairness import FairnessLimits
from assets.modeling.gate import MAX_ECE, GatePolicy, broken_fields, decide
from assets.modeling.model_card import render_model_card
from assets.modeling.parallel import Parallelism, concurrently, one_blas_thread
from assets.modeling.pipeline import load_model
from assets.modeling.provenance import dbt_manifest_hash, trainer_code_version
from assets.modeling.training import (
    SnapshotSplit,
    adaptive_split,
    default_params,
    early_stopping_seed,
    fingerprint,
    labelled_snapshot_counts,
    training_frame,
)
from assets.modeling.tuning import (
    TUNING_RESULTS,
    TuningBudget,
    fit_budget_to_history,
    newest_tuning,
    rolling_origin_folds,
    tune_lightgbm,
    tuning_record,
)
from domain.contract import tagged_columns
from domain.pseudonym import pseudonym_key, with_tokens
from resources.assay import AssayResource
from resources.lake import LakeResource
from resources.registry import ModelRegistryResource

FEATURES_KEY = AssetKey(["gold", "customer_features"])
LABELS_KEY = AssetKey(["gold", "churn_labels"])
TUNING_KEY = AssetKey(["models", "lightgbm_params"])
CHALLENGER_KEY = AssetKey(["models", "churn_model"])
CHAMPION_KEY = AssetKey(["models", "champion"])
# the gate refuses a challenger whose data a broken source field reached: it reads that asset's own table
SOURCE_DRIFT_KEY = AssetKey(["monitoring", "source_drift"])


class SplitConfig(Config):
    train_snapshots: int = Field(26, description="Labelled snapshots to fit on (newest eligible ones).")
    early_stopping_snapshots: int = Field(4, description="Newest training snapshots held out for early stopping.")
    calibration_snapshots: int = Field(4, description="Out-of-time snapshots the calibrator is fitted on.")
    validation_snapshots: int = Field(4, description="Newest labelled snapshots: the out-of-time validation.")
    max_train_rows: int = Field(1_000_000, description="Cap on fit rows; whole customers sampled by seeded hash.")
    seed: int = Field(7, description="Seed for LightGBM, sampling and calibration splits.")
    as_of: str = Field("", description="Train as of this date (YYYY-MM-DD): only snapshots whose label window had "
                                       "ended by then count as labelled. Empty: every matured label. For "
                                       "backtests and the drift scenario, which replay history week by week.")
    fit_from: str = Field("", description="Fit only on snapshots on or after this date (YYYY-MM-DD): the retraining "
                                          "sensor sets it on a post-change refit, so the old regime does not teach "
                                          "the old relation. Calibration and validation are unaffected. Empty: no "
                                          "limit.")


def _labelled(config: SplitConfig, labels: pl.LazyFrame, horizon_days: int) -> dict[date, int]:
    counts = labelled_snapshot_counts(labels)
    if not config.as_of:
        return counts
    cutoff = date.fromisoformat(config.as_of) - timedelta(days=horizon_days)
    return {snapshot: n for snapshot, n in counts.items() if snapshot <= cutoff}


def _split(config: SplitConfig, counts: dict[date, int], horizon_days: int) -> SnapshotSplit:
    return adaptive_split(sorted(counts), horizon_days, config.train_snapshots, config.validation_snapshots,
                          config.early_stopping_snapshots, config.calibration_snapshots,
                          date.fromisoformat(config.fit_from) if config.fit_from else None)


class TuningConfig(SplitConfig):
    n_trials: int = Field(8, description="Optuna trials (the first is the untuned defaults).")
    timeout_seconds: float = Field(45.0, description="Wall-clock cap on the whole search.")
    n_folds: int = Field(3, description="Rolling-origin folds, each validated on fold_snapshots snapshots.")
    fold_snapshots: int = Field(2, description="Validation snapshots per fold.")
    fold_train_snapshots: int = Field(12, description="Training snapshots per fold (sliding window).")
    max_fold_train_rows: int = Field(60_000, description="Fit rows per fold; whole customers by seeded hash.")
    max_rounds: int = Field(600, description="Upper bound on boosting rounds per fold (early stopping decides).")


@asset(
    key=TUNING_KEY, deps=[FEATURES_KEY, LABELS_KEY], group_name="modeling", kinds={"optuna", "lightgbm"},
    description="Bayesian (TPE) search of LightGBM parameters and class-imbalance handling, on rolling-origin "
                "folds that end before the calibration and validation snapshots; under a trial and time budget. "
                "Appends its outcome to gold/tuning_results (what models/churn_model trains with) and its trials "
                "to gold/tuning_trials.",
)
def lightgbm_params(context: AssetExecutionContext, config: TuningConfig, assay: AssayResource,
                    lake: LakeResource) -> MaterializeResult:
    labels = lake.scan("gold", "churn_labels")
    counts = _labelled(config, labels, assay.label_horizon_days)
    split = _split(config, counts, assay.label_horizon_days)
    budget = TuningBudget(n_trials=config.n_trials, timeout_seconds=config.timeout_seconds, seed=config.seed,
                          n_folds=config.n_folds, fold_snapshots=config.fold_snapshots,
                          train_snapshots=config.fold_train_snapshots, max_fold_train_rows=config.max_fold_train_rows,
                          max_rounds=config.max_rounds)
    held_out = (split.calibration or split.validation)[0]
    fitted = fit_budget_to_history(sorted(counts), assay.label_horizon_days, budget, before=held_out)
    if fitted is None:
        return _untuned(context, assay, lake, budget, held_out)
    if fitted != budget:
        context.log.warning(f"labelled history before {held_out} is short: tuning with {fitted.n_folds} fold(s) of "
                            f"{fitted.train_snapshots} training snapshots instead of {budget.n_folds} of "
                            f"{budget.train_snapshots}")
    budget = fitted
    folds = rolling_origin_folds(sorted(counts), assay.label_horizon_days, budget, before=held_out)
    dates = sorted({d for f in folds for d in (*f.train, *f.early_stopping, *f.validation)})
    fold_split = SnapshotSplit(train=dates, early_stopping=[], validation=[])
    data = training_frame(lake.scan("gold", "customer_features"), labels, fold_split,
                          sum(counts[d] for d in dates), config.max_fold_train_rows * config.n_folds, config.seed)
    result = tune_lightgbm(data, folds, default_params(config.seed, assay.lgbm_threads), budget)
    tuned_at = datetime.now(UTC)
    recorded = lake.append(*TUNING_RESULTS, tuning_record(tuned_at, context.run_id, result.best_params, result, folds))
    trials = result.trials.with_columns(pl.lit(tuned_at.isoformat()).alias("tuned_at"))
    written = lake.append("gold", "tuning_trials", trials)
    return MaterializeResult(metadata={
        "best_mean_auc": result.best_score, "default_mean_auc": result.default_score,
        "imbalance_handling": result.imbalance, "trials_completed": result.n_trials_completed,
        "trials_pruned": result.n_trials_pruned, "elapsed_seconds": round(result.elapsed_seconds, 1),
        "stopped_by": result.stopped_by, "best_params": MetadataValue.json(result.best_params),
        "trials": MetadataValue.md(markdown_table(result.trials.select("number", "state", "value", "duration_s")
                                                  .to_dicts())),
        "delta_version": written.version, "tuning_results_version": recorded.version,
    })


def _untuned(context: AssetExecutionContext, assay: AssayResource, lake: LakeResource, budget,
             held_out) -> MaterializeResult:
    """Not enough labelled history before the calibration fold for even one rolling-origin fold: the challenger
    trains with the defaults, and says so."""
    reason = (f"not one rolling-origin fold of {budget.fold_snapshots} validation + 4 training snapshots fits the "
              f"labelled history before {held_out}; ingest more history to tune")
    context.log.warning(f"tuning skipped: {reason}")
    best_params = default_params(budget.seed, assay.lgbm_threads)
    recorded = lake.append(*TUNING_RESULTS, tuning_record(datetime.now(UTC), context.run_id, best_params,
                                                          skipped=reason))
    return MaterializeResult(metadata={"skipped": reason, "best_params": MetadataValue.json(best_params),
                                       "tuning_results_version": recorded.version})


def _tuned_params(lake: LakeResource, assay: AssayResource, seed: int) -> tuple[dict, dict]:
    """The newest search's parameters (the defaults before any search) and its summary."""
    tuning = newest_tuning(lake.scan(*TUNING_RESULTS).collect()) if lake.exists(*TUNING_RESULTS) else {}
    if not tuning:
        return default_params(seed, assay.lgbm_threads), {}
    # The thread count is this machine's, not the tuning run's.
    return {**tuning["best_params"], "num_threads": assay.lgbm_threads}, tuning


class ChallengerConfig(SplitConfig):
    max_rounds: int = Field(600, description="Upper bound on boosting rounds.")
    early_stopping_rounds: int = Field(50, description="Stop after this many rounds without improvement.")
    top_fraction: float = Field(0.1, description="Operating point: share of riskiest customers contacted.")
    max_equal_opportunity_difference: float = Field(0.1, description="Fairness limit on the TPR gap.")
    min_selection_rate_ratio: float = Field(0.8, description="Fairness limit on selection-rate ratio (4/5 rule).")
    min_group_rows: int = Field(100, description="Groups smaller than this are reported but not compared.")
    max_ece: float = Field(MAX_ECE, description="Candidates (LightGBM and the baselines) whose validation ECE exceeds "
                                                "this are not chosen, since the gate would refuse them; when none "
                                                "is within it, the best AUC is chosen and the gate says why.")
    ablation_rows: int = Field(60_000, description="Fit rows for each feature-group ablation refit.")
    ablation_validation_rows: int = Field(200_000, description="Validation rows each ablation refit is scored on "
                                                               "(a seeded sample when the fold is larger).")


def _ground_truth(path: Path, home: Path) -> pl.LazyFrame | None:
    """The generator's true churn probabilities (synthetic runs only), re-keyed by token like the features."""
    return with_tokens(pl.scan_parquet(path), "customer_id", pseudonym_key(home)) if path.exists() else None


def _sensitive_attributes(lake: LakeResource) -> pl.DataFrame | None:
    """Contract columns tagged sensitive, per customer: used to evaluate fairness, never as model inputs."""
    columns = tagged_columns("sensitive").get("customers", [])
    if not columns or not lake.exists("bronze", "customers"):
        return None
    return (lake.scan("bronze", "customers").select("customer_id", *columns)
            .unique(subset="customer_id", keep="last").collect())


def _drift_reference(reference: pl.DataFrame, lake: LakeResource, legal_basis: str) -> tuple[pl.DataFrame, int]:
    """The rows kept as the version's drift reference: on the consent basis, only customers who may be profiled
    (as scoring serves them: consent at the snapshot and now). Returns them and how many were left out."""
    if legal_basis != "consent" or "consent_profiling" not in reference.columns:
        return reference, 0
    split = split_by_consent(reference, current_consents(lake), "profiling", at_snapshot_column="consent_profiling")
    return split.allowed, split.excluded_total


@asset(
    key=CHALLENGER_KEY, deps=[FEATURES_KEY, LABELS_KEY, TUNING_KEY], group_name="modeling", kinds={"lightgbm"},
    description="A challenger churn model: LightGBM with the parameters of the newest search (gold/tuning_results, "
                "from models/lightgbm_params), BG/NBD feature if it helps, and the baselines (logistic regression, "
                "RFM rule, BG/NBD), each calibrated out of time; the one with the best validation AUC is "
                "registered, with fairness and an evaluation pack.",
)
def churn_model(context: AssetExecutionContext, config: ChallengerConfig, assay: AssayResource, lake: LakeResource,
                registry: ModelRegistryResource) -> MaterializeResult:
    labels = lake.scan("gold", "churn_labels")
    counts = _labelled(config, labels, assay.label_horizon_days)
    split = _split(config, counts, assay.label_horizon_days)
    params, tuning = _tuned_params(lake, assay, config.seed)
    data = training_frame(lake.scan("gold", "customer_features"), labels, split,
                          sum(counts[d] for d in split.train), config.max_train_rows, config.seed,
                          early_stopping_seed=early_stopping_seed(params))
    training_inputs = {"gold/customer_features": lake.version("gold", "customer_features"),
                       "gold/churn_labels": lake.version("gold", "churn_labels"),
                       "bronze/customers": lake.version("bronze", "customers"),
                       "gold/tuning_results": lake.version(*TUNING_RESULTS)}
    version_hash = fingerprint({"params": params, "inputs": training_inputs, "split": split.to_json()})
    version = f"{datetime.now(UTC):%Y%m%dT%H%M%S}-{version_hash}"
    reports = assay.reports_path / "models" / version
    truth_path = assay.ground_truth_path / "churn_probability.parquet"
    settings = ChallengerSettings(
        max_rounds=config.max_rounds, early_stopping_rounds=config.early_stopping_rounds,
        top_fraction=config.top_fraction, ablation_rows=config.ablation_rows,
        ablation_validation_rows=config.ablation_validation_rows, seed=config.seed, max_ece=config.max_ece,
        fairness_limits=FairnessLimits(config.max_equal_opportunity_difference, config.min_selection_rate_ratio,
                                       config.min_group_rows),
    )
    # the baselines' and calibrators' linear algebra runs beside LightGBM's threads
    with one_blas_thread():
        challenger = build_challenger(data, split, params, assay.label_horizon_days, reports, settings,
                                      sensitive=_sensitive_attributes(lake),
                                      truth=_ground_truth(truth_path, assay.home_path))
    # a skipped search (too little labelled history) records why instead of scores
    challenger.evaluation["tuning"] = {k: tuning[k] for k in ("best_score", "default_score", "n_trials_completed",
                                                              "stopped_by", "imbalance", "skipped") if k in tuning}
    card = {
        "params": challenger.params, "split": split.to_json(), "label_horizon_days": assay.label_horizon_days,
        "training_inputs": training_inputs, "validation_metrics": challenger.metrics,
        "trainer_code_version": trainer_code_version(), "dbt_manifest_hash": dbt_manifest_hash(MANIFEST_PATH),
        "excluded_sensitive": sorted({c for cols in tagged_columns("sensitive").values() for c in cols}),
        "fairness_violations": challenger.fairness_violations, "created_at": datetime.now(UTC).isoformat(),
        "dropped_features": challenger.evaluation["dropped_features"],
    }
    reference, reference_excluded = _drift_reference(challenger.reference, lake, assay.profiling_legal_basis)
    path = registry.register(version, challenger.pipeline, card, challenger.evaluation, reference)
    ev, m = challenger.evaluation, challenger.metrics
    comparison = sorted(({"model": name, **{k: figures[k] for k in ("auc", "pr_auc", "log_loss", "brier", "ece",
                                                                    "lift_at_10")}}
                         for name, figures in ev["metrics"].items()), key=lambda r: -r["auc"])
    choice = ev["model_choice"]
    return MaterializeResult(metadata={
        "model_version": version,
        # the served kind: LightGBM or the baseline that beat it on the validation snapshots
        "model_kind": challenger.pipeline.kind,
        "drift_reference_rows": reference.height,
        "drift_reference_excluded_without_profiling_consent": reference_excluded,
        "model_choice": MetadataValue.md(markdown_table(choice["candidates"])),
        **{f"oot_{k}": float(v) for k, v in m.items()},
        "calibration": f"{ev['calibration']['method']}: ECE {ev['calibration']['ece_before']:.4f} → "
                       f"{ev['calibration']['ece_after']:.4f}",
        "bgnbd_feature_kept": ev["bgnbd_feature"]["kept"],
        "baselines": MetadataValue.md(markdown_table(comparison)),
        "ablation": MetadataValue.md(markdown_table([{k: v for k, v in r.items() if k != "features"}
                                                     for r in ev["ablation"]])),
        "fairness_violations": MetadataValue.json(challenger.fairness_violations),
        "split": MetadataValue.json(split.to_json()),
        "training_inputs": MetadataValue.json(training_inputs),
        "params": MetadataValue.json(challenger.params),
        "features": MetadataValue.json(challenger.pipeline.features),
        # left out of every model: no value, or a single one, in the fit window (e.g. a source the data lacks)
        "dropped_features": MetadataValue.json(challenger.evaluation["dropped_features"]),
        "plots": MetadataValue.md(markdown_figures({"ROC curve": reports / ev["plots"]["roc"],
                                                     "Reliability": reports / ev["plots"]["reliability"],
                                                     "Cumulative gains": reports / ev["plots"]["gains"]})),
        "plots_folder": MetadataValue.path(str((reports / ev["plots"]["roc"]).parent)),
        "artifacts": MetadataValue.path(str(path)),
    })


class GateConfig(Config):
    metric: str = Field("auc", description="Validation metric the challenger must improve.")
    min_improvement: float = Field(0.002, description="Required improvement over the champion on `metric`.")
    max_ece_increase: float = Field(0.005, description="Largest tolerated worsening of ECE against the champion.")
    max_ece: float = Field(MAX_ECE, description="ECE limit for any champion.")
    max_metric_loss: float = Field(0.005, description="When the champion breaks `max_ece` on the challenger's "
                                                      "validation rows, a challenger within it replaces the "
                                                      "champion unless it loses more than this on `metric`.")
    ece_noise_ses: float = Field(2.0, description="An ECE worsening counts beyond `max_ece_increase` plus this many "
                                                  "bootstrap standard errors of the paired difference.")
    broken_field_null_share: float = Field(0.2, description="A rise of a bronze field's null share at or above "
                                                            "this (monitoring/source_drift) marks its week broken; "
                                                            "a challenger whose data reaches it is refused.")
    feature_lookback_days: int = Field(365, description="Longest feature window: how long a broken week stays in "
                                                        "the features of later snapshots.")


def gate_challenger(registry: ModelRegistryResource, lake: LakeResource, policy: GatePolicy, version: str,
                    actor: str, broken_null_share: float = 0.2, lookback_days: int = 365, threads: int = 1):
    """Score champion and challenger on the challenger's validation rows and apply the gate; log the decision.
    With two or more LightGBM `threads` the two models score side by side."""
    from assets.modeling.calibration import ece_difference_se
    from assets.modeling.evaluation import evaluation_metrics

    challenger = load_model(registry, version)
    champion_version = registry.champion_version()
    validation_dates = [date.fromisoformat(d) for d in challenger.card["split"]["validation"]]
    in_validation = pl.col("snapshot_date").is_in(validation_dates)
    rows = (lake.scan("gold", "customer_features").filter(in_validation)
            .join(lake.scan("gold", "churn_labels").filter(in_validation).select("customer_id", "snapshot_date",
                                                                                   "churned"),
                  on=["customer_id", "snapshot_date"]).sort(["snapshot_date", "customer_id"]).collect())
    y = rows.get_column("churned").to_numpy()
    models = [challenger]
    if champion_version is not None and champion_version != version:
        models.append(load_model(registry, champion_version))
    parallel = Parallelism.of(threads)
    scores = concurrently([lambda model=model: model.pipeline.predict(rows, parallel.predict_threads)
                           for model in models], parallel.workers)
    challenger_p = scores[0]
    challenger_metrics = evaluation_metrics(y, challenger_p)
    champion_metrics, ece_se = None, 0.0
    if len(scores) > 1:
        champion_p = scores[1]
        champion_metrics = evaluation_metrics(y, champion_p)
        ece_se = ece_difference_se(y, challenger_p, champion_p)
    split_dates = [date.fromisoformat(d) for name in ("train", "early_stopping", "calibration", "validation")
                   for d in challenger.card["split"].get(name, [])]
    source = SOURCE_DRIFT_KEY.path
    broken = (broken_fields(lake.scan(*source), broken_null_share, min(split_dates), max(split_dates), lookback_days)
              if lake.exists(*source) else [])
    decision = decide(policy, version, challenger_metrics, challenger.card.get("fairness_violations", []),
                      champion_version if champion_metrics else None, champion_metrics, broken_inputs=broken,
                      ece_difference_se=ece_se)
    details = {**decision.to_dict(), "policy": policy.__dict__}
    if decision.promote:
        registry.promote(version, actor, details)
    else:
        registry.reject(version, actor, details)
    return decision, challenger_metrics, champion_metrics


@asset(
    # the gate scores both models on the challenger's validation rows and checks the raw sources' quality
    key=CHAMPION_KEY, deps=[CHALLENGER_KEY, FEATURES_KEY, LABELS_KEY, SOURCE_DRIFT_KEY], group_name="modeling",
    kinds={"lightgbm", "delta"},
    description="Champion–challenger gate: promotes the newest challenger only if it beats the champion out of "
                "time by the configured margin without worse calibration or fairness; logs the decision.",
)
def champion(context: AssetExecutionContext, config: GateConfig, assay: AssayResource, lake: LakeResource,
             registry: ModelRegistryResource) -> MaterializeResult:
    rows = registry.rows()
    challengers = rows.filter(pl.col("status") == "challenger") if rows.height else rows
    if challengers.height == 0:
        raise LookupError("no challenger waiting: materialize models/churn_model first")
    version = challengers.sort("created_at").item(-1, "version")
    policy = GatePolicy(config.metric, config.min_improvement, config.max_ece_increase, config.max_ece,
                        config.max_metric_loss, config.ece_noise_ses)
    # the gate scores both models on LightGBM's threads and bootstraps their ECE
    with one_blas_thread():
        decision, challenger_metrics, champion_metrics = gate_challenger(
            registry, lake, policy, version, f"gate:run:{context.run_id}", config.broken_field_null_share,
            config.feature_lookback_days, assay.lgbm_threads)
    context.log.info(f"gate: {'promoted' if decision.promote else 'rejected'} {version}: {decision.reasons}")
    return MaterializeResult(metadata={
        "decision": "promoted" if decision.promote else "rejected",
        "challenger_version": version,
        "champion_version": registry.champion_version() or "",
        "previous_champion": decision.champion_version or "",
        "reasons": MetadataValue.json(decision.reasons),
        "figures": MetadataValue.json(decision.figures),
        f"challenger_{policy.metric}": challenger_metrics[policy.metric],
        "challenger_ece": challenger_metrics["ece"],
    })


@asset(
    key=AssetKey(["reports", "model_card"]), deps=[CHAMPION_KEY], group_name="modeling", kinds={"markdown", "html"},
    description="Model card (Markdown and HTML) of the newest model version, from the registry and its evaluation.",
)
def model_card(context: AssetExecutionContext, assay: AssayResource, registry: ModelRegistryResource):
    rows = registry.rows()
    newest = rows.sort("created_at").item(-1, "version")
    loaded = registry.load(newest)
    decisions = registry.decisions()
    gate = {}
    if decisions.height:
        mine = decisions.filter(pl.col("version") == newest)
        if mine.height:
            details = json.loads(mine.item(-1, "details"))
            gate = {"decision": mine.item(-1, "action"), "reasons": details.get("reasons", []),
                    "champion_version": details.get("champion_version")}
    lineage = [{"version": r["version"], "created_at": str(r["created_at"]), "status": r["status"],
                "promoted_by": r["promoted_by"], "auc": json.loads(r["metrics"]).get("auc"),
                "ece": json.loads(r["metrics"]).get("ece")} for r in rows.iter_rows(named=True)]
    status = rows.filter(pl.col("version") == newest).item(0, "status")
    evaluation = {**loaded.evaluation, "gate": gate}
    card = {**loaded.card, "status": status, "profiling_legal_basis": assay.profiling_legal_basis}
    markdown, html = render_model_card(card, evaluation, lineage)
    folder = assay.reports_path / "models" / newest
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "model_card.md").write_text(markdown)
    (folder / "model_card.html").write_text(html)
    # the UI's copy carries its figures: the browser showing it cannot read the files beside the card
    inlined, _ = render_model_card(card, evaluation, lineage, figure_src=lambda name: (
        png_data_uri(folder / name) if (folder / name).is_file() else name))
    return MaterializeResult(metadata={"model_version": newest, "status": status,
                                       "markdown": MetadataValue.path(str(folder / "model_card.md")),
                                       "html": MetadataValue.path(str(folder / "model_card.html")),
                                       "card": MetadataValue.md(inlined)})
