"""Benchmark harness: wall time and peak memory of every pipeline stage, at the demo and large sizes.

Each stage runs as its own process (`assay generate` / `assay run --steps <stage>`), so its peak resident
memory is the one the kernel reports for that process and its children (dbt runs as a child), via wait4.
Results go to bench/results/latest.json (and are printed).

    make bench                                       # demo and large
    BENCH_SIZES=demo make bench                      # one size
    BENCH_SIZES=large BENCH_STAGES=ingestion make bench   # re-measure a stage on the existing bench data

`features_reference` sets the features stage beside one hand-written DuckDB query per snapshot
(bench/feature_reference.py), with the features stage of the same run.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "latest.json"
STAGES = ("ingestion", "ingestion_postgres", "features", "features_reference", "labels", "tuning", "model", "scores",
          "performance", "drift", "sources", "simulation", "governance", "warehouse", "clock", "weekly_tick")
# The bench world (default horizon 2026-01-01) lands all but its last weeks; after the backfill stages, `clock`
# sets the home's clock and `weekly_tick` lives the next week as a deployment would: one `assay tick` that lands
# 7 days and runs what the sensors and automation ask for (ingestion, features, labels, scores, drift, monitoring).
LANDED_UNTIL = "2025-12-22"
TICK_UNTIL = "2025-12-29"
MONITORING_STAGES = ("drift", "sources")  # run over the newest `drift_snapshots` snapshots: also given per snapshot

# The large size scores a year of weekly snapshots (52), the figure the feature-stage target is stated for.
SIZE_ENV = {
    # Each stage runs alone on the machine, as `make demo` runs them, so every size gives a run both cores
    # (ASSAY_CORES: LightGBM's folds and candidates side by side, drift reports side by side).
    "demo": {"ASSAY_SIZE": "demo", "ASSAY_CORES": "2"},
    # Every size runs at the default DuckDB memory limits (domain/duckdb_setup.py).
    # At a million customers a weekly run gives TreeSHAP reasons to the riskiest fifth, where the retention
    # audience (deciles 1-2) reads them; the throughput figures set this beside reasons for every row.
    "large": {"ASSAY_SIZE": "large", "ASSAY_SNAPSHOT_START": "2025-01-06", "ASSAY_REASON_DECILES": "2",
              "ASSAY_CORES": "2"},
    # The same data with the demo's 79 snapshots: 52 leave too little labelled history before the calibration fold
    # for one rolling-origin tuning fold (tuning then trains on defaults and says so), so tuning and training at
    # the large size are meant to be measured here. Run it after `large` (it reuses that size's landing and bronze):
    #   BENCH_SIZES=large_full_history BENCH_STAGES=features,tuning,model make bench
    "large_full_history": {"ASSAY_SIZE": "large", "ASSAY_SNAPSHOT_START": "2024-07-01", "ASSAY_CORES": "2"},
}
HOME_OF = {"large_full_history": "large"}
# Scoring is measured as throughput. At the large size one snapshot (1M rows) times it: with reason codes the
# champion scores about 1,450 rows/s there (measured on 50k rows), so 8 snapshots would take an hour and a half.
SCORE_SNAPSHOTS = {"demo": 0, "large": 1, "large_full_history": 1}
# Monitoring needs scores, so it covers at most the scored snapshots; its per-snapshot figure is stage / snapshots.
DRIFT_SNAPSHOTS = {"demo": 4, "large": 1, "large_full_history": 1}
THROUGHPUT_ROWS = 200_000  # rows of the newest snapshot the in-process throughput is timed on


def run_stage(cmd: list[str], env: dict[str, str]) -> dict:
    return run_process(cmd, env)[0]


def run_process(cmd: list[str], env: dict[str, str]) -> tuple[dict, str]:
    """Wall time and peak memory of a process (and its children), and what it printed."""
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    output = proc.stdout.read() if proc.stdout else ""
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - started
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        print(output[-5000:], file=sys.stderr)
        raise SystemExit(f"stage {' '.join(cmd)} failed with exit code {code}")
    return {"seconds": round(seconds, 2), "peak_rss_mb": round(usage.ru_maxrss / 1024, 1)}, output


def _save(results: dict) -> None:
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2, sort_keys=True))


def bench_size(size: str, results: dict, stages_wanted: list[str]) -> dict:
    drift_snapshots = DRIFT_SNAPSHOTS[size]
    home = ROOT / ".bench" / HOME_OF.get(size, size)
    env = {**os.environ, **SIZE_ENV[size], "ASSAY_HOME": str(home), "DAGSTER_HOME": str(home / "dagster"),
           "ASSAY_LAKE_ROOT": str(home / "lake"), "ASSAY_WAREHOUSE_PATH": str(home / "warehouse.duckdb"),
           "OMP_WAIT_POLICY": "PASSIVE"}
    assay = str(Path(sys.executable).parent / "assay")
    entry = results.setdefault(size, {})
    stages = entry.setdefault("stages", {})
    if "generate" in stages_wanted:
        stages.clear()  # figures of earlier runs describe data that no longer exists
        subprocess.run(["rm", "-rf", str(home)], check=True)
    # The checkout's instance settings, also for a re-measure on an existing home (its event log storage counts).
    (home / "dagster").mkdir(parents=True, exist_ok=True)
    (home / "dagster" / "dagster.yaml").write_text((ROOT / "orchestration" / "dagster.yaml").read_text())
    if "generate" in stages_wanted:
        stages["generate"] = run_stage([assay, "generate", "--until", LANDED_UNTIL], env)
        print(f"[bench] {size} generate: {stages['generate']}", flush=True)
    for stage in (s for s in STAGES if s in stages_wanted):
        if stage == "features_reference":
            # set beside the features stage only when this run measured it too
            stages[stage] = _features_reference(env, stages["features"] if "features" in stages_wanted else None)
            print(f"[bench] {size} {stage}: {stages[stage]}", flush=True)
            _save(results)
            continue
        if stage == "ingestion_postgres":
            stages[stage] = _ingestion_on_postgres(assay, env, home)
            if "ingestion" in stages:
                stages[stage]["vs_sqlite"] = round(stages[stage]["seconds"] / stages["ingestion"]["seconds"], 2)
            print(f"[bench] {size} {stage}: {stages[stage]}", flush=True)
            _save(results)
            continue
        cmd = [assay, "run", "--steps", stage, "--drift-snapshots", str(drift_snapshots),
               "--score-snapshots", str(SCORE_SNAPSHOTS[size])]
        if stage == "weekly_tick":
            cmd = [assay, "tick", "--until", TICK_UNTIL, "--every", "7"]
        activity_table = _activity_table_state(env) if stage == "features" else None
        stages[stage] = run_stage(cmd, env)
        if activity_table:  # a rebuild over a standing activity table costs less than a first build
            stages[stage]["activity_table"] = activity_table
        if stage == "weekly_tick":
            stages[stage].update(_tick_parts(home / "reports" / "ticks" / f"{TICK_UNTIL}.json"))
            # the week a deployment lives: the tick without the synthetic source's work and without the catch-up
            stages[stage]["lived_week_seconds"] = round(
                stages[stage]["seconds"] - stages[stage]["feed_seconds"] - stages[stage]["catch_up_seconds"], 2)
        if stage == "tuning":  # a skipped search (too little history) must not pass for a fast one
            tuning = _newest_tuning(Path(env["ASSAY_LAKE_ROOT"]))
            stages[stage].update({k: tuning[k] for k in ("skipped", "n_trials_completed", "stopped_by", "best_score",
                                                         "default_score") if tuning.get(k) is not None})
        if stage in MONITORING_STAGES:  # includes the process start and Dagster's run overhead, once per stage
            stages[stage]["seconds_per_snapshot"] = round(stages[stage]["seconds"] / drift_snapshots, 2)
        if stage == "scores":
            rows = _count_scored_rows(env, SCORE_SNAPSHOTS[size])
            stages[stage].update({"rows": rows, "rows_per_s": round(rows / stages[stage]["seconds"]),
                                  "newest_snapshot": _scoring_throughput(env)})
        stages[stage]["measured_at"] = datetime.now(UTC).isoformat(timespec="seconds")
        print(f"[bench] {size} {stage}: {stages[stage]}", flush=True)
        _save(results)  # a long run keeps every stage it finished
    generation = json.loads((home / "ground_truth" / "generation.json").read_text())
    entry.update({"rows": generation.get("rows", {}), "drift_snapshots": drift_snapshots})
    if "model" in stages_wanted:
        entry["model"] = _newest_model_metrics(home)
    # The snapshots the features stage built; the count reads the analyst view, which the warehouse stage creates.
    if "features" in stages_wanted and "warehouse" in stages:
        entry["snapshots"] = _count_snapshots(env)
    return entry


def _features_reference(env: dict[str, str], features: dict | None) -> dict:
    """The features stage's references, measured after it on the same bronze tables (bench/feature_reference.py):
    one hand-written DuckDB query for the newest snapshot (its rows checked against dbt's), and the naive loop of
    that query over every snapshot the stage built. Each runs as its own process, for its own peak memory."""
    script = str(ROOT / "bench" / "feature_reference.py")
    figures = {}
    for mode in ("one", "loop"):
        process, output = run_process([sys.executable, script, mode], env)
        figures[mode] = {**json.loads(output.strip().splitlines()[-1]), "process_seconds": process["seconds"],
                         "peak_rss_mb": process["peak_rss_mb"]}
    if features and features.get("seconds"):
        # the features stage against the same work done the naive way, and against one snapshot's query times
        # the number of snapshots (what the loop would cost if each query cost the same)
        figures["features_vs_loop"] = round(features["seconds"] / figures["loop"]["seconds"], 2)
        figures["features_vs_one_query_times_snapshots"] = round(
            features["seconds"] / (figures["one"]["seconds"] * figures["loop"]["snapshots"]), 2)
    figures["measured_at"] = datetime.now(UTC).isoformat(timespec="seconds")
    return figures


def _ingestion_on_postgres(assay: str, env: dict[str, str], home: Path) -> dict:
    """The ingestion stage again, on the same landing files into a lake of its own, with the team deployment's
    instance (docker/dagster.yaml: Dagster's storage in a PostgreSQL server from Debian's package, started here):
    its bookkeeping beside the local SQLite instance's, measured in the same run."""
    sys.path.insert(0, str(ROOT / "tests"))
    from postgres_server import running_postgres

    other = home.parent / f"{home.name}-postgres"
    subprocess.run(["rm", "-rf", str(other)], check=True)
    (other / "dagster").mkdir(parents=True)
    (other / "dagster" / "dagster.yaml").write_text((ROOT / "docker" / "dagster.yaml").read_text())
    with running_postgres() as server:
        run_env = {**env, **server.instance_env(), "ASSAY_HOME": str(other), "DAGSTER_HOME": str(other / "dagster"),
                   "ASSAY_LAKE_ROOT": str(other / "lake"), "ASSAY_WAREHOUSE_PATH": str(other / "warehouse.duckdb"),
                   "ASSAY_SOURCE": "files", "ASSAY_LANDING_DIR": str(home / "landing")}
        figures = run_stage([assay, "run", "--steps", "ingestion"], run_env)
    figures["measured_at"] = datetime.now(UTC).isoformat(timespec="seconds")
    return figures


def _query(env: dict[str, str], sql: str):
    code = ("import json, sys; from domain.duckdb_setup import connect; con = connect(sys.argv[1], read_only=True); "
            "print(json.dumps(con.sql(sys.argv[2]).fetchall(), default=str))")
    out = subprocess.run([sys.executable, "-c", code, env["ASSAY_WAREHOUSE_PATH"], sql], env=env, check=True,
                         capture_output=True, text=True).stdout
    return json.loads(out)


def _newest_tuning(lake: Path) -> dict:
    """The search the tuning stage just ran: the newest row of gold/tuning_results (models/lightgbm_params)."""
    import polars as pl

    return pl.read_delta(str(lake / "gold" / "tuning_results")).sort("tuned_at").row(-1, named=True)


def _newest_model_metrics(home: Path) -> dict:
    """Validation figures of the model the stage just trained (promoted or not), from its registry card."""
    cards = sorted((home / "models").glob("2*/model.json"))  # versions start with their UTC timestamp
    if not cards:
        return {}
    card = json.loads(cards[-1].read_text())
    return {**card["validation_metrics"], "version": card["version"],
            "train_snapshots": [card["split"]["train"][0], card["split"]["train"][-1]],
            "validation_snapshots": card["split"]["validation"], "fairness_violations": card["fairness_violations"]}


def _count_scored_rows(env: dict[str, str], newest: int) -> int:
    """Rows the scores stage wrote: the newest `newest` snapshots (all when 0), read from the Delta table."""
    scores = f"delta_scan('{env['ASSAY_LAKE_ROOT']}/gold/customer_scores')"
    limit = f"limit {newest}" if newest else ""
    return _query(env, f"select count(*) from {scores} where snapshot_date in "
                       f"(select distinct snapshot_date from {scores} order by 1 desc {limit})")[0][0]


def _scoring_throughput(env: dict[str, str]) -> dict:
    """Rows/s of the champion on the newest snapshot (in-process, no Delta write): without reasons, with TreeSHAP
    reasons on every row, and with reasons on the size's risk deciles (ASSAY_REASON_DECILES), as its scoring runs."""
    code = """
import json, sys, time, polars as pl
from domain.settings import AssaySettings
from orchestration.definitions import build_resources
from assets.modeling.pipeline import load_model
from assets.scoring.scoring import score_features
settings = AssaySettings.from_env()
resources = build_resources(settings)
model = load_model(resources["registry"])
features = resources["lake"].scan("gold", "customer_features")
newest = features.select(pl.col("snapshot_date").max()).collect().item()
frame = features.filter(pl.col("snapshot_date") == newest).head(int(sys.argv[1])).collect()
out = {"rows": frame.height, "reason_deciles": settings.reason_deciles}
runs = {"without_reasons": dict(with_reasons=False), "with_reasons": dict(reason_deciles=10),
        "with_reasons_on_the_reason_deciles": dict(reason_deciles=settings.reason_deciles)}
for name, kwargs in runs.items():
    started = time.perf_counter()
    score_features(frame, model, **kwargs)
    out[f"rows_per_s_{name}"] = round(frame.height / (time.perf_counter() - started))
print(json.dumps(out))
"""
    out = subprocess.run([sys.executable, "-c", code, str(THROUGHPUT_ROWS)], env=env, check=True,
                         capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


FEATURE_AND_LABEL_STEPS = ("dbt_feature_models", "dbt_label_models", "gold__customer_features", "gold__churn_labels")


def _tick_parts(report: Path) -> dict:
    """Wall time of each run of the tick, and of its feature and label steps (Dagster's step timings). The stage's
    peak memory is the whole tick process's, dbt included (it runs as a child); the feature and label peak is the
    largest the clock's sampler saw while those steps ran (process and children). Runs for snapshots before the tick's
    own are the automation catching up what the backfill stages left (they score and run drift on the newest
    snapshot only): counted apart, since a deployment that lived every week has them already. So is the synthetic
    feed's time: generating the week's files is the source system's work, which a real deployment does not do."""
    day = json.loads(report.read_text())
    runs = day["runs"]
    parts = [{"target": r["target"], "partitions": r["partitions"], "reason": r["reason"],
              "seconds": round(r["seconds"], 2), "steps": r["step_seconds"], "step_peak_mb": r["step_peak_mb"]}
             for r in runs]
    steps = [s for r in runs for name, s in r["step_seconds"].items() if name in FEATURE_AND_LABEL_STEPS]
    peaks = [mb for r in runs for name, mb in r["step_peak_mb"].items() if name in FEATURE_AND_LABEL_STEPS]
    catch_up = [r for r in parts if r["reason"] == "snapshot_due" and r["partitions"] < TICK_UNTIL]
    return {"runs": parts, "feature_and_label_seconds": round(sum(steps), 2),
            "feature_and_label_peak_mb": max(peaks, default=None),
            "runs_seconds": round(sum(r["seconds"] for r in parts), 2),
            "catch_up_seconds": round(sum(r["seconds"] for r in catch_up), 2),
            "catch_up_snapshots": [r["partitions"] for r in catch_up],
            "feed_seconds": day["feed_seconds"],
            "failed_runs": sum(not r["success"] for r in runs)}


def _activity_table_state(env: dict[str, str]) -> str:
    """Whether the features stage will build the activity table or find it standing (a re-measure on a home)."""
    if not Path(env["ASSAY_WAREHOUSE_PATH"]).exists():
        return "built"
    found = _query(env, "select count(*) from information_schema.tables "
                        "where table_schema = 'intermediate' and table_name = 'int_customer_daily_activity'")
    return "standing" if found[0][0] else "built"


def _count_snapshots(env: dict[str, str]) -> int:
    return _query(env, "select count(distinct snapshot_date) from customer_features")[0][0]


def main() -> int:
    sizes = os.environ.get("BENCH_SIZES", "demo,large").split(",")
    # BENCH_STAGES re-measures some stages on an existing bench home (generate starts from scratch).
    stages_wanted = os.environ.get("BENCH_STAGES", ",".join(("generate", *STAGES))).split(",")
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    results["machine"] = {"cpus": os.cpu_count(), "python": platform.python_version(),
                          "platform": platform.platform()}
    for size in sizes:
        bench_size(size.strip(), results, stages_wanted)
        results[size]["measured_at"] = datetime.now(UTC).isoformat(timespec="seconds")
        _save(results)
    print(json.dumps(results, indent=2, sort_keys=True))
    print(f"written to {RESULTS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
