"""Validating a landing batch against the data contract.

Each row ends up in exactly one place: bronze (valid) or quarantine (with every reason it failed), so
`rows in == rows valid + rows quarantined` holds by construction and is checked before anything is written.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pandera.polars as pa
import polars as pl

from assets.ingestion.pii_scan import mask_untagged_pii
from domain.contract import LINEAGE_COLUMNS, PARTITION_COLUMN, TIMESTAMP, SourceSpec

ROW_ID = "__row"
REASON_SEPARATOR = ";"

QUARANTINE_SCHEMA: dict[str, pl.DataType] = {
    "customer_id": pl.Utf8,
    "record_id": pl.Utf8,
    "reason": pl.Utf8,
    "record": pl.Utf8,
    "_partition_date": pl.Date,
    "_source_file": pl.Utf8,
    "_run_id": pl.Utf8,
    "_ingested_at": TIMESTAMP,
    # "rejected": the row is not in bronze; "value_nulled": it is, with the named values nulled (null_if_invalid)
    "disposition": pl.Utf8,
}
REJECTED, VALUE_NULLED = "rejected", "value_nulled"


class ContractError(ValueError):
    """The batch as a whole cannot be read against the contract (for example a required column is missing)."""


@dataclass(frozen=True)
class ValidationResult:
    valid: pl.DataFrame
    quarantine: pl.DataFrame
    rows_in: int
    reasons: dict[str, int] = field(default_factory=dict)
    extra_columns: tuple[str, ...] = ()
    pii_masked: dict[str, int] = field(default_factory=dict)  # `column:kind` -> values masked

    @property
    def rows_valid(self) -> int:
        return self.valid.height

    @property
    def rows_quarantined(self) -> int:
        """Rows rejected: not in bronze. Rows kept with a value nulled are quarantine records too, not counted."""
        return self.quarantine.filter(pl.col("disposition") == REJECTED).height

    @property
    def values_nulled(self) -> int:
        return self.quarantine.filter(pl.col("disposition") == VALUE_NULLED).height


def build_schema(spec: SourceSpec) -> pa.DataFrameSchema:
    """The pandera schema of a source's row-level rules (types are enforced earlier, by casting)."""
    columns = {}
    for col in spec.columns:
        checks = []
        if col.min_value is not None:
            checks.append(pa.Check.ge(col.min_value, name="min_value"))
        # allowed values are checked (case-insensitively, as staging reads them) outside pandera
        if col.pattern is not None and not col.null_if_invalid:
            checks.append(pa.Check.str_matches(col.pattern, name="pattern"))
        columns[col.name] = pa.Column(col.dtype, checks=checks, nullable=col.nullable, coerce=False)
    return pa.DataFrameSchema(columns, strict=False, name=spec.name)


def _timestamps_from_text(raw: pl.Series) -> pl.Series:
    """Text timestamps in the shapes exports use, each value on its own: ISO 8601 with an offset or `Z` (converted
    to UTC), ISO without one (taken as UTC), a date (midnight UTC, also as YYYYMMDD) or epoch seconds (9 or 10
    digits, with or without a fraction). Anything else, `05/01/2024` included (day or month first?), stays null
    and so becomes a type error."""
    text = raw.str.strip_chars()
    iso = text.str.replace(r"^(\d{4}-\d{2}-\d{2}) ", "${1}T").str.replace(r"Z$", "+00:00")
    epoch = text.str.contains(r"^\d{9,10}(\.\d+)?$")
    return pl.select(pl.coalesce(
        pl.when(epoch).then((text.cast(pl.Float64, strict=False) * 1_000_000).cast(pl.Int64))
        .cast(pl.Datetime("us")).dt.replace_time_zone("UTC"),
        iso.str.to_datetime(format="%Y-%m-%dT%H:%M:%S%.f%z", strict=False, time_unit="us", time_zone="UTC"),
        iso.str.to_datetime(format="%Y-%m-%dT%H:%M:%S%.f", strict=False, time_unit="us").dt.replace_time_zone("UTC"),
        *[text.str.to_date(format=f, strict=False).cast(pl.Datetime("us")).dt.replace_time_zone("UTC")
          for f in ("%Y-%m-%d", "%Y%m%d")],
    ).alias(raw.name)).to_series()


def _cast_column(raw: pl.Series, dtype: pl.DataType) -> pl.Series:
    if dtype == TIMESTAMP:
        if raw.dtype == pl.Utf8:
            return _timestamps_from_text(raw)
        if raw.dtype.is_numeric():  # a number in a time column is epoch seconds, not Arrow's microseconds
            return pl.select((raw.cast(pl.Float64) * 1_000_000).cast(pl.Int64).cast(pl.Datetime("us"))
                             .dt.replace_time_zone("UTC").alias(raw.name)).to_series()
        if raw.dtype == pl.Date:
            return raw.cast(pl.Datetime("us")).dt.replace_time_zone("UTC")
        if isinstance(raw.dtype, pl.Datetime):
            if raw.dtype.time_zone is None:
                return raw.dt.replace_time_zone("UTC").dt.cast_time_unit("us")
            return raw.dt.convert_time_zone("UTC").dt.cast_time_unit("us")
    if dtype == pl.Boolean and raw.dtype == pl.Utf8:
        lowered = raw.str.to_lowercase()
        return pl.select(
            pl.when(lowered.is_in(["true", "1", "t", "yes"]))
            .then(True)
            .when(lowered.is_in(["false", "0", "f", "no"]))
            .then(False)
            .otherwise(None)
            .alias(raw.name)
        ).to_series()
    if dtype.is_integer() and raw.dtype.is_float():
        # 2.5 items is not 2 items: a fractional value is a type error, not a truncation
        whole = raw.is_finite() & (raw == raw.floor())
        return pl.select(pl.when(whole).then(raw).otherwise(None).cast(dtype, strict=False).alias(raw.name)
                         ).to_series()
    if dtype.is_integer() and raw.dtype == pl.Utf8:
        number = raw.str.strip_chars().cast(pl.Float64, strict=False)
        return _cast_column(number, dtype).alias(raw.name)
    return raw.cast(dtype, strict=False)


def _records_as_json(frame: pl.DataFrame) -> pl.Series:
    """Each quarantined row as JSON text, so a row of any shape or type can be kept and inspected."""
    if frame.width == 0:
        return pl.Series("record", ["{}"] * frame.height, pl.Utf8)
    return frame.select(pl.struct(pl.all().cast(pl.Utf8)).struct.json_encode().alias("record")).to_series()


def validate_batch(
    raw: pl.DataFrame, spec: SourceSpec, run_id: str, ingested_at: datetime | None = None,
    protect: Callable[[pl.DataFrame], pl.DataFrame] | None = None, earlier_ids: pl.Series | None = None,
) -> ValidationResult:
    """Split a raw landing batch into contract-typed valid rows and quarantined rows with reasons.

    `raw` carries `_source_file` and `_partition_date` (the landing day) next to the source's columns. `protect`
    rewrites the quarantined raw rows before they are kept (ingestion tokenises their personal data with it).
    `earlier_ids` are ids that earlier landing days delivered: a row repeating one is a duplicate.
    """
    ingested_at = ingested_at or datetime.now(UTC)
    if raw.height == 0:
        return ValidationResult(valid=empty_bronze(spec), quarantine=empty_quarantine(), rows_in=0)

    missing_required = [c.name for c in spec.columns if not c.nullable and c.name not in raw.columns]
    if missing_required:
        raise ContractError(
            f"{spec.name}: landing files lack required column(s) {missing_required}; "
            f"found {sorted(c for c in raw.columns if not c.startswith('_'))}. "
            "Rename them in the files or map them with ASSAY_COLUMN_MAPPING."
        )

    # 0. Personal data outside the columns tagged pii is masked before anything is written (see pii_scan.py).
    raw, pii_masked = mask_untagged_pii(raw, spec)

    frame = raw.with_row_index(ROW_ID)
    reasons: list[pl.DataFrame] = []

    # 1. Types: a value that is present but cannot be cast is a type error, not a silent null.
    typed_columns = []
    for col in spec.columns:
        if col.name not in frame.columns:
            typed_columns.append(pl.Series(col.name, [None] * frame.height, dtype=col.dtype))
            continue
        source = frame.get_column(col.name)
        typed = _cast_column(source, col.dtype).alias(col.name)
        failed = source.is_not_null() & typed.is_null()
        if failed.any():
            reasons.append(
                frame.select(ROW_ID).filter(failed).with_columns(pl.lit(f"type_error:{col.name}").alias("reason"))
            )
        typed_columns.append(typed)
    extra = tuple(c for c in raw.columns if c not in spec.column_names and not c.startswith("_"))
    typed_frame = pl.DataFrame(typed_columns).with_columns(
        frame.get_column(ROW_ID), frame.get_column(PARTITION_COLUMN), frame.get_column("_source_file"),
        *[frame.get_column(c) for c in extra],
    )

    # Categories compare in lower case, as staging reads them, and are stored that way: "Marketing" is marketing.
    # A float must be a number: NaN and infinities pass a `>= 0` check, so they are refused here.
    for col in spec.columns:
        if col.allowed is not None:
            lowered = typed_frame.get_column(col.name).str.strip_chars().str.to_lowercase()
            typed_frame = typed_frame.with_columns(lowered.alias(col.name))
            unknown = lowered.is_not_null() & ~lowered.is_in(list(col.allowed))
            reasons.append(typed_frame.filter(unknown).select(ROW_ID).with_columns(
                pl.lit(f"allowed_values:{col.name}").alias("reason")))
        elif col.dtype.is_float():
            values = typed_frame.get_column(col.name)
            not_finite = values.is_not_null() & ~values.is_finite()
            reasons.append(typed_frame.filter(not_finite).select(ROW_ID).with_columns(
                pl.lit(f"not_finite:{col.name}").alias("reason")))

    # A value that breaks its pattern where the contract says so is nulled, and the row kept (noted below).
    repairs: list[pl.DataFrame] = []
    for col in spec.columns:
        if col.null_if_invalid and col.pattern is not None:
            values = typed_frame.get_column(col.name)
            broken = values.is_not_null() & ~values.str.contains(col.pattern)
            if broken.any():
                repairs.append(typed_frame.filter(broken).select(ROW_ID).with_columns(
                    pl.lit(f"nulled_invalid:{col.name}").alias("reason")))
                typed_frame = typed_frame.with_columns(
                    pl.when(broken).then(None).otherwise(values).alias(col.name))

    # 2. Row rules from the contract, through pandera; lazy so every failure of every row is reported.
    try:
        build_schema(spec).validate(typed_frame.select(spec.column_names), lazy=True)
    except pa.errors.SchemaErrors as errors:
        cases = errors.failure_cases.filter(pl.col("index").is_not_null())
        if cases.height:
            check_name = pl.col("check").str.replace(r"\(.*$", "").str.replace("not_nullable", "null_value")
            reasons.append(
                cases.select(
                    pl.col("index").cast(pl.UInt32).alias(ROW_ID),
                    pl.concat_str([check_name, pl.lit(":"), pl.col("column")]).alias("reason"),
                )
            )

    # 3. Time: the event must belong to the landing day (customers may predate it, but not postdate it).
    ts = pl.col(spec.time_column)
    day_start = pl.col(PARTITION_COLUMN).cast(pl.Datetime("us")).dt.replace_time_zone("UTC")
    day_end = day_start + pl.duration(days=1)
    outside = (ts >= day_end) if spec.allow_backdated else ((ts < day_start) | (ts >= day_end))
    reasons.append(
        typed_frame.filter(ts.is_not_null() & outside)
        .select(ROW_ID)
        .with_columns(pl.lit(f"timestamp_outside_partition:{spec.time_column}").alias("reason"))
    )

    reason_frame = pl.concat([r.with_columns(pl.col(ROW_ID).cast(pl.UInt32)) for r in reasons]) if reasons else None
    bad_ids = reason_frame.get_column(ROW_ID).unique() if reason_frame is not None else pl.Series(ROW_ID, [], pl.UInt32)

    # 4. Duplicate ids among otherwise valid rows: the first arrival wins, later copies are quarantined.
    candidates = typed_frame.filter(~pl.col(ROW_ID).is_in(bad_ids.implode()))
    # A copy from a later landing day of the batch is judged as if each day ran on its own (see `earlier_ids`): a
    # duplicate of an earlier day, or, where a repeat is an update, a newer record that is kept.
    key = [spec.id_column, PARTITION_COLUMN] if spec.repeat_is_update else [spec.id_column]
    # Ranked among the rows whose key repeats only (in their batch order, as in the whole): a window over every
    # row's id was most of validation's time where ids rarely repeat.
    duplicate = candidates.filter(pl.struct(key).is_duplicated() if len(key) > 1 else pl.col(key[0]).is_duplicated())
    duplicate = duplicate.with_columns(
        pl.col(PARTITION_COLUMN).first().over(key).alias("_first_day"),
        pl.int_range(pl.len()).over(key).alias("_copy"),
    ).filter(pl.col(spec.id_column).is_not_null() & (pl.col("_copy") > 0))
    if duplicate.height:
        dup_reasons = duplicate.select(
            pl.col(ROW_ID),
            pl.when(pl.col(PARTITION_COLUMN) > pl.col("_first_day"))
            .then(pl.lit(f"duplicate_id_earlier_day:{spec.id_column}"))
            .otherwise(pl.lit(f"duplicate_id:{spec.id_column}")).alias("reason"),
        )
        reason_frame = dup_reasons if reason_frame is None else pl.concat([reason_frame, dup_reasons])
    if earlier_ids is not None and earlier_ids.len():
        repeated = candidates.filter(pl.col(spec.id_column).is_in(earlier_ids.cast(pl.Utf8).implode()))
        repeat_reasons = repeated.select(ROW_ID).with_columns(
            pl.lit(f"duplicate_id_earlier_day:{spec.id_column}").alias("reason"))
        reason_frame = repeat_reasons if reason_frame is None else pl.concat([reason_frame, repeat_reasons])

    if reason_frame is None or reason_frame.height == 0:
        reason_frame = pl.DataFrame({ROW_ID: [], "reason": []}, schema={ROW_ID: pl.UInt32, "reason": pl.Utf8})
    rejected_ids = reason_frame.get_column(ROW_ID).unique()
    if repairs:
        reason_frame = pl.concat([reason_frame, *[r.with_columns(pl.col(ROW_ID).cast(pl.UInt32)) for r in repairs]])
    per_row = reason_frame.unique().sort([ROW_ID, "reason"]).group_by(ROW_ID, maintain_order=True).agg(
        pl.col("reason").str.join(REASON_SEPARATOR)
    ).with_columns(
        pl.when(pl.col(ROW_ID).is_in(rejected_ids.implode())).then(pl.lit(REJECTED)).otherwise(pl.lit(VALUE_NULLED))
        .alias("disposition"))

    lineage = [pl.lit(run_id).alias("_run_id"), pl.lit(ingested_at, dtype=TIMESTAMP).alias("_ingested_at")]
    valid = (
        typed_frame.join(per_row.filter(pl.col("disposition") == REJECTED), on=ROW_ID, how="anti")
        .sort(ROW_ID)
        .with_columns(*lineage)
        .select(*spec.column_names, *extra, *LINEAGE_COLUMNS)
    )
    quarantined_raw = frame.join(per_row, on=ROW_ID, how="inner").sort(ROW_ID)
    if protect is not None:
        quarantined_raw = protect(quarantined_raw)
    raw_columns = [c for c in raw.columns if not c.startswith("_")]
    quarantine = pl.DataFrame(
        {
            "customer_id": quarantined_raw.get_column(spec.customer_column).cast(pl.Utf8)
            if spec.customer_column and spec.customer_column in quarantined_raw.columns
            else pl.Series([None] * quarantined_raw.height, dtype=pl.Utf8),
            "record_id": quarantined_raw.get_column(spec.id_column).cast(pl.Utf8)
            if spec.id_column in quarantined_raw.columns
            else pl.Series([None] * quarantined_raw.height, dtype=pl.Utf8),
            "reason": quarantined_raw.get_column("reason"),
            "record": _records_as_json(quarantined_raw.select(raw_columns)),
            "_partition_date": quarantined_raw.get_column(PARTITION_COLUMN),
            "_source_file": quarantined_raw.get_column("_source_file"),
            "disposition": quarantined_raw.get_column("disposition"),
        },
    ).with_columns(*lineage).select(list(QUARANTINE_SCHEMA))

    rejected = quarantine.filter(pl.col("disposition") == REJECTED).height
    if valid.height + rejected != raw.height:
        raise AssertionError(
            f"{spec.name}: conservation broken: {raw.height} in, {valid.height} valid, {rejected} quarantined"
        )
    counts = (
        per_row.select(pl.col("reason").str.split(REASON_SEPARATOR)).explode("reason")
        .group_by("reason").len().sort("reason")
    )
    return ValidationResult(
        valid=valid,
        quarantine=quarantine,
        rows_in=raw.height,
        reasons=dict(zip(counts.get_column("reason").to_list(), counts.get_column("len").to_list(), strict=True)),
        extra_columns=extra,
        pii_masked=pii_masked,
    )


def empty_bronze(spec: SourceSpec) -> pl.DataFrame:
    """An empty bronze table: the contract's columns less the contact details, which only the pii_vault holds."""
    schema = {c.name: c.dtype for c in spec.bronze_columns}
    schema.update({"_partition_date": pl.Date, "_source_file": pl.Utf8, "_run_id": pl.Utf8, "_ingested_at": TIMESTAMP})
    return pl.DataFrame(schema=schema)


def empty_quarantine() -> pl.DataFrame:
    return pl.DataFrame(schema=QUARANTINE_SCHEMA)
