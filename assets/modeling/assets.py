"""The churn model asset: train on labelled snapshots, validate out of time, register the result."""


from datetime import UTC, datetime

import polars as pl
from dagster import AssetExecutionContext, AssetKey, Config, MaterializeResult, MetadataValue, asset
from pydantic import Field

from assets.modeling.training import (
    default_params,
    fingerprint,
    labelled_snapshot_counts,
    oracle_auc,
    split_snapshots,
    train_churn_model,
    training_frame,
)
from domain.metrics import normalised_auc
from resources.assay import AssayResource
from resources.lake import LakeResource
from resources.registry import ModelRegistryResource

REFERENCE_ROWS = 20_000


class TrainingConfig(Config):
    train_snapshots: int = Field(26, description="Labelled snapshots to fit on (newest eligible ones).")
    early_stopping_snapshots: int = Field(4, description="Newest training snapshots held out for early stopping.")
    validation_snapshots: int = Field(4, description="Newest labelled snapshots: the out-of-time validation.")
    max_rounds: int = Field(1000, description="Upper bound on boosting rounds.")
    early_stopping_rounds: int = Field(50, description="Stop after this many rounds without improvement.")
    max_train_rows: int = Field(3_000_000, description="Cap on fit rows; whole customers sampled by seeded hash.")
    seed: int = Field(7, description="Seed for LightGBM and sampling.")


@asset(
    key=AssetKey(["models", "churn_model"]),
    deps=[AssetKey(["gold", "customer_features"]), AssetKey(["gold", "churn_labels"])],
    group_name="modeling",
    kinds={"lightgbm"},
    description="LightGBM churn classifier; out-of-time validated and registered as champion.",
)
def churn_model(
    context: AssetExecutionContext, config: TrainingConfig, assay: AssayResource, lake: LakeResource,
    registry: ModelRegistryResource,
) -> MaterializeResult:
    labels = lake.scan("gold", "churn_labels")
    counts = labelled_snapshot_counts(labels)
    split = split_snapshots(sorted(counts), assay.label_horizon_days, config.train_snapshots,
                            config.validation_snapshots, config.early_stopping_snapshots)
    train_rows = sum(counts[d] for d in split.train)
    data = training_frame(lake.scan("gold", "customer_features"), labels, split, train_rows,
                          config.max_train_rows, config.seed)
    params = default_params(config.seed, assay.lgbm_threads)
    model = train_churn_model(data, split, params, config.max_rounds, config.early_stopping_rounds)
    metrics = dict(model.validation_metrics)

    truth_path = assay.ground_truth_path / "churn_probability.parquet"
    if truth_path.exists():
        validation = data.filter(pl.col("snapshot_date").is_in(split.validation))
        oracle = oracle_auc(validation, pl.scan_parquet(truth_path))
        if oracle is not None:
            metrics["oracle_auc"] = oracle
            metrics["normalised_auc"] = normalised_auc(metrics["auc"], oracle)

    training_inputs = {
        "gold/customer_features": lake.version("gold", "customer_features"),
        "gold/churn_labels": lake.version("gold", "churn_labels"),
    }
    split_json = {k: [d.isoformat() for d in getattr(split, k)] for k in ("train", "early_stopping", "validation")}
    version_hash = fingerprint({"params": params, "features": model.features, "inputs": training_inputs,
                                "split": split_json})
    version = f"{datetime.now(UTC):%Y%m%dT%H%M%S}-{version_hash}"
    card = {
        "version": version,
        "features": model.features,
        "categories": model.categories,
        "params": params,
        "best_iteration": model.best_iteration,
        "split": split_json,
        "label_horizon_days": assay.label_horizon_days,
        "training_inputs": training_inputs,
        "validation_metrics": metrics,
    }
    reference = data.filter(pl.col("snapshot_date").is_in(split.train))
    reference = reference.sample(n=min(REFERENCE_ROWS, reference.height), seed=config.seed).select(model.features)
    path = registry.register(version, model.booster, card, reference, promoted_by=f"run:{context.run_id}")

    importance = dict(zip(model.features, model.booster.feature_importance("gain").round(1).tolist(), strict=True))
    top = dict(sorted(importance.items(), key=lambda kv: -kv[1])[:10])
    return MaterializeResult(
        metadata={
            "model_version": version,
            **{f"oot_{k}": float(v) for k, v in metrics.items()},
            "best_iteration": model.best_iteration,
            "train_snapshots": f"{split_json['train'][0]} .. {split_json['train'][-1]} ({len(split.train)})",
            "validation_snapshots": f"{split_json['validation'][0]} .. {split_json['validation'][-1]}",
            "training_inputs": MetadataValue.json(training_inputs),
            "params": MetadataValue.json(params),
            "features": MetadataValue.json(model.features),
            "top_importance_gain": MetadataValue.json(top),
            "artifacts": MetadataValue.path(str(path)),
        }
    )
