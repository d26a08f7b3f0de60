"""The lake: Delta tables under one root (a local path or an object-store URI)."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq
from dagster import ConfigurableResource
from pydantic import Field

from domain.faults import fault_point


@dataclass(frozen=True)
class WriteResult:
    uri: str
    version: int
    rows: int


@dataclass(frozen=True)
class Rewrite:
    version_read: int
    version_written: int
    rows_removed: int  # rows read minus rows written


LOG_RETENTION = "delta.logRetentionDuration"
DEFAULT_LOG_RETENTION = "interval 30 days"  # Delta's default
ZERO_LOG_RETENTION = "interval 0 seconds"


def _log_mentions(fs: pafs.FileSystem, log_dir: str, mentions: Callable[[str], bool]) -> bool:
    """Whether a commit or checkpoint of the transaction log quotes a value that `mentions` matches."""
    for path in _listed(fs, log_dir):
        if path.endswith(".json"):
            with fs.open_input_stream(path) as stream:
                if mentions(stream.read().decode(errors="replace")):
                    return True
        elif (".checkpoint" in path and path.endswith(".parquet")
              and mentions(str(pq.read_table(path, filesystem=fs).to_pylist()))):
            return True
    return False


def _listed(fs: pafs.FileSystem, folder: str) -> list[str]:
    """The files under `folder`, sorted (an object store has no folders: every object under the prefix)."""
    selector = pafs.FileSelector(folder, recursive=True, allow_not_found=True)
    return sorted(info.path for info in fs.get_file_info(selector) if info.type == pafs.FileType.File)


def lake_filesystem(root: str, storage_options: dict[str, str]) -> tuple[pafs.FileSystem, str]:
    """The file system the lake root is on, and the root's path in it. An object store takes its credentials and
    endpoint from the storage options, else from the environment (`AWS_*`), as deltalake and polars do."""
    if "://" not in root:
        return pafs.LocalFileSystem(), str(Path(root).resolve())
    options = {k.lower().removeprefix("aws_"): v for k, v in storage_options.items()}
    if not root.startswith("s3://") or not options:
        return pafs.FileSystem.from_uri(root.rstrip("/"))
    endpoint = options.get("endpoint_url") or options.get("endpoint")
    s3 = pafs.S3FileSystem(
        access_key=options.get("access_key_id"), secret_key=options.get("secret_access_key"),
        session_token=options.get("session_token"), region=options.get("region"),
        endpoint_override=endpoint, scheme="http" if endpoint and endpoint.startswith("http://") else "https")
    return s3, root.removeprefix("s3://").rstrip("/")


COMMIT_ATTEMPTS = 8  # the last waits 6.4 s: a burst of schema changes is over by then


def _retrying_conflicts(write: Callable[[], None]) -> None:
    """Run a write that is safe to repeat (a window replace, an append) again when a concurrent commit conflicts
    with it. delta-rs retries compatible commits itself, but a writer that merges a new column into the schema
    fails every other writer of the table ("Metadata changed since last commit")."""
    from deltalake.exceptions import CommitFailedError

    for attempt in range(COMMIT_ATTEMPTS):
        try:
            write()
            return
        except CommitFailedError:
            if attempt == COMMIT_ATTEMPTS - 1:
                raise
            time.sleep(0.05 * 2 ** attempt)


def _files_holding(fs: pafs.FileSystem, paths: list[str], holds: Callable[[pl.DataFrame], pl.Expr],
                   uri_of: Callable[[str], str], storage_options: dict[str, str] | None) -> list[str]:
    """The Parquet files among `paths` with a row that `holds` selects: one scan per distinct file schema (a table
    whose columns changed has several), not one read per file (a daily-partitioned table has hundreds)."""
    by_schema: dict[tuple, list[str]] = {}
    for path in paths:
        schema = pl.from_arrow(pq.read_schema(path, filesystem=fs).empty_table()).schema
        by_schema.setdefault(tuple(schema.items()), []).append(path)
    found = []
    for schema, group in by_schema.items():
        selected = holds(pl.DataFrame(schema=dict(schema)))
        uris = {uri_of(path): path for path in group}
        files = (pl.scan_parquet(list(uris), include_file_paths="__file", storage_options=storage_options)
                 .filter(selected).select("__file").unique().collect().to_series().to_list())
        found += [uris[f] for f in files]
    return sorted(found)


def _literal(value: date | str) -> str:
    return f"'{value.isoformat() if isinstance(value, date) else value}'"


def window_predicate(column: str, start: date, end: date) -> str:
    """Half-open window `start <= column < end`, as a Delta predicate."""
    return f"{column} >= {_literal(start)} AND {column} < {_literal(end)}"


class LakeResource(ConfigurableResource):
    """Reads and writes the Delta tables of the lake.

    Every write replaces a half-open window of a partition column, so re-running a partition (or a range of
    them) replaces exactly those rows: backfills are idempotent.
    """

    root: str = Field(description="Lake root: a local directory or an object-store URI.")
    storage_options: dict[str, str] = Field(default_factory=dict, description="deltalake storage options.")

    def uri(self, layer: str, name: str) -> str:
        return f"{self.root.rstrip('/')}/{layer}/{name}"

    def exists(self, layer: str, name: str) -> bool:
        from deltalake import DeltaTable

        return DeltaTable.is_deltatable(self.uri(layer, name), storage_options=self.storage_options or None)

    def version(self, layer: str, name: str) -> int | None:
        from deltalake import DeltaTable

        if not self.exists(layer, name):
            return None
        return DeltaTable(self.uri(layer, name), storage_options=self.storage_options or None).version()

    def replace_window(
        self,
        layer: str,
        name: str,
        frame: pl.DataFrame,
        column: str,
        start: date,
        end: date,
        partition_by: list[str] | None = None,
    ) -> WriteResult:
        """Replace rows with `start <= column < end` by `frame` (which must lie inside that window). One asset
        writes a table: a window replaced here holds only that asset's rows."""
        from deltalake import write_deltalake

        if frame.height:
            outside = frame.filter((pl.col(column) < start) | (pl.col(column) >= end)).height
            if outside:
                raise ValueError(f"{outside} rows of {layer}/{name} fall outside [{start}, {end}) on {column}")
        predicate = window_predicate(column, start, end)
        uri = self.uri(layer, name)
        options = self.storage_options or None
        if not self.exists(layer, name):
            # Creating with the first batch fixes the partitioning; an empty first batch still creates the table
            # so downstream readers (dbt, views) find a schema.
            write_deltalake(uri, frame.to_arrow(), mode="overwrite", partition_by=partition_by, storage_options=options)
        else:
            _retrying_conflicts(lambda: write_deltalake(
                uri,
                frame.to_arrow(),
                mode="overwrite",
                predicate=predicate,
                schema_mode="merge",
                partition_by=partition_by,
                storage_options=options,
            ))
        return WriteResult(uri=uri, version=self.version(layer, name) or 0, rows=frame.height)

    def replace_window_stream(
        self, layer: str, name: str, reader, column: str, start: date, end: date, partition_by: list[str] | None = None
    ) -> WriteResult:
        """Like `replace_window`, from an Arrow record-batch stream (the caller's query bounds the window)."""
        from deltalake import write_deltalake

        uri = self.uri(layer, name)
        options = self.storage_options or None
        if not self.exists(layer, name):
            write_deltalake(uri, reader, mode="overwrite", partition_by=partition_by, storage_options=options)
        else:
            write_deltalake(
                uri, reader, mode="overwrite", predicate=window_predicate(column, start, end),
                schema_mode="merge", partition_by=partition_by, storage_options=options,
            )
        return WriteResult(uri=uri, version=self.version(layer, name) or 0, rows=-1)

    def append(self, layer: str, name: str, frame: pl.DataFrame) -> WriteResult:
        from deltalake import write_deltalake

        uri = self.uri(layer, name)
        _retrying_conflicts(lambda: write_deltalake(uri, frame.to_arrow(), mode="append", schema_mode="merge",
                                                    storage_options=self.storage_options or None))
        return WriteResult(uri=uri, version=self.version(layer, name) or 0, rows=frame.height)

    def overwrite(self, layer: str, name: str, frame: pl.DataFrame) -> WriteResult:
        """Replace the whole table (for small derived tables that are recomputed as a whole)."""
        from deltalake import write_deltalake

        uri = self.uri(layer, name)
        write_deltalake(uri, frame.to_arrow(), mode="overwrite", schema_mode="overwrite",
                        storage_options=self.storage_options or None)
        return WriteResult(uri=uri, version=self.version(layer, name) or 0, rows=frame.height)

    def rewrite(self, layer: str, name: str, change: Callable[[pl.DataFrame], pl.DataFrame | None],
                attempts: int = 5) -> Rewrite:
        """Commit `change(rows)` as the table's new content, `change` seeing the rows of the version read (None:
        nothing to change). One Delta overwrite made on that version, so a crash leaves the table at the old
        version or the new one, and a writer that committed meanwhile is never lost: an append lands beside the
        rewrite (which removes only the files it read); a concurrent rewrite of the same files fails the commit,
        and the table is read again."""
        from deltalake import DeltaTable, write_deltalake
        from deltalake.exceptions import CommitFailedError

        options = self.storage_options or None
        for attempt in range(attempts):
            table = DeltaTable(self.uri(layer, name), storage_options=options)
            version = table.version()
            frame = pl.scan_delta(self.uri(layer, name), version=version, storage_options=options).collect()
            changed = change(frame)
            if changed is None:
                return Rewrite(version, version, 0)
            schema = pa.schema(table.schema().to_arrow())
            try:
                write_deltalake(table, changed.to_arrow().cast(schema) if changed.height else schema.empty_table(),
                                mode="overwrite", partition_by=table.metadata().partition_columns or None)
            except CommitFailedError:
                if attempt == attempts - 1:
                    raise
                continue
            written = DeltaTable(self.uri(layer, name), storage_options=options).version()
            return Rewrite(version, written, frame.height - changed.height)
        raise AssertionError("unreachable")

    def rewrite_without(self, layer: str, name: str, rows: Callable[[pl.DataFrame], pl.Expr]) -> Rewrite:
        """`rewrite` that drops the rows `rows` selects (nothing is committed when there are none)."""
        def without(frame: pl.DataFrame) -> pl.DataFrame | None:
            selected = rows(frame)
            return frame.filter(~selected) if frame.filter(selected).height else None

        return self.rewrite(layer, name, without)

    def purge_earlier_versions(self, layer: str, name: str, holds: Callable[[pl.DataFrame], pl.Expr],
                               mentions: Callable[[str], bool]) -> int:
        """Remove what earlier versions of the table keep of rows that `holds` selects: their data files (kept for
        time travel until vacuumed) and the transaction log, whose file statistics quote column values (an id or
        an e-mail can be a file's minimum). The log is cut at a checkpoint of the current version (Delta's own
        log clean-up, with a zero log retention for that moment); then the data files that are no longer read
        and hold such rows are deleted. Each step can run again after a crash. Returns the files deleted.

        A reader still on an earlier version loses those files: that is the point. On a local disk or an object
        store alike: the files are listed and deleted through the lake's file system."""
        from deltalake import DeltaTable

        fs, table_path = self._table_path(layer, name)
        read = {self._path_of(uri) for uri in self.current_files(layer, name)}
        earlier = [p for p in _listed(fs, table_path)
                   if p.endswith(".parquet") and "/_delta_log/" not in p and p not in read]
        options = self.storage_options or None
        stale = _files_holding(fs, earlier, holds, self._uri_of, options)
        if stale or _log_mentions(fs, f"{table_path}/_delta_log", mentions):
            uri = self.uri(layer, name)
            table = DeltaTable(uri, storage_options=options)
            kept_for = table.metadata().configuration.get(LOG_RETENTION, DEFAULT_LOG_RETENTION)
            if kept_for == ZERO_LOG_RETENTION:  # a purge killed before it restored the setting
                kept_for = DEFAULT_LOG_RETENTION
            table.alter.set_table_properties({LOG_RETENTION: ZERO_LOG_RETENTION})
            table = DeltaTable(uri, storage_options=options)
            table.create_checkpoint()
            table.cleanup_metadata()
            table.alter.set_table_properties({LOG_RETENTION: kept_for})
            fault_point("lake:log-purged")
        for path in stale:
            with contextlib.suppress(FileNotFoundError):  # deleted by a run killed after it
                fs.delete_file(path)
        return len(stale)

    def tables(self) -> list[tuple[str, str]]:
        """Every Delta table under the root, as (layer, name)."""
        fs, root = lake_filesystem(self.root, self.storage_options)
        found = []
        for layer in fs.get_file_info(pafs.FileSelector(root, allow_not_found=True)):
            if layer.type != pafs.FileType.Directory:
                continue
            for table in fs.get_file_info(pafs.FileSelector(layer.path)):
                if table.type == pafs.FileType.Directory and \
                        fs.get_file_info(f"{table.path}/_delta_log").type == pafs.FileType.Directory:
                    found.append((layer.base_name, table.base_name))
        return sorted(found)

    def _table_path(self, layer: str, name: str) -> tuple[pafs.FileSystem, str]:
        fs, root = lake_filesystem(self.root, self.storage_options)
        return fs, f"{root}/{layer}/{name}"

    def _scheme(self) -> str:
        return self.root.split("://", 1)[0] if "://" in self.root else ""

    def _uri_of(self, path: str) -> str:
        """A path of the lake's file system as a URI that deltalake and polars read."""
        return f"{self._scheme()}://{path}" if self._scheme() else path

    def _path_of(self, uri: str) -> str:
        """A data file's URI (as deltalake lists it) as a path of the lake's file system."""
        from urllib.parse import unquote

        if not self._scheme():
            return str(Path(uri.removeprefix("file://")).resolve())
        return unquote(uri.split("://", 1)[1])

    def current_files(self, layer: str, name: str) -> set[str]:
        """The data files the table's current version reads (local paths or URIs); any other data file under the
        table's folder belongs to an earlier version, kept until vacuumed."""
        from deltalake import DeltaTable

        return set(DeltaTable(self.uri(layer, name), storage_options=self.storage_options or None).file_uris())

    def scan(self, layer: str, name: str) -> pl.LazyFrame:
        # polars' reader, not DeltaTable.to_pyarrow_table(): the latter aborts the process at exit (delta-rs #2184).
        return pl.scan_delta(self.uri(layer, name), storage_options=self.storage_options or None)

    def read_window(self, layer: str, name: str, column: str, start: date, end: date) -> pl.DataFrame:
        return self.scan(layer, name).filter((pl.col(column) >= start) & (pl.col(column) < end)).collect()
