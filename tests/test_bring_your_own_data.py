"""Bring your own data: only customers and orders land; the graph runs through modelling, with the BG/NBD
baseline in the comparison (it needs nothing but the order history)."""

from __future__ import annotations

import json
import shutil

import polars as pl
import pytest
from dagster import AssetKey, AssetSelection, DagsterInstance, materialize

from domain.settings import AssaySettings
from domain.synthetic import config_for_size, generate
from orchestration.definitions import build_definitions
from orchestration.partitions import daily_partitions, snapshot_partitions

pytestmark = pytest.mark.slow


def _range(keys: list[str]) -> dict[str, str]:
    return {"dagster/asset_partition_range_start": keys[0], "dagster/asset_partition_range_end": keys[-1]}


def test_customers_and_orders_alone_train_and_gate_a_model(tmp_path):
    synthetic = AssaySettings.from_env({"ASSAY_HOME": str(tmp_path / "synthetic")})
    generate(config_for_size("small"), synthetic.landing, synthetic.ground_truth)
    own_files = tmp_path / "exports"
    for source in ("customers", "orders"):
        shutil.copytree(synthetic.landing / source, own_files / source)
    settings = AssaySettings.from_env({"ASSAY_HOME": str(tmp_path / "home"), "ASSAY_SOURCE": "files",
                                       "ASSAY_LANDING_DIR": str(own_files)})
    defs = build_definitions(settings)
    assets, resources = list(defs.assets), defs.resources
    relaxed = {"ops": {"models__churn_model": {"config": {"max_equal_opportunity_difference": 0.5,
                                                          "min_selection_rate_ratio": 0.2}}}}
    plan = [
        (AssetSelection.groups("ingestion"), _range(daily_partitions.get_partition_keys()), None),
        (AssetSelection.groups("features"), _range(snapshot_partitions.get_partition_keys()), None),
        (AssetSelection.assets(AssetKey(["models", "churn_model"]), AssetKey(["models", "champion"])), {}, relaxed),
    ]
    with DagsterInstance.ephemeral() as instance:
        for selection, tags, run_config in plan:
            result = materialize(assets, selection=selection, resources=resources, instance=instance, tags=tags,
                                 run_config=run_config)
            assert result.success
    assert pl.read_delta(str(settings.lake / "bronze" / "events")).height == 0  # skipped cleanly, contract schema
    meta = result.asset_materializations_for_node("models__churn_model")[0].metadata
    evaluation = json.loads((settings.models_dir / meta["model_version"].value / "evaluation.json").read_text())
    assert {"lightgbm_calibrated", "logistic_regression", "rfm_heuristic", "bgnbd"} <= set(evaluation["metrics"])
    assert evaluation["metrics"]["bgnbd"]["auc"] > 0.6
    assert "oot_oracle_auc" not in meta  # no ground truth beside user files
    gate = result.asset_materializations_for_node("models__champion")[0].metadata
    assert gate["decision"].value == "promoted"
