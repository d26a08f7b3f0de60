"""A real public transaction log, landed as a shop would export it: CDNOW (the 1-in-10 sample shipped in the
Lifetimes wheel) as daily CSV files under the shop's own column names, with ids that carry leading zeros and
dates without a time; its first 12 months, so the split adapts to a short history. Customers and orders only, no
consents (profiling rests on legitimate interest): the graph runs from the files to scores and drift, and the
model says which features the data could not give."""

from __future__ import annotations

import json

import polars as pl
import pytest
from dagster import AssetKey, DagsterInstance

from assets.partitions import AssayPartitions
from domain.public_data import cdnow_environment, land_cdnow, read_cdnow
from domain.settings import AssaySettings
from orchestration.backfill import backfill_steps, data_end, run_backfill
from orchestration.definitions import build_definitions

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def cdnow(tmp_path_factory):
    root = tmp_path_factory.mktemp("cdnow")
    landed = land_cdnow(root / "exports", "sample")
    # the first 12 months only, snapshots from the first Monday: too short for the default split at a 90-day horizon
    settings = AssaySettings.from_env({"ASSAY_HOME": str(root / "home"), **cdnow_environment(root / "exports"),
                                       "ASSAY_END_DATE": "1998-01-01", "ASSAY_SNAPSHOT_START": "1997-01-06"})
    # a fixed secret key: the tokens, and the customers hashed out of the fit for early stopping, are the same each run
    (settings.home / "secrets").mkdir(parents=True)
    (settings.home / "secrets" / "pseudonym.key").write_bytes(b"CDNOW test key, not a secret")
    defs = build_definitions(settings)
    steps = backfill_steps(AssayPartitions.from_settings(settings), data_end(settings.landing, settings.end_date),
                           score_snapshots=1, drift_snapshots=1, snapshots_per_run=settings.feature_snapshots_per_run)
    with DagsterInstance.ephemeral() as instance:
        run_backfill(defs, instance, steps, ["ingestion", "features", "labels", "tuning", "model", "scores", "drift"],
                     say=lambda _: None)
        metadata = {key: instance.get_latest_materialization_event(AssetKey(key.split("/"))).asset_materialization
                    .metadata for key in ("models/churn_model", "models/champion", "gold/customer_scores",
                                          "monitoring/drift_summary")}
    yield settings, landed, metadata


def test_every_purchase_lands_once_with_its_id_as_written(cdnow):
    settings, landed, _ = cdnow
    purchases = read_cdnow("sample")
    assert landed == {"customers": len({p.customer for p in purchases}), "orders": len(purchases)} == {
        "customers": 2357, "orders": 6919}
    # the home's partitions end on 1998-01-01: the days after it are not read
    in_range = {"customers": landed["customers"],
                "orders": sum(p.day < settings.end_date for p in purchases)}
    assert in_range["orders"] > 5000
    for source, rows in in_range.items():
        bronze = pl.read_delta(str(settings.lake / "bronze" / source)).height
        quarantine = pl.read_delta(str(settings.lake / "quarantine" / source)).height \
            if (settings.lake / "quarantine" / source).exists() else 0
        assert (bronze, quarantine) == (rows, 0)
    vault = pl.read_delta(str(settings.lake / "restricted" / "pii_vault"))
    assert "00004" in set(vault.get_column("source_customer_id").to_list())  # leading zeros kept


def test_a_model_is_trained_on_customers_and_orders_alone_and_says_what_it_left_out(cdnow):
    settings, _, metadata = cdnow
    model = metadata["models/churn_model"]
    version = model["model_version"].value
    evaluation = json.loads((settings.models_dir / version / "evaluation.json").read_text())
    aucs = {name: figures["auc"] for name, figures in evaluation["metrics"].items()}
    assert {"lightgbm_calibrated", "logistic_regression", "rfm_heuristic", "bgnbd"} <= set(aucs)
    # all better than chance; on this little data a simple model leads, and it is the one registered and promoted
    assert min(aucs.values()) > 0.55 and max(aucs["rfm_heuristic"], aucs["bgnbd"]) > 0.7, aucs
    choice = evaluation["model_choice"]
    eligible = [c["model"] for c in choice["candidates"] if c["ece"] <= choice["max_ece"]]
    assert choice["chosen"] != "lightgbm_calibrated" and aucs[choice["chosen"]] == max(aucs[m] for m in eligible)
    assert model["model_kind"].value == choice["chosen"]
    # no country, channel, clickstream, campaigns or consents: left out of every model, and the card says so
    dropped = evaluation["dropped_features"]
    assert dropped["country"] == "no value" and dropped["consent_profiling"] == "no value"
    assert dropped["events_30d"] == "one value"
    assert "country" in model["dropped_features"].value
    assert metadata["models/champion"]["decision"].value == "promoted"  # the first model to pass the gate
    # a year of history and a 90-day horizon: the folds shrank together, and the card says from what to what
    split = json.loads((settings.models_dir / version / "model.json").read_text())["split"]
    assert split["adapted"]["requested"]["validation"] == 4 and len(split["validation"]) < 4
    assert len(split["train"]) >= 2 * len(split["validation"])
    card = (settings.reports_dir / "models" / version / "model_card.md").read_text()
    assert "too short for the requested windows" in card and "Left out of every model" in card
    assert "## Model choice" in card and "the highest AUC is served" in card


def test_the_baseline_that_won_serves_the_scores_with_its_own_reasons(cdnow):
    settings, _, metadata = cdnow
    kind = metadata["models/churn_model"]["model_kind"].value
    scores = pl.read_delta(str(settings.lake / "gold" / "customer_scores"))
    newest = scores.filter(pl.col("snapshot_date") == scores.get_column("snapshot_date").max())
    assert newest.height > 500 and newest.get_column("reason_1_feature").null_count() == 0
    version = metadata["models/champion"]["champion_version"].value
    features = json.loads((settings.models_dir / version / "model.json").read_text())["features"]
    assert set(newest.get_column("reason_1_feature").unique()) <= set(features)
    assert kind != "lightgbm_calibrated" and set(newest.get_column("model_version").unique()) == {version}


def test_customers_are_scored_under_the_named_legal_basis_and_drift_runs(cdnow):
    _, _, metadata = cdnow
    scores = metadata["gold/customer_scores"]
    assert scores["dagster/row_count"].value > 500  # the newest snapshot: the active part of a 1997 cohort
    assert scores["profiling_legal_basis"].value == "legitimate_interest"
    # drift compares the model's own inputs: the features it left out are not judged, so none is empty
    drift = metadata["monitoring/drift_summary"]
    assert drift["snapshots"].value == 1 and drift["latest_empty_columns"].value == {}
