"""What a home holds of a person, for the erasure tests: a byte scan of every file, and per-table row counts."""

from __future__ import annotations

import re
from pathlib import Path

import duckdb
import polars as pl
import pyarrow.parquet as pq


def traces(root: Path, needles: list[str]) -> list[str]:
    """Every file under root whose bytes, or decoded Parquet or DuckDB values, hold one of the needles as a whole
    token."""
    patterns = [re.compile(rb"(?<![\w])" + re.escape(n.encode()) + rb"(?![\w])") for n in needles]
    found = []
    for path in (p for p in root.rglob("*") if p.is_file()):
        data = path.read_bytes()
        if path.suffix == ".parquet":
            table = pq.read_table(path)
            data += "\n".join(str(v) for col in table.columns for v in col.to_pylist()).encode()
        if path.suffix == ".duckdb":
            con = duckdb.connect(str(path), read_only=True)
            for schema, name in con.execute("select table_schema, table_name from information_schema.tables "
                                            "where table_type = 'BASE TABLE'").fetchall():
                data += str(con.execute(f'select * from "{schema}"."{name}"').fetchall()).encode()
            con.close()
        if any(p.search(data) for p in patterns):
            found.append(str(path.relative_to(root)))
    return found


def rows_by_table(lake, token: str, devices: list[str] | None = None) -> dict[str, tuple[int, int]]:
    """Per table, read in full (so every table is readable): (all rows, the person's rows: with their customer_id,
    or anonymous rows of their devices). `devices`: their device tokens (default: from bronze/events now)."""
    if devices is None:
        devices = (lake.scan("bronze", "events").filter(pl.col("customer_id") == token).select("device_id")
                   .collect().to_series().drop_nulls().unique().to_list()) if lake.exists("bronze", "events") else []
    out = {}
    for layer, name in lake.tables():
        frame = lake.scan(layer, name).collect()
        mine = pl.lit(False)
        if "customer_id" in frame.columns:
            mine = pl.col("customer_id") == token
            if "device_id" in frame.columns:
                mine = mine | (pl.col("customer_id").is_null() & pl.col("device_id").is_in(devices))
        out[f"{layer}/{name}"] = (frame.height, frame.filter(mine).height)
    return out
