"""Input and prediction drift of one snapshot against the model's reference (its validation rows), with Evidently."""

from __future__ import annotations

import json
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path

import pandas as pd
import polars as pl

from assets.modeling.parallel import one_blas_thread
from domain.private_files import write_private

# Evidently's cost grows steeply with rows (about 200 s for 1M x 30 here); a seeded sample keeps a report to
# seconds while leaving the drift tests plenty of power.
DEFAULT_SAMPLE_CAP = 20_000


@dataclass(frozen=True)
class DriftSummary:
    columns: int
    drifted_columns: list[str]
    column_scores: dict[str, float]
    methods: dict[str, str]
    report_path: str
    # columns with no value on one side: no test can compare them (Evidently refuses them), so they are left out
    # and named here, per side ("reference", "current" or "both")
    empty_columns: dict[str, str] = field(default_factory=dict)

    @property
    def drift_share(self) -> float:
        return len(self.drifted_columns) / self.columns if self.columns else 0.0


def sample_rows(frame: pl.DataFrame, cap: int, seed: int) -> pl.DataFrame:
    return frame if frame.height <= cap else frame.sample(n=cap, seed=seed)


def _is_drifted(method: str, value: float, threshold: float) -> bool:
    # Statistical tests report p-values (drift when small); distances report effect sizes (drift when large).
    return value < threshold if "p_value" in method.lower() else value >= threshold


WORKSPACE_PROJECT = "Assay churn monitoring"
EVIDENTLY_WORKSPACE = "evidently_workspace"  # under the reports folder


WORKSPACE_INDEX = "assay_runs.json"  # run name (snapshot date) -> run id and the saved run's mtime
RUN_SUFFIX = ".evidently.json"  # an Evidently run saved beside its HTML report


def run_path(html_path: Path) -> Path:
    return Path(html_path).with_suffix(RUN_SUFFIX)


def sync_workspace(workspace: Path, reports: Path) -> int:
    """Bring the local Evidently workspace (`evidently ui --workspace <path>` shows the history) up to date with the
    drift runs saved under `reports`: one run per snapshot date, a re-run replacing the earlier run of its date.
    Opening a local workspace reads every run it holds (about 0.1 s each at the `small` size), so the weekly drift
    runs do not do it: their cost would grow with the history. This runs when someone wants the UI
    (`assay drift-workspace`). Returns the runs added."""
    from evidently import Run
    from evidently.ui.workspace import Workspace

    saved = {path.name.removesuffix(RUN_SUFFIX): path for path in sorted(Path(reports).glob(f"*{RUN_SUFFIX}"))}
    index_path = workspace / WORKSPACE_INDEX
    index: dict[str, dict] = json.loads(index_path.read_text()) if index_path.exists() else {}
    stale = {name: path for name, path in saved.items()
             if index.get(name, {}).get("mtime_ns") != path.stat().st_mtime_ns}
    if not stale and workspace.exists():
        return 0
    ws = Workspace.create(str(workspace))
    found = ws.search_project(WORKSPACE_PROJECT)
    project = found[0] if found else ws.create_project(
        WORKSPACE_PROJECT, description="Data drift of Assay's churn features and scores, one run per snapshot.")
    held = {str(run_id) for run_id in ws.list_runs(project.id)}
    for name, path in stale.items():
        earlier = index.get(name, {}).get("run_id")
        if earlier in held:
            ws.delete_run(project.id, earlier)
        run = Run.load(path)
        index[name] = {"run_id": str(ws.add_run(project.id, run, include_data=False, name=name).id),
                       "mtime_ns": path.stat().st_mtime_ns}
        tmp = index_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(index, indent=1, sort_keys=True))
        tmp.replace(index_path)
    return len(stale)


def drift_report(
    reference: pl.DataFrame, current: pl.DataFrame, categorical: list[str], html_path: Path,
    snapshot_date: date | None = None,
) -> DriftSummary:
    """Run Evidently's data-drift preset over the shared columns; save the HTML report and, beside it, the run
    (timestamped at the snapshot date, so the Evidently UI orders the history by snapshot; see `sync_workspace`)."""
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    shared = [c for c in reference.columns if c in current.columns]
    empty = empty_columns(reference.select(shared), current.select(shared))
    columns = [c for c in shared if c not in empty]
    cats = [c for c in columns if c in categorical]
    nums = [c for c in columns if c not in cats]
    definition = DataDefinition(numerical_columns=nums, categorical_columns=cats)

    def to_dataset(frame: pl.DataFrame) -> Dataset:
        pdf: pd.DataFrame = frame.select(columns).to_pandas()
        for col in cats:
            pdf[col] = pdf[col].astype("string").fillna("(missing)")
        for col in nums:
            pdf[col] = pd.to_numeric(pdf[col], errors="coerce").astype("float64")
        return Dataset.from_pandas(pdf, data_definition=definition)

    name = snapshot_date.isoformat() if snapshot_date else None
    timestamp = datetime.combine(snapshot_date, datetime.min.time(), UTC) if snapshot_date else None
    # on a report's small arrays a second OpenBLAS thread burns a core and saves nothing, and it would slow a report
    # drawn beside this one
    with one_blas_thread():
        snapshot = Report([DataDriftPreset()]).run(current_data=to_dataset(current),
                                                   reference_data=to_dataset(reference), timestamp=timestamp,
                                                   name=name)
    html_path.parent.mkdir(parents=True, exist_ok=True)
    snapshot.save_html(str(html_path))
    # Evidently's full format, which `Run.load` reads back; whole or absent after a crash (aggregates, no person)
    write_private(run_path(html_path), lambda handle: handle.write(snapshot.dumps().encode()), mode=0o644)

    scores: dict[str, float] = {}
    methods: dict[str, str] = {}
    drifted: list[str] = []
    for metric in snapshot.dict()["metrics"]:
        config = metric.get("config", {})
        if not config.get("type", "").endswith("ValueDrift"):
            continue
        column, method, threshold = config["column"], config.get("method", ""), float(config["threshold"])
        value = float(metric["value"])
        scores[column], methods[column] = value, method
        if _is_drifted(method, value, threshold):
            drifted.append(column)
    return DriftSummary(columns=len(scores), drifted_columns=sorted(drifted), column_scores=scores,
                        methods=methods, report_path=str(html_path), empty_columns=empty)


@dataclass(frozen=True)
class DriftJob:
    """One snapshot's report: the arguments of `drift_report`."""

    reference: pl.DataFrame
    current: pl.DataFrame
    categorical: list[str]
    html_path: Path
    snapshot_date: date | None = None


def run_drift_job(job: DriftJob) -> DriftSummary:
    return drift_report(job.reference, job.current, job.categorical, job.html_path, job.snapshot_date)


def drift_reports(jobs: list[DriftJob], workers: int = 1) -> list[DriftSummary]:
    """The reports of several snapshots, in `jobs` order, on up to `workers` cores. Evidently computes and draws
    in Python, under one lock, so side by side means processes: this one takes every `workers`-th job and
    `workers - 1` fresh ones (spawned: a forked copy of a run's threads is not safe) take the rest."""
    workers = max(1, min(int(workers), len(jobs)))
    if workers < 2:
        return [run_drift_job(job) for job in jobs]
    with ProcessPoolExecutor(max_workers=workers - 1, mp_context=multiprocessing.get_context("spawn")) as pool:
        elsewhere = {i: pool.submit(run_drift_job, job) for i, job in enumerate(jobs) if i % workers}
        done = {i: run_drift_job(job) for i, job in enumerate(jobs) if not i % workers}
        done.update({i: future.result() for i, future in elsewhere.items()})
    return [done[i] for i in range(len(jobs))]


def empty_columns(reference: pl.DataFrame, current: pl.DataFrame) -> dict[str, str]:
    """Columns without a single value on a side (all null, or no rows), and which side."""
    def empty(frame: pl.DataFrame) -> set[str]:
        if frame.height == 0:
            return set(frame.columns)
        counts = frame.select(pl.all().count()).row(0, named=True)
        return {name for name, n in counts.items() if n == 0}

    ref, cur = empty(reference), empty(current)
    return {c: "both" if c in ref and c in cur else "reference" if c in ref else "current"
            for c in reference.columns if c in ref | cur}
