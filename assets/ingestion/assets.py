"""Bronze ingestion: one daily-partitioned multi-asset per contract source (bronze table + its quarantine)."""


from collections import Counter
from datetime import UTC, date, datetime
from pathlib import Path

from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetKey,
    AssetSpec,
    BackfillPolicy,
    Config,
    DailyPartitionsDefinition,
    MaterializeResult,
    MetadataValue,
    TableColumn,
    TableSchema,
    multi_asset,
)
from pydantic import Field

from assets.erasure import tombstones
from assets.ingestion.ingest import count_rejected, count_window, file_quarantine_table, ingest_window
from assets.ingestion.landing import stray_entries
from assets.key_check import checked_key
from assets.partitions import AssayPartitions
from domain.contract import SOURCES, VAULT_TABLE, SourceSpec
from domain.pseudonym import pseudonym_key
from resources.assay import AssayResource
from resources.audit import record
from resources.lake import LakeResource


class IngestionConfig(Config):
    chunk_days: int = Field(31, description="Landing days validated and written per chunk of a backfill.")


def landing_spec(spec: SourceSpec) -> AssetSpec:
    """Landing files are produced outside Dagster (a source system, or the synthetic generator)."""
    return AssetSpec(
        key=AssetKey(["landing", spec.name]),
        description=f"Landing files for `{spec.name}`: {spec.description}",
        group_name="landing",
        metadata={"path": f"$ASSAY_LANDING_DIR/{spec.name}/date=YYYY-MM-DD/", "required": spec.required},
    )


def _column_schema(spec: SourceSpec) -> TableSchema:
    """Bronze's columns with their privacy tags; a pseudonymised column says it holds a token."""
    return TableSchema(
        columns=[
            TableColumn(c.name, str(c.dtype), description=c.description + (" (keyed token)" if c.pseudonymised
                                                                           else ""),
                        tags={"privacy": c.tag, **({"pseudonymised": "hmac"} if c.pseudonymised else {})})
            for c in spec.bronze_columns
        ]
    )


def _vault_spec(spec: SourceSpec) -> AssetSpec:
    return AssetSpec(
        AssetKey(list(VAULT_TABLE)),
        deps=[AssetKey(["landing", spec.name])],
        description="Restricted: the customer's own id and contact details, keyed by their token. The only table "
                    "holding them in clear; no warehouse view reads it.",
        metadata={"dagster/column_schema": TableSchema(columns=[
            TableColumn("customer_id", "String", description="Keyed token (the key used everywhere else).",
                        tags={"privacy": "pii", "pseudonymised": "hmac"}),
            *[TableColumn(c, "String", tags={"privacy": "pii"}) for c in ("source_customer_id",
                                                                           *spec.vaulted_columns)]])},
        group_name="ingestion",
        kinds={"delta"},
        tags={"access": "restricted"},
    )


def _window(context: AssetExecutionContext) -> tuple[date, date]:
    window = context.partition_time_window
    return window.start.date(), window.end.date()


def build_ingestion_asset(spec: SourceSpec, daily: DailyPartitionsDefinition):
    bronze_key = AssetKey(["bronze", spec.name])
    quarantine_key = AssetKey(["quarantine", spec.name])
    file_quarantine_key = AssetKey(["quarantine", file_quarantine_table(spec.name)])

    @multi_asset(
        name=f"ingest_{spec.name}",
        specs=[
            AssetSpec(
                bronze_key,
                deps=[AssetKey(["landing", spec.name])],
                description=f"Validated `{spec.name}` rows (Delta, partitioned by landing day); identifiers are "
                            "keyed tokens, contact details are in the pii_vault.",
                metadata={"dagster/column_schema": _column_schema(spec)},
                group_name="ingestion",
                kinds={"delta", "polars", "pandera"},
            ),
            AssetSpec(
                quarantine_key,
                deps=[AssetKey(["landing", spec.name])],
                description=f"Rejected `{spec.name}` rows with the reason(s), the raw record, file and run; and "
                            "records of values nulled in rows that were kept (disposition `value_nulled`).",
                group_name="ingestion",
                kinds={"delta"},
            ),
            AssetSpec(
                file_quarantine_key,
                deps=[AssetKey(["landing", spec.name])],
                description=f"`{spec.name}` landing files that could not be read (empty, corrupt, undecodable), with "
                            "the reason; the file itself stays where it landed, and the rest of its day is ingested. "
                            "Materialized by the runs that change it: a day whose files were always readable "
                            "usually has no partition here (the bronze metadata counts `unreadable_files` every "
                            "day).",
                group_name="ingestion",
                kinds={"delta"},
                # a table that is nearly always empty, materialized for every landing day, was five of each day's
                # sixteen materializations
                skippable=True,
            ),
            *([_vault_spec(spec)] if spec.vaulted_columns else []),
        ],
        check_specs=[
            AssetCheckSpec(
                "rows_conserved",
                asset=bronze_key,
                description="Rows read from landing = rows in bronze + rows rejected to quarantine + rows of "
                            "erased customers (tombstoned, not ingested), for the partition.",
            )
        ],
        partitions_def=daily,
        # A backfill of many days runs as one step: one read, one validation, one Delta commit per table.
        backfill_policy=BackfillPolicy.single_run(),
    )
    def _ingest(context: AssetExecutionContext, config: IngestionConfig, assay: AssayResource, lake: LakeResource):
        start, end = _window(context)
        result = ingest_window(assay.landing_path, spec, assay.column_mapping(spec.name), lake, start, end,
                               context.run_id, datetime.now(UTC), config.chunk_days,
                               checked_key(lake, pseudonym_key(assay.home_path,
                                                               real_data=assay.source != "synthetic")),
                               tombstones(lake), assay.landing_encoding)
        for unreadable in result.unreadable:
            context.log.warning(f"{spec.name}: {Path(unreadable.path).name} of {unreadable.day} is in the file "
                                f"quarantine: {unreadable.reason}")
        strays = stray_entries(assay.landing_path, spec.name)
        if strays:
            context.log.warning(f"{len(strays)} entries of {spec.name}'s landing folder are not day folders "
                                f"(date=YYYY-MM-DD) and were not read, e.g. {Path(strays[0]).name}")
        if result.ignored:
            context.log.warning(f"{len(result.ignored)} entries of {spec.name}'s day folders are not landing files "
                                f"and were not read, e.g. {Path(result.ignored[0]).name}")
        if not result.files and spec.required:
            context.log.warning(f"No landing files for required source {spec.name} in [{start}, {end}).")
        # Count what landed in the tables, so the check proves the tables, not only the frames in memory.
        in_bronze = count_window(lake, "bronze", spec.name, start, end)
        in_quarantine = count_rejected(lake, spec.name, start, end)
        window = {"window_start": start.isoformat(), "window_end": end.isoformat()}
        # Ingestion is the one step that reads identifiers and contact details in clear.
        record(lake, "ingest", f"bronze/{spec.name}", context.run_id, result.rows_in,
               {**window, "bronze": in_bronze, "quarantine": in_quarantine, "erased": result.rows_erased,
                "vaulted": result.rows_vaulted, "pii_masked": dict(result.pii_masked)})
        yield MaterializeResult(
            asset_key=bronze_key,
            metadata={
                **window,
                "rows_in": result.rows_in,
                "rows_valid": result.rows_valid,
                "rows_quarantined": result.rows_quarantined,
                "rows_erased": result.rows_erased,
                "values_nulled": result.values_nulled,
                "files": result.files,
                # anything else in the day folders (a README, an editor's swap file, a sub-folder) is left alone,
                # and said so: a file in a format Assay does not read must not vanish without a word
                "ignored_files": len(result.ignored),
                "ignored": MetadataValue.json([Path(p).name for p in result.ignored[:20]]),
                "unreadable_files": len(result.unreadable),
                "outside_day_folders": MetadataValue.json([Path(p).name for p in strays[:20]]),
                "source_present": bool(result.files),
                "extra_columns": MetadataValue.json(sorted(result.extra_columns)),
                "pii_masked": MetadataValue.json(dict(sorted(result.pii_masked.items()))),
                "delta_version": result.bronze_version,
                "dagster/row_count": result.rows_valid,
                "path": MetadataValue.path(lake.uri("bronze", spec.name)),
            },
        )
        yield MaterializeResult(
            asset_key=quarantine_key,
            metadata={
                **window,
                "rows_quarantined": result.rows_quarantined,
                "values_nulled": result.values_nulled,
                "reasons": MetadataValue.json(dict(sorted(result.reasons.items()))),
                "delta_version": result.quarantine_version,
                "dagster/row_count": result.rows_quarantined,
                "path": MetadataValue.path(lake.uri("quarantine", spec.name)),
            },
        )
        if result.file_quarantine_version is not None:  # the file quarantine changed for these days
            yield MaterializeResult(
                asset_key=file_quarantine_key,
                metadata={
                    **window,
                    "unreadable_files": len(result.unreadable),
                    "reasons": MetadataValue.json(dict(sorted(Counter(
                        f.code for f in result.unreadable).items()))),
                    "files": MetadataValue.json([{"file": Path(f.path).name, "day": f.day.isoformat(),
                                                  "reason": f.reason} for f in result.unreadable[:20]]),
                    "delta_version": result.file_quarantine_version,
                    "dagster/row_count": len(result.unreadable),
                    "path": MetadataValue.path(lake.uri("quarantine", file_quarantine_table(spec.name))),
                },
            )
        if spec.vaulted_columns:
            yield MaterializeResult(
                asset_key=AssetKey(list(VAULT_TABLE)),
                metadata={**window, "rows_vaulted": result.rows_vaulted, "delta_version": result.vault_version,
                          "dagster/row_count": result.rows_vaulted,
                          "path": MetadataValue.path(lake.uri(*VAULT_TABLE))},
            )
        conserved = result.rows_in == in_bronze + in_quarantine + result.rows_erased
        yield AssetCheckResult(
            check_name="rows_conserved",
            asset_key=bronze_key,
            passed=conserved,
            severity=AssetCheckSeverity.ERROR,
            metadata={"rows_in": result.rows_in, "bronze": in_bronze, "quarantine": in_quarantine,
                      "erased": result.rows_erased},
        )

    return _ingest


landing_specs = [landing_spec(spec) for spec in SOURCES.values()]


def build_ingestion_assets(partitions: AssayPartitions) -> list:
    return [build_ingestion_asset(spec, partitions.daily) for spec in SOURCES.values()]
