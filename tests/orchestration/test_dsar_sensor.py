"""The DSAR sensor launches one run for the pending requests, tagged with why, and stays quiet otherwise."""

from __future__ import annotations

from datetime import UTC, datetime

import polars as pl
from dagster import DagsterInstance, DefaultSensorStatus, RunRequest, build_sensor_context

from assets.governance.dsar import REQUESTS_TABLE, new_request
from domain.settings import AssaySettings
from orchestration.definitions import build_definitions


def test_pending_requests_start_a_run_and_completed_ones_do_not(tmp_path):
    defs = build_definitions(AssaySettings.from_env({"ASSAY_HOME": str(tmp_path)}))
    sensor = next(s for s in defs.sensors if s.name == "dsar_sensor")
    assert sensor.job_name == "dsar_job" and sensor.default_status == DefaultSensorStatus.RUNNING
    lake = defs.resources["lake"]  # the home's lake, which the sensor reads

    def tick(instance) -> RunRequest | None:
        with build_sensor_context(instance=instance, resources=defs.resources, definitions=defs) as context:
            result = sensor.evaluate_tick(context)
        if not result.run_requests:
            assert result.skip_message
            return None
        [request] = result.run_requests
        return request

    with DagsterInstance.ephemeral() as instance:
        assert tick(instance) is None  # no request table yet
        late = new_request("C1", "erasure", requested_at=datetime(2025, 1, 1, tzinfo=UTC))
        early = new_request("C2", "access", requested_at=datetime(2025, 3, 1, tzinfo=UTC))
        lake.append(*REQUESTS_TABLE, early)
        lake.append(*REQUESTS_TABLE, late)
        run = tick(instance)
        assert isinstance(run, RunRequest)
        assert run.tags["assay/reason"] == "data-subject-request"
        assert run.tags["assay/dsar_earliest_deadline"].startswith("2025-01-31")  # the overdue one leads
        ids = [late.item(0, "request_id"), early.item(0, "request_id")]
        assert run.run_key == "|".join(ids)
        assert run.tags["assay/dsar_requests"] == ",".join(ids)

        done = lake.scan(*REQUESTS_TABLE).collect().with_columns(pl.lit("completed").alias("status"))
        lake.overwrite(*REQUESTS_TABLE, done)
        assert tick(instance) is None


def test_a_failed_run_is_asked_for_again_and_the_erasure_completes(tmp_path, monkeypatch):
    """An analyst's DuckDB session holds the warehouse open: the erasure's run fails with the request still
    pending. The sensor asks again under a new key (the daemon would skip the old one), not only when another
    request arrives; once the session is closed, the run completes it."""
    import subprocess
    import sys

    import duckdb

    import orchestration.automation as automation

    monkeypatch.setattr(automation, "DSAR_RETRY_SECONDS", 0)
    settings = AssaySettings.from_env({"ASSAY_HOME": str(tmp_path)})
    defs = build_definitions(settings)
    sensor = next(s for s in defs.sensors if s.name == "dsar_sensor")
    lake = defs.resources["lake"]
    con = duckdb.connect(str(settings.warehouse_path))
    con.execute("create table t as select 1 as x")
    con.close()
    analyst = subprocess.Popen([sys.executable, "-c", "import duckdb, sys, time; "
                                "c = duckdb.connect(sys.argv[1], read_only=True); print('open', flush=True); "
                                "time.sleep(120)", str(settings.warehouse_path)], stdout=subprocess.PIPE, text=True)
    assert analyst.stdout.readline().strip() == "open"
    lake.append(*REQUESTS_TABLE, new_request("C1", "erasure"))

    def tick(instance):
        with build_sensor_context(instance=instance, resources=defs.resources, definitions=defs) as context:
            return sensor.evaluate_tick(context)

    def run(instance, request):
        job = defs.resolve_job_def("dsar_job")
        return job.execute_in_process(instance=instance, tags=request.tags, raise_on_error=False)

    with DagsterInstance.ephemeral() as instance:
        try:
            [first] = tick(instance).run_requests
            failed = run(instance, first)
            [failure] = [e for e in failed.all_events if e.is_step_failure]
            assert failure.step_failure_data.error.cause.cls_name == "WarehouseBusy"
        finally:
            analyst.kill()
            analyst.wait()
        assert lake.scan(*REQUESTS_TABLE).collect().get_column("status").to_list() == ["pending"]
        [again] = tick(instance).run_requests
        assert again.run_key != first.run_key
        assert run(instance, again).success
        assert lake.scan(*REQUESTS_TABLE).collect().get_column("status").to_list() == ["completed"]
        assert not tick(instance).run_requests
