"""Bronze ingestion: one daily-partitioned multi-asset per contract source (bronze table + its quarantine)."""


from datetime import UTC, date, datetime

from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetKey,
    AssetSpec,
    BackfillPolicy,
    MaterializeResult,
    MetadataValue,
    TableColumn,
    TableSchema,
    multi_asset,
)

from assets.ingestion.landing import read_landing
from assets.ingestion.validation import empty_bronze, empty_quarantine, validate_batch
from domain.contract import PARTITION_COLUMN, SOURCES, SourceSpec
from orchestration.partitions import daily_partitions
from resources.assay import AssayResource
from resources.lake import LakeResource


def landing_spec(spec: SourceSpec) -> AssetSpec:
    """Landing files are produced outside Dagster (a source system, or the synthetic generator)."""
    return AssetSpec(
        key=AssetKey(["landing", spec.name]),
        description=f"Landing files for `{spec.name}`: {spec.description}",
        group_name="landing",
        metadata={"path": f"$ASSAY_LANDING_DIR/{spec.name}/date=YYYY-MM-DD/", "required": spec.required},
    )


def _column_schema(spec: SourceSpec) -> TableSchema:
    return TableSchema(
        columns=[
            TableColumn(c.name, str(c.dtype), description=c.description, tags={"privacy": c.tag})
            for c in spec.columns
        ]
    )


def _window(context: AssetExecutionContext) -> tuple[date, date]:
    window = context.partition_time_window
    return window.start.date(), window.end.date()


def build_ingestion_asset(spec: SourceSpec):
    bronze_key = AssetKey(["bronze", spec.name])
    quarantine_key = AssetKey(["quarantine", spec.name])

    @multi_asset(
        name=f"ingest_{spec.name}",
        specs=[
            AssetSpec(
                bronze_key,
                deps=[AssetKey(["landing", spec.name])],
                description=f"Validated `{spec.name}` rows (Delta, partitioned by landing day).",
                metadata={"dagster/column_schema": _column_schema(spec)},
                group_name="ingestion",
                kinds={"delta", "polars", "pandera"},
            ),
            AssetSpec(
                quarantine_key,
                deps=[AssetKey(["landing", spec.name])],
                description=f"Rejected `{spec.name}` rows with the reason(s), the raw record, file and run.",
                group_name="ingestion",
                kinds={"delta"},
            ),
        ],
        check_specs=[
            AssetCheckSpec(
                "rows_conserved",
                asset=bronze_key,
                description="Rows read from landing = rows in bronze + rows in quarantine, for the partition.",
            )
        ],
        partitions_def=daily_partitions,
        # A backfill of many days runs as one step: one read, one validation, one Delta commit per table.
        backfill_policy=BackfillPolicy.single_run(),
    )
    def _ingest(context: AssetExecutionContext, assay: AssayResource, lake: LakeResource):
        start, end = _window(context)
        batch = read_landing(assay.landing_path, spec.name, start, end, assay.column_mapping(spec.name))
        if not batch.files and spec.required:
            context.log.warning(f"No landing files for required source {spec.name} in [{start}, {end}).")
        result = validate_batch(batch.frame, spec, context.run_id, datetime.now(UTC))
        bronze = lake.replace_window(
            "bronze", spec.name, result.valid if result.rows_in else empty_bronze(spec),
            PARTITION_COLUMN, start, end, partition_by=[PARTITION_COLUMN],
        )
        quarantine = lake.replace_window(
            "quarantine", spec.name, result.quarantine if result.rows_in else empty_quarantine(),
            PARTITION_COLUMN, start, end, partition_by=[PARTITION_COLUMN],
        )
        # Re-read what landed, so the check proves the tables, not only the frames in memory.
        in_bronze = lake.read_window("bronze", spec.name, PARTITION_COLUMN, start, end).height
        in_quarantine = lake.read_window("quarantine", spec.name, PARTITION_COLUMN, start, end).height
        window = {"window_start": start.isoformat(), "window_end": end.isoformat()}
        yield MaterializeResult(
            asset_key=bronze_key,
            metadata={
                **window,
                "rows_in": result.rows_in,
                "rows_valid": result.rows_valid,
                "rows_quarantined": result.rows_quarantined,
                "files": len(batch.files),
                "source_present": bool(batch.files),
                "extra_columns": MetadataValue.json(list(result.extra_columns)),
                "delta_version": bronze.version,
                "dagster/row_count": result.rows_valid,
                "path": MetadataValue.path(bronze.uri),
            },
        )
        yield MaterializeResult(
            asset_key=quarantine_key,
            metadata={
                **window,
                "rows_quarantined": result.rows_quarantined,
                "reasons": MetadataValue.json(result.reasons),
                "delta_version": quarantine.version,
                "dagster/row_count": result.rows_quarantined,
                "path": MetadataValue.path(quarantine.uri),
            },
        )
        conserved = result.rows_in == in_bronze + in_quarantine
        yield AssetCheckResult(
            check_name="rows_conserved",
            asset_key=bronze_key,
            passed=conserved,
            severity=AssetCheckSeverity.ERROR,
            metadata={"rows_in": result.rows_in, "bronze": in_bronze, "quarantine": in_quarantine},
        )

    return _ingest


landing_specs = [landing_spec(spec) for spec in SOURCES.values()]
ingestion_assets = [build_ingestion_asset(spec) for spec in SOURCES.values()]
