"""The lake: Delta tables under one root (a local path or an object-store URI)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import polars as pl
from dagster import ConfigurableResource
from pydantic import Field


@dataclass(frozen=True)
class WriteResult:
    uri: str
    version: int
    rows: int


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
            write_deltalake(
                uri,
                frame.to_arrow(),
                mode="overwrite",
                predicate=predicate,
                schema_mode="merge",
                partition_by=partition_by,
                storage_options=options,
            )
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
        write_deltalake(uri, frame.to_arrow(), mode="append", schema_mode="merge",
                        storage_options=self.storage_options or None)
        return WriteResult(uri=uri, version=self.version(layer, name) or 0, rows=frame.height)

    def overwrite(self, layer: str, name: str, frame: pl.DataFrame) -> WriteResult:
        """Replace the whole table (for small derived tables that are recomputed as a whole)."""
        from deltalake import write_deltalake

        uri = self.uri(layer, name)
        write_deltalake(uri, frame.to_arrow(), mode="overwrite", schema_mode="overwrite",
                        storage_options=self.storage_options or None)
        return WriteResult(uri=uri, version=self.version(layer, name) or 0, rows=frame.height)

    def rebuild(self, layer: str, name: str, frame: pl.DataFrame) -> WriteResult:
        """Replace a table by a fresh one holding `frame` (same schema and partitioning) and no history: no old
        file and no transaction log entry survives, so nothing removed can come back by time travel or be read
        from the log's file statistics. Local lakes only (the swap is a directory rename)."""
        import os
        import shutil

        import pyarrow as pa
        from deltalake import DeltaTable, write_deltalake

        uri = self.uri(layer, name)
        if "://" in uri:
            raise NotImplementedError(f"rebuilding a table works on a local lake only, not {uri}")
        old = DeltaTable(uri, storage_options=self.storage_options or None)
        schema = pa.schema(old.schema().to_arrow())
        staging = f"{uri}.rebuild"
        shutil.rmtree(staging, ignore_errors=True)
        write_deltalake(staging, frame.to_arrow().cast(schema) if frame.height else schema.empty_table(),
                        partition_by=old.metadata().partition_columns or None, mode="overwrite")
        shutil.rmtree(uri)
        os.rename(staging, uri)
        return WriteResult(uri=uri, version=0, rows=frame.height)

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
