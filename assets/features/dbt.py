"""The dbt project as Dagster assets: staging → intermediate → marts, partitioned by snapshot date."""


import json
import os
from collections.abc import Mapping, Sequence
from datetime import date
from functools import cache
from pathlib import Path
from typing import Any

from dagster import AssetExecutionContext, AssetKey, BackfillPolicy, TimeWindowPartitionMapping
from dagster_dbt import DagsterDbtTranslator, DagsterDbtTranslatorSettings, DbtCliResource, dbt_assets

from domain.duckdb_setup import ensure_delta_extension
from orchestration.partitions import snapshot_partitions
from resources.assay import AssayResource
from resources.lake import LakeResource

DBT_PROJECT_DIR = Path(__file__).resolve().parents[2] / "dbt_project"
MANIFEST_PATH = DBT_PROJECT_DIR / "target" / "manifest.json"
WAREHOUSE_POOL = "warehouse"  # DuckDB allows one writer: every step writing warehouse.duckdb uses this pool


class AssayDbtTranslator(DagsterDbtTranslator):
    """dbt sources are the bronze tables; models keep their schema as the key prefix."""

    def get_asset_key(self, dbt_resource_props: Mapping[str, Any]) -> AssetKey:
        if dbt_resource_props["resource_type"] == "source":
            return AssetKey([dbt_resource_props["source_name"], dbt_resource_props["name"]])
        return AssetKey([dbt_resource_props["schema"], dbt_resource_props["name"]])

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        return "features"

    def get_partition_mapping(
        self, dbt_resource_props: Mapping[str, Any], dbt_parent_resource_props: Mapping[str, Any]
    ) -> TimeWindowPartitionMapping | None:
        if dbt_parent_resource_props["resource_type"] == "source":
            # Snapshot T uses landing days before T; the newest of them are the week before T.
            return TimeWindowPartitionMapping(start_offset=-1, end_offset=-1)
        return None


def snapshot_vars(
    snapshot_keys: Sequence[str], label_horizon_days: int, active_window_days: int, data_end: date | None
) -> dict[str, Any]:
    """dbt vars for a run over the given snapshot partitions."""
    dates = sorted(date.fromisoformat(k).isoformat() for k in snapshot_keys)
    if not dates:
        raise ValueError("a dbt feature run needs at least one snapshot date")
    return {
        "snapshot_dates": dates,
        "label_horizon_days": label_horizon_days,
        "active_window_days": active_window_days,
        "data_end": data_end.isoformat() if data_end else None,
    }


def dbt_environment(assay: AssayResource, lake: LakeResource) -> dict[str, str]:
    """Environment variables the dbt profile and sources read."""
    return {"ASSAY_LAKE_ROOT": lake.root, "ASSAY_WAREHOUSE_PATH": str(assay.warehouse_path)}


@cache
def dbt_manifest() -> dict[str, Any]:
    if not MANIFEST_PATH.exists():
        raise FileNotFoundError(
            f"{MANIFEST_PATH} is missing: run `make manifest` (dbt parse) before loading the definitions."
        )
    return json.loads(MANIFEST_PATH.read_text())


def build_dbt_feature_assets(data_end: date | None, snapshots_per_run: int):
    @dbt_assets(
        manifest=dbt_manifest(),
        partitions_def=snapshot_partitions,
        dagster_dbt_translator=AssayDbtTranslator(settings=DagsterDbtTranslatorSettings(enable_asset_checks=True)),
        # a backfill of many snapshots runs in chunks: customer_features' memory grows with a run's snapshots
        backfill_policy=BackfillPolicy.multi_run(snapshots_per_run),
        pool=WAREHOUSE_POOL,
    )
    def dbt_feature_models(context: AssetExecutionContext, dbt: DbtCliResource, assay: AssayResource,
                           lake: LakeResource):
        os.environ.update(dbt_environment(assay, lake))
        ensure_delta_extension()
        dbt_vars = snapshot_vars(context.partition_keys, assay.label_horizon_days, assay.active_window_days, data_end)
        yield from dbt.cli(["build", "--vars", json.dumps(dbt_vars)], context=context).stream()

    return dbt_feature_models
