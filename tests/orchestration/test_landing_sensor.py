"""The landing sensor asks for ingestion of each new or changed landing day, once: one run per run of consecutive
days, oldest first, at most MAX_DAYS_PER_RUN days a run, under run keys the daemon can deduplicate across restarts."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path

import polars as pl
import pytest
from dagster import DagsterInstance, RunRequest, build_sensor_context

from domain.settings import AssaySettings
from orchestration.automation import MAX_DAYS_PER_RUN
from orchestration.definitions import build_definitions

ROOT = Path(__file__).resolve().parents[2]
RANGE_START, RANGE_END = "dagster/asset_partition_range_start", "dagster/asset_partition_range_end"


def land(landing: Path, source: str, day: date, rows: int) -> None:
    folder = landing / source / f"date={day.isoformat()}"
    folder.mkdir(parents=True, exist_ok=True)
    pl.DataFrame({"x": list(range(rows))}).write_parquet(folder / "part-0.parquet")


def days_from(first: date, n: int) -> list[date]:
    return [first + timedelta(days=k) for k in range(n)]


class Home:
    """A home's real landing sensor (from the assembled definitions), ticked with its cursor carried over."""

    def __init__(self, tmp_path: Path) -> None:
        self.landing = tmp_path / "landing"
        settings = AssaySettings.from_env({"ASSAY_HOME": str(tmp_path), "ASSAY_LANDING_DIR": str(self.landing)})
        self.defs = build_definitions(settings)
        self.sensor = next(s for s in self.defs.sensors if s.name == "landing_sensor")
        self.cursor: str | None = None

    def tick(self, instance) -> list[RunRequest]:
        # the definitions let Dagster check each requested partition against the job, as the daemon does
        with build_sensor_context(instance=instance, cursor=self.cursor, resources=self.defs.resources,
                                  definitions=self.defs) as context:
            result = self.sensor.evaluate_tick(context)
        if result.cursor is not None:
            self.cursor = result.cursor
        requests = list(result.run_requests or [])
        assert requests or result.skip_message  # a quiet tick says why
        return requests


def covered(request: RunRequest) -> tuple[str, str]:
    """The first and last landing day a request ingests."""
    if request.partition_key is not None:
        assert RANGE_START not in request.tags  # a single day is a partition, never a range of one
        return request.partition_key, request.partition_key
    return request.tags[RANGE_START], request.tags[RANGE_END]


@pytest.fixture
def home(tmp_path) -> Home:
    return Home(tmp_path)


def test_the_sensor_starts_the_ingestion_job_by_default(home):
    from dagster import DefaultSensorStatus

    assert home.sensor.job_name == "ingestion_job"
    assert home.sensor.default_status == DefaultSensorStatus.RUNNING


def test_requests_new_days_then_only_changed_ones(home):
    with DagsterInstance.ephemeral() as instance:
        land(home.landing, "orders", date(2024, 3, 1), 2)
        land(home.landing, "customers", date(2024, 3, 1), 1)
        land(home.landing, "orders", date(2024, 3, 2), 2)
        land(home.landing, "orders", date(1999, 1, 1), 2)  # outside the partition range: ignored, not an error
        [request] = home.tick(instance)
        assert covered(request) == ("2024-03-01", "2024-03-02")
        assert request.tags["assay/reason"] == "new-landing-files"
        assert request.tags["assay/landing_days"] == "2024-03-01..2024-03-02"

        assert home.tick(instance) == []

        land(home.landing, "events", date(2024, 3, 2), 5)  # a late source for an already ingested day
        [late] = home.tick(instance)
        assert late.partition_key == "2024-03-02" and covered(late) == ("2024-03-02", "2024-03-02")
        assert home.tick(instance) == []

        # a corrected file for the same day is a new request under a new run key: the daemon skips a used key
        land(home.landing, "events", date(2024, 3, 2), 6)
        [corrected] = home.tick(instance)
        assert corrected.partition_key == "2024-03-02" and corrected.run_key != late.run_key
        assert request.run_key not in (late.run_key, corrected.run_key)


def test_a_run_of_consecutive_new_days_is_one_range_request(home):
    days = days_from(date(2024, 4, 28), 6)  # across a month end
    with DagsterInstance.ephemeral() as instance:
        for day in days:
            land(home.landing, "orders", day, 1)
        [request] = home.tick(instance)
    assert request.partition_key is None
    assert covered(request) == (days[0].isoformat(), days[-1].isoformat())


def test_days_with_gaps_give_one_request_per_run_of_consecutive_days_in_order(home):
    days = [date(2024, 3, 5), date(2024, 3, 1), date(2024, 3, 8), date(2024, 3, 2), date(2024, 3, 7)]
    with DagsterInstance.ephemeral() as instance:
        for day in days:  # landed out of order
            land(home.landing, "orders", day, 1)
        requests = home.tick(instance)
    assert [covered(r) for r in requests] == [("2024-03-01", "2024-03-02"), ("2024-03-05", "2024-03-05"),
                                              ("2024-03-07", "2024-03-08")]
    assert len({r.run_key for r in requests}) == len(requests)


def test_a_long_outage_is_split_into_runs_of_at_most_max_days_in_order(home):
    first = date(2024, 2, 1)
    days = days_from(first, 2 * MAX_DAYS_PER_RUN + 3)
    with DagsterInstance.ephemeral() as instance:
        for day in days:
            land(home.landing, "orders", day, 1)
        requests = home.tick(instance)
        assert home.tick(instance) == []  # all of them taken in one tick, none asked for twice
    spans = [covered(r) for r in requests]
    assert spans == [
        (days[0].isoformat(), days[MAX_DAYS_PER_RUN - 1].isoformat()),
        (days[MAX_DAYS_PER_RUN].isoformat(), days[2 * MAX_DAYS_PER_RUN - 1].isoformat()),
        (days[2 * MAX_DAYS_PER_RUN].isoformat(), days[-1].isoformat()),
    ]
    assert len({r.run_key for r in requests}) == 3


# Prints the run keys the home's landing sensor asks for, as a separate process (its own hash seed) sees them.
_KEYS_IN_A_NEW_PROCESS = """
import json, sys
from dagster import DagsterInstance, build_sensor_context
from domain.settings import AssaySettings
from orchestration.definitions import build_definitions

settings = AssaySettings.from_env({"ASSAY_HOME": sys.argv[1], "ASSAY_LANDING_DIR": sys.argv[2]})
defs = build_definitions(settings)
sensor = next(s for s in defs.sensors if s.name == "landing_sensor")
with DagsterInstance.ephemeral() as instance, build_sensor_context(instance=instance, resources=defs.resources,
                                                                   definitions=defs) as context:
    result = sensor.evaluate_tick(context)
print(json.dumps([r.run_key for r in result.run_requests]))
"""


def test_run_keys_are_the_same_in_every_process(home, tmp_path):
    """The daemon restarts, and `assay tick` is a new process each time: a key built on Python's salted hash()
    would ask for the same days again after a restart."""
    for day in [*days_from(date(2024, 3, 1), 3), date(2024, 3, 10)]:
        land(home.landing, "orders", day, 2)
    with DagsterInstance.ephemeral() as instance:
        keys = [r.run_key for r in home.tick(instance)]
    assert len(keys) == 2
    for seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        out = subprocess.run([sys.executable, "-c", _KEYS_IN_A_NEW_PROCESS, str(tmp_path), str(home.landing)],
                             cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
        assert out.returncode == 0, out.stderr
        assert json.loads(out.stdout.strip().splitlines()[-1]) == keys, f"PYTHONHASHSEED={seed}"


def test_a_first_tick_takes_the_days_the_instance_has_ingested_as_seen(home):
    # a daemon started on a home that a backfill built: no cursor yet, but the instance knows what is ingested
    from dagster import AssetKey, AssetMaterialization

    from domain.contract import SOURCES

    with DagsterInstance.ephemeral() as instance:
        for day in days_from(date(2024, 3, 1), 3):
            land(home.landing, "orders", day, 2)
        for source in SOURCES:  # what an ingestion run of 03-01 and 03-02 records
            for day in ("2024-03-01", "2024-03-02"):
                instance.report_runless_asset_event(AssetMaterialization(AssetKey(["bronze", source]),
                                                                         partition=day))
        instance.report_runless_asset_event(AssetMaterialization(AssetKey(["bronze", "orders"]),
                                                                 partition="2024-03-03"))  # one source only
        [request] = home.tick(instance)
        assert covered(request) == ("2024-03-03", "2024-03-03")
        assert home.tick(instance) == []
