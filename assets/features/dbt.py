"""The dbt project as Dagster assets: staging → intermediate → marts, partitioned by snapshot date.

Two dbt asset definitions over one manifest: the features (everything but the labels), built when a snapshot's
landing week is in, and the labels, built a horizon later, when the orders they look forward into have landed.
"""


import json
import os
import shutil
from collections.abc import Mapping, Sequence
from datetime import date, timedelta
from functools import cache
from pathlib import Path
from typing import Any

from dagster import AssetExecutionContext, AssetKey, AutomationCondition, BackfillPolicy, TimeWindowPartitionMapping
from dagster_dbt import DagsterDbtTranslator, DagsterDbtTranslatorSettings, DbtCliResource, dbt_assets

from assets.conditions import label_matured, snapshot_due
from assets.features.activity import ActivityPlan, plan_activity_run, read_ledger, record_activity_run
from assets.partitions import AssayPartitions
from domain.duckdb_setup import ensure_delta_extension, incremental_memory_limit
from resources.assay import AssayResource
from resources.lake import LakeResource

DBT_PROJECT_DIR = Path(__file__).resolve().parents[2] / "dbt_project"
MANIFEST_PATH = DBT_PROJECT_DIR / "target" / "manifest.json"
WAREHOUSE_POOL = "warehouse"  # DuckDB allows one writer: every step writing warehouse.duckdb uses this pool
LABEL_MODELS = "churn_labels"  # dbt selection of the models that look forward past their snapshot
FEATURE_MODELS = "dbt_feature_models"
KEEP_INVOCATIONS = 20
TARGET_FOLDER = "dbt_target"  # under the home: each invocation's folder, and the home's partial-parse state
PARTIAL_PARSE_FILE = "partial_parse.msgpack"


class AssayDbtTranslator(DagsterDbtTranslator):
    """dbt sources are the bronze tables; models keep their schema as the key prefix. A feature model of snapshot
    T reads the landing week before T; a label model reads the orders of [T, T + horizon)."""

    def __init__(self, partitions: AssayPartitions) -> None:
        super().__init__(settings=DagsterDbtTranslatorSettings(enable_asset_checks=True))
        self.partitions = partitions

    def is_label_model(self, dbt_resource_props: Mapping[str, Any]) -> bool:
        return dbt_resource_props["resource_type"] == "model" and dbt_resource_props["name"] == LABEL_MODELS

    def get_asset_key(self, dbt_resource_props: Mapping[str, Any]) -> AssetKey:
        if dbt_resource_props["resource_type"] == "source":
            return AssetKey([dbt_resource_props["source_name"], dbt_resource_props["name"]])
        return AssetKey([dbt_resource_props["schema"], dbt_resource_props["name"]])

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        return "features"

    def get_partition_mapping(
        self, dbt_resource_props: Mapping[str, Any], dbt_parent_resource_props: Mapping[str, Any]
    ) -> TimeWindowPartitionMapping | None:
        if dbt_parent_resource_props["resource_type"] != "source":
            return None
        if self.is_label_model(dbt_resource_props):
            return self.partitions.label_window_mapping()
        # Snapshot T uses landing days before T; the newest of them are the week before T.
        return TimeWindowPartitionMapping(start_offset=-1, end_offset=-1)

    def get_automation_condition(self, dbt_resource_props: Mapping[str, Any]) -> AutomationCondition | None:
        period = self.partitions.snapshot_period_days
        if self.is_label_model(dbt_resource_props):
            return label_matured(period, self.partitions.label_periods)
        return snapshot_due(period)


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


DBT_RUN_VARS = ("snapshot_dates", "label_horizon_days", "active_window_days", "data_end", "activity_from",
                "landing_from", "memory_limit")

# A dbt run is a weekly run, held to the incremental memory limit, when it builds at most this many snapshots and
# recomputes at most this many days of the activity table before its first snapshot: a weekly tick, an outage's
# catch-up, a corrected recent day. A backfill, a rebuild or an old correction keeps the general limit.
INCREMENTAL_RUN_SNAPSHOTS = 8
INCREMENTAL_RUN_RECOMPUTE_DAYS = 35


def run_memory_limit(snapshot_keys: Sequence[str], plan: ActivityPlan | None, incremental_limit: str) -> str | None:
    """The DuckDB memory limit of a dbt run over `snapshot_keys` (`plan`: its activity recompute, None for the
    labels): `incremental_limit` for a weekly run, None (the general limit, ASSAY_DUCKDB_MEMORY_LIMIT) for anything
    larger."""
    first = min(date.fromisoformat(k) for k in snapshot_keys)
    if len(snapshot_keys) > INCREMENTAL_RUN_SNAPSHOTS:
        return None
    if plan is not None and (plan.full_refresh or (
            plan.recompute_from is not None
            and plan.recompute_from < first - timedelta(days=INCREMENTAL_RUN_RECOMPUTE_DAYS))):
        return None
    return incremental_limit


def dbt_var_environment(dbt_vars: dict[str, Any]) -> dict[str, str]:
    """A run's dbt vars as the ASSAY_DBT_<NAME> environment variables the macros read (and, for memory_limit, the
    profile's plugin, domain/dbt_plugin.py); every one is set (empty when the run has no value), so that nothing of
    an earlier run is left standing."""
    unknown = set(dbt_vars) - set(DBT_RUN_VARS)
    if unknown:
        raise ValueError(f"dbt vars the macros do not read: {sorted(unknown)}")

    def text(value: Any) -> str:
        if value is None:
            return ""
        return ",".join(value) if isinstance(value, list | tuple) else str(value)

    return {f"ASSAY_DBT_{name.upper()}": text(dbt_vars.get(name)) for name in DBT_RUN_VARS}


def dbt_environment(assay: AssayResource, lake: LakeResource) -> dict[str, str]:
    """Environment variables the dbt profile and sources read."""
    return {"ASSAY_LAKE_ROOT": lake.root, "ASSAY_WAREHOUSE_PATH": str(assay.warehouse_path)}


def prune_invocation_folders(target: Path, keep: int) -> list[Path]:
    """Remove all but the newest `keep` per-invocation folders (`<asset>-<hash>`) that dagster-dbt made under
    the target folder; the files beside them (the parse state) are left alone."""
    folders = sorted((p for p in target.glob("dbt_*_models-*") if p.is_dir()), key=lambda p: p.stat().st_mtime)
    removed = folders[:-keep] if keep else folders
    for folder in removed:
        shutil.rmtree(folder, ignore_errors=True)
    return removed


def _copy_atomically(source: Path, destination: Path) -> None:
    destination.parent.mkdir(parents=True, exist_ok=True)
    staged = destination.with_name(destination.name + ".tmp")
    shutil.copyfile(source, staged)
    os.replace(staged, destination)


def seed_partial_parse(target_root: Path) -> None:
    """Give a home's target folder `make manifest`'s parse state the first time: dbt then re-parses only what
    differs, and a home whose profile is the one parsed (the default home) starts with a full partial parse."""
    parsed = DBT_PROJECT_DIR / "target" / PARTIAL_PARSE_FILE
    if not (target_root / PARTIAL_PARSE_FILE).exists() and parsed.exists():
        _copy_atomically(parsed, target_root / PARTIAL_PARSE_FILE)


def keep_partial_parse(invocation_target: Path, target_root: Path) -> None:
    """Keep the parse state a finished invocation wrote, so the home's next invocation starts from it.

    dagster-dbt gives each invocation its own target folder and seeds it from the target root's state; without this
    every invocation would start from `make manifest`'s, which another home's profile (its warehouse path) makes
    stale: dbt would parse the whole project each time."""
    written = invocation_target / PARTIAL_PARSE_FILE
    if written.exists():
        _copy_atomically(written, target_root / PARTIAL_PARSE_FILE)


@cache
def dbt_manifest() -> dict[str, Any]:
    if not MANIFEST_PATH.exists():
        raise FileNotFoundError(
            f"{MANIFEST_PATH} is missing: run `make manifest` (dbt parse) before loading the definitions."
        )
    return json.loads(MANIFEST_PATH.read_text())


def _run_dbt(context: AssetExecutionContext, dbt: DbtCliResource, assay: AssayResource, lake: LakeResource,
             data_end: date | None, features: bool, period_days: int):
    os.environ.update(dbt_environment(assay, lake))
    ensure_delta_extension()
    dbt_vars = snapshot_vars(context.partition_keys, assay.label_horizon_days, assay.active_window_days, data_end)
    # dbt's unit tests check the SQL, not the data: they run in the test suite, not in every production build
    args = ["build", "--exclude-resource-type", "unit_test"]
    plan = None
    if features:
        plan = plan_activity_run(lake.root, read_ledger(assay.warehouse_path))
        dbt_vars.update(plan.dbt_vars())
        if not plan.full_refresh:
            # staging tests check the days this run reads for the first time: its landing week and any late day
            first_week = min(date.fromisoformat(k) for k in context.partition_keys) - timedelta(days=period_days)
            dbt_vars["landing_from"] = min(filter(None, [first_week, plan.recompute_from])).isoformat()
        if plan.full_refresh:
            args.append("--full-refresh")  # the marts are protected from it (full_refresh: false)
        context.log.info(
            "activity table: "
            + ("built from scratch" if plan.full_refresh else
               f"recomputed from {plan.recompute_from} ({plan.changed_days} landing days changed)"
               if plan.recompute_from else "unchanged (no landing day changed)"))
    dbt_vars["memory_limit"] = run_memory_limit(context.partition_keys, plan, incremental_memory_limit())
    if dbt_vars["memory_limit"]:
        context.log.info(f"a weekly run: DuckDB memory limit {dbt_vars['memory_limit']}")
    # The run's vars travel as environment variables (macros/snapshot_vars.sql, assay_var): dbt then re-parses only
    # the files that read them. They are set for the moment dbt's process starts, so no later run inherits them.
    # The run's folders and parse state live in the home, not in the project's source tree.
    target_root = assay.home_path / TARGET_FOLDER
    seed_partial_parse(target_root)
    run_env = {**dbt_var_environment(dbt_vars), "DBT_TARGET_PATH": str(target_root)}
    saved = {name: os.environ.get(name) for name in run_env}
    os.environ.update(run_env)
    try:
        invocation = dbt.cli(args, context=context)
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
    yield from invocation.stream()
    keep_partial_parse(Path(invocation.target_path), target_root)
    if plan is not None:
        record_activity_run(assay.warehouse_path, plan)
    # each invocation writes its own target folder (logs, compiled SQL, run results); keep only the newest few
    prune_invocation_folders(Path(invocation.target_path).parent, keep=KEEP_INVOCATIONS)


def _dbt_definition(name: str, translator: AssayDbtTranslator, data_end: date | None, snapshots_per_run: int,
                    **selection: str):
    @dbt_assets(
        manifest=dbt_manifest(),
        name=name,
        partitions_def=translator.partitions.snapshots,
        dagster_dbt_translator=translator,
        # a backfill of many snapshots runs in chunks (ASSAY_FEATURE_SNAPSHOTS_PER_RUN), each a dbt invocation
        backfill_policy=BackfillPolicy.multi_run(snapshots_per_run),
        pool=WAREHOUSE_POOL,
        **selection,
    )
    def _models(context: AssetExecutionContext, dbt: DbtCliResource, assay: AssayResource, lake: LakeResource):
        yield from _run_dbt(context, dbt, assay, lake, data_end, features=name == FEATURE_MODELS,
                            period_days=translator.partitions.snapshot_period_days)

    return _models


def build_dbt_assets(partitions: AssayPartitions, data_end: date | None, snapshots_per_run: int) -> list:
    """The feature models and the label models, each a dbt asset definition partitioned by snapshot."""
    translator = AssayDbtTranslator(partitions)
    return [_dbt_definition(FEATURE_MODELS, translator, data_end, snapshots_per_run, exclude=LABEL_MODELS),
            _dbt_definition("dbt_label_models", translator, data_end, snapshots_per_run, select=LABEL_MODELS)]
