"""Bring your own data: only customers and orders land; the graph runs through modelling, with the BG/NBD
baseline in the comparison (it needs nothing but the order history), and the gate's default fairness limits judge
gaps between groups by their intervals: a chance gap does not block the model, a planted dependence does."""

from __future__ import annotations

import json
import shutil
from datetime import date
from pathlib import Path

import polars as pl
import pytest
from dagster import AssetKey, DagsterInstance

from assets.partitions import AssayPartitions
from domain.settings import AssaySettings
from domain.synthetic import SyntheticConfig, config_for_size, generate
from orchestration.backfill import backfill_steps, data_end, run_backfill
from orchestration.definitions import build_definitions

pytestmark = pytest.mark.slow
GENDER_SHIFT = 3.0  # log-odds on the weekly churn hazard of women, in the planted world
# 18 months of history: 40 snapshots whose 90-day labels have matured, the folds shrunk to fit (docs/modelling.md)
WORLD_END = date(2025, 7, 1)


def own_files_through_the_gate(tmp_path: Path, world: SyntheticConfig) -> tuple[AssaySettings, dict, dict]:
    """Land a synthetic world's customers and orders as a shop's own files, and run them to the gate with the
    default settings; returns the settings and the metadata of the model and of the gate."""
    synthetic = AssaySettings.from_env({"ASSAY_HOME": str(tmp_path / "synthetic")})
    generate(world, synthetic.landing, synthetic.ground_truth)
    own_files = tmp_path / "exports"
    for source in ("customers", "orders"):
        shutil.copytree(synthetic.landing / source, own_files / source)
    settings = AssaySettings.from_env({"ASSAY_HOME": str(tmp_path / "home"), "ASSAY_SOURCE": "files",
                                       "ASSAY_LANDING_DIR": str(own_files), "ASSAY_END_DATE": world.end.isoformat()})
    # a fixed secret key: the tokens, and the customers hashed out of the fit for early stopping, are the same each run
    (settings.home / "secrets").mkdir(parents=True)
    (settings.home / "secrets" / "pseudonym.key").write_bytes(b"bring-your-own-data test key, not a secret")
    defs = build_definitions(settings)
    end = data_end(settings.landing, settings.end_date)
    steps = backfill_steps(AssayPartitions.from_settings(settings), end,
                           snapshots_per_run=settings.feature_snapshots_per_run)
    with DagsterInstance.ephemeral() as instance:
        run_backfill(defs, instance, steps, ["ingestion", "features", "labels", "model"], say=lambda _: None)

        def metadata(*key: str) -> dict:
            event = instance.get_latest_materialization_event(AssetKey(list(key)))
            assert event is not None, key
            return event.asset_materialization.metadata

        return settings, metadata("models", "churn_model"), metadata("models", "champion")


def test_customers_and_orders_alone_train_and_gate_a_model(tmp_path):
    # the synthetic churn does not depend on gender or age, so any gap between the groups is chance, and judged by
    # its interval it must not block the model
    settings, meta, gate = own_files_through_the_gate(tmp_path, config_for_size("small", end=WORLD_END))
    assert pl.read_delta(str(settings.lake / "bronze" / "events")).height == 0  # skipped cleanly, contract schema
    evaluation = json.loads((settings.models_dir / meta["model_version"].value / "evaluation.json").read_text())
    assert {"lightgbm_calibrated", "logistic_regression", "rfm_heuristic", "bgnbd"} <= set(evaluation["metrics"])
    assert evaluation["metrics"]["bgnbd"]["auc"] > 0.6
    assert "oot_oracle_auc" not in meta  # no ground truth beside user files
    assert gate["decision"].value == "promoted", gate["reasons"].value
    fairness = evaluation["fairness"]["summary"]
    assert {"gender", "age_band"} <= set(fairness)
    assert all(s["equal_opportunity_difference_ci"] is not None for s in fairness.values())


def test_a_churn_that_depends_on_gender_blocks_the_model(tmp_path):
    # women's weekly hazard carries GENDER_SHIFT more log-odds: no model sees gender, but the served one ranks by
    # the behaviour that follows, so it selects women far more often, and the interval says it is not chance
    world = config_for_size("small", end=WORLD_END, gender_hazard_shift=GENDER_SHIFT)
    settings, meta, gate = own_files_through_the_gate(tmp_path, world)
    assert gate["decision"].value == "rejected"
    reasons = gate["reasons"].value
    assert any(r.startswith("fairness limit violated: gender:") for r in reasons), reasons
    evaluation = json.loads((settings.models_dir / meta["model_version"].value / "evaluation.json").read_text())
    gender = evaluation["fairness"]["summary"]["gender"]
    assert gender["selection_max_group"] == "f" and gender["selection_rate_ratio_ci"][1] < 0.8
