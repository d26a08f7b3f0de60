"""The DSAR sensor launches one run for the pending requests, tagged with why, and stays quiet otherwise."""

from __future__ import annotations

from datetime import UTC, datetime

import polars as pl
from dagster import DagsterInstance, RunRequest, SkipReason, build_sensor_context

from assets.governance.dsar import REQUESTS_TABLE, new_request
from orchestration.automation import dsar_sensor
from resources.lake import LakeResource


def tick(instance, lake):
    return dsar_sensor(build_sensor_context(instance=instance, resources={"lake": lake}))


def test_pending_requests_start_a_run_and_completed_ones_do_not(tmp_path):
    lake = LakeResource(root=str(tmp_path / "lake"))
    with DagsterInstance.ephemeral() as instance:
        assert isinstance(tick(instance, lake), SkipReason)  # no request table yet
        late = new_request("C1", "erasure", requested_at=datetime(2025, 1, 1, tzinfo=UTC))
        early = new_request("C2", "access", requested_at=datetime(2025, 3, 1, tzinfo=UTC))
        lake.append(*REQUESTS_TABLE, early)
        lake.append(*REQUESTS_TABLE, late)
        run = tick(instance, lake)
        assert isinstance(run, RunRequest)
        assert run.tags["assay/reason"] == "data-subject-request"
        assert run.tags["assay/dsar_earliest_deadline"].startswith("2025-01-31")  # the overdue one leads
        assert run.run_key == f"{late.item(0, 'request_id')}|{early.item(0, 'request_id')}"

        done = lake.scan(*REQUESTS_TABLE).collect().with_columns(pl.lit("completed").alias("status"))
        lake.overwrite(*REQUESTS_TABLE, done)
        assert isinstance(tick(instance, lake), SkipReason)
