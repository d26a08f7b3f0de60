"""Consent-filtered audience export, k-anonymous segment report, retention and data-subject requests; all log to
the audit table."""

import json
from datetime import UTC, date, datetime, timedelta

import polars as pl
from dagster import AssetExecutionContext, AssetKey, Config, MaterializeResult, MetadataValue, asset
from pydantic import Field

from assets.consent import current_consents, split_by_consent
from assets.features.dbt import WAREHOUSE_POOL
from assets.governance.anonymity import is_k_anonymous
from assets.governance.dsar import DsarContext, audit_outcomes, process_pending, requests
from assets.governance.exports import build_audience, risk_by_segment, with_source_ids
from assets.governance.retention import (
    DEFAULT_POLICY,
    FILE_POLICY,
    MODEL_REFERENCE_DAYS,
    apply_retention,
    expire_files,
    prune_model_references,
)
from assets.ingestion.pseudonymise import empty_vault
from assets.markdown import markdown_table
from assets.scoring.assets import skipped_while_unscored
from assets.scoring.scoring import latest_scores
from domain.contract import VAULT_SOURCE_ID, VAULT_TABLE
from domain.private_files import write_private
from resources.assay import AssayResource
from resources.audit import record
from resources.lake import LakeResource
from resources.registry import REGISTRY_TABLE


class AudienceConfig(Config):
    max_decile: int = Field(2, description="Export customers in risk deciles 1..max_decile (1 = highest risk).")


@asset(
    key=AssetKey(["exports", "retention_audience"]),
    deps=[AssetKey(["gold", "customer_scores"])],
    group_name="governance",
    kinds={"delta", "csv"},
    output_required=False,  # skipped, with its reason, while nothing is scored
    description="Highest-risk customers of the newest snapshot, segmented by decile and main reason, for a campaign "
                "tool; customers without marketing consent now are never in it.",
)
def retention_audience(context: AssetExecutionContext, config: AudienceConfig, assay: AssayResource,
                       lake: LakeResource):
    if skipped_while_unscored(context, lake):
        return
    scores = latest_scores(lake)
    snapshot = scores.item(0, "snapshot_date")
    candidates = build_audience(scores, config.max_decile)
    unexplained = candidates.get_column("reason_1_feature").null_count()
    if unexplained:
        context.log.warning(f"{unexplained} of {candidates.height} audience rows have no reason (segment "
                            f"'d<decile>:unknown'): their deciles are outside ASSAY_REASON_DECILES "
                            f"({assay.reason_deciles}) or their snapshot was scored without reasons")
    consented = split_by_consent(candidates, current_consents(lake), "marketing")
    audience = consented.allowed
    written = lake.replace_window("gold", "audience_exports", audience, "snapshot_date", snapshot,
                                  snapshot + timedelta(days=1))
    csv_path = assay.home_path / "exports" / f"retention_audience_{snapshot.isoformat()}.csv"
    csv_path.parent.mkdir(parents=True, exist_ok=True)
    # The lake keeps tokens; only the file handed to the campaign tool resolves them, from the vault.
    hand_off = with_source_ids(audience, lake.scan(*VAULT_TABLE) if lake.exists(*VAULT_TABLE) else
                               empty_vault().lazy())
    write_private(csv_path, hand_off.write_csv)
    record(lake, "export", "exports/retention_audience", context.run_id, audience.height,
           {"snapshot_date": snapshot, "file": str(csv_path), "excluded": consented.excluded})
    segments = audience.group_by("segment").len().sort("len", descending=True)
    yield MaterializeResult(metadata={
        "dagster/row_count": audience.height,
        "snapshot_date": str(snapshot),
        "candidates": candidates.height,
        "candidates_without_reason": unexplained,
        "excluded_without_marketing_consent": consented.excluded_total,
        "excluded_by_reason": MetadataValue.json(consented.excluded),
        "segments": MetadataValue.json(dict(segments.iter_rows())),
        "file": MetadataValue.path(str(csv_path)),
        "resolved_from_vault": hand_off.get_column(VAULT_SOURCE_ID).is_not_null().sum(),
        "delta_version": written.version,
    })


class SegmentReportConfig(Config):
    k: int = Field(10, description="Smallest group a published cell may describe (k-anonymity).")


@asset(
    key=AssetKey(["reports", "risk_by_segment"]),
    deps=[AssetKey(["gold", "customer_scores"]), AssetKey(["gold", "customer_features"])],
    group_name="governance",
    kinds={"delta"},
    output_required=False,  # skipped, with its reason, while nothing is scored
    description="Customers and mean churn probability by country, acquisition channel and decile on the newest "
                "snapshot; cells under k customers are suppressed, and the report is refused unless it passes.",
)
def risk_by_segment_report(context: AssetExecutionContext, config: SegmentReportConfig, lake: LakeResource):
    if skipped_while_unscored(context, lake):
        return
    scores = latest_scores(lake)
    snapshot = scores.item(0, "snapshot_date")
    profile = lake.scan("gold", "customer_features").filter(pl.col("snapshot_date") == snapshot).collect()
    report = risk_by_segment(scores, profile, config.k)
    if not is_k_anonymous(report, "customers", config.k):
        raise ValueError(f"risk_by_segment has a published cell under k={config.k}; not written")
    written = lake.replace_window("gold", "risk_by_segment", report, "snapshot_date", snapshot,
                                  snapshot + timedelta(days=1))
    suppressed = int(report.get_column("suppressed").sum())
    record(lake, "report", "reports/risk_by_segment", context.run_id, report.height,
           {"snapshot_date": snapshot, "k": config.k, "suppressed_cells": suppressed})
    yield MaterializeResult(metadata={
        "dagster/row_count": report.height, "snapshot_date": str(snapshot), "k": config.k,
        "suppressed_cells": suppressed,
        "published_customers": int(report.get_column("customers").sum()),
        "delta_version": written.version,
    })


class RetentionConfig(Config):
    policy_json: str = Field(
        "", description='Overrides of the default policy as JSON, {"bronze/events": 395, ...} (days kept); '
                        "see DEFAULT_POLICY in assets/governance/retention.py.")
    as_of: str = Field(
        "", description="Date retention is measured from (YYYY-MM-DD). Empty: today. The daily schedule sets it to "
                        "the day it fired for.")
    purge_landing: bool = Field(True, description="Also delete landing day folders older than a bronze cutoff.")


@asset(
    key=AssetKey(["governance", "retention"]),
    group_name="retention",
    kinds={"delta"},
    description="Deletes rows older than each table's retention period, vacuums their files (no time travel back), "
                "purges the matching landing days and deletes expired hand-off files and access bundles, and archived "
                "models' drift references (the others lose customers who withdrew profiling consent); scheduled daily.",
)
def retention(context: AssetExecutionContext, config: RetentionConfig, assay: AssayResource,
              lake: LakeResource) -> MaterializeResult:
    policy = effective_policy(config.policy_json)
    as_of = date.fromisoformat(config.as_of) if config.as_of else datetime.now(UTC).date()
    outcomes = []
    for table, (column, days) in policy.items():
        outcome = apply_retention(lake, table, column, days, as_of,
                                  assay.landing_path if config.purge_landing else None)
        outcomes.append(outcome)
        if outcome.rows_deleted or outcome.landing_days_purged:
            record(lake, "retention_delete", table, context.run_id, outcome.rows_deleted,
                   {"cutoff": outcome.cutoff, "files_vacuumed": outcome.files_vacuumed,
                    "landing_days_purged": outcome.landing_days_purged})
    files = {}
    for name, (pattern, days) in FILE_POLICY.items():
        files[name] = expire_files(assay.home_path, pattern, days, as_of)
        if files[name]:
            record(lake, "retention_delete", name, context.run_id, files[name], {"files_deleted": files[name]})
    # drift references: archived versions' expire; the others lose customers who withdrew profiling consent
    registry = lake.scan(*REGISTRY_TABLE).collect() if lake.exists(*REGISTRY_TABLE) else pl.DataFrame()
    references = prune_model_references(
        assay.models_path, registry,
        current_consents(lake) if assay.profiling_legal_basis == "consent" else None, as_of)
    files["models/drift_references"] = references.files_expired
    if references.files_expired or references.rows_withdrawn:
        record(lake, "retention_delete", "models/drift_references", context.run_id, references.rows_withdrawn,
               {"files_deleted": references.files_expired, "files_rewritten": references.files_rewritten,
                "kept_days": MODEL_REFERENCE_DAYS})
    rows = [{"table": o.table, "kept_days": policy[o.table][1], "cutoff": str(o.cutoff), "rows_before": o.rows_before,
             "deleted": o.rows_deleted, "after": o.rows_after, "files_vacuumed": o.files_vacuumed,
             "landing_days_purged": o.landing_days_purged} for o in outcomes]
    return MaterializeResult(metadata={
        "as_of": str(as_of),
        "rows_deleted": sum(o.rows_deleted for o in outcomes),
        "files_deleted": MetadataValue.json(files),
        "drift_reference_rows_withdrawn": references.rows_withdrawn,
        "policy": MetadataValue.md(markdown_table(rows, digits=0)),
    })


def effective_policy(overrides_json: str) -> dict[str, tuple[str, int]]:
    """The default policy with the configured day counts; an unknown table is an error, not a silent no-op."""
    policy = dict(DEFAULT_POLICY)
    for table, days in (json.loads(overrides_json) if overrides_json else {}).items():
        if table not in policy:
            raise ValueError(f"no retention rule for {table!r}; known tables: {sorted(policy)}")
        if int(days) < 1:
            raise ValueError(f"{table}: retention must keep at least one day")
        policy[table] = (policy[table][0], int(days))
    return policy


@asset(
    key=AssetKey(["governance", "dsar_processing"]),
    group_name="dsar",
    kinds={"delta"},
    pool=WAREHOUSE_POOL,  # an erasure rewrites the warehouse file: no dbt run may hold it meanwhile
    description="Handles pending data-subject requests: access bundle, erasure from every table, landing file and "
                "the warehouse (with a tombstone against re-ingestion), or opt-out. Launched by dsar_sensor.",
)
def dsar_processing(context: AssetExecutionContext, assay: AssayResource, lake: LakeResource) -> MaterializeResult:
    outcomes = process_pending(DsarContext(lake, assay.home_path, assay.landing_path, assay.warehouse_path,
                                           assay.landing_encoding, json.loads(assay.column_mapping_json)))
    audit_outcomes(lake, outcomes, context.run_id)
    open_requests = requests(lake).filter(pl.col("status") == "pending")
    return MaterializeResult(metadata={
        "processed": len(outcomes),
        "by_kind": MetadataValue.json({k: sum(o["kind"] == k for o in outcomes) for k in ("access", "erasure",
                                                                                            "opt_out")}),
        "late": sum(not o["on_time"] for o in outcomes),
        "still_pending": open_requests.height,
        "outcomes": MetadataValue.json(json.loads(json.dumps(outcomes, default=str))),
    })
