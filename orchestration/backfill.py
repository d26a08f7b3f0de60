"""A backfill of everything that has landed (`assay run`, the bench, the start of a scenario): the jobs of the
definitions over partition ranges, in dependency order, then the clock is set to where the data ends.

The steps are the jobs' own selections (orchestration/automation.py) and the partition keys come from
`AssayPartitions`; nothing here selects or slices on its own.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

from assets.ingestion.landing import landed_days
from assets.partitions import AssayPartitions
from domain.contract import SOURCES
from orchestration import automation as selections
from orchestration.automation import lay_over
from orchestration.clock import execute_job


@dataclass(frozen=True)
class Step:
    job: str
    selection: object  # an AssetSelection within the job
    keys: list[str] | None  # partition keys; None for unpartitioned assets
    chunk: int | None = None  # partitions per run; None: one run


STEP_NAMES = ("ingestion", "features", "labels", "tuning", "model", "scores", "performance", "drift", "sources",
              "simulation", "governance", "warehouse", "retention", "clock")
# retention deletes: only on request; `clock` (not a job) sets the home's clock to where the backfill ends
DEFAULT_STEPS = tuple(name for name in STEP_NAMES if name != "retention")


def data_end(landing: Path, settings_end: date | None) -> date | None:
    """The exclusive end of what has landed: the day after the newest landing folder of any source (bounded by a
    configured end date)."""
    newest = max((days[-1] for days in (landed_days(landing, s) for s in SOURCES) if days), default=None)
    if newest is None:
        return settings_end
    end = newest + timedelta(days=1)
    return min(end, settings_end) if settings_end else end


def backfill_steps(partitions: AssayPartitions, end: date, score_snapshots: int = 0, drift_snapshots: int = 8,
                   snapshots_per_run: int = 52) -> dict[str, Step]:
    days = partitions.days_before(end)
    snapshots = partitions.snapshots_through(end)
    matured = [k for k in snapshots if partitions.label_due(date.fromisoformat(k)) <= end]
    scored = snapshots[-score_snapshots:] if score_snapshots else snapshots
    return {
        "ingestion": Step("ingestion_job", None, days),
        "features": Step("weekly_snapshot_job", selections.FEATURES, snapshots, snapshots_per_run),
        "labels": Step("matured_labels_job", selections.LABELS, matured, snapshots_per_run),
        "tuning": Step("retraining_job", selections.TUNING, None),
        "model": Step("retraining_job", selections.MODEL, None),
        "scores": Step("rescoring_job", None, scored),
        "performance": Step("matured_labels_job", selections.PERFORMANCE, [k for k in matured if k in set(scored)]),
        "drift": Step("weekly_snapshot_job", selections.DRIFT, snapshots[-drift_snapshots:]),
        "sources": Step("weekly_snapshot_job", selections.SOURCE_CHECKS, snapshots[-drift_snapshots:]),
        "simulation": Step("publish_job", selections.SIMULATION, None),
        "governance": Step("publish_job", selections.GOVERNANCE, None),
        "warehouse": Step("publish_job", selections.WAREHOUSE, None),
        "retention": Step("retention_job", None, None),
    }


def run_step(defs, instance, name: str, step: Step, run_config: dict | None = None, tags: dict | None = None,
             log_level: str = "WARNING") -> int:
    """Execute one step; returns the number of runs. Raises when a run fails."""
    if step.keys is not None and not step.keys:
        return 0
    selection = step.selection.resolve(defs.resolve_asset_graph()) if step.selection is not None else None
    if run_config:
        # a step's own config (the CLI's tuning budget) keeps the job's defaults (ASSAY_MODELLING_CONFIG)
        run_config = lay_over(defs.resolve_job_def(step.job).run_config or {}, run_config)
    chunks = ([step.keys[i:i + step.chunk] for i in range(0, len(step.keys), step.chunk)]
              if step.keys and step.chunk else [step.keys])
    for keys in chunks:
        result = execute_job(defs, instance, step.job, partition_keys=keys, run_config=run_config,
                             asset_selection=selection, tags={"assay/reason": f"backfill-{name}", **(tags or {})},
                             log_level=log_level)
        if not result.success:
            raise RuntimeError(f"backfill step {name} ({step.job}"
                               + (f", {keys[0]}..{keys[-1]}" if keys else "") + ") failed: see the run in the UI")
    return len(chunks)


def run_backfill(defs, instance, steps: dict[str, Step], names: list[str], run_configs: dict[str, dict] | None = None,
                 say: Callable[[str], None] = print, log_level: str = "WARNING") -> dict[str, float]:
    timings: dict[str, float] = {}
    for name in (n for n in names if n != "clock"):
        started = time.perf_counter()
        runs = run_step(defs, instance, name, steps[name], (run_configs or {}).get(name), log_level=log_level)
        timings[name] = round(time.perf_counter() - started, 1)
        say(f"[assay] {name}: {timings[name]}s" + (f" ({runs} runs)" if runs > 1 else ""))
    return timings
