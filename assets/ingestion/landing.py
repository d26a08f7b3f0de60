"""Reading landing files: one folder per source and day, Parquet, CSV or JSON lines."""

from __future__ import annotations

import codecs
import gzip
import hashlib
import io
import zlib
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import polars as pl

# Matched case-insensitively on the end of the name: `ORDERS.CSV` and `orders.csv.gz` are landing files too.
SUPPORTED_SUFFIXES = (".parquet", ".csv", ".csv.gz", ".jsonl", ".jsonl.gz", ".json")
DAY_FOLDER_PREFIX = "date="
CSV_DELIMITERS = ",;\t|"
# What reading a damaged file raises; anything else is a bug and fails the run.
UNREADABLE_ERRORS = (pl.exceptions.PolarsError, OSError, EOFError, zlib.error, UnicodeDecodeError)


@dataclass(frozen=True)
class UnreadableFile:
    """A landing file that could not be read: it goes to the file quarantine, the rest of its day is ingested."""

    path: str
    day: date
    reason: str  # a code and a plain explanation; never the error text, which can quote the file's contents

    @property
    def code(self) -> str:
        return self.reason.split(":", 1)[0]


@dataclass(frozen=True)
class LandingBatch:
    """Raw rows for a window of landing days, as strings-or-native types, with where each row came from."""

    frame: pl.DataFrame  # raw columns + `_source_file` + `_partition_date`
    files: tuple[str, ...]
    ignored: tuple[str, ...] = ()  # entries of the day folders that are not landing files: counted, never read
    unreadable: tuple[UnreadableFile, ...] = ()


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


def stray_entries(landing_dir: Path, source: str) -> list[str]:
    """Entries of a source's folder that are not day folders (`backup/`, `date=2024-13-01/`, a loose file): never
    read, never touched, but counted, so that data left outside a day folder does not go unnoticed."""
    root = landing_dir / source
    if not root.is_dir():
        return []
    days = {day_folder(landing_dir, source, d).name for d in landed_days(landing_dir, source)}
    return sorted(str(p) for p in root.iterdir() if not p.name.startswith(".") and p.name not in days)


def landing_format(path: Path) -> str | None:
    """The landing format of a file by its name (".csv", ".csv.gz", ...), or None when it is not a landing file."""
    name = path.name.lower()
    if name.startswith("."):
        return None  # hidden files (editors, sync tools) are never data
    return next((suffix for suffix in sorted(SUPPORTED_SUFFIXES, key=len, reverse=True) if name.endswith(suffix)),
                None)


def _text(path: Path, encoding: str) -> str:
    data = path.read_bytes()
    if landing_format(path).endswith(".gz"):
        data = gzip.decompress(data)
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8):]
    return data.decode(encoding)


def csv_delimiter(header: str) -> str:
    """The delimiter of a CSV file from its header line: the candidate that splits it into the most fields."""
    counts = {d: header.count(d) for d in CSV_DELIMITERS}
    best = max(counts, key=lambda d: (counts[d], d == ","))
    return best if counts[best] else ","


def read_landing_file(path: Path, encoding: str = "utf-8") -> pl.DataFrame:
    """One landing file as a frame. CSV and JSON lines may be gzipped and start with a UTF-8 byte-order mark; CSV
    may be separated by commas, semicolons, tabs or pipes (read from the header). `encoding` applies to text."""
    kind = landing_format(path)
    if kind == ".parquet":
        return pl.read_parquet(path)
    text = _text(path, encoding)
    if kind.startswith(".csv"):
        header = text.split("\n", 1)[0]
        # Everything as text: casting to the contract happens in validation, where a bad value is quarantined.
        return pl.read_csv(io.StringIO(text), infer_schema=False, separator=csv_delimiter(header))
    return pl.read_ndjson(io.StringIO(text), infer_schema_length=None)


def unreadable_reason(path: Path, error: Exception, encoding: str) -> str:
    """Why a landing file could not be read, from the kind of error alone (its message may quote row values)."""
    kind = landing_format(path) or ""
    if path.stat().st_size == 0 or isinstance(error, pl.exceptions.NoDataError):
        return "empty_file: the file holds no data, not even a header"
    if isinstance(error, (EOFError, zlib.error, gzip.BadGzipFile)):
        return "corrupt_gzip: the file is not a complete gzip stream"
    if isinstance(error, UnicodeDecodeError):
        return f"undecodable_text: the file is not valid {encoding} text (set ASSAY_LANDING_ENCODING)"
    if kind == ".parquet":
        return "corrupt_parquet: the file is not a readable Parquet file"
    if kind.startswith(".csv"):
        return "malformed_csv: the file does not parse as CSV"
    return "malformed_json: the file does not parse as JSON lines"


def landing_file_bytes(frame: pl.DataFrame, like: Path, encoding: str = "utf-8") -> bytes:
    """`frame` as the bytes of a landing file in the format, CSV separator and encoding of `like` (an erasure
    rewrites files without a person's rows)."""
    kind = landing_format(like)
    buffer = io.BytesIO()
    if kind == ".parquet":
        frame.write_parquet(buffer)
        return buffer.getvalue()
    text = io.StringIO()
    if kind.startswith(".csv"):
        frame.write_csv(text, separator=csv_delimiter(_text(like, encoding).split("\n", 1)[0]))
    else:
        frame.write_ndjson(text)
    data = text.getvalue().encode(encoding)
    return gzip.compress(data, mtime=0) if kind.endswith(".gz") else data


def apply_column_mapping(frame: pl.DataFrame, mapping: dict[str, str]) -> pl.DataFrame:
    """Rename a user's columns to contract names ({their_column: contract_column})."""
    present = {theirs: ours for theirs, ours in mapping.items() if theirs in frame.columns}
    return frame.rename(present) if present else frame


def read_landing(
    landing_dir: Path, source: str, start: date, end: date, mapping: dict[str, str] | None = None,
    encoding: str = "utf-8",
) -> LandingBatch:
    """All landing rows of `source` for days in [start, end), each tagged with its file and landing day. A file
    that cannot be read is set aside as unreadable, with its reason; the other files of its day are read."""
    frames: list[pl.DataFrame] = []
    files: list[str] = []
    ignored: list[str] = []
    unreadable: list[UnreadableFile] = []
    day = start
    while day < end:
        folder = day_folder(landing_dir, source, day)
        if folder.is_dir():
            ignored += [str(p) for p in sorted(folder.iterdir()) if not (p.is_file() and landing_format(p))]
            for path in sorted(p for p in folder.iterdir() if p.is_file() and landing_format(p)):
                try:
                    raw = apply_column_mapping(read_landing_file(path, encoding), mapping or {})
                except UNREADABLE_ERRORS as error:
                    unreadable.append(UnreadableFile(str(path), day, unreadable_reason(path, error, encoding)))
                    continue
                files.append(str(path))
                frames.append(
                    raw.with_columns(
                        pl.lit(str(path)).alias("_source_file"), pl.lit(day, dtype=pl.Date).alias("_partition_date")
                    )
                )
        day += timedelta(days=1)
    if not frames:
        return LandingBatch(frame=pl.DataFrame(), files=(), ignored=tuple(ignored), unreadable=tuple(unreadable))
    # Files of different days may differ in columns (a column appearing mid-period) or in types (CSV vs Parquet).
    return LandingBatch(frame=pl.concat(frames, how="diagonal_relaxed"), files=tuple(files), ignored=tuple(ignored),
                        unreadable=tuple(unreadable))


def landing_fingerprints(landing_dir: Path, sources: list[str]) -> dict[str, str]:
    """A fingerprint per landing day across sources (file names, sizes, mtimes), to notice new or changed days."""
    days: dict[str, list[str]] = {}
    for source in sources:
        for day in landed_days(landing_dir, source):
            folder = day_folder(landing_dir, source, day)
            for path in sorted(p for p in folder.iterdir() if landing_format(p)):
                stat = path.stat()
                days.setdefault(day.isoformat(), []).append(f"{source}/{path.name}:{stat.st_size}:{stat.st_mtime_ns}")
    return {day: hashlib.sha256("|".join(sorted(items)).encode()).hexdigest()[:16] for day, items in days.items()}
