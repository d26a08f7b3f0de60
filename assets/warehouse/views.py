"""Analyst views: every gold table readable by name from any DuckDB client."""

from __future__ import annotations

import duckdb

# Analysts get no audience export (it exists to leave for a campaign tool) and no raw PII.
GOLD_TABLES = ("customer_features", "churn_labels", "customer_scores", "drift_summary", "model_registry",
               "model_decisions", "tuning_trials", "tuning_results", "threshold_simulation", "risk_by_segment",
               "audit_log", "monitoring_metrics", "alerts")


def create_views(con: duckdb.DuckDBPyConnection, tables: dict[str, str]) -> dict[str, int]:
    """Create or replace `main.<name>` as a view over the Delta table at each URI; returns row counts."""
    counts = {}
    for name, uri in tables.items():
        escaped = uri.replace("'", "''")
        con.execute(f"create or replace view main.{name} as select * from delta_scan('{escaped}')")
        counts[name] = con.execute(f"select count(*) from main.{name}").fetchone()[0]
    return counts
