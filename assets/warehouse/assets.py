"""The analyst warehouse: views over the gold Delta tables inside warehouse.duckdb."""


from dagster import AssetKey, AutomationCondition, MaterializeResult, MetadataValue, asset

from assets.features.dbt import WAREHOUSE_POOL
from assets.warehouse.views import GOLD_TABLES, create_views
from domain.duckdb_setup import connect
from resources.assay import AssayResource
from resources.lake import LakeResource

_UPSTREAM = {
    "customer_features": ["gold", "customer_features"],
    "churn_labels": ["gold", "churn_labels"],
    "customer_scores": ["gold", "customer_scores"],
    "drift_summary": ["monitoring", "drift_summary"],
    "model_registry": ["models", "champion"],
    "tuning_trials": ["models", "lightgbm_params"],
    "tuning_results": ["models", "lightgbm_params"],
    "threshold_simulation": ["gold", "threshold_simulation"],
    "risk_by_segment": ["reports", "risk_by_segment"],
    "monitoring_metrics": ["gold", "monitoring_metrics"],
}  # audit_log has no asset of its own: scoring, exports and reports append to it


@asset(
    key=AssetKey(["warehouse", "analyst_views"]),
    deps=[AssetKey(key) for key in _UPSTREAM.values()],
    group_name="warehouse",
    kinds={"duckdb"},
    pool=WAREHOUSE_POOL,
    # Refreshed whenever a gold table is rewritten (the daemon of `make ui` evaluates this).
    automation_condition=AutomationCondition.eager(),
    description="Views in warehouse.duckdb (schema main) over every gold Delta table, for analysts.",
)
def analyst_views(assay: AssayResource, lake: LakeResource) -> MaterializeResult:
    tables = {name: lake.uri("gold", name) for name in GOLD_TABLES if lake.exists("gold", name)}
    con = connect(str(assay.warehouse_path))
    try:
        counts = create_views(con, tables)
    finally:
        con.close()
    return MaterializeResult(
        metadata={
            "views": MetadataValue.json(counts),
            "missing_tables": MetadataValue.json(sorted(set(GOLD_TABLES) - set(tables))),
            "warehouse": MetadataValue.path(str(assay.warehouse_path)),
            "example": MetadataValue.md(
                f"```sh\npython -c \"import duckdb; print(duckdb.connect('{assay.warehouse_path}', read_only=True)"
                ".sql('select * from customer_scores limit 5'))\"\n```"
            ),
        }
    )
