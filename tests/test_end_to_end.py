"""The whole graph, materialized in-process on a small synthetic dataset into a temporary ASSAY_HOME."""

from __future__ import annotations

import json

import duckdb
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


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory):
    home = tmp_path_factory.mktemp("assay_home")
    settings = AssaySettings.from_env({"ASSAY_HOME": str(home)})
    summary = generate(config_for_size("small"), settings.landing, settings.ground_truth)
    defs = build_definitions(settings)
    assets, resources = list(defs.assets), defs.resources
    days, snapshots = daily_partitions.get_partition_keys(), snapshot_partitions.get_partition_keys()
    results = {}
    with DagsterInstance.ephemeral() as instance:
        plan = [
            ("ingestion", AssetSelection.groups("ingestion"), _range(days)),
            ("features", AssetSelection.groups("features"), _range(snapshots)),
            ("model", AssetSelection.assets(AssetKey(["models", "churn_model"])), {}),
            ("scores", AssetSelection.assets(AssetKey(["gold", "customer_scores"])), _range(snapshots)),
            ("drift", AssetSelection.assets(AssetKey(["monitoring", "drift_summary"])), _range(snapshots[-2:])),
            ("warehouse", AssetSelection.assets(AssetKey(["warehouse", "analyst_views"])), {}),
        ]
        for name, selection, tags in plan:
            result = materialize(assets, selection=selection, resources=resources, instance=instance, tags=tags)
            assert result.success, name
            results[name] = result
    return settings, summary, results, snapshots


def test_every_landing_row_is_in_bronze_or_quarantine(pipeline):
    settings, summary, _, _ = pipeline
    for source, rows in summary.rows.items():
        bronze = pl.read_delta(str(settings.lake / "bronze" / source)).height
        quarantine = pl.read_delta(str(settings.lake / "quarantine" / source)).height
        assert bronze + quarantine == rows, source


def test_gold_tables_cover_every_snapshot_and_labels_only_matured_ones(pipeline):
    settings, _, _, snapshots = pipeline
    features = pl.read_delta(str(settings.lake / "gold" / "customer_features"))
    labels = pl.read_delta(str(settings.lake / "gold" / "churn_labels"))
    scores = pl.read_delta(str(settings.lake / "gold" / "customer_scores"))
    assert features.get_column("snapshot_date").n_unique() == len(snapshots)
    assert features.select("customer_id", "snapshot_date").is_duplicated().sum() == 0
    assert scores.height == features.height
    newest_label = labels.get_column("snapshot_date").max()
    assert newest_label is not None and newest_label.isoformat() < snapshots[-1]
    assert 0.1 < labels.get_column("churned").mean() < 0.6


def test_model_is_registered_with_lineage_and_oracle_comparison(pipeline):
    settings, _, results, _ = pipeline
    meta = results["model"].asset_materializations_for_node("models__churn_model")[0].metadata
    assert meta["oot_auc"].value > 0.7
    assert 0.5 < meta["oot_oracle_auc"].value <= 1.0
    assert set(meta["training_inputs"].value) == {"gold/customer_features", "gold/churn_labels"}
    card = json.loads((settings.models_dir / meta["model_version"].value / "model.json").read_text())
    assert "gender" not in card["features"] and "recency_days" in card["features"]


def test_drift_reports_and_analyst_views(pipeline):
    settings, _, results, snapshots = pipeline
    assert sorted(p.stem for p in (settings.reports_dir / "drift").glob("*.html")) == snapshots[-2:]
    con = duckdb.connect(str(settings.warehouse_path), read_only=True)
    for view in ("customer_features", "churn_labels", "customer_scores", "drift_summary", "model_registry"):
        assert con.sql(f"select count(*) from {view}").fetchone()[0] > 0, view
    top = con.sql("select max(p_churn) from customer_scores where decile = 1").fetchone()[0]
    assert 0 < top <= 1
    con.close()
