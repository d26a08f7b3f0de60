"""Reading landing files: one folder per source and day, Parquet, CSV or JSON lines."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import polars as pl

SUPPORTED_SUFFIXES = (".parquet", ".csv", ".jsonl", ".json")
DAY_FOLDER_PREFIX = "date="


@dataclass(frozen=True)
class LandingBatch:
    """Raw rows for a window of landing days, as strings-or-native types, with where each row came from."""

    frame: pl.DataFrame  # raw columns + `_source_file` + `_partition_date`
    files: tuple[str, ...]


def day_folder(landing_dir: Path, source: str, day: date) -> Path:
    return landing_dir / source / f"{DAY_FOLDER_PREFIX}{day.isoformat()}"


def landed_days(landing_dir: Path, source: str) -> list[date]:
    """Days that have a landing folder for `source`."""
    root = landing_dir / source
    if not root.is_dir():
        return []
    days = []
    for child in root.iterdir():
        if child.is_dir() and child.name.startswith(DAY_FOLDER_PREFIX):
            try:
                days.append(date.fromisoformat(child.name.removeprefix(DAY_FOLDER_PREFIX)))
            except ValueError:
                continue  # a folder that is not a day is not ours to interpret
    return sorted(days)


def read_landing_file(path: Path) -> pl.DataFrame:
    if path.suffix == ".parquet":
        return pl.read_parquet(path)
    if path.suffix == ".csv":
        # Everything as text: casting to the contract happens in validation, where a bad value is quarantined.
        return pl.read_csv(path, infer_schema=False)
    return pl.read_ndjson(path, infer_schema_length=None)


def write_landing_file(frame: pl.DataFrame, path: Path) -> None:
    """Write a landing file back in its own format (an erasure rewrites files without a person's rows)."""
    if path.suffix == ".parquet":
        frame.write_parquet(path)
    elif path.suffix == ".csv":
        frame.write_csv(path)
    else:
        frame.write_ndjson(path)


def apply_column_mapping(frame: pl.DataFrame, mapping: dict[str, str]) -> pl.DataFrame:
    """Rename a user's columns to contract names ({their_column: contract_column})."""
    present = {theirs: ours for theirs, ours in mapping.items() if theirs in frame.columns}
    return frame.rename(present) if present else frame


def read_landing(
    landing_dir: Path, source: str, start: date, end: date, mapping: dict[str, str] | None = None
) -> LandingBatch:
    """All landing rows of `source` for days in [start, end), each tagged with its file and landing day."""
    frames: list[pl.DataFrame] = []
    files: list[str] = []
    day = start
    while day < end:
        folder = day_folder(landing_dir, source, day)
        if folder.is_dir():
            for path in sorted(p for p in folder.iterdir() if p.suffix in SUPPORTED_SUFFIXES):
                raw = apply_column_mapping(read_landing_file(path), mapping or {})
                files.append(str(path))
                frames.append(
                    raw.with_columns(
                        pl.lit(str(path)).alias("_source_file"), pl.lit(day, dtype=pl.Date).alias("_partition_date")
                    )
                )
        day += timedelta(days=1)
    if not frames:
        return LandingBatch(frame=pl.DataFrame(), files=())
    # Files of different days may differ in columns (a column appearing mid-period) or in types (CSV vs Parquet).
    return LandingBatch(frame=pl.concat(frames, how="diagonal_relaxed"), files=tuple(files))


def landing_fingerprints(landing_dir: Path, sources: list[str]) -> dict[str, str]:
    """A fingerprint per landing day across sources (file names, sizes, mtimes), to notice new or changed days."""
    days: dict[str, list[str]] = {}
    for source in sources:
        for day in landed_days(landing_dir, source):
            folder = day_folder(landing_dir, source, day)
            for path in sorted(p for p in folder.iterdir() if p.suffix in SUPPORTED_SUFFIXES):
                stat = path.stat()
                days.setdefault(day.isoformat(), []).append(f"{source}/{path.name}:{stat.st_size}:{stat.st_mtime_ns}")
    return {day: hashlib.sha256("|".join(sorted(items)).encode()).hexdigest()[:16] for day, items in days.items()}
