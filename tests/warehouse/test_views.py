"""Analyst views over Delta answer plain SQL from a fresh DuckDB connection."""

from __future__ import annotations

from datetime import date

import duckdb
import polars as pl

from assets.warehouse.views import create_views
from domain.duckdb_setup import connect


def test_views_over_delta_answer_from_a_new_read_only_connection(tmp_path, lake):
    scores = pl.DataFrame({"customer_id": ["a", "b"], "snapshot_date": [date(2025, 1, 6)] * 2, "p_churn": [0.2, 0.9]})
    lake.replace_window("gold", "customer_scores", scores, "snapshot_date", date(2025, 1, 6), date(2025, 1, 13))
    path = str(tmp_path / "warehouse.duckdb")
    con = connect(path)
    assert create_views(con, {"customer_scores": lake.uri("gold", "customer_scores")}) == {"customer_scores": 2}
    con.close()
    # A plain client: no Assay code, the delta extension autoloads from where set-up installed it.
    analyst = duckdb.connect(path, read_only=True)
    assert analyst.sql("select customer_id from customer_scores where p_churn > 0.5").fetchall() == [("b",)]
    analyst.close()
