"""Connections to DuckDB: the memory limit always, the delta extension where a caller reads Delta tables."""

from __future__ import annotations

import duckdb

from domain.duckdb_setup import connect


def _delta_loaded(con) -> bool:
    return con.sql("select loaded from duckdb_extensions() where extension_name = 'delta'").fetchone() == (True,)


def _memory_limit(con) -> str:
    return con.sql("select current_setting('memory_limit')").fetchone()[0]


def test_a_connection_without_delta_keeps_the_memory_limit_and_loads_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv("ASSAY_DUCKDB_MEMORY_LIMIT", "512MB")
    with connect(str(tmp_path / "a.duckdb")) as with_delta, connect(str(tmp_path / "b.duckdb"), delta=False) as plain:
        assert _delta_loaded(with_delta) and not _delta_loaded(plain)
        # the same limit on both, and not DuckDB's default
        assert _memory_limit(plain) == _memory_limit(with_delta) != _memory_limit(duckdb.connect())


def test_a_connection_for_lighter_work_takes_its_own_limit(tmp_path, monkeypatch):
    """The export's connection (assets/features/gold.py) is held under the general limit, not to it."""
    monkeypatch.setenv("ASSAY_DUCKDB_MEMORY_LIMIT", "2GB")
    with connect(str(tmp_path / "a.duckdb"), delta=False) as general, \
            connect(str(tmp_path / "b.duckdb"), delta=False, memory_limit="300MB") as light:
        assert _memory_limit(general) != _memory_limit(light)
        assert _memory_limit(light) == duckdb.connect(config={"memory_limit": "300MB"}).sql(
            "select current_setting('memory_limit')").fetchone()[0]
