"""The team deployment's instance storage, for real: `docker/dagster.yaml` as shipped (runs, events and schedules in
Postgres through dagster-postgres), against a PostgreSQL server from Debian's package. A partitioned ingestion
backfill, then daily ticks whose landing sensor asks for the new days, run on it; the same counts as on SQLite."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections import Counter
from datetime import date, timedelta
from pathlib import Path

import pytest
from dagster import AssetKey, AssetRecordsFilter, DagsterInstance
from postgres_server import running_postgres, server_binaries
from shop_export import deliver as deliver_until

from assets.partitions import AssayPartitions
from domain.settings import AssaySettings
from domain.synthetic import config_for_size, generate
from orchestration.backfill import backfill_steps, run_backfill
from orchestration.clock import Clock
from orchestration.definitions import build_definitions
from orchestration.feed import feed_for

REPO = Path(__file__).resolve().parents[2]
START = date(2024, 1, 1)
D = START + timedelta(days=21)  # backfilled to here, then two days of ticks


@pytest.fixture(scope="module")
def postgres():
    if server_binaries() is None:
        pytest.skip("no PostgreSQL server: `make system-packages` installs Debian's postgresql (it needs root or sudo)")
    with running_postgres() as server:
        yield server


def _materialized(instance, key: AssetKey) -> Counter:
    records = instance.fetch_materializations(AssetRecordsFilter(asset_key=key), limit=10_000).records
    return Counter(r.partition_key for r in records)


def test_a_backfill_and_sensor_ticks_run_on_the_shipped_postgres_instance(postgres, tmp_path, monkeypatch):
    dagster_home = tmp_path / "dagster"
    dagster_home.mkdir()
    shutil.copy(REPO / "docker" / "dagster.yaml", dagster_home / "dagster.yaml")
    for name, value in postgres.instance_env().items():
        monkeypatch.setenv(name, value)
    shop, exports = tmp_path / "shop", tmp_path / "exports"
    generate(config_for_size("tiny", n_customers=150, end=D + timedelta(days=7)), shop, tmp_path / "truth")

    def deliver(until: date) -> None:
        deliver_until(shop, exports, until)

    settings = AssaySettings.from_env({"ASSAY_HOME": str(tmp_path / "home"), "ASSAY_SOURCE": "files",
                                       "ASSAY_LANDING_DIR": str(exports), "ASSAY_START_DATE": START.isoformat()})
    deliver(D)
    defs = build_definitions(settings)
    with DagsterInstance.from_config(str(dagster_home)) as instance:
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        assert type(instance.event_log_storage).__name__ == "PostgresEventLogStorage"
        assert type(instance.schedule_storage).__name__ == "PostgresScheduleStorage"
        run_backfill(defs, instance, backfill_steps(AssayPartitions.from_settings(settings), D), ["ingestion"],
                     say=lambda _: None, log_level="ERROR")
        backfilled = {r.dagster_run.run_id for r in instance.get_run_records()}
        clock = Clock(settings, instance, defs, feed=feed_for(settings), say=lambda _: None, log_level="ERROR")
        clock.prime(D)
        ticks = []
        for day in (D + timedelta(days=1), D + timedelta(days=2)):
            deliver(day)
            ticks.append(clock.tick(day))

        days = AssayPartitions.from_settings(settings).days_before(D + timedelta(days=2))
        for source in ("customers", "orders", "events"):
            # every landed day once: the backfill's, then each tick's new day
            assert _materialized(instance, AssetKey(["bronze", source])) == Counter(days), source
        ticked = [r for r in instance.get_run_records() if r.dagster_run.run_id not in backfilled]
        assert len(ticked) == 2 and all(r.dagster_run.tags.get("dagster/sensor_name") == "landing_sensor"
                                        for r in ticked)
        assert [run.partitions for tick in ticks for run in tick.runs] == [str(D), str(D + timedelta(days=1))]
        assert all(run.success for tick in ticks for run in tick.runs)

    # what the UI and the daemon read is in the server, not in a file beside the home
    count = subprocess.run(
        ["psql", "-h", postgres.host, "-p", str(postgres.port), "-U", postgres.user, "-d", postgres.database,
         "-tAc", "select count(*) from runs"], capture_output=True, text=True, check=True,
        env={**os.environ, "PGPASSWORD": postgres.password}).stdout.strip()
    assert int(count) == len(backfilled) + 2
    assert not list(dagster_home.rglob("*.db"))  # no SQLite storage on the side
