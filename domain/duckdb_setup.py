"""DuckDB set-up that must work offline.

DuckDB normally downloads extensions on first use. The `delta` extension instead comes from the pip package
`duckdb-extension-delta`; installing it once from that wheel puts it in the user's extension directory, after
which `LOAD delta` (and dbt-duckdb's `extensions: [delta]`) work in every connection without a network.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from functools import cache

import duckdb

# Work beyond it spills. A process holds about half a gigabyte beside DuckDB's pages, so this keeps the large size's
# feature build, its heaviest DuckDB work, within issue 19's 4 GB, as fast as under 4GB (docs/performance.md,
# "The general memory limit").
DEFAULT_MEMORY_LIMIT = "3GB"
# The limit of a dbt run that builds a few snapshots over the standing activity table (a weekly run): DuckDB keeps
# pages cached up to its limit whatever a run needs, and such a run is as fast under this one (docs/performance.md,
# "A weekly run's memory limit").
DEFAULT_INCREMENTAL_MEMORY_LIMIT = "600MB"


def ensure_delta_extension(con: duckdb.DuckDBPyConnection | None = None) -> None:
    """Load the pip-packaged `delta` extension into `con`, installing it first if it is not installed; without
    `con`, only make sure it is installed (once per process: dbt's connections then load it themselves)."""
    if con is None:
        _install_delta_extension()
        return
    _load_delta_extension(con)


def _load_delta_extension(con: duckdb.DuckDBPyConnection) -> None:
    import duckdb_extensions

    try:
        con.sql("LOAD delta")
    except duckdb.Error:
        duckdb_extensions.import_extension("delta", con=con)
        con.sql("LOAD delta")


@cache
def _install_delta_extension() -> None:
    with duckdb.connect() as con:
        _load_delta_extension(con)


def incremental_memory_limit() -> str:
    """ASSAY_DUCKDB_INCREMENTAL_MEMORY_LIMIT: the DuckDB memory limit of a weekly dbt run."""
    return os.environ.get("ASSAY_DUCKDB_INCREMENTAL_MEMORY_LIMIT", DEFAULT_INCREMENTAL_MEMORY_LIMIT)


MEMORY_SIZE = re.compile(r"[0-9]+(\.[0-9]+)? ?(KB|MB|GB|TB|KiB|MiB|GiB|TiB)", re.IGNORECASE)


def dbt_run_memory_limit(environ: Mapping[str, str]) -> str:
    """The DuckDB memory limit of a dbt run: the orchestrator's for this run (ASSAY_DBT_MEMORY_LIMIT, which it sets
    for a weekly run: assets/features/dbt.py), else ASSAY_DUCKDB_MEMORY_LIMIT, the limit of every Assay
    connection. Anything but a size such as '600MB' is refused, so that no other text reaches the SQL."""
    limit = (environ.get("ASSAY_DBT_MEMORY_LIMIT") or environ.get("ASSAY_DUCKDB_MEMORY_LIMIT")
             or DEFAULT_MEMORY_LIMIT).strip()
    if not MEMORY_SIZE.fullmatch(limit):
        raise ValueError(f"DuckDB memory limit: expected a size such as '600MB', got {limit!r}")
    return limit


def connect(path: str = ":memory:", read_only: bool = False, delta: bool = True,
            memory_limit: str | None = None) -> duckdb.DuckDBPyConnection:
    """A connection held to the memory limit that dbt's connections have (ASSAY_DUCKDB_MEMORY_LIMIT), or to
    `memory_limit` for work that needs less: DuckDB's own default is 80% of the machine, it keeps the pages it has
    read cached up to its limit, and what goes over the limit spills to the temporary directory beside the
    database. With `delta_scan` available unless `delta` is false: loading the extension costs more than opening
    the connection (docs/performance.md, "The weekly tick")."""
    limit = memory_limit or os.environ.get("ASSAY_DUCKDB_MEMORY_LIMIT", DEFAULT_MEMORY_LIMIT)
    con = duckdb.connect(path, read_only=read_only, config={"memory_limit": limit})
    if delta:
        ensure_delta_extension(con)
    return con
