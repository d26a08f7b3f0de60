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
            ("tuning", AssetSelection.assets(AssetKey(["models", "lightgbm_params"])), {}),
            ("model", AssetSelection.assets(AssetKey(["models", "churn_model"]), AssetKey(["models", "champion"]),
                                            AssetKey(["reports", "model_card"])), {}),
            ("scores", AssetSelection.assets(AssetKey(["gold", "customer_scores"])), _range(snapshots)),
            ("drift", AssetSelection.assets(AssetKey(["monitoring", "drift_summary"])), _range(snapshots[-2:])),
            ("simulation", AssetSelection.assets(AssetKey(["gold", "threshold_simulation"])), {}),
            ("warehouse", AssetSelection.assets(AssetKey(["warehouse", "analyst_views"])), {}),
        ]
        # A small tuning budget keeps the suite fast; the search itself is tested in tests/modeling/test_tuning.py.
        # At this size an age band holds ~1k validation rows, too few for the default fairness limits to separate
        # chance from bias (the generator's churn does not depend on age); the limits are tested in test_gate.py.
        run_config = {
            "tuning": {"ops": {"models__lightgbm_params": {"config": {"n_trials": 3, "timeout_seconds": 20}}}},
            "model": {"ops": {"models__churn_model": {"config": {"max_equal_opportunity_difference": 0.5,
                                                                 "min_selection_rate_ratio": 0.2}}}},
        }
        for name, selection, tags in plan:
            result = materialize(assets, selection=selection, resources=resources, instance=instance, tags=tags,
                                 run_config=run_config.get(name))
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
    assert set(meta["training_inputs"].value) == {"gold/customer_features", "gold/churn_labels", "bronze/customers"}
    version = meta["model_version"].value
    card = json.loads((settings.models_dir / version / "model.json").read_text())
    assert "gender" not in card["features"] and "recency_days" in card["features"]
    assert set(card["split"]) == {"train", "early_stopping", "calibration", "validation"}
    evaluation = json.loads((settings.models_dir / version / "evaluation.json").read_text())
    assert {"lightgbm_calibrated", "logistic_regression", "rfm_heuristic", "bgnbd"} <= set(evaluation["metrics"])
    assert {"gender", "age_band"} <= set(evaluation["fairness"]["summary"])
    # The first model that passes the limits becomes champion; its card and plots are written.
    gate = results["model"].asset_materializations_for_node("models__champion")[0].metadata
    assert gate["decision"].value == "promoted" and gate["challenger_version"].value == version
    reports = settings.reports_dir / "models" / version
    assert {"roc.png", "reliability.png", "gains.png", "model_card.md", "model_card.html"} <= {
        p.name for p in reports.iterdir()}


def test_drift_reports_and_analyst_views(pipeline):
    settings, _, results, snapshots = pipeline
    assert sorted(p.stem for p in (settings.reports_dir / "drift").glob("*.html")) == snapshots[-2:]
    con = duckdb.connect(str(settings.warehouse_path), read_only=True)
    for view in ("customer_features", "churn_labels", "customer_scores", "drift_summary", "model_registry",
                 "model_decisions", "tuning_trials", "threshold_simulation"):
        assert con.sql(f"select count(*) from {view}").fetchone()[0] > 0, view
    top = con.sql("select max(p_churn) from customer_scores where decile = 1").fetchone()[0]
    assert 0 < top <= 1
    # The newest snapshot's scores carry reasons; threshold economics read the same snapshot.
    missing = con.sql("select count(*) from customer_scores where snapshot_date = (select max(snapshot_date) "
                      "from customer_scores) and reason_1_feature is null").fetchone()[0]
    assert missing == 0
    con.close()
