"""The local instance's event log (orchestration/event_log.py) keeps Dagster's records while keeping connections."""

import os
import shutil
import threading
from pathlib import Path

import pytest
import sqlalchemy
from dagster import DagsterEventType, DagsterInstance, DailyPartitionsDefinition, asset, materialize

from orchestration.event_log import PooledSqliteEventLogStorage

ROOT = Path(__file__).resolve().parents[2]
DAYS = DailyPartitionsDefinition(start_date="2026-01-01", end_date="2026-01-04")


@asset(partitions_def=DAYS)
def daily_rows(context) -> int:
    return int(context.partition_key[-2:])


def _home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, extra_yaml: str = "") -> Path:
    home = tmp_path / "dagster"
    home.mkdir()
    shutil.copy(ROOT / "orchestration" / "dagster.yaml", home / "dagster.yaml")
    if extra_yaml:
        with (home / "dagster.yaml").open("a") as yaml:
            yaml.write(extra_yaml)
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    return home


def _materialize_each_day(instance: DagsterInstance) -> list[str]:
    run_ids = []
    for day in DAYS.get_partition_keys():
        result = materialize([daily_rows], instance=instance, partition_key=day)
        assert result.success
        run_ids.append(result.run_id)
    return run_ids


def test_the_shipped_instance_stores_every_event_where_a_fresh_instance_reads_it(tmp_path, monkeypatch):
    home = _home(tmp_path, monkeypatch)
    with DagsterInstance.get() as instance:
        assert isinstance(instance.event_log_storage, PooledSqliteEventLogStorage)
        run_ids = _materialize_each_day(instance)
        written = {run_id: len(instance.all_logs(run_id)) for run_id in run_ids}

    # Dagster's own files and place: history/runs/<run>.db plus the cross-run index.
    assert {p.stem for p in (home / "history" / "runs").glob("*.db")} == {*run_ids, "index"}
    with DagsterInstance.get() as reopened:
        assert reopened.get_materialized_partitions(daily_rows.key) == set(DAYS.get_partition_keys())
        for run_id in run_ids:
            logs = reopened.all_logs(run_id)
            assert len(logs) == written[run_id]
            assert [e.dagster_event_type for e in logs if e.is_dagster_event][-1] == DagsterEventType.RUN_SUCCESS
        latest = reopened.get_latest_materialization_event(daily_rows.key)
        assert latest is not None and latest.run_id == run_ids[-1]


def test_run_databases_beyond_the_limit_are_closed_and_reopen_on_demand(tmp_path, monkeypatch):
    _home(tmp_path, monkeypatch, "  config:\n    max_open_run_shards: 2\n")
    with DagsterInstance.get() as instance:
        storage = instance.event_log_storage

        def open_runs() -> list[str]:
            return [shard for shard in storage.open_shards if shard != "index"]

        run_ids = _materialize_each_day(instance)  # three runs, three run databases
        assert open_runs() == run_ids[-2:]  # the least recently used were closed
        first_run = instance.all_logs(run_ids[0])  # and reopen when read
        assert DagsterEventType.ASSET_MATERIALIZATION in {e.dagster_event_type for e in first_run}
        assert open_runs() == [run_ids[-1], run_ids[0]]


def test_a_forked_process_opens_connections_of_its_own(tmp_path, monkeypatch):
    _home(tmp_path, monkeypatch)
    with DagsterInstance.get() as instance:
        run_ids = _materialize_each_day(instance)  # the parent holds open connections
        expected = len(instance.all_logs(run_ids[0]))
        child = os.fork()
        if child == 0:  # SQLite connections must not cross a fork: the child starts with none
            ok = False
            try:
                storage = instance.event_log_storage
                ok = len(instance.all_logs(run_ids[0])) == expected and storage.open_shards == [run_ids[0]]
            finally:
                os._exit(0 if ok else 1)
        _, status = os.waitpid(child, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        assert len(instance.all_logs(run_ids[0])) == expected  # and the parent's still work


def test_a_watcher_receives_a_running_run_s_events_while_the_writer_keeps_its_connection(tmp_path, monkeypatch):
    # How the UI streams a run's log: another process (here another instance) watches the run's database.
    _home(tmp_path, monkeypatch)
    with DagsterInstance.get() as writer, DagsterInstance.get() as watcher:
        run_id = _materialize_each_day(writer)[0]
        assert watcher.all_logs(run_id)  # the watcher holds a connection of its own to the run's database too
        arrived = threading.Event()

        def on_event(entry, _cursor):
            if entry.is_dagster_event and entry.dagster_event.message == "written while watched":
                arrived.set()

        watcher.watch_event_logs(run_id, None, on_event)
        try:
            writer.report_engine_event("written while watched", writer.get_run_by_id(run_id))
            assert arrived.wait(timeout=30)  # without waiting for a checkpoint or for the writer to close
        finally:
            watcher.end_watch_event_logs(run_id, on_event)


def test_a_wiped_instance_forgets_its_runs(tmp_path, monkeypatch):
    _home(tmp_path, monkeypatch)
    with DagsterInstance.get() as instance:
        run_ids = _materialize_each_day(instance)
        instance.wipe()  # `dagster instance wipe`
        assert instance.all_logs(run_ids[-1]) == []  # not read through a connection to the deleted file
        assert instance.get_materialized_partitions(daily_rows.key) == set()
        rerun = materialize([daily_rows], instance=instance, partition_key=DAYS.get_partition_keys()[0])
    with DagsterInstance.get() as reopened:
        assert reopened.get_materialized_partitions(daily_rows.key) == {DAYS.get_partition_keys()[0]}
        assert reopened.all_logs(rerun.run_id)


def test_table_lookups_answer_as_the_database_does(tmp_path):
    storage = PooledSqliteEventLogStorage(str(tmp_path))
    assert storage.has_table("event_logs") and storage.has_table("event_logs")
    assert not storage.has_table("added_later")
    with storage.index_connection() as conn:  # as a migration would
        conn.execute(sqlalchemy.text("CREATE TABLE added_later (id INTEGER)"))
    assert storage.has_table("added_later")  # a missing table is looked up again
    storage.dispose()


def test_a_limit_below_one_open_run_database_is_refused(tmp_path):
    with pytest.raises(ValueError, match="max_open_run_shards"):
        PooledSqliteEventLogStorage(str(tmp_path), max_open_run_shards=0)
