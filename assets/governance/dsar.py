"""Data-subject requests: access (a bundle of everything held), erasure (gone from every table, file and log),
opt-out (consent withdrawn from that moment).

Erasure first writes a keyed tombstone (ingestion never brings the person back from an old landing day), then
commits to each Delta table a new version without the person's rows, made on the version it read so that no
concurrent commit is lost. What earlier versions keep is purged next: their data files, and the transaction log,
whose file statistics quote values. Landing and export files are rewritten through a temporary file and a rename;
the warehouse is compacted into a new DuckDB file (a DELETE leaves old bytes in free blocks). The vault goes last:
it holds the contact details that the other steps search for. Every step can run again, so a run killed at any
point finishes when the request is processed again (it stays pending until then).
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import secrets
import shutil
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl

from assets.consent import CONSENT_OVERRIDES_TABLE
from assets.erasure import TOMBSTONES_TABLE, tombstone_hash, tombstones
from assets.ingestion.landing import (
    UNREADABLE_ERRORS,
    apply_column_mapping,
    landing_file_bytes,
    landing_format,
    read_landing_file,
)
from assets.key_check import checked_key
from domain.contract import VAULT_TABLE
from domain.faults import fault_point
from domain.private_files import remove_staged, write_private
from domain.pseudonym import Tokeniser, pseudonym_key, token
from resources.audit import AUDIT_TABLE, record

REQUESTS_TABLE = ("governance", "dsar_requests")
KINDS = ("access", "erasure", "opt_out")
DEADLINE_DAYS = 30  # GDPR art. 12(3): one month
DEVICE_SOURCE, DEVICE_COLUMN = ("bronze", "events"), "device_id"
REQUEST_SCHEMA = {
    "request_id": pl.Utf8, "customer_id": pl.Utf8, "kind": pl.Utf8, "requested_at": pl.Datetime("us", "UTC"),
    "deadline": pl.Datetime("us", "UTC"), "status": pl.Utf8, "completed_at": pl.Datetime("us", "UTC"),
    "subject_hash": pl.Utf8, "result": pl.Utf8,
}


def new_request(customer_id: str, kind: str, requested_at: datetime | None = None) -> pl.DataFrame:
    if kind not in KINDS:
        raise ValueError(f"unknown request kind {kind!r}; choose one of {KINDS}")
    if not customer_id:
        raise ValueError("a request needs a customer id")
    at = requested_at or datetime.now(UTC)
    return pl.DataFrame({
        "request_id": [f"DSAR-{at:%Y%m%d%H%M%S}-{secrets.token_hex(3)}"], "customer_id": [customer_id],
        "kind": [kind], "requested_at": [at], "deadline": [at + timedelta(days=DEADLINE_DAYS)],
        "status": ["pending"], "completed_at": [None], "subject_hash": [None], "result": [None],
    }, schema=REQUEST_SCHEMA)


@contextmanager
def requests_lock(home: Path):
    """Held while the request log is appended to, and while a run re-reads and rewrites it: a request submitted
    while others are processed is appended either before that re-read (and kept, pending) or after the rewrite.
    An advisory lock on a file in the home, so for writers on this machine: a lake on an object store shared by
    several machines needs their DSAR runs to share one home."""
    path = Path(home) / "dsar" / "requests.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def submit_request(lake, home: Path, request: pl.DataFrame) -> None:
    """Add requests (`new_request`) to the request log; the next DSAR run handles them."""
    with requests_lock(home):
        lake.append(*REQUESTS_TABLE, request)


def requests(lake) -> pl.DataFrame:
    if not lake.exists(*REQUESTS_TABLE):
        return pl.DataFrame(schema=REQUEST_SCHEMA)
    return lake.scan(*REQUESTS_TABLE).collect()


def _token_pattern(*values: str) -> str:
    """Any of `values` as a whole token, so erasing C12 never touches a text that mentions C123. One pattern for all
    of them: a regular expression is compiled once per column and file, not once per identifier."""
    return rf"(?:^|[^\w])(?:{'|'.join(re.escape(v) for v in values)})(?:$|[^\w])"


def _person_rows(frame: pl.DataFrame, customer_id: str, identifiers: list[str]) -> pl.Expr:
    """Rows about the person: their customer_id; or, in rows not attributed to another customer, a text column
    holding one of their identifiers (a quarantined raw record, an email typed into a free-text field). A phone
    number shared by a household stays with the other customer's row: it is their data too."""
    mentions = pl.lit(False)
    for column, dtype in frame.schema.items():
        if dtype == pl.Utf8 and column != "customer_id" and identifiers:
            mentions = mentions | pl.col(column).str.contains(_token_pattern(*identifiers)).fill_null(False)
    if "customer_id" not in frame.columns:
        return mentions
    # ids are text from bronze on, but a landing file may hold them as numbers (Parquet, JSON lines)
    own = (pl.col("customer_id").cast(pl.Utf8) == customer_id).fill_null(False)
    return own | (pl.col("customer_id").is_null() & mentions)


@dataclass(frozen=True)
class Subject:
    """Who a request is about: their own id (landing files, the request log), their token (every table from bronze
    on) and the identifiers an unattributed row could hold: the token, the contact details in the vault and the
    tokens of their devices (anonymous events). Not
    the own id: it is often a number or a short code, which a free text holds by chance (id 42 in "0.42", id 2024
    in every date), so it is matched only where it is the row's customer id."""

    customer_id: str
    token: str
    identifiers: tuple[str, ...]
    devices: tuple[str, ...] = ()  # their devices' tokens (also among the identifiers)


def subject_of(lake, customer_id: str, key: bytes) -> Subject:
    """Who the request is about, from the vault (contact details) and the events (device tokens)."""
    subject_token = token(key, customer_id)
    found = [subject_token]
    vault = _their_rows(lake, VAULT_TABLE, subject_token)
    for column in ("email", "phone"):
        if column in vault.columns:
            found += [v for v in vault.get_column(column).drop_nulls().unique().to_list() if len(v) >= 5]
    # Their devices' tokens: the events they browsed before logging in carry no customer id, only the device.
    events = _their_rows(lake, DEVICE_SOURCE, subject_token)
    devices = []
    if DEVICE_COLUMN in events.columns:
        devices = [d for d in events.get_column(DEVICE_COLUMN).drop_nulls().unique().to_list() if len(d) >= 8]
    return Subject(customer_id, subject_token, tuple(dict.fromkeys(found + devices)), tuple(devices))


def _their_rows(lake, table: tuple[str, str], subject_token: str) -> pl.DataFrame:
    if not lake.exists(*table):
        return pl.DataFrame()
    return lake.scan(*table).filter(pl.col("customer_id") == subject_token).collect()


def erasure_subject(ctx: DsarContext, request_id: str, customer_id: str, key: bytes) -> Subject:
    """The subject of an erasure, read from the lake by its first run and kept (mode 600) until the request is
    completed: a run killed after the vault or the events lost the person still knows their contact details and
    devices when it runs again."""
    path = _subject_file(ctx.home, request_id)
    if path.exists():
        saved = json.loads(path.read_text())
        return Subject(saved["customer_id"], saved["token"], tuple(saved["identifiers"]), tuple(saved["devices"]))
    subject = subject_of(ctx.lake, customer_id, key)
    data = json.dumps({"customer_id": subject.customer_id, "token": subject.token,
                       "identifiers": list(subject.identifiers), "devices": list(subject.devices)}).encode()
    write_private(path, lambda handle: handle.write(data))
    return subject


def _subject_file(home: Path, request_id: str) -> Path:
    return Path(home) / "dsar" / "erasing" / f"{request_id}.json"


def _forget_completed_subjects(home: Path, pending: set[str]) -> None:
    """Delete the kept subject of every erasure that is no longer pending (a run killed after completing it)."""
    for path in (Path(home) / "dsar" / "erasing").glob("*.json"):
        if path.stem not in pending:
            path.unlink()


def access_bundle(lake, subject: Subject) -> dict[str, list[dict]]:
    """Everything held about the person: the rows of every lake table that mention them, the vault's contact
    details included."""
    bundle = {}
    # The audit log never names a customer; the entries about them are those of their own requests.
    their_requests = requests(lake).filter(pl.col("customer_id") == subject.customer_id).get_column("request_id")
    for layer, name in lake.tables():
        frame = lake.scan(layer, name).collect()
        own_id = subject.customer_id if (layer, name) == REQUESTS_TABLE else subject.token
        rows = frame.filter(_person_rows(frame, own_id, list(subject.identifiers)))
        if (layer, name) == AUDIT_TABLE:
            rows = pl.concat([rows, frame.filter(pl.col("subject").is_in(their_requests.implode()))]).unique(
                maintain_order=True)
        if rows.height:
            bundle[f"{layer}/{name}"] = rows.to_dicts()
    return bundle


def write_bundle(bundle: dict[str, list[dict]], path: Path) -> Path:
    data = json.dumps(bundle, indent=1, sort_keys=True, default=str).encode()
    return write_private(path, lambda handle: handle.write(data))


@dataclass
class ErasureReport:
    rows_by_table: dict[str, int] = field(default_factory=dict)
    replaced_versions: dict[str, int] = field(default_factory=dict)  # table -> the version the erasure read
    old_files_deleted: int = 0  # data files of earlier versions that still held the person
    landing_files_rewritten: int = 0
    export_files_rewritten: int = 0
    model_files_rewritten: int = 0
    unreadable_files: int = 0  # landing or export files that could not be read, so not checked for the person
    warehouse_rows: int = 0

    @property
    def rows_total(self) -> int:
        return sum(self.rows_by_table.values())


def erase_from_table(lake, layer: str, name: str, subject: Subject, report: ErasureReport) -> None:
    """Commit the table without the person's rows, then purge what its earlier versions keep of them."""
    def person(frame: pl.DataFrame) -> pl.Expr:
        return _person_rows(frame, subject.token, list(subject.identifiers))

    rewrite = lake.rewrite_without(layer, name, person)
    if rewrite.rows_removed:
        report.replaced_versions[f"{layer}/{name}"] = rewrite.version_read
        report.rows_by_table[f"{layer}/{name}"] = rewrite.rows_removed
        fault_point(f"erasure:table-rewritten:{layer}/{name}")
    pattern = re.compile(_token_pattern(*subject.identifiers))
    deleted = lake.purge_earlier_versions(layer, name, person, lambda text: bool(pattern.search(text)))
    if deleted and f"{layer}/{name}" not in report.replaced_versions:
        report.replaced_versions[f"{layer}/{name}"] = rewrite.version_read
    report.old_files_deleted += deleted


def erase_from_lake(lake, subject: Subject, report: ErasureReport) -> None:
    """Every table but the request log (its rows are anonymised when the run records its outcomes) and the vault
    (erased last, see `_erase`)."""
    for layer, name in lake.tables():
        if (layer, name) not in (REQUESTS_TABLE, VAULT_TABLE):
            erase_from_table(lake, layer, name, subject, report)


def erase_from_files(folder: Path, subject: Subject, encoding: str = "utf-8",
                     column_mapping: dict[str, dict[str, str]] | None = None, pattern: str = "*",
                     key: bytes | None = None) -> tuple[int, int]:
    """Rewrite every data file under `folder` that mentions the person without their rows (deleted when nothing
    is left). Landing files hold the person's own id and their devices' own ids (anonymous events, found through
    the devices' tokens with `key`), under the shop's own column names where the column mapping names them
    (`folder/<source>/...`); hand-off files (audience CSVs) hold their token. Returns the files rewritten and the
    files that could not be read (reported: they may hold the person, unchecked)."""
    identifiers = list(subject.identifiers)
    device_tokens = Tokeniser(key) if key and subject.devices else None
    rewritten = unreadable = 0
    remove_staged(folder)  # left by a run killed while writing
    for path in sorted(p for p in Path(folder).rglob(pattern) if p.is_file() and landing_format(p)):
        try:
            frame = read_landing_file(path, encoding)
        except UNREADABLE_ERRORS:
            unreadable += 1
            continue
        mapping = (column_mapping or {}).get(path.relative_to(folder).parts[0], {})
        view = apply_column_mapping(frame, {c: ours for c, ours in mapping.items() if ours not in frame.columns})
        person = view.select(_person_rows(view, subject.customer_id, identifiers)
                             | _person_rows(view, subject.token, identifiers)).to_series()
        if device_tokens is not None and {DEVICE_COLUMN, "customer_id"} <= set(view.columns):
            anonymous = view.get_column("customer_id").is_null()
            person = person | (anonymous & device_tokens(view.get_column(DEVICE_COLUMN)).is_in(subject.devices)
                               .fill_null(False))
        if not person.any():
            continue
        kept = frame.filter(~person)
        if kept.height:
            # a crash leaves the old file or the new one, never half of it; the file keeps its permissions
            data = landing_file_bytes(kept, path, encoding)
            write_private(path, lambda handle, data=data: handle.write(data), mode=path.stat().st_mode & 0o777)
        else:
            path.unlink()
        rewritten += 1
        fault_point("erasure:file-rewritten")
    return rewritten, unreadable


class WarehouseBusy(RuntimeError):
    pass


def erase_from_warehouse(warehouse_path: Path, subject: Subject) -> int:
    """Delete the person's rows from every warehouse table, then copy the database into a new file so the freed
    blocks (which still hold the old bytes) are not kept."""
    import duckdb

    from domain.duckdb_setup import connect

    if not Path(warehouse_path).exists():
        return 0
    removed = 0
    try:
        con = connect(str(warehouse_path))
    except (duckdb.IOException, duckdb.ConnectionException):  # locked by another process, or held by this one
        raise WarehouseBusy("the warehouse is open in another process (an analyst's DuckDB session?), so it cannot "
                            "be rewritten; the erasure stays pending and completes on the next DSAR run") from None
    try:
        tables = con.execute("select table_schema, table_name from information_schema.tables "
                             "where table_type = 'BASE TABLE'").fetchall()
        for schema, table in tables:
            columns = dict(con.execute("select column_name, data_type from information_schema.columns "
                                       "where table_schema = ? and table_name = ?", [schema, table]).fetchall())
            mentions, params = [], []
            for column, dtype in columns.items():
                if dtype == "VARCHAR" and column != "customer_id" and subject.identifiers:
                    mentions.append(f'regexp_matches("{column}", ?)')
                    params.append(_token_pattern(*subject.identifiers))
            mentioned = " or ".join(mentions) or "false"
            if "customer_id" in columns:  # the lake's rule: own rows, or unattributed rows that mention them
                where = f"customer_id = ? or (customer_id is null and ({mentioned}))"
                params = [subject.token, *params]
            else:
                where = mentioned
            if where != "false":
                removed += con.execute(f'delete from "{schema}"."{table}" where {where}', params).fetchone()[0]
        compact = f"{warehouse_path}.compact"
        Path(compact).unlink(missing_ok=True)
        con.execute(f"attach '{compact}' as compacted")
        catalog = con.execute("select current_database()").fetchone()[0]
        con.execute(f'copy from database "{catalog}" to compacted')
        con.execute("detach compacted")
    finally:
        con.close()
    fault_point("erasure:warehouse-copied")
    os.replace(compact, warehouse_path)
    Path(f"{warehouse_path}.wal").unlink(missing_ok=True)
    return removed


@dataclass(frozen=True)
class DsarContext:
    lake: object
    home: Path
    landing_dir: Path
    warehouse_path: Path
    landing_encoding: str = "utf-8"
    column_mapping: dict[str, dict[str, str]] = field(default_factory=dict)  # ASSAY_COLUMN_MAPPING


def process_pending(ctx: DsarContext, now: datetime | None = None) -> list[dict]:
    """Handle every pending request, oldest first; returns one outcome per request (no customer ids in it)."""
    now = now or datetime.now(UTC)
    table = requests(ctx.lake)
    pending = table.filter(pl.col("status") == "pending").sort("requested_at")
    # once anything was ingested, the lake's tokens are the deployment key's: a new key would match nobody
    key = checked_key(ctx.lake, pseudonym_key(ctx.home, create=not ctx.lake.exists(*VAULT_TABLE)))
    outcomes, erased_ids = [], []
    for request in pending.iter_rows(named=True):
        customer_id, kind, request_id = request["customer_id"], request["kind"], request["request_id"]
        if kind == "access":
            bundle = access_bundle(ctx.lake, subject_of(ctx.lake, customer_id, key))
            path = write_bundle(bundle, ctx.home / "dsar" / request_id / "access.json")
            result = {"file": str(path), "rows_by_table": {t: len(rows) for t, rows in bundle.items()}}
        elif kind == "opt_out":
            overrides = pl.DataFrame({
                "customer_id": [token(key, customer_id)] * 2, "purpose": ["profiling", "marketing"],
                "granted": [False, False], "event_ts": [now] * 2, "request_id": [request_id] * 2,
            }, schema={"customer_id": pl.Utf8, "purpose": pl.Utf8, "granted": pl.Boolean,
                       "event_ts": pl.Datetime("us", "UTC"), "request_id": pl.Utf8})
            ctx.lake.append(*CONSENT_OVERRIDES_TABLE, overrides)
            result = {"withdrawn": ["profiling", "marketing"], "from": now.isoformat()}
        else:
            result = _erase(ctx, customer_id, request_id, key, now)
            erased_ids.append(customer_id)
        outcomes.append({"request_id": request_id, "kind": kind, "deadline": request["deadline"],
                         "on_time": now <= request["deadline"], **result})
    if outcomes:
        with requests_lock(ctx.home):
            _record_outcomes(ctx.lake, outcomes, erased_ids, key, now)
    _forget_completed_subjects(ctx.home, set(requests(ctx.lake).filter(pl.col("status") == "pending")
                                             .get_column("request_id").to_list()))
    return outcomes


def _record_outcomes(lake, outcomes: list[dict], erased_ids: list[str], key: bytes, now: datetime) -> None:
    """Mark the handled requests completed in the request log as it is now (requests submitted since this run
    read it stay, pending), replace every erased person's id by its keyed hash, and purge the log's earlier
    versions, which still hold those ids."""
    done = {o["request_id"]: o for o in outcomes}
    # Every handled request of an erased person keeps only the keyed hash: the request log must not keep them. One
    # submitted during this run keeps the id until a run handles it.
    erased = pl.col("customer_id").is_in(erased_ids) & (pl.col("status") == "completed")

    def completed(table: pl.DataFrame) -> pl.DataFrame:
        updated = table.with_columns(
            pl.when(pl.col("request_id").is_in(list(done))).then(pl.lit("completed")).otherwise(pl.col("status"))
            .alias("status"),
            pl.when(pl.col("request_id").is_in(list(done))).then(pl.lit(now)).otherwise(pl.col("completed_at"))
            .alias("completed_at"),
            pl.col("request_id").replace_strict({r: json.dumps(o, default=str, sort_keys=True)
                                                 for r, o in done.items()}, default=pl.col("result"))
            .alias("result"),
        )
        return updated.with_columns(
            pl.when(erased)
            .then(pl.col("customer_id").map_elements(lambda i: tombstone_hash(key, i), return_dtype=pl.Utf8))
            .otherwise(pl.col("subject_hash")).alias("subject_hash"),
        ).with_columns(pl.when(erased).then(None).otherwise(pl.col("customer_id")).alias("customer_id")
                       ).select(list(REQUEST_SCHEMA))

    lake.rewrite(*REQUESTS_TABLE, completed)
    if erased_ids:
        lake.purge_earlier_versions(*REQUESTS_TABLE, lambda frame: pl.col("customer_id").is_in(erased_ids),
                                    lambda text: True)


def audit_outcomes(lake, outcomes: list[dict], run_id: str) -> None:
    """One audit entry per handled request (its id and counts, never the customer's)."""
    for outcome in outcomes:
        rows = outcome.get("rows_total", sum(outcome.get("rows_by_table", {}).values()))
        record(lake, f"dsar_{outcome['kind']}", outcome["request_id"], run_id, rows, outcome)


def _erase(ctx: DsarContext, customer_id: str, request_id: str, key: bytes, now: datetime) -> dict:
    """Every step can run again: a run killed part-way leaves the request pending, and the next run finishes it."""
    subject = erasure_subject(ctx, request_id, customer_id, key)
    subject_hash = tombstone_hash(key, customer_id)
    # First: from here on, ingestion drops the person's landing rows, whatever happens to this run.
    if subject_hash not in tombstones(ctx.lake):
        ctx.lake.append(*TOMBSTONES_TABLE, pl.DataFrame({
            "subject_hash": [subject_hash], "erased_at": [now], "request_id": [request_id]}))
    fault_point("erasure:tombstone-written")
    report = ErasureReport()
    erase_from_lake(ctx.lake, subject, report)
    report.landing_files_rewritten, unreadable_landing = erase_from_files(
        ctx.landing_dir, subject, ctx.landing_encoding, ctx.column_mapping, key=key)
    report.export_files_rewritten, unreadable_exports = erase_from_files(ctx.home / "exports", subject)
    # each model version's drift reference: a sample of validation rows, with their customer ids
    report.model_files_rewritten, _ = erase_from_files(ctx.home / "models", subject, pattern="reference.parquet")
    report.unreadable_files = unreadable_landing + unreadable_exports
    report.warehouse_rows = erase_from_warehouse(ctx.warehouse_path, subject)
    # Earlier access bundles hold the person's data too: those of their own requests, and any naming their token.
    theirs = set(requests(ctx.lake).filter(pl.col("customer_id") == customer_id).get_column("request_id").to_list())
    for bundle in (ctx.home / "dsar").glob("*/access.json"):
        if bundle.parent.name in theirs or subject.token in bundle.read_text():
            shutil.rmtree(bundle.parent)
    if ctx.lake.exists(*VAULT_TABLE):  # last: the steps above search for the contact details it holds
        erase_from_table(ctx.lake, *VAULT_TABLE, subject, report)
    fault_point("erasure:erased")
    return {"rows_by_table": report.rows_by_table, "rows_total": report.rows_total,
            "replaced_versions": report.replaced_versions, "old_files_deleted": report.old_files_deleted,
            "landing_files_rewritten": report.landing_files_rewritten,
            "export_files_rewritten": report.export_files_rewritten,
            "model_files_rewritten": report.model_files_rewritten,
            "unreadable_files": report.unreadable_files,
            "warehouse_rows": report.warehouse_rows}
