"""`assay check`: a data doctor that reads a landing folder against the contract before anything runs.

Per source it reports the landing days and rows, which columns map onto the contract and which are carried as they
are, and what validation would quarantine (by reason, never by value: values can be personal data). Then, for the
home's partitions and label horizon, how many snapshots that gives, how many labels mature, and whether a model can
be trained on them. Nothing is written anywhere.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta

from assets.ingestion.landing import landed_days, read_landing, stray_entries
from assets.ingestion.validation import ContractError, validate_batch
from assets.modeling.training import minimum_labelled_snapshots
from assets.partitions import AssayPartitions
from domain.contract import SOURCES


@dataclass
class SourceCheck:
    source: str
    required: bool
    days: int = 0
    first_day: date | None = None
    last_day: date | None = None
    rows: int = 0
    valid_rows: int = 0
    mapped: list[str] = field(default_factory=list)  # contract columns found (after the column mapping)
    missing: list[str] = field(default_factory=list)  # contract columns absent (null in bronze)
    carried: list[str] = field(default_factory=list)  # columns the contract does not name: carried into bronze
    quarantined: dict[str, int] = field(default_factory=dict)  # reason -> rows
    event_range: tuple[date, date] | None = None  # of the valid rows' time column
    ignored: int = 0  # entries of the day folders that are not landing files
    unreadable: dict[str, int] = field(default_factory=dict)  # reason code -> landing files that cannot be read
    strays: int = 0  # entries of the source's folder that are not day folders
    problem: str = ""  # a reason this source stops the pipeline


@dataclass
class CheckReport:
    sources: list[SourceCheck]
    snapshots: int
    matured_snapshots: int
    needed_snapshots: int | None
    problems: list[str]

    @property
    def ok(self) -> bool:
        return not self.problems


def check_landing(settings, until: date) -> CheckReport:
    """Profile the landing folder of `settings` for the partitions before `until` (exclusive)."""
    partitions = AssayPartitions.from_settings(settings)
    days = partitions.days_before(until)
    start, end = (date.fromisoformat(days[0]), date.fromisoformat(days[-1])) if days else (until, until)
    checks, problems = [], []
    for name, spec in SOURCES.items():
        check = SourceCheck(name, spec.required, strays=len(stray_entries(settings.landing, name)))
        checks.append(check)
        landed = [d for d in landed_days(settings.landing, name) if start <= d <= end]
        if not landed:
            if spec.required:
                check.problem = f"{name} is required and has no landing files between {start} and {end}"
                problems.append(check.problem)
            continue
        check.days, check.first_day, check.last_day = len(landed), landed[0], landed[-1]
        batch = read_landing(settings.landing, name, landed[0], landed[-1] + timedelta(days=1),
                             settings.column_mapping.get(name, {}), settings.landing_encoding)
        raw = batch.frame
        check.rows, check.ignored = raw.height, len(batch.ignored)
        for unreadable in batch.unreadable:
            check.unreadable[unreadable.code] = check.unreadable.get(unreadable.code, 0) + 1
        columns = [c for c in raw.columns if not c.startswith("_")]
        check.mapped = [c for c in spec.column_names if c in columns]
        check.missing = [c for c in spec.column_names if c not in columns]
        check.carried = [c for c in columns if c not in spec.column_names]
        try:
            result = validate_batch(raw, spec, run_id="assay-check")
        except ContractError as error:
            check.problem = str(error)
            problems.append(check.problem)
            continue
        check.valid_rows = result.rows_valid
        check.quarantined = dict(result.reasons)
        if result.rows_valid:
            times = result.valid.get_column(spec.time_column).dt.date()
            check.event_range = (times.min(), times.max())
        elif spec.required:
            check.problem = f"{name}: every one of its {check.rows:,} rows would be quarantined"
            problems.append(check.problem)
    snapshots = partitions.snapshots_through(until)
    orders = next(c for c in checks if c.source == "orders")
    data_end = orders.last_day + timedelta(days=1) if orders.last_day else until
    matured = [s for s in snapshots if partitions.label_due(date.fromisoformat(s)) <= data_end]
    needed = None
    if snapshots:
        grid = [date.fromisoformat(s) for s in snapshots]
        needed = minimum_labelled_snapshots(grid, settings.label_horizon_days, with_calibration=True)
        if len(matured) < needed:
            problems.append(
                f"too little history for a {settings.label_horizon_days}-day churn horizon: a model needs {needed} "
                f"snapshots whose labels have matured, and these files give {len(matured)} (of {len(snapshots)} "
                f"snapshots from {snapshots[0]}). Land more history, start the snapshots earlier "
                "(ASSAY_SNAPSHOT_START) or shorten ASSAY_LABEL_HORIZON_DAYS.")
    else:
        problems.append(f"no snapshot date falls before {until}: ASSAY_SNAPSHOT_START is {settings.snapshot_start}")
    return CheckReport(checks, len(snapshots), len(matured), needed, problems)


def report_lines(report: CheckReport) -> list[str]:
    lines = []
    for c in report.sources:
        head = f"{c.source:<17} {'required' if c.required else 'optional'}"
        strays = [f"{'':<18} not day folders (date=YYYY-MM-DD), never read: {c.strays}"] if c.strays else []
        if not c.days:
            lines.append(f"{head}  no landing files" + (f"  PROBLEM: {c.problem}" if c.problem else ""))
            lines += strays
            continue
        lines.append(f"{head}  {c.days} days ({c.first_day} to {c.last_day}), {c.rows:,} rows, "
                     f"{c.valid_rows:,} valid")
        lines.append(f"{'':<18} contract columns found: {', '.join(c.mapped) or 'none'}")
        if c.missing:
            lines.append(f"{'':<18} absent (null in bronze): {', '.join(c.missing)}")
        if c.carried:
            lines.append(f"{'':<18} not in the contract (carried as they are): {', '.join(c.carried)}")
        if c.quarantined:
            lines.append(f"{'':<18} would be quarantined: "
                         + ", ".join(f"{reason} {n:,}" for reason, n in sorted(c.quarantined.items())))
        if c.ignored:
            lines.append(f"{'':<18} not landing files, left alone: {c.ignored}")
        lines += strays
        if c.unreadable:
            lines.append(f"{'':<18} unreadable files (file quarantine): "
                         + ", ".join(f"{code} {n}" for code, n in sorted(c.unreadable.items())))
        if c.event_range:
            lines.append(f"{'':<18} event dates of valid rows: {c.event_range[0]} to {c.event_range[1]}")
        if c.problem:
            lines.append(f"{'':<18} PROBLEM: {c.problem}")
    lines.append(f"snapshots: {report.snapshots}; with matured labels: {report.matured_snapshots}; a model needs at "
                 f"least {report.needed_snapshots}" if report.needed_snapshots else f"snapshots: {report.snapshots}")
    lines += [f"PROBLEM: {p}" for p in report.problems if not any(p == c.problem for c in report.sources)]
    lines.append("OK: these files can run end to end." if report.ok else "NOT READY: see the problems above.")
    return lines
