"""Scores from a registered pipeline: bit-for-bit reload, reason codes that add up, deciles."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from assets.modeling.calibration import fit_calibrator
from assets.modeling.pipeline import ChurnPipeline, load_model
from assets.modeling.training import default_params, split_snapshots, train_churn_model
from assets.scoring.scoring import score_features
from resources.registry import ModelRegistryResource
from tests.modeling.test_training import MONDAYS, synthetic_problem


def fitted_pipeline(seed: int = 1, customers: int = 300, rounds: int = 100) -> tuple[ChurnPipeline, pl.DataFrame]:
    data, _ = synthetic_problem(seed=seed, customers=customers)
    split = split_snapshots(MONDAYS, 90, 8, 4, 3)
    model = train_churn_model(data, split, default_params(7, 1), rounds, 10)
    uncalibrated = ChurnPipeline(model.booster, model.features, model.categories, model.best_iteration,
                                 fit_calibrator(np.array([0, 1]), np.array([0.2, 0.8]), "identity"))
    early = data.filter(pl.col("snapshot_date").is_in(split.early_stopping))
    calibrator = fit_calibrator(early.get_column("churned").to_numpy(), uncalibrated.predict_uncalibrated(early),
                                "isotonic")
    pipeline = ChurnPipeline(model.booster, model.features, model.categories, model.best_iteration, calibrator)
    return pipeline, data


def register(registry: ModelRegistryResource, pipeline: ChurnPipeline, data: pl.DataFrame, version: str) -> None:
    card = {"params": {"seed": 7}, "split": {"train": [], "validation": []}, "training_inputs": {},
            "validation_metrics": {"auc": 0.8, "ece": 0.01}}
    registry.register(version, pipeline, card, {}, data.head(10).select(pipeline.features))


@pytest.fixture
def registry(tmp_path, lake) -> ModelRegistryResource:
    return ModelRegistryResource(models_dir=str(tmp_path / "models"), lake=lake)


def test_reloaded_version_reproduces_scores_bit_for_bit(registry):
    pipeline, data = fitted_pipeline()
    register(registry, pipeline, data, "v1")
    snapshot = data.filter(pl.col("snapshot_date") == MONDAYS[-1])
    in_memory = pipeline.predict(snapshot.sort("customer_id"))
    reloaded = load_model(registry, "v1")
    scores = score_features(snapshot, reloaded)
    assert np.array_equal(scores.sort("customer_id").get_column("p_churn").to_numpy(), in_memory)
    assert scores.equals(score_features(snapshot, load_model(registry, "v1")))


def test_reason_codes_sum_with_the_base_value_to_the_raw_score(registry):
    pipeline, data = fitted_pipeline(seed=3)
    register(registry, pipeline, data, "v1")
    snapshot = data.filter(pl.col("snapshot_date") == MONDAYS[-1]).sort("customer_id")
    contributions = pipeline.contributions(snapshot)
    # Every feature's contribution plus the base value (last column) is LightGBM's raw score.
    assert np.allclose(contributions.sum(axis=1), pipeline.raw_score(snapshot), atol=1e-9)
    scores = score_features(snapshot, load_model(registry, "v1")).sort("customer_id")
    assert np.allclose(scores.get_column("raw_score").to_numpy(), pipeline.raw_score(snapshot), atol=1e-9)
    # The three reasons are the largest absolute contributions, with their sign as direction.
    per_feature = contributions[:, :-1]
    top = np.sort(np.abs(per_feature), axis=1)[:, ::-1][:, :3]
    got = np.abs(scores.select(f"reason_{i}_contribution" for i in (1, 2, 3)).to_numpy())
    assert np.allclose(got, top)
    first = scores.get_column("reason_1_contribution").to_numpy()
    assert ((first >= 0) == (scores.get_column("reason_1_direction").to_numpy() == "raises")).all()
    assert set(scores.get_column("reason_1_feature").unique()) <= set(pipeline.features)


def test_scoring_without_reasons_gives_the_same_probabilities(registry):
    pipeline, data = fitted_pipeline(seed=4)
    register(registry, pipeline, data, "v1")
    snapshot = data.filter(pl.col("snapshot_date") == MONDAYS[-1])
    with_reasons = score_features(snapshot, load_model(registry, "v1"), with_reasons=True)
    without = score_features(snapshot, load_model(registry, "v1"), with_reasons=False)
    assert with_reasons.get_column("p_churn").equals(without.get_column("p_churn"))
    assert without.get_column("reason_1_feature").null_count() == without.height


def test_reasons_on_the_riskiest_deciles_are_those_of_a_full_run_and_the_rest_are_scored_without(registry):
    pipeline, data = fitted_pipeline(seed=5)
    register(registry, pipeline, data, "v1")
    snapshot = data.filter(pl.col("snapshot_date") == MONDAYS[-1])
    everyone = score_features(snapshot, load_model(registry, "v1"))
    riskiest = score_features(snapshot, load_model(registry, "v1"), reason_deciles=2)
    reasons = [c for c in everyone.columns if c.startswith("reason_")]
    assert riskiest.drop(reasons).equals(everyone.drop(reasons))  # the same scores, in the same order
    top = pl.col("decile") <= 2
    assert riskiest.filter(top).equals(everyone.filter(top))
    assert riskiest.filter(top).get_column("reason_1_feature").null_count() == 0
    rest = riskiest.filter(~top)
    assert rest.height > 0 and all(rest.get_column(c).null_count() == rest.height for c in reasons)
    assert score_features(snapshot, load_model(registry, "v1"), reason_deciles=0).equals(
        score_features(snapshot, load_model(registry, "v1"), with_reasons=False))
    with pytest.raises(ValueError, match="reason_deciles"):
        score_features(snapshot, load_model(registry, "v1"), reason_deciles=11)


def test_deciles_split_each_snapshot_into_tenths_highest_risk_first(registry):
    pipeline, data = fitted_pipeline(seed=2, customers=200, rounds=50)
    register(registry, pipeline, data, "v1")
    two_snapshots = data.filter(pl.col("snapshot_date").is_in(MONDAYS[-2:]))
    scores = score_features(two_snapshots, load_model(registry, "v1"), with_reasons=False)
    assert scores.height == two_snapshots.height
    assert scores.get_column("model_version").unique().to_list() == ["v1"]
    for _, group in scores.group_by("snapshot_date"):
        assert group.group_by("decile").len().get_column("len").sort().to_list() == [20] * 10
        ordered = group.group_by("decile").agg(pl.col("p_churn").min(), pl.col("p_churn").max().alias("hi")).sort(
            "decile")
        # Decile 1 holds the highest probabilities; each decile's lowest is at least the next one's highest.
        assert all(a >= b for a, b in zip(ordered["p_churn"][:-1], ordered["hi"][1:], strict=True))


def test_without_a_champion_scoring_is_skipped_with_its_reason_and_the_run_finishes(tmp_path, lake, registry):
    """No model has passed the gate: the scoring step succeeds without materializing, says why, and what reads
    the scores in the same run is skipped rather than failed."""
    from dagster import AssetKey, DagsterEventType, DagsterInstance, asset, materialize

    from assets.partitions import AssayPartitions
    from assets.scoring.assets import build_customer_scores
    from domain.settings import AssaySettings
    from resources.assay import AssayResource
    from resources.registry import NO_CHAMPION

    settings = AssaySettings.from_env({"ASSAY_HOME": str(tmp_path)})
    scores = build_customer_scores(AssayPartitions.from_settings(settings))

    @asset(key=AssetKey(["monitoring", "reads_scores"]), deps=[AssetKey(["gold", "customer_scores"])],
           partitions_def=scores.partitions_def)
    def reads_scores() -> None:
        raise AssertionError("must not run without scores")

    with DagsterInstance.ephemeral() as instance:
        result = materialize([scores, reads_scores], partition_key="2024-07-08", instance=instance,
                             resources={"lake": lake, "registry": registry,
                                        "assay": AssayResource.from_settings(settings)})
        assert result.success
        assert result.get_asset_materialization_events() == []
        observed = [e.event_specific_data.asset_observation.metadata["skipped"].value
                    for e in result.all_events if e.event_type == DagsterEventType.ASSET_OBSERVATION]
        assert observed == [NO_CHAMPION]
        skipped = {e.step_key for e in result.all_events if e.event_type == DagsterEventType.STEP_SKIPPED}
        assert skipped == {"monitoring__reads_scores"}
    assert not lake.exists("gold", "customer_scores")


def test_without_scores_what_publishes_them_is_skipped_with_its_reason(tmp_path, lake):
    """`assay run` on a world too thin for a model to pass the gate: the publish step (simulation, audience, segment
    report) finishes without materializing and says why, instead of failing on the missing scores table."""
    from dagster import DagsterEventType, DagsterInstance, materialize

    from assets.governance.assets import retention_audience, risk_by_segment_report
    from assets.scoring.assets import NOTHING_SCORED, threshold_simulation
    from domain.settings import AssaySettings
    from resources.assay import AssayResource

    settings = AssaySettings.from_env({"ASSAY_HOME": str(tmp_path)})
    with DagsterInstance.ephemeral() as instance:
        result = materialize([threshold_simulation, retention_audience, risk_by_segment_report], instance=instance,
                             resources={"lake": lake, "assay": AssayResource.from_settings(settings)})
        assert result.success and result.get_asset_materialization_events() == []
        observed = {e.asset_key.to_user_string(): e.event_specific_data.asset_observation.metadata["skipped"].value
                    for e in result.all_events if e.event_type == DagsterEventType.ASSET_OBSERVATION}
    assert observed == {"gold/threshold_simulation": NOTHING_SCORED, "exports/retention_audience": NOTHING_SCORED,
                        "reports/risk_by_segment": NOTHING_SCORED}
    assert not (tmp_path / "exports").exists()


def test_the_summary_says_loudly_why_nobody_was_scored():
    import duckdb

    from orchestration.cli import unscored_lines

    con = duckdb.connect()
    con.execute("create table customer_scores (customer_id varchar)")
    con.execute("create table model_decisions (decided_at timestamp, version varchar, action varchar, details varchar)")
    con.execute("""insert into model_decisions values (now(), 'v1', 'rejected', '{"reasons": ["fairness"]}')""")
    lines = unscored_lines(con, ["customer_scores", "model_decisions"], has_champion=False)
    assert lines[0].startswith("SCORES:     none. No model has passed the gate yet") and "rejected v1" in lines[1]
    assert "consent" in unscored_lines(con, ["customer_scores"], has_champion=True)[0]
    con.execute("insert into customer_scores values ('c1')")
    assert unscored_lines(con, ["customer_scores"], has_champion=True) == []


@pytest.mark.parametrize("basis", ["consent", "legitimate_interest"])
def test_without_consents_the_legal_basis_decides_who_is_scored_and_is_recorded(tmp_path, lake, registry, basis):
    """No consents source at all. Under consent nobody may be scored; under legitimate interest everyone in the
    population is, and the basis is in the metadata and the audit log."""
    import json

    pipeline, data = fitted_pipeline()
    register(registry, pipeline, data, "v1")
    registry.promote("v1", promoted_by="test")
    snapshot = data.get_column("snapshot_date").max()
    # as dbt builds them without a consents source: the consent features are null
    features = data.filter(pl.col("snapshot_date") == snapshot).with_columns(
        pl.lit(None, pl.Boolean).alias("consent_profiling"))
    lake.overwrite("gold", "customer_features", features)
    metadata = _scoring_run(tmp_path, lake, registry, snapshot, {"ASSAY_PROFILING_LEGAL_BASIS": basis})
    expected = 0 if basis == "consent" else features.height
    assert metadata["dagster/row_count"].value == expected and features.height > 50
    assert metadata["profiling_legal_basis"].value == basis
    audit = lake.scan("gold", "audit_log").filter(pl.col("action") == "score").collect()
    assert json.loads(audit.item(-1, "details"))["profiling_legal_basis"] == basis


def test_without_a_champion_monitoring_in_a_run_of_its_own_is_skipped_with_its_reason(tmp_path, lake, registry):
    """A backfill step or a matured label runs drift and performance apart from scoring: before the first promotion
    there is nothing to monitor, and the run finishes saying so."""
    from dagster import DagsterEventType, DagsterInstance, materialize

    from assets.monitoring.assets import build_monitoring_assets
    from assets.partitions import AssayPartitions
    from domain.settings import AssaySettings
    from resources.alerts import AlertsResource
    from resources.assay import AssayResource
    from resources.registry import NO_CHAMPION

    settings = AssaySettings.from_env({"ASSAY_HOME": str(tmp_path)})
    drift, performance, *_ = build_monitoring_assets(AssayPartitions.from_settings(settings))
    with DagsterInstance.ephemeral() as instance:
        result = materialize([drift, performance], partition_key="2024-07-08", instance=instance,
                             resources={"lake": lake, "registry": registry, "alerts": AlertsResource(lake=lake),
                                        "assay": AssayResource.from_settings(settings)})
        assert result.success and result.get_asset_materialization_events() == []
        observed = {e.asset_key.to_user_string(): e.event_specific_data.asset_observation.metadata["skipped"].value
                    for e in result.all_events if e.event_type == DagsterEventType.ASSET_OBSERVATION}
    assert observed == {"monitoring/drift_summary": NO_CHAMPION, "monitoring/model_performance": NO_CHAMPION}


def test_the_deployments_reason_deciles_reach_the_scoring_run(tmp_path, lake, registry):
    """ASSAY_REASON_DECILES=2, as a deployment of a million customers sets it: a scoring run gives TreeSHAP reasons
    to risk deciles 1 and 2, stores the other rows without, and says how many rows have them."""
    from domain.settings import AssaySettings

    pipeline, data = fitted_pipeline(seed=6)
    register(registry, pipeline, data, "v1")
    registry.promote("v1", promoted_by="test")
    snapshot = data.get_column("snapshot_date").max()
    lake.overwrite("gold", "customer_features", data.filter(pl.col("snapshot_date") == snapshot))
    metadata = _scoring_run(tmp_path, lake, registry, snapshot, {
        "ASSAY_REASON_DECILES": "2", "ASSAY_PROFILING_LEGAL_BASIS": "legitimate_interest"})
    stored = lake.scan("gold", "customer_scores").collect()
    explained = stored.filter(pl.col("reason_1_feature").is_not_null())
    assert metadata["reason_deciles"].value == 2
    assert metadata["rows_with_reasons"].value == explained.height == stored.filter(pl.col("decile") <= 2).height
    assert 0 < explained.height < stored.height
    # an audience reaching past the explained deciles segments those rows as unknown, not by a made-up reason
    from assets.governance.exports import build_audience

    segments = build_audience(stored, max_decile=3).group_by("decile").agg(pl.col("segment").unique())
    assert segments.filter(pl.col("decile") == 3).item(0, "segment").to_list() == ["d3:unknown"]
    assert "d1:unknown" not in segments.filter(pl.col("decile") == 1).item(0, "segment").to_list()
    with pytest.raises(ValueError, match="ASSAY_REASON_DECILES"):
        AssaySettings.from_env({"ASSAY_HOME": str(tmp_path), "ASSAY_REASON_DECILES": "12"})


def _scoring_run(tmp_path, lake, registry, snapshot, environment: dict[str, str]) -> dict:
    """Materialize the scoring asset for `snapshot` with the settings of `environment`; its metadata."""
    from dagster import DagsterInstance, materialize

    from assets.partitions import AssayPartitions
    from assets.scoring.assets import build_customer_scores
    from domain.settings import AssaySettings
    from resources.assay import AssayResource

    settings = AssaySettings.from_env({"ASSAY_HOME": str(tmp_path), **environment})
    scores = build_customer_scores(AssayPartitions.from_settings(settings))
    with DagsterInstance.ephemeral() as instance:
        result = materialize([scores], partition_key=snapshot.isoformat(), instance=instance,
                             resources={"lake": lake, "registry": registry,
                                        "assay": AssayResource.from_settings(settings)})
    return result.asset_materializations_for_node("gold__customer_scores")[0].metadata
