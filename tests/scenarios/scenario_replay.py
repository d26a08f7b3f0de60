"""Drift scenarios lived through the clock (orchestration/scenario.py; `assay scenario` runs the same replay): a
small world is backfilled to a week D, then ticks week by week past a change in the world, every run coming from the
real sensors, schedules and automation."""

from __future__ import annotations

from datetime import date

import pytest
from dagster import DagsterInstance

from orchestration.scenario import ScenarioPlan, run_scenario

ONSET = date(2025, 6, 2)


def replay(tmp_path_factory, plan: ScenarioPlan, cooldown_days: int | None = None):
    """Live `plan` in a fresh home; returns the home, the plan, the weeks and the (still open) Dagster instance."""
    home = tmp_path_factory.mktemp(f"scenario_{plan.kind}")
    patch = pytest.MonkeyPatch()
    if cooldown_days is not None:
        patch.setenv("ASSAY_RETRAIN_COOLDOWN_DAYS", str(cooldown_days))
    instance = DagsterInstance.ephemeral()
    try:
        weeks = run_scenario(home, plan, say=lambda _: None, instance=instance)
    finally:
        patch.undo()
    return home, plan, weeks, instance
