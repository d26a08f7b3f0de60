"""Dagster's SQLite event log with connections kept open: the local instance's storage (`orchestration/dagster.yaml`).

Dagster's `SqliteEventLogStorage` builds a new SQLAlchemy engine, opens a connection and closes it again for every
event it stores. A daily-partitioned backfill logs one materialization per partition (two writes each: the run's
shard and the cross-run index), so on SQLite the bookkeeping, not the work, set the pace: closing the last
connection to a WAL database checkpoints it, and statements compiled by a throwaway engine are never cached.
Measured on the demo's ingestion (8,041 partition materializations): about 145 s with Dagster's class, 55 s with
this one (docs/performance.md, "Ingestion bookkeeping").

This subclass keeps one engine per shard, for the index and the most recently used run shards, sets WAL's usual
`synchronous=NORMAL` (a commit is not fsynced; a power cut can lose the last events, never corrupt the database),
remembers which tables exist (Dagster asks for every asset event), and lets the watcher that streams a run's log to
the UI wake on the run's WAL file, where kept-open connections commit. Everything else, from the schema and its
migrations to the per-run sharding and the lock that serialises access, is Dagster's own. Production deployments
use Postgres instance storage (`docker/`).
"""

from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import sqlalchemy as db
from dagster import Field, IntSource, StringSource
from dagster._core.storage.event_log.base import EventHandlerFn
from dagster._core.storage.event_log.sqlite.sqlite_event_log import (
    INDEX_SHARD_NAME,
    SqliteEventLogStorage,
    SqliteEventLogStorageWatchdog,
)
from dagster._core.storage.sqlite import SQLITE_BUSY_TIMEOUT_SECONDS
from dagster._serdes import ConfigurableClassData
from sqlalchemy.engine import Connection, Engine
from watchdog.events import FileSystemEvent
from watchdog.observers import Observer


def default_base_dir() -> str:
    """Where Dagster's own SQLite event log lives, so switching classes keeps an instance's history."""
    home = os.environ.get("DAGSTER_HOME")
    if not home:
        raise ValueError("set DAGSTER_HOME, or give the event log storage a base_dir")
    return os.path.join(home, "history", "runs")


def _set_pragmas(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.execute("PRAGMA synchronous=NORMAL")


class _RunLogWatchdog(SqliteEventLogStorageWatchdog):
    """Dagster's watcher of one run's log (the UI streams a running run's events with it), also woken by the run's
    WAL file: with connections kept open a commit only appends to `<run>.db-wal`, and the database file itself
    changes at a checkpoint, which can be megabytes later."""

    def __init__(self, storage: SqliteEventLogStorage, run_id: str, callback: EventHandlerFn, cursor: str | None):
        super().__init__(storage, run_id, callback, cursor)
        self._paths = (self._log_path, f"{self._log_path}-wal")
        self._patterns = list(self._paths)  # watchdog's PatternMatchingEventHandler reads its patterns from here

    def on_modified(self, event: FileSystemEvent) -> None:
        if event.src_path in self._paths:
            self._process_log()


class PooledSqliteEventLogStorage(SqliteEventLogStorage):
    """`SqliteEventLogStorage` whose connections outlive one event (see the module docstring).

    Config (`dagster.yaml`, `event_log_storage`): `base_dir` (default `$DAGSTER_HOME/history/runs`, Dagster's own
    place) and `max_open_run_shards` (run databases kept open besides the index, least recently used closed first).
    """

    def __init__(self, base_dir: str | None = None, max_open_run_shards: int = 8,
                 inst_data: ConfigurableClassData | None = None) -> None:
        if max_open_run_shards < 1:
            raise ValueError(f"max_open_run_shards must be at least 1, got {max_open_run_shards}")
        self._max_open_run_shards = max_open_run_shards
        self._engines: OrderedDict[str, Engine] = OrderedDict()
        self._engines_pid = os.getpid()
        self._tables_found: set[str] = set()
        super().__init__(base_dir or default_base_dir(), inst_data)

    @classmethod
    def config_type(cls) -> dict[str, Field]:
        return {"base_dir": Field(StringSource, is_required=False),
                "max_open_run_shards": Field(IntSource, is_required=False, default_value=8)}

    @classmethod
    def from_config_value(cls, inst_data: ConfigurableClassData | None,
                          config_value: Mapping[str, Any]) -> PooledSqliteEventLogStorage:
        return cls(inst_data=inst_data, **config_value)

    @property
    def open_shards(self) -> list[str]:
        """Shards with an open engine, least recently used first."""
        return list(self._engines)

    def _own_engines(self) -> OrderedDict[str, Engine]:
        """This process's engines: a forked child must not use (or close) the parent's SQLite connections."""
        if self._engines_pid != os.getpid():
            for inherited in self._engines.values():
                inherited.dispose(close=False)
            self._engines = OrderedDict()
            self._engines_pid = os.getpid()
        return self._engines

    def _new_engine(self, shard: str, **pool: Any) -> Engine:
        timeout = {"timeout": SQLITE_BUSY_TIMEOUT_SECONDS}
        return db.create_engine(self.conn_string_for_shard(shard), connect_args=timeout, **pool)

    def _engine(self, shard: str) -> Engine:
        engine = self._own_engines().get(shard)
        if engine is not None:
            self._engines.move_to_end(shard)
            return engine
        engine = self._new_engine(shard, pool_size=1, max_overflow=0)
        db.event.listen(engine, "connect", _set_pragmas)
        self._engines[shard] = engine
        run_shards = [name for name in self._engines if name != INDEX_SHARD_NAME]
        for name in run_shards[:max(0, len(run_shards) - self._max_open_run_shards)]:
            self._engines.pop(name).dispose()
        return engine

    @contextmanager
    def _connect(self, shard: str) -> Iterator[Connection]:
        with self._db_lock:  # as in Dagster: one caller at a time, so one pooled connection per shard suffices
            # First use, or the first since a wipe deleted the run files (Dagster then forgets which it initialised):
            # a connection kept from before must not outlive its file.
            if shard not in self._initialized_dbs:
                stale = self._own_engines().pop(shard, None)
                if stale is not None:
                    stale.dispose()
                # Schema creation inspects the database on a second connection; it runs once per shard, so it keeps
                # Dagster's throwaway engine.
                init_engine = self._new_engine(shard, poolclass=db.pool.NullPool)
                self._initdb(init_engine)
                init_engine.dispose()
                self._initialized_dbs.add(shard)
            with self._engine(shard).connect() as conn, conn.begin():
                yield conn

    def has_table(self, table_name: str) -> bool:
        # Asked on every stored asset event, while a connection is held; Dagster answers on a new engine each time.
        # A table that exists stays (only a migration adds one), so only that answer is kept.
        if table_name in self._tables_found:
            return True
        found = super().has_table(table_name)
        if found:
            self._tables_found.add(table_name)
        return found

    def watch(self, run_id: str, cursor: str | None, callback: EventHandlerFn) -> None:
        # Dagster's own body, with the watcher above.
        if not self._obs:
            self._obs = Observer()
            self._obs.start()
        watchdog = _RunLogWatchdog(self, run_id, callback, cursor)
        self._watchers[run_id][callback] = (watchdog, self._obs.schedule(watchdog, self._base_dir, recursive=True))

    def dispose(self) -> None:
        super().dispose()  # stops the watchers first, which read through these engines
        with self._db_lock:
            engines = self._own_engines()
            for engine in engines.values():
                engine.dispose()
            engines.clear()
