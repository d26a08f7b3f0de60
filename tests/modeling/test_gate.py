"""Champion–challenger gate and registry status changes, on real Delta tables."""

from __future__ import annotations

import json
from datetime import date, timedelta

import polars as pl
import pytest

from assets.modeling.gate import GatePolicy, broken_fields, decide
from resources.registry import ModelRegistryResource
from tests.scoring.test_scoring import fitted_pipeline, register

POLICY = GatePolicy(metric="auc", min_improvement=0.002, max_ece_increase=0.005, max_ece=0.05)
CHAMPION = {"auc": 0.850, "ece": 0.010}
BROKEN_WEEK = date(2025, 6, 9)


def test_gate_refuses_a_worse_or_barely_better_challenger():
    worse = decide(POLICY, "new", {"auc": 0.840, "ece": 0.010}, [], "old", CHAMPION)
    barely = decide(POLICY, "new", {"auc": 0.851, "ece": 0.010}, [], "old", CHAMPION)
    assert not worse.promote and not barely.promote
    assert "less than the required" in barely.reasons[0]
    assert barely.figures["improvement"] == pytest.approx(0.001)


def test_gate_promotes_a_better_challenger_and_a_first_model():
    better = decide(POLICY, "new", {"auc": 0.860, "ece": 0.012}, [], "old", CHAMPION)
    first = decide(POLICY, "new", {"auc": 0.700, "ece": 0.020}, [])
    assert better.promote and first.promote
    assert better.figures["champion_auc"] == 0.850


def test_gate_refuses_worse_calibration_even_with_better_ranking():
    decision = decide(POLICY, "new", {"auc": 0.900, "ece": 0.020}, [], "old", CHAMPION)
    assert not decision.promote
    assert any("ECE worsens" in r for r in decision.reasons)


def test_a_calibrated_challenger_replaces_a_champion_that_breaks_the_ece_limit_unless_it_ranks_worse():
    miscalibrated = {"auc": 0.850, "ece": 0.080}  # the churn rate moved under the champion; its ranking did not
    same_ranking = decide(POLICY, "new", {"auc": 0.848, "ece": 0.015}, [], "old", miscalibrated)
    assert same_ranking.promote
    assert any("above the limit" in r for r in same_ranking.reasons)
    assert not decide(POLICY, "new", {"auc": 0.840, "ece": 0.015}, [], "old", miscalibrated).promote
    # both beyond the limit: no exception (and the challenger fails the limit itself)
    both = decide(POLICY, "new", {"auc": 0.860, "ece": 0.060}, [], "old", miscalibrated)
    assert not both.promote and not any("the champion's ECE" in r for r in both.reasons)
    # a champion within the limit keeps the usual rule
    assert not decide(POLICY, "new", {"auc": 0.848, "ece": 0.005}, [], "old", CHAMPION).promote


def test_an_ece_worsening_within_its_sampling_noise_does_not_block_promotion():
    challenger = {"auc": 0.860, "ece": 0.018}  # 0.008 worse than the champion
    assert not decide(POLICY, "new", challenger, [], "old", CHAMPION).promote  # no noise estimate: the plain limit
    noisy = decide(POLICY, "new", challenger, [], "old", CHAMPION, ece_difference_se=0.004)
    assert noisy.promote and noisy.figures["ece_difference_se"] == 0.004  # allowed 0.005 + 2 x 0.004
    assert not decide(POLICY, "new", {"auc": 0.860, "ece": 0.025}, [], "old", CHAMPION,
                      ece_difference_se=0.004).promote


def test_fairness_violation_blocks_promotion():
    violation = ["gender: equal-opportunity difference 0.25 exceeds 0.10"]
    decision = decide(POLICY, "new", {"auc": 0.950, "ece": 0.005}, violation, "old", CHAMPION)
    assert not decision.promote
    assert decision.reasons[0].startswith("fairness limit violated")
    assert not decide(POLICY, "first", {"auc": 0.9, "ece": 0.01}, violation).promote


def test_lower_is_better_metrics_compare_the_other_way():
    policy = GatePolicy(metric="log_loss", min_improvement=0.001)
    assert decide(policy, "n", {"log_loss": 0.30, "ece": 0.01}, [], "o", {"log_loss": 0.32, "ece": 0.01}).promote
    assert not decide(policy, "n", {"log_loss": 0.33, "ece": 0.01}, [], "o", {"log_loss": 0.32, "ece": 0.01}).promote


@pytest.fixture
def registry(tmp_path, lake) -> ModelRegistryResource:
    return ModelRegistryResource(models_dir=str(tmp_path / "models"), lake=lake)


def test_promotion_archives_the_old_champion_and_rollback_restores_it(registry):
    pipeline, data = fitted_pipeline(customers=200, rounds=30)
    for version in ("v1", "v2"):
        register(registry, pipeline, data, version)
    assert registry.champion_version() is None  # registered models are challengers until the gate decides
    registry.promote("v1", "gate:test")
    registry.promote("v2", "gate:test")
    statuses = dict(registry.rows().select("version", "status").rows())
    assert statuses == {"v1": "archived", "v2": "champion"}

    registry.promote("v1", "cli:rollback:tester", {"reason": "v2 misbehaves"})  # the rollback command's path
    assert registry.champion_version() == "v1"
    decisions = registry.decisions()
    assert decisions.get_column("version").to_list() == ["v1", "v2", "v1"]
    assert decisions.item(-1, "actor") == "cli:rollback:tester"
    assert json.loads(decisions.item(-1, "details"))["reason"] == "v2 misbehaves"
    with pytest.raises(LookupError, match="unknown model version"):
        registry.promote("v9", "cli:rollback:tester")


def test_rejected_challenger_is_archived_and_logged(registry):
    pipeline, data = fitted_pipeline(customers=200, rounds=30)
    register(registry, pipeline, data, "v1")
    registry.promote("v1", "gate:test")
    register(registry, pipeline, data, "v2")
    registry.reject("v2", "gate:test", {"reasons": ["auc improves by +0.0000"]})
    rows = registry.rows()
    assert rows.filter(pl.col("version") == "v2").item(0, "status") == "archived"
    assert registry.champion_version() == "v1"
    assert registry.decisions().item(-1, "action") == "rejected"


def test_a_challenger_trained_or_validated_on_broken_input_is_refused_whatever_its_figures():
    broken = ["orders.n_items null share +1.00 in the week before 2025-06-09"]
    decision = decide(POLICY, "new", {"auc": 0.990, "ece": 0.001}, [], "old", CHAMPION, broken_inputs=broken)
    assert not decision.promote
    assert any("broken input" in r and "orders.n_items" in r for r in decision.reasons)
    assert not decide(POLICY, "first", {"auc": 0.9, "ece": 0.01}, [], broken_inputs=broken).promote


def test_a_broken_week_reaches_every_snapshot_within_the_feature_lookback():
    metrics = pl.LazyFrame({"snapshot_date": [BROKEN_WEEK, BROKEN_WEEK], "metric": ["null_share_increase"] * 2,
                            "column": ["orders.n_items", "orders.amount"], "value": [1.0, 0.01],
                            "source": ["source", "source"]})
    assert broken_fields(metrics, 0.2, BROKEN_WEEK, BROKEN_WEEK, 365) == [
        f"orders.n_items null share +1.00 in the week before {BROKEN_WEEK}"]
    assert broken_fields(metrics, 0.2, BROKEN_WEEK + timedelta(days=300), BROKEN_WEEK + timedelta(days=400), 365)
    assert broken_fields(metrics, 0.2, BROKEN_WEEK - timedelta(days=60), BROKEN_WEEK - timedelta(days=7), 365) == []
    assert broken_fields(metrics, 0.2, BROKEN_WEEK + timedelta(days=366), BROKEN_WEEK + timedelta(days=400), 365) == []
