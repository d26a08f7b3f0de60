"""Scores from a registered model: deciles, versions, and a registry round trip."""

from __future__ import annotations

from datetime import date

import numpy as np
import polars as pl

from assets.modeling.training import default_params, split_snapshots, train_churn_model
from assets.scoring.scoring import score_features
from resources.registry import ModelRegistryResource
from tests.modeling.test_training import MONDAYS, synthetic_problem


def register(registry: ModelRegistryResource, model, data: pl.DataFrame, version: str) -> None:
    card = {"features": model.features, "categories": model.categories, "params": model.params,
            "best_iteration": model.best_iteration, "split": {"train": [], "validation": []},
            "training_inputs": {}, "validation_metrics": model.validation_metrics}
    registry.register(version, model.booster, card, data.head(10).select(model.features))


def test_registered_model_reloads_and_scores_identically(tmp_path, lake):
    data, _ = synthetic_problem(seed=1, customers=300)
    split = split_snapshots(MONDAYS, 90, 8, 4, 3)
    model = train_churn_model(data, split, default_params(7, 1), 100, 10)
    registry = ModelRegistryResource(models_dir=str(tmp_path / "models"), lake=lake)
    register(registry, model, data, "v1")
    register(registry, model, data, "v2")
    assert registry.champion_version() == "v2"
    statuses = dict(lake.scan("gold", "model_registry").select("version", "status").collect().rows())
    assert statuses == {"v1": "archived", "v2": "champion"}

    snapshot = data.filter(pl.col("snapshot_date") == date(2025, 3, 31))
    scores = score_features(snapshot, registry.load("v1"))
    again = score_features(snapshot, registry.load("v1"))
    direct = model.booster.predict(
        snapshot.sort("customer_id").select(model.features).to_pandas().astype({"country": "category"}),
        num_iteration=model.best_iteration)
    assert scores.equals(again)
    assert np.allclose(scores.sort("customer_id").get_column("p_churn").to_numpy(), direct, atol=1e-12)


def test_deciles_split_each_snapshot_into_tenths_highest_risk_first(tmp_path, lake):
    data, _ = synthetic_problem(seed=2, customers=200)
    split = split_snapshots(MONDAYS, 90, 8, 4, 3)
    model = train_churn_model(data, split, default_params(7, 1), 50, 10)
    registry = ModelRegistryResource(models_dir=str(tmp_path / "models"), lake=lake)
    register(registry, model, data, "v1")
    two_snapshots = data.filter(pl.col("snapshot_date").is_in(MONDAYS[-2:]))
    scores = score_features(two_snapshots, registry.load())
    assert scores.height == two_snapshots.height
    assert scores.get_column("model_version").unique().to_list() == ["v1"]
    for _, group in scores.group_by("snapshot_date"):
        assert group.group_by("decile").len().get_column("len").sort().to_list() == [20] * 10
        by_decile = group.group_by("decile").agg(pl.col("p_churn").min(), pl.col("p_churn").max().alias("hi"))
        ordered = by_decile.sort("decile")
        # Decile 1 holds the highest probabilities; each decile's lowest is at least the next one's highest.
        assert all(a >= b for a, b in zip(ordered["p_churn"][:-1], ordered["hi"][1:], strict=True))
