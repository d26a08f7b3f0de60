"""Evidently drift on small frames: a shifted column is flagged, a stable one is not, and HTML is written."""

from __future__ import annotations

import numpy as np
import polars as pl

from assets.monitoring.drift import DriftJob, drift_report, drift_reports, sample_rows


def frames(shift: float) -> tuple[pl.DataFrame, pl.DataFrame]:
    rng = np.random.default_rng(3)
    n = 3000
    reference = pl.DataFrame({"recency_days": rng.exponential(30, n), "orders_90d": rng.poisson(3, n).astype(float),
                              "country": rng.choice(["GB", "DE"], n).tolist()})
    current = pl.DataFrame({"recency_days": rng.exponential(30, n) + shift,
                            "orders_90d": rng.poisson(3, n).astype(float),
                            "country": rng.choice(["GB", "DE"], n).tolist()})
    return reference, current


def test_shifted_column_is_flagged_and_report_saved(tmp_path):
    reference, current = frames(shift=25.0)
    summary = drift_report(reference, current, ["country"], tmp_path / "r.html")
    assert summary.drifted_columns == ["recency_days"]
    assert summary.columns == 3 and abs(summary.drift_share - 1 / 3) < 1e-9
    assert (tmp_path / "r.html").stat().st_size > 10_000


def test_no_shift_no_drift(tmp_path):
    reference, current = frames(shift=0.0)
    assert drift_report(reference, current, ["country"], tmp_path / "r.html").drifted_columns == []


def test_columns_empty_on_either_side_are_left_out_and_named(tmp_path):
    """No campaigns and no events: their rates are null throughout. Evidently refuses such a column; the report
    runs on the rest and says which were left out, and on which side."""
    reference, current = frames(shift=25.0)
    reference = reference.with_columns(pl.lit(None, pl.Float64).alias("click_rate_90d"),
                                       pl.lit(None, pl.Float64).alias("open_rate_90d"),
                                       pl.lit(1.0).alias("events_30d"))
    current = current.with_columns(pl.lit(None, pl.Float64).alias("click_rate_90d"),
                                   pl.lit(0.5).alias("open_rate_90d"),
                                   pl.lit(None, pl.Float64).alias("events_30d"))
    summary = drift_report(reference, current, ["country"], tmp_path / "r.html")
    assert summary.empty_columns == {"click_rate_90d": "both", "open_rate_90d": "reference", "events_30d": "current"}
    assert summary.drifted_columns == ["recency_days"] and summary.columns == 3


def test_reports_drawn_side_by_side_are_those_drawn_one_by_one_in_job_order(tmp_path, monkeypatch):
    """On two cores every other snapshot's report is drawn in a spawned process: the summaries come back in the
    jobs' order and equal those of one core."""
    import assets.monitoring.drift as drift

    shifted, stable = frames(shift=25.0), frames(shift=0.0)
    jobs = [DriftJob(*pair, ["country"], tmp_path / name / f"{i}.html")
            for name in ("one", "two") for i, pair in enumerate((shifted, stable, shifted))]
    one = drift_reports(jobs[:3], workers=1)
    drawn_here = []

    def recorded(reference, current, categorical, html_path, snapshot_date=None):
        drawn_here.append(html_path.name)
        return drift_report(reference, current, categorical, html_path, snapshot_date)

    monkeypatch.setattr(drift, "drift_report", recorded)  # this process only: a spawned one imports afresh
    two = drift_reports(jobs[3:], workers=2)
    assert drawn_here == ["0.html", "2.html"]
    assert [s.drifted_columns for s in two] == [["recency_days"], [], ["recency_days"]]
    assert [{**vars(a), "report_path": ""} for a in one] == [{**vars(b), "report_path": ""} for b in two]
    assert [s.report_path for s in two] == [str(job.html_path) for job in jobs[3:]]
    assert all(job.html_path.stat().st_size > 10_000 for job in jobs)


def test_sampling_is_seeded_and_capped():
    frame = pl.DataFrame({"x": range(1000)})
    assert sample_rows(frame, 100, 7).equals(sample_rows(frame, 100, 7))
    assert sample_rows(frame, 100, 7).height == 100 and sample_rows(frame, 5000, 7).height == 1000


def test_workspace_keeps_one_run_per_snapshot_in_snapshot_order(tmp_path):
    from datetime import date

    from evidently.ui.workspace import Workspace

    from assets.monitoring.drift import WORKSPACE_PROJECT, sync_workspace

    reference, current = frames(shift=25.0)
    workspace, reports = tmp_path / "ws", tmp_path / "drift"
    drift_report(reference, current, ["country"], reports / "2025-01-06.html", snapshot_date=date(2025, 1, 6))
    assert sync_workspace(workspace, reports) == 1
    for day in (date(2025, 1, 13), date(2025, 1, 6)):  # the first snapshot is re-run
        drift_report(reference, current, ["country"], reports / f"{day}.html", snapshot_date=day)
    assert sync_workspace(workspace, reports) == 2
    assert sync_workspace(workspace, reports) == 0  # nothing new: the workspace is not even opened
    ws = Workspace.create(str(workspace))  # what `evidently ui --workspace` opens
    [project] = ws.search_project(WORKSPACE_PROJECT)
    runs = [ws.get_run(project.id, run_id) for run_id in ws.list_runs(project.id)]
    assert sorted(r.name for r in runs) == ["2025-01-06", "2025-01-13"]
    assert sorted(r.timestamp.date() for r in runs) == [date(2025, 1, 6), date(2025, 1, 13)]
