"""The clock: one way for time to move through a home, the same way the daemon moves it.

`Clock.advance(until)` walks a home forward one day at a time. Each day it:
1. lets the day before land (a feed: the synthetic world's next day, or nothing for real files, which land on
   their own);
2. evaluates the real sensors and schedules of `orchestration/definitions.py` and the declarative automation,
   through Dagster's own evaluation (`build_sensor_context`, `evaluate_tick`, `evaluate_automation_conditions`),
   with their cursors carried from day to day, as the daemon does;
3. executes what they request against the home's Dagster instance, tagged as the daemon tags its runs, so the
   runs show in the UI's history; a sensor's run key already used is skipped, as the daemon skips it. A failed
   run is retried as the daemon's run retries would retry it, when the instance enables them.

Schedules catch up like the daemon: every cron tick missed since the last evaluation, the newest
`MAX_CATCHUP_TICKS`. Missed landing days are picked up by the landing sensor's cursor, and missed snapshots by
the automation's look-back (assets/conditions.py), each once and in order.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from time import perf_counter

import polars as pl

from assets.partitions import AssayPartitions
from orchestration.automation import range_tags
from orchestration.memory import MemorySampler

MEMORY_SAMPLE_SECONDS = 0.25  # a step's peak memory is the largest sample taken while it ran (orchestration/memory.py)
MAX_CATCHUP_TICKS = 5  # the daemon's default (`schedules: max_catchup_runs`)
EVALUATION_HOUR = 6  # the day's evaluation: after the night's landing and the 01:00-05:00 schedules
AUTOMATION_SENSOR = "snapshot_automation"
# sensors evaluated after the day's ingestion and snapshot runs, in this order: monitoring can ask for a retraining,
# a promotion for a re-score
LATE_SENSORS = ("retraining_sensor", "rescore_after_promotion", "dsar_sensor")


@dataclass
class RunRecord:
    trigger: str  # sensor, schedule or automation that asked
    target: str  # job, or the assets automation requested
    partitions: str  # a key, "first..last", or ""
    reason: str
    success: bool
    run_id: str
    started: datetime  # wall-clock start: alerts and decisions written from then on are this run's
    seconds: float = 0.0
    step_seconds: dict[str, float] = field(default_factory=dict)  # per Dagster step (op) of the run
    # per step: the largest resident memory of the clock's process and its children (dbt) while it ran, MB
    step_peak_mb: dict[str, float] = field(default_factory=dict)
    assets: list[str] = field(default_factory=list)  # what automation asked for (a job's runs: empty)
    retry: int = 0  # the run retries a failed run this many times over (the instance's run retries)


@dataclass
class Day:
    day: date
    runs: list[RunRecord] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # run keys a sensor had already used
    labels_matured: list[str] = field(default_factory=list)
    performance: dict[str, dict[str, float]] = field(default_factory=dict)  # matured snapshot -> auc, ece
    decisions: list[tuple[str, str]] = field(default_factory=list)  # (promoted or rejected, model version)
    champion: str = ""
    # the synthetic feed's time to deliver the day's files (the source system's work, not Assay's); 0 for real files
    feed_seconds: float = 0.0


@dataclass
class ClockState:
    today: date | None = None  # the day the home stands at: everything before it has landed and been handled
    cursors: dict[str, str | None] = field(default_factory=dict)
    schedule_ticks: dict[str, str] = field(default_factory=dict)  # schedule -> last evaluated tick (ISO)
    automation_cursor: str | None = None  # Dagster's serialized AssetDaemonCursor
    # a sensor or schedule turned on or off, as in the UI; the rest follow their default status
    enabled: dict[str, bool] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path) -> ClockState:
        if not path.exists():
            return cls()
        raw = json.loads(path.read_text())
        return cls(today=date.fromisoformat(raw["today"]) if raw.get("today") else None,
                   cursors=raw.get("cursors", {}), schedule_ticks=raw.get("schedule_ticks", {}),
                   automation_cursor=raw.get("automation_cursor"), enabled=raw.get("enabled", {}))

    def save(self, path: Path) -> None:
        data = {**asdict(self), "today": self.today.isoformat() if self.today else None}
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=2, sort_keys=True))
        tmp.replace(path)  # a crash leaves the old state or the new one, never half of it


def clock_path(home: Path) -> Path:
    return home / "clock.json"


def evaluation_time(day: date) -> datetime:
    return datetime.combine(day, time(EVALUATION_HOUR), UTC)


def quiet_run_config(run_config: dict | None, log_level: str = "WARNING") -> dict:
    """Step logs stay in the instance (the UI shows them); the terminal shows warnings."""
    return {"loggers": {"console": {"config": {"log_level": log_level}}}, **(run_config or {})}


def execute_job(defs, instance, job_name: str, *, partition_key: str | None = None,
                partition_keys: list[str] | None = None, tags: dict | None = None, run_config: dict | None = None,
                asset_selection: Iterable | None = None, log_level: str = "WARNING"):
    """Run a job of the definitions in this process against `instance`: one partition, a range of them (one run,
    as a single-run backfill makes), or none."""
    job = defs.resolve_job_def(job_name)
    run_tags = {**(tags or {}), **(range_tags(partition_keys) if partition_keys and len(partition_keys) > 1
                                   else {})}
    if partition_keys and len(partition_keys) == 1:
        partition_key = partition_keys[0]
    return job.execute_in_process(run_config=quiet_run_config(run_config, log_level), instance=instance,
                                  partition_key=partition_key, tags=run_tags, raise_on_error=False,
                                  asset_selection=list(asset_selection) if asset_selection else None)


def execute_assets(defs, instance, keys, *, partition_key: str | None, tags: dict, log_level: str = "WARNING"):
    """Materialize a set of assets (and their checks) for one partition, as an automation run does: a run of the
    implicit asset job with that asset selection, so the automation knows which assets the run targeted."""
    job = defs.resolve_implicit_job_def_def_for_assets(list(keys))
    return job.execute_in_process(run_config=quiet_run_config(None, log_level), instance=instance,
                                  partition_key=partition_key, tags=tags, raise_on_error=False,
                                  asset_selection=list(keys))


def _partitions_label(request) -> str:
    start = request.tags.get("dagster/asset_partition_range_start")
    if start:
        return f"{start}..{request.tags['dagster/asset_partition_range_end']}"
    return request.partition_key or ""


class Clock:
    """Advances one home. `feed(day)` makes the landing files of days before `day` available (None: real files,
    which land by themselves)."""

    def __init__(self, settings, instance, defs=None, feed: Callable[[date], None] | None = None,
                 say: Callable[[str], None] = print, log_level: str = "WARNING") -> None:
        from orchestration.definitions import build_definitions

        self.settings = settings
        self.instance = instance
        self.defs = defs or build_definitions(settings)
        self.partitions = AssayPartitions.from_settings(settings)
        self.feed = feed
        self.say = say
        self.log_level = log_level
        self.path = clock_path(settings.home)
        self.state = ClockState.load(self.path)
        self.lake = self.defs.resources["lake"]
        self._memory = MemorySampler(MEMORY_SAMPLE_SECONDS)  # sampling while a tick runs

    # ------------------------------------------------------------------------------------------ moving time

    def _sensor_def(self, name: str):
        return next(sensor for sensor in self.defs.sensors if sensor.name == name)

    def running(self, instigator) -> bool:
        from dagster import DefaultScheduleStatus, DefaultSensorStatus

        if instigator.name in self.state.enabled:
            return self.state.enabled[instigator.name]
        return instigator.default_status in (DefaultSensorStatus.RUNNING, DefaultScheduleStatus.RUNNING)

    def prime(self, day: date) -> None:
        """Start the clock at `day` on a home whose history was just backfilled: sensors, schedules and the
        automation are evaluated once for their cursors, and what they would ask for now is taken as done, since
        the backfill did it."""
        from dagster import build_sensor_context

        for sensor in self.defs.sensors:
            if sensor.name == AUTOMATION_SENSOR or not self.running(sensor):
                continue
            with build_sensor_context(instance=self.instance, cursor=self.state.cursors.get(sensor.name),
                                      resources=self.defs.resources, definitions=self.defs) as context:
                result = sensor.evaluate_tick(context)
            if result.cursor is not None:
                self.state.cursors[sensor.name] = result.cursor
        now = evaluation_time(day)
        for schedule in self.defs.schedules:
            self.state.schedule_ticks[schedule.name] = now.isoformat()
        self._evaluate_automation(now)
        self.state.today = day
        self.state.save(self.path)

    def advance(self, until: date, on_day: Callable[[Day], object] | None = None, step_days: int = 1) -> list[Day]:
        """Tick every `step_days`-th day after the home's today, and `until` itself. A step longer than a day is a
        daemon that looked only every few days: what landed meanwhile is caught up on the next tick."""
        if self.state.today is None:
            raise ValueError(f"{self.settings.home} has no clock yet: run `assay run` (a backfill of what has "
                             "landed) or `assay tick --from YYYY-MM-DD` first")
        days = []
        day = min(self.state.today + timedelta(days=step_days), until)
        while day <= until and day > self.state.today:
            days.append(self.tick(day))
            if on_day is not None:
                on_day(days[-1])
            day = min(day + timedelta(days=step_days), until)
        return days

    def tick(self, day: date) -> Day:
        """The day `day`: the files of the day before land, then everything the daemon would do that morning."""
        report = Day(day)
        if self.feed is not None:
            fed = perf_counter()
            self.feed(day)
            report.feed_seconds = round(perf_counter() - fed, 2)
        started = datetime.now(UTC)
        now = evaluation_time(day)
        with MemorySampler(MEMORY_SAMPLE_SECONDS) as self._memory:
            self._sensor("landing_sensor", report)
            self._automation(now, report)
            self._schedules(now, report)
            for name in LATE_SENSORS:
                self._sensor(name, report)
            # a promotion's re-score or a retraining can make new automation work (e.g. reports on new scores)
            self._automation(now, report)
        self._summarise(report, started)
        self.state.today = day
        self.state.save(self.path)
        self._record(report)
        return report

    def _record(self, report: Day) -> None:
        """Each tick's timeline, as JSON under reports/ticks/ (what `assay tick` printed, with run ids)."""
        out = self.settings.reports_dir / "ticks"
        out.mkdir(parents=True, exist_ok=True)
        (out / f"{report.day.isoformat()}.json").write_text(json.dumps(asdict(report), indent=2, default=str))

    # ------------------------------------------------------------------------------------------ evaluation

    def _sensor(self, name: str, report: Day) -> None:
        from dagster import build_sensor_context

        sensor = self._sensor_def(name)
        if not self.running(sensor):
            return
        with build_sensor_context(instance=self.instance, cursor=self.state.cursors.get(name),
                                  resources=self.defs.resources, definitions=self.defs) as context:
            result = sensor.evaluate_tick(context)
        self.state.cursors[name] = result.cursor if result.cursor is not None else self.state.cursors.get(name)
        for request in result.run_requests or []:
            if request.run_key and self._run_key_used(name, request.run_key):
                report.skipped.append(f"{name}:{request.run_key}")
                continue
            tags = {**request.tags, "dagster/sensor_name": name,
                    **({"dagster/run_key": request.run_key} if request.run_key else {})}
            self._run_request(name, sensor.job_name, request, tags, report)

    def _run_key_used(self, sensor_name: str, run_key: str) -> bool:
        from dagster import RunsFilter

        runs = self.instance.get_runs(filters=RunsFilter(tags={"dagster/sensor_name": sensor_name,
                                                               "dagster/run_key": run_key}), limit=1)
        return bool(runs)

    def _schedules(self, now: datetime, report: Day) -> None:
        from dagster import build_schedule_context

        for schedule in self.defs.schedules:
            if not self.running(schedule):
                continue
            ticks = self._missed_ticks(schedule, now)
            for tick_time in ticks[-MAX_CATCHUP_TICKS:]:
                with build_schedule_context(instance=self.instance, scheduled_execution_time=tick_time,
                                            resources=self.defs.resources) as context:
                    result = schedule.evaluate_tick(context)
                for request in result.run_requests or []:
                    tags = {**request.tags, "dagster/schedule_name": schedule.name}
                    self._run_request(schedule.name, schedule.job_name, request, tags, report)
            if ticks:
                self.state.schedule_ticks[schedule.name] = ticks[-1].isoformat()

    def _missed_ticks(self, schedule, now: datetime) -> list[datetime]:
        """Cron ticks of `schedule` after its last evaluated tick (or the day before `now` on a first evaluation)
        and at or before `now`."""
        last = self.state.schedule_ticks.get(schedule.name)
        return cron_ticks(schedule.cron_schedule, datetime.fromisoformat(last) if last else now - timedelta(days=1),
                          now)

    def _evaluate_automation(self, now: datetime):
        from dagster import deserialize_value, evaluate_automation_conditions, serialize_value

        sensor = self._sensor_def(AUTOMATION_SENSOR)
        cursor = deserialize_value(self.state.automation_cursor) if self.state.automation_cursor else None
        result = evaluate_automation_conditions(defs=self.defs, instance=self.instance,
                                                asset_selection=sensor.asset_selection, evaluation_time=now,
                                                cursor=cursor)
        self.state.automation_cursor = serialize_value(result.cursor)
        return result

    def _automation(self, now: datetime, report: Day) -> None:
        if not self.running(self._sensor_def(AUTOMATION_SENSOR)):
            return
        result = self._evaluate_automation(now)
        by_partition: dict[str | None, set] = {}
        graph = self.defs.resolve_asset_graph()
        for key in graph.get_all_asset_keys():
            for partition in result.get_requested_partitions(key):
                by_partition.setdefault(partition, set()).add(key)
        # oldest partition first, unpartitioned reports last: they read what the partitioned runs wrote
        for partition in sorted(by_partition, key=lambda p: (p is None, p or "")):
            keys = by_partition[partition]
            tags = {"dagster/sensor_name": AUTOMATION_SENSOR, "assay/reason": "automation-condition",
                    "assay/clock_day": now.date().isoformat()}
            conditions = {graph.get(k).automation_condition.get_label() or "automation" for k in keys
                          if graph.get(k).automation_condition is not None}
            for started, outcome, retry in self._with_retries(
                    lambda run_tags, retry_keys, keys=keys, partition=partition: execute_assets(
                        self.defs, self.instance, retry_keys or keys, partition_key=partition, tags=run_tags,
                        log_level=self.log_level), tags):
                report.runs.append(RunRecord(AUTOMATION_SENSOR, _assets_label(keys), partition or "",
                                             _main_condition(conditions), outcome.success, outcome.run_id, started,
                                             (datetime.now(UTC) - started).total_seconds(),
                                             *self._step_figures(outcome.run_id),
                                             sorted(k.to_user_string() for k in keys), retry))

    def _run_request(self, trigger: str, job_name: str | None, request, tags: dict, report: Day) -> None:
        job = request.job_name or job_name
        tags = {**tags, "assay/clock_day": report.day.isoformat()}
        for started, outcome, retry in self._with_retries(
                lambda run_tags, retry_keys: execute_job(
                    self.defs, self.instance, job, partition_key=request.partition_key, tags=run_tags,
                    run_config=request.run_config or None, asset_selection=retry_keys or request.asset_selection,
                    log_level=self.log_level),
                tags):
            report.runs.append(RunRecord(trigger, job, _partitions_label(request),
                                         request.tags.get("assay/reason", ""), outcome.success, outcome.run_id,
                                         started, (datetime.now(UTC) - started).total_seconds(),
                                         *self._step_figures(outcome.run_id), retry=retry))

    def _with_retries(self, execute: Callable[[dict, list | None], object], tags: dict):
        """Execute a run, then, while it fails, a retry of it as the daemon's run retries make one when the
        instance enables them (`run_retries` in dagster.yaml), up to the instance's maximum: tagged with the run
        it retries, and, like the daemon's default strategy (from failure), for the assets of the steps that did
        not succeed. Yields (start, outcome, retry number) for each run."""
        started = datetime.now(UTC)
        outcome = execute(tags, None)
        yield started, outcome, 0
        retries = self.instance.run_retries_max_retries if self.instance.run_retries_enabled else 0
        root = outcome.run_id
        for number in range(1, retries + 1):
            if outcome.success:
                return
            started = datetime.now(UTC)
            outcome = execute({**tags, "dagster/parent_run_id": outcome.run_id, "dagster/root_run_id": root,
                               "dagster/retry_number": str(number)}, self._failed_steps_assets(outcome.run_id))
            yield started, outcome, number

    def _failed_steps_assets(self, run_id: str) -> list:
        """The assets a run planned in the steps that did not succeed. A step is re-executed whole, whatever it
        materialized before it failed, and a succeeded step's skippable output that it left out (the file
        quarantine of a day with none) is not retried."""
        from dagster import DagsterEventType

        succeeded = {entry.step_key for entry in self.instance.all_logs(run_id, of_type=DagsterEventType.STEP_SUCCESS)}
        planned = self.instance.all_logs(run_id, of_type=DagsterEventType.ASSET_MATERIALIZATION_PLANNED)
        return sorted({entry.dagster_event.asset_key for entry in planned if entry.step_key not in succeeded},
                      key=lambda k: k.to_user_string())

    def _step_figures(self, run_id: str) -> tuple[dict[str, float], dict[str, float]]:
        """Each step's wall time, and its peak memory where the sampler saw it run."""
        stats = [stat for stat in self.instance.get_run_step_stats(run_id) if stat.end_time and stat.start_time]
        seconds = {stat.step_key: round(stat.end_time - stat.start_time, 2) for stat in stats}
        peaks = {stat.step_key: self._memory.peak_mb(stat.start_time, stat.end_time) for stat in stats}
        return seconds, {step: peak for step, peak in peaks.items() if peak is not None}

    # ------------------------------------------------------------------------------------------ reporting

    def _summarise(self, report: Day, started: datetime) -> None:
        from resources.registry import DECISIONS_TABLE

        for run in report.runs:
            if "gold/churn_labels" in run.assets and run.success:
                report.labels_matured.append(run.partitions)
        if self.lake.exists("gold", "monitoring_metrics") and report.labels_matured:
            matured = [date.fromisoformat(d) for d in report.labels_matured]
            rows = (self.lake.scan("gold", "monitoring_metrics")
                    .filter(pl.col("snapshot_date").is_in(matured) & pl.col("metric").is_in(["auc", "ece"])
                            & (pl.col("column") == "*") & (pl.col("source") == "performance")).collect())
            for row in rows.iter_rows(named=True):
                report.performance.setdefault(row["snapshot_date"].isoformat(), {})[row["metric"]] = row["value"]
        if self.lake.exists(*DECISIONS_TABLE):
            decided = (self.lake.scan(*DECISIONS_TABLE).filter(pl.col("decided_at") >= started)
                       .sort("decided_at").collect())
            for row in decided.iter_rows(named=True):
                report.decisions.append((row["action"], row["version"]))
        registry = self.defs.resources["registry"]
        report.champion = registry.champion_version() or ""


def cron_ticks(cron: str, after: datetime, until: datetime) -> list[datetime]:
    """Ticks of a cron schedule (UTC) in (after, until], in order. A time-window partitions definition on the same
    cron enumerates them: each window starts on a tick."""
    from dagster import TimeWindowPartitionsDefinition

    ticks_def = TimeWindowPartitionsDefinition(cron_schedule=cron, start=after + timedelta(minutes=1),
                                               fmt="%Y-%m-%dT%H:%M", end_offset=1)
    starts = (ticks_def.time_window_for_partition_key(k).start
              for k in ticks_def.get_partition_keys(current_time=until))
    return [t.astimezone(UTC) for t in starts if after < t <= until]


CONDITION_ORDER = ("label_matured", "snapshot_due")  # what a run is for, when it serves several rules


def _main_condition(labels: set[str]) -> str:
    return next((c for c in CONDITION_ORDER if c in labels), ",".join(sorted(labels)))


def _assets_label(keys) -> str:
    """A run's assets, named by what matters to a reader: the gold, model and monitoring tables (last name only)."""
    names = sorted(k.to_user_string() for k in keys)
    shown = [n for n in names if n.split("/")[0] in ("gold", "monitoring", "models", "governance")] or names
    short = [n.split("/")[-1] for n in shown[:3]]
    return ",".join(short) + (f" +{len(names) - len(short)}" if len(names) > len(short) else "")


TIMELINE_HEADER = f"{'day':<10}  {'what ran (why, seconds)':<96} {'matured AUC/ECE':<24} gate"


def timeline_lines(report: Day) -> list[str]:
    """A day of the timeline: one line per run, the matured figures and the gate's decisions."""
    lines = []
    for i, run in enumerate(report.runs):
        what = f"{run.target} {run.partitions}".strip() + f" ({run.reason or run.trigger}, {run.seconds:.0f}s)"
        if run.retry:
            what += f" retry {run.retry}"
        if not run.success:
            what += " FAILED"
        figures = ""
        if i == 0 and report.performance:
            figures = "; ".join(f"{d}: {v.get('auc', float('nan')):.3f}/{v.get('ece', float('nan')):.3f}"
                                for d, v in sorted(report.performance.items()))
        gate = "; ".join(f"{action} {version[-12:]}" for action, version in report.decisions) \
            if i == len(report.runs) - 1 else ""
        lines.append(f"{report.day.isoformat() if i == 0 else '':<10}  {what:<96.96} {figures:<24} {gate}".rstrip())
    return lines
