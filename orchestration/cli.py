"""`assay` command line: generate synthetic data, run the whole graph once, print where results are."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
from datetime import date
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
# One planned event per asset for a partition range, not one per partition (see the Makefile).
os.environ.setdefault("DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS", "1")


def _float_env(name: str) -> float | None:
    value = os.environ.get(name)
    return float(value) if value else None


def cmd_generate(args: argparse.Namespace) -> int:
    from domain.pseudonym import install_synthetic_key
    from domain.settings import AssaySettings
    from domain.synthetic import config_for_size, extend_world, generate, landed_until, world_config

    settings = AssaySettings.from_env()
    onset = args.drift_onset or os.environ.get("ASSAY_DRIFT_ONSET")
    until = date.fromisoformat(args.until) if args.until else None
    config = config_for_size(
        args.size or settings.synthetic_size, seed=settings.seed, start=settings.start_date,
        end=date.fromisoformat(args.world_end) if args.world_end else settings.end_date,
        snapshot_start=settings.snapshot_start, label_horizon_days=settings.label_horizon_days,
        drift_kind=args.drift or os.environ.get("ASSAY_DRIFT_KIND") or None,
        drift_onset=date.fromisoformat(onset) if onset else None,
        events_per_week=args.events_per_week or _float_env("ASSAY_EVENTS_PER_WEEK"),
    )
    try:
        landed = landed_until(settings.landing)
        # The same world landed to an earlier day grows by the missing days; anything else is generated afresh.
        if until is not None and landed is not None and until > landed and world_config(settings.landing) == config:
            summary = extend_world(settings.landing, settings.ground_truth, until)
            print(f"extended the world in {settings.landing} (landed up to {landed})")
        else:
            summary = generate(config, settings.landing, settings.ground_truth, land_until=until)
    except ValueError as error:  # a refusal (foreign files, beyond the horizon) is a message, not a traceback
        raise SystemExit(f"assay generate: {error}") from error
    if install_synthetic_key(settings.home, config.seed):
        print(f"pseudonym key derived from seed {config.seed} (synthetic data only) in {settings.home / 'secrets'}")
    print(f"landed days {summary.land_from} to {summary.land_until} (exclusive) of a world of "
          f"{config.n_customers:,} customers over {config.start} to {config.end} in {summary.seconds:.1f}s "
          f"into {settings.landing}")
    for source, rows in summary.rows.items():
        print(f"  {source:<18} {rows:>12,} rows")
    return 0


def tuning_run_config(n_trials: int | None, timeout_seconds: float | None) -> dict:
    """Run config of the tuning step for the budget given on the command line (the asset's defaults otherwise)."""
    budget = {k: v for k, v in {"n_trials": n_trials, "timeout_seconds": timeout_seconds}.items() if v is not None}
    return {"ops": {"models__lightgbm_params": {"config": budget}}} if budget else {}


def _home(settings):
    """The home's definitions and its Dagster instance (DAGSTER_HOME; `make` points it at $ASSAY_HOME/dagster)."""
    from dagster import DagsterInstance

    from orchestration.definitions import build_definitions

    return build_definitions(settings), DagsterInstance.get()


def cmd_run(args: argparse.Namespace) -> int:
    """Backfill the whole graph over everything that has landed, then set the home's clock to where it ends."""
    from assets.partitions import AssayPartitions
    from domain.settings import AssaySettings
    from orchestration.backfill import DEFAULT_STEPS, STEP_NAMES, backfill_steps, data_end, run_backfill
    from orchestration.clock import Clock

    settings = AssaySettings.from_env()
    end = data_end(settings.landing, settings.end_date)
    if end is None:
        raise SystemExit(f"nothing has landed in {settings.landing}: generate data (`assay generate`) or point "
                         "ASSAY_LANDING_DIR at your files")
    names = args.steps.split(",") if args.steps else list(DEFAULT_STEPS)
    unknown = set(names) - set(STEP_NAMES)
    if unknown:
        raise SystemExit(f"unknown step(s) {sorted(unknown)}; choose from {list(STEP_NAMES)}")
    defs, instance = _home(settings)
    steps = backfill_steps(AssayPartitions.from_settings(settings), end, args.score_snapshots, args.drift_snapshots,
                           settings.feature_snapshots_per_run)
    timings = run_backfill(defs, instance, steps, names,
                           {"tuning": tuning_run_config(args.tuning_trials, args.tuning_timeout)},
                           log_level=os.environ.get("ASSAY_LOG_LEVEL", "WARNING"))
    if "clock" in names:
        Clock(settings, instance, defs).prime(end)
        print(f"[assay] clock set to {end}: `assay tick --until YYYY-MM-DD` moves it on")
    (settings.home / "last_run.json").write_text(json.dumps({"timings_s": timings, "data_end": str(end)}, indent=2))
    return cmd_summary(args) if not args.steps else 0


@contextlib.contextmanager
def _output_to(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as sink, contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
        yield


def cmd_tick(args: argparse.Namespace) -> int:
    """Move the home's clock to a date, day by day, as the daemon would live it; print the timeline."""
    from domain.settings import AssaySettings
    from orchestration.clock import TIMELINE_HEADER, Clock, timeline_lines
    from orchestration.feed import feed_for

    settings = AssaySettings.from_env()
    defs, instance = _home(settings)
    clock = Clock(settings, instance, defs, feed=feed_for(settings),
                  log_level=os.environ.get("ASSAY_LOG_LEVEL", "WARNING"))
    if clock.state.today is None:
        raise SystemExit(f"{settings.home} has no clock yet: run `assay run` first (a backfill of what has landed)")
    until = date.fromisoformat(args.until)
    if until <= clock.state.today:
        print(f"the home already stands at {clock.state.today}")
        return 0
    log = settings.home / "logs" / "tick.log"
    print(f"[assay] {settings.home}: {clock.state.today} → {until} (run output in {log})")
    print(TIMELINE_HEADER, flush=True)
    started = time.perf_counter()
    terminal = sys.stdout
    with _output_to(log):  # dbt and the runs print to stdout; the timeline goes to the terminal
        days = clock.advance(until, step_days=args.every, on_day=lambda day: [
            print(line, file=terminal, flush=True) for line in timeline_lines(day)])
    failed = [run for day in days for run in day.runs if not run.success]
    fed = sum(day.feed_seconds for day in days)
    print(f"[assay] {len(days)} days, {sum(len(d.runs) for d in days)} runs ({len(failed)} failed) in "
          f"{time.perf_counter() - started:.0f}s"
          + (f" ({fed:.0f}s of it the synthetic source delivering its files)" if fed >= 1 else "")
          + f"; champion {days[-1].champion if days else '-'}")
    return 1 if failed else 0


def cmd_check(args: argparse.Namespace) -> int:
    from domain.settings import AssaySettings
    from orchestration.backfill import data_end
    from orchestration.check import check_landing, report_lines

    settings = AssaySettings.from_env()
    until = args.until or data_end(settings.landing, settings.end_date)
    if until is None:
        print(f"NOT READY: nothing has landed in {settings.landing} (expected <source>/date=YYYY-MM-DD/ folders)")
        return 1
    print(f"[assay] checking {settings.landing} for the days before {until} "
          f"(horizon {settings.label_horizon_days} days)")
    report = check_landing(settings, until)
    for line in report_lines(report):
        print(line)
    return 0 if report.ok else 1


def cmd_public_data(args: argparse.Namespace) -> int:
    from domain.public_data import cdnow_environment, land_cdnow

    landing = args.landing.resolve()
    rows = land_cdnow(landing, "full" if args.full else "sample")
    print(f"landed CDNOW ({'all customers' if args.full else 'the 1-in-10 sample'}) in {landing}: "
          + ", ".join(f"{source} {n:,} rows" for source, n in rows.items()))
    print("run it in a home of its own with:")
    for name, value in cdnow_environment(landing).items():
        print(f"  export {name}='{value}'")
    print("  make demo")
    return 0


def cmd_drift_workspace(args: argparse.Namespace) -> int:
    """Add the drift runs saved since the last call to the Evidently workspace, and say how to open it."""
    from assets.monitoring.drift import EVIDENTLY_WORKSPACE, sync_workspace
    from domain.settings import AssaySettings

    reports = AssaySettings.from_env().reports_dir
    workspace = reports / EVIDENTLY_WORKSPACE
    added = sync_workspace(workspace, reports / "drift")
    print(f"{added} drift run(s) added to {workspace}; open it with: evidently ui --workspace {workspace}")
    return 0


def cmd_ui(args: argparse.Namespace) -> int:
    """The Dagster UI and daemon on this code location (`dagster dev`), on loopback by default.

    SIGINT is restored to its default before `dagster dev` starts. A process started in the background (by a shell
    script, `nohup` or a supervisor) inherits SIGINT ignored, and `dagster dev` answers SIGTERM with SIGINT's
    handler, so it then ignored SIGTERM as well and had to be killed (docs/operations.md)."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_DFL)  # kept across exec, so Python installs its own handler again
    dagster = Path(sys.executable).parent / "dagster"
    workspace = Path(__file__).resolve().parents[1] / "workspace.yaml"
    os.execv(dagster, [str(dagster), "dev", "-w", str(workspace), "-h", args.host, "-p", str(args.port)])
    return 0  # not reached: exec replaces this process


def cmd_summary(args: argparse.Namespace) -> int:
    from domain.duckdb_setup import connect
    from domain.settings import AssaySettings

    settings = AssaySettings.from_env()
    con = connect(str(settings.warehouse_path), read_only=True)
    print("\n=== Assay: results ===")
    print(f"home:       {settings.home}")
    print(f"warehouse:  {settings.warehouse_path}   (analyst views, schema main:)")
    tables = [r[0] for r in con.execute(
        "select table_name from information_schema.tables where table_schema = 'main' order by 1").fetchall()]
    for table in tables:
        rows = con.execute(f"select count(*) from main.{table}").fetchone()[0]
        print(f"  {table:<20} {rows:>12,} rows")
    from domain.contract import SOURCES
    from resources.lake import LakeResource

    lake = LakeResource(root=settings.lake_uri)
    for layer in ("bronze", "quarantine"):
        counts = []
        for source in SOURCES:
            if lake.exists(layer, source):
                rows = con.execute(f"select count(*) from delta_scan('{lake.uri(layer, source)}')").fetchone()[0]
                counts.append(f"{source}={rows:,}")
        print(f"{layer:<11} " + ", ".join(counts))
    champion = con.execute("select version, metrics, path from model_registry where status = 'champion'"
                           ).fetchone() if "model_registry" in tables else None
    for line in unscored_lines(con, tables, champion is not None):
        print(line)
    if champion:
        version, metrics, path = champion
        m = json.loads(metrics)
        card_path = Path(path) / "model.json"
        kind = json.loads(card_path.read_text()).get("model_kind", "lightgbm") if card_path.exists() else "lightgbm"
        # the served kind: LightGBM, or the baseline that beat it on the validation snapshots
        print(f"model:      {version}, {kind}  ({path})")
        line = ", ".join(f"{k}={m[k]:.4f}" for k in ("auc", "pr_auc", "log_loss", "brier") if k in m)
        print(f"  out-of-time: {line}  (base rate {m.get('base_rate', 0):.3f}, {m.get('rows', 0):,} rows)")
        if "ece" in m:
            print(f"  calibrated: ECE {m['ece']:.4f} (uncalibrated {m.get('ece_raw', float('nan')):.4f}); "
                  f"model card: {settings.reports_dir / 'models' / version / 'model_card.html'}")
        if "oracle_auc" in m:
            print(f"  oracle AUC (true churn probabilities): {m['oracle_auc']:.4f}; "
                  f"normalised AUC: {m['normalised_auc']:.3f}")
    if "drift_summary" in tables:
        row = con.execute("select snapshot_date, drift_share, drifted, report_path from drift_summary "
                          "order by snapshot_date desc limit 1").fetchone()
        if row:
            print(f"drift:      latest {row[0]}: share {row[1]:.2f} drifted {row[2]}")
            print(f"  report:   {row[3]}")
    exports = sorted((settings.home / "exports").glob("retention_audience_*.csv"))
    if exports:
        print(f"exports:    {exports[-1]}  (top-risk customers with marketing consent)")
    print(f"reports:    {settings.reports_dir}")
    print(f"models:     {settings.models_dir}")
    con.close()
    return 0


def unscored_lines(con, tables: list[str], has_champion: bool) -> list[str]:
    """What the summary says, loudly, when nobody was scored, and why."""
    from resources.registry import NO_CHAMPION

    scored = con.execute("select count(*) from main.customer_scores").fetchone()[0] if "customer_scores" in tables \
        else 0
    if scored:
        return []
    if not has_champion:
        lines = [f"SCORES:     none. {NO_CHAMPION[0].upper()}{NO_CHAMPION[1:]}."]
        if "model_decisions" in tables:
            decision = con.execute("select version, action, details from main.model_decisions "
                                   "order by decided_at desc limit 1").fetchone()
            if decision:
                lines.append(f"  last decision: {decision[1]} {decision[0]}: {decision[2]}")
        return lines
    return ["SCORES:     none. A champion exists but no customer was scored: without a consents source nobody has "
            "profiling consent (see docs/privacy.md); the scoring asset's metadata "
            "counts who was held back and why."]


def _registry():
    from domain.settings import AssaySettings
    from resources.lake import LakeResource
    from resources.registry import ModelRegistryResource

    settings = AssaySettings.from_env()
    return ModelRegistryResource(models_dir=str(settings.models_dir), lake=LakeResource(root=settings.lake_uri))


def cmd_model(args: argparse.Namespace) -> int:
    """List versions, or make an earlier version champion again (a rollback), logged like a gate decision."""
    import getpass

    registry = _registry()
    if args.action == "list":
        rows = registry.rows()
        if rows.height == 0:
            print("no model registered yet")
            return 0
        for row in rows.iter_rows(named=True):
            metrics = json.loads(row["metrics"])
            print(f"{row['version']:<32} {row['status']:<10} auc={metrics.get('auc', float('nan')):.4f} "
                  f"ece={metrics.get('ece', float('nan')):.4f}  promoted_by={row['promoted_by'] or '-'}")
        return 0
    if not args.version:
        raise SystemExit(f"assay model {args.action} needs a version (see `assay model list`)")
    previous = registry.champion_version()
    registry.promote(args.version, f"cli:{args.action}:{getpass.getuser()}",
                     {"previous_champion": previous, "reason": args.reason})
    print(f"champion is now {args.version} (was {previous}); re-materialize gold/customer_scores to rescore")
    return 0


def cmd_simulate(args: argparse.Namespace) -> int:
    """Campaign economics by threshold on the newest (or a given) snapshot's calibrated scores."""
    from assets.modeling.threshold import ThresholdEconomics, best_threshold, simulate_thresholds
    from assets.scoring.scoring import latest_scores
    from domain.settings import AssaySettings
    from resources.lake import LakeResource

    scores = latest_scores(LakeResource(root=AssaySettings.from_env().lake_uri), args.snapshot)
    if scores.height == 0:
        raise SystemExit(f"no scores for snapshot {args.snapshot}")
    economics = ThresholdEconomics(args.cost_per_contact, args.value, args.save_rate, args.capacity or None)
    table = simulate_thresholds(scores.get_column("p_churn").to_numpy(), economics)
    print(f"snapshot {scores.item(0, 'snapshot_date')}, {scores.height:,} scored customers, "
          f"model {scores.item(0, 'model_version')}")
    with __import__("polars").Config(tbl_rows=50, tbl_cols=20, float_precision=2):
        print(table)
    best = best_threshold(table)
    print(f"best threshold {best['threshold']:.3f}: contact {best['contacted']:,}, expected saves "
          f"{best['expected_saves']:.1f}, profit {best['profit']:,.2f}")
    return 0


def cmd_dsar(args: argparse.Namespace) -> int:
    """Data-subject requests: submit one, list them, or process the pending ones now (what dsar_sensor launches)."""
    import polars as pl

    from assets.governance.dsar import (
        DsarContext,
        audit_outcomes,
        new_request,
        process_pending,
        requests,
        submit_request,
    )
    from domain.settings import AssaySettings
    from resources.lake import LakeResource

    settings = AssaySettings.from_env()
    lake = LakeResource(root=settings.lake_uri)
    if args.action == "submit":
        if not args.customer:
            raise SystemExit("submit needs --customer")
        request = new_request(args.customer, args.kind.replace("-", "_"))
        submit_request(lake, settings.home, request)
        print(f"{request.item(0, 'request_id')}: {args.kind} for {args.customer}, due {request.item(0, 'deadline')}")
    elif args.action == "process":
        outcomes = process_pending(DsarContext(lake, settings.home, settings.landing, settings.warehouse_path,
                                                    settings.landing_encoding, settings.column_mapping))
        audit_outcomes(lake, outcomes, "cli")
        for outcome in outcomes:
            print(json.dumps(outcome, default=str))
        print(f"processed {len(outcomes)} request(s)")
    else:
        with pl.Config(tbl_rows=100, tbl_cols=10, fmt_str_lengths=40):
            print(requests(lake).select("request_id", "kind", "status", "requested_at", "deadline", "completed_at"))
    return 0


def cmd_scenario(args: argparse.Namespace) -> int:
    from pathlib import Path

    from orchestration.scenario import TIMELINE_HEADER, ScenarioPlan, run_scenario, timeline_line

    home = Path(args.home or f"{os.environ.get('ASSAY_HOME', '.assay')}-scenario-{args.kind}").resolve()
    if home.exists() and any(home.iterdir()):
        raise SystemExit(f"{home} is not empty: the scenario replays a fresh history; remove it or pass --home")
    plan = ScenarioPlan(kind=args.kind, onset=date.fromisoformat(args.onset), size=args.size,
                        pre_onset_weeks=args.pre_weeks, post_onset_weeks=args.post_weeks,
                        monthly_retraining=not args.no_monthly,
                        horizon_days=args.horizon_days, tuning_trials=args.tuning_trials,
                        train_snapshots=args.train_snapshots, early_stopping_snapshots=args.fold_snapshots,
                        calibration_snapshots=args.fold_snapshots, validation_snapshots=args.fold_snapshots,
                        refit_snapshots=args.refit_snapshots)
    started = time.perf_counter()
    terminal = sys.stdout
    home.mkdir(parents=True, exist_ok=True)
    with _output_to(home / "logs" / "scenario.log"):  # run output to the log; the timeline to the terminal
        weeks = run_scenario(home, plan, say=lambda line: print(line, file=terminal, flush=True))
    print(TIMELINE_HEADER)  # again at the end, in one piece
    for week in weeks:
        print(timeline_line(week))
    print(f"[assay] scenario {args.kind}: {len(weeks)} weeks in {time.perf_counter() - started:.0f}s; timeline in "
          f"{home / 'reports' / 'scenario' / (args.kind + '.json')}")
    return 0


def main(argv: list[str] | None = None) -> int:
    import warnings

    from dagster import BetaWarning, PreviewWarning

    warnings.filterwarnings("ignore", category=BetaWarning)
    warnings.filterwarnings("ignore", category=PreviewWarning)
    from domain.synthetic import DRIFT_KINDS, EVENTS_PER_WEEK

    parser = argparse.ArgumentParser(prog="assay", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    dsar = sub.add_parser("dsar", help="data-subject requests: submit, list, process")
    dsar.add_argument("action", choices=["submit", "list", "process"])
    dsar.add_argument("--customer", default="", help="customer_id the request is about (submit)")
    dsar.add_argument("--kind", choices=["access", "erasure", "opt-out"], default="access")
    dsar.set_defaults(func=cmd_dsar)
    gen = sub.add_parser("generate", help="write synthetic landing files and ground truth")
    gen.add_argument("--size", choices=["tiny", "small", "demo", "large"], default=None)
    gen.add_argument("--drift", choices=list(DRIFT_KINDS), default=None,
                     help="simulate a change in the world from --drift-onset on (ASSAY_DRIFT_KIND)")
    gen.add_argument("--drift-onset", default=None, help="YYYY-MM-DD (ASSAY_DRIFT_ONSET)")
    gen.add_argument("--events-per-week", type=float, default=None,
                     help="clickstream density: browsing events per customer-week at average satisfaction "
                          f"(ASSAY_EVENTS_PER_WEEK; default {EVENTS_PER_WEEK})")
    gen.add_argument("--until", default=None,
                     help="YYYY-MM-DD: land days up to this one (exclusive; default the world's end). A world "
                          "already landed here with the same settings is extended by the missing days")
    gen.add_argument("--world-end", default=None,
                     help="YYYY-MM-DD: the world's horizon, exclusive (default ASSAY_END_DATE, else the default end "
                          "date); --until can extend a landed world up to it later")
    gen.set_defaults(func=cmd_generate)
    tick = sub.add_parser("tick", help="move the home's clock forward day by day: land, then run what the "
                          "schedules, sensors and automation ask for; print the timeline")
    tick.add_argument("--until", required=True, help="YYYY-MM-DD: the last day to live through")
    tick.add_argument("--every", type=int, default=1,
                      help="days between ticks (default 1, like the daemon's daily rhythm; 7 ticks every Monday when "
                           "started on one, and each tick catches up on what landed since)")
    tick.set_defaults(func=cmd_tick)
    run = sub.add_parser("run", help="backfill the whole graph over everything that has landed; set the clock")
    run.add_argument("--drift-snapshots", type=int, default=8,
                     help="newest snapshots to run drift reports and source drift for")
    run.add_argument("--score-snapshots", type=int, default=0, help="newest snapshots to score (default: all)")
    run.add_argument("--steps", default="", help="comma-separated subset of: ingestion,features,labels,tuning,"
                     "model,scores,performance,drift,sources,simulation,governance,warehouse,retention,clock "
                     "(default: all but retention; `clock` sets the home's clock to where the data ends)")
    run.add_argument("--tuning-trials", type=int, default=None,
                     help="Optuna trials of the tuning step (default: the models/lightgbm_params config, 8)")
    run.add_argument("--tuning-timeout", type=float, default=None,
                     help="wall-clock cap of the tuning search in seconds (default: its config, 45)")
    run.set_defaults(func=cmd_run)
    model = sub.add_parser("model", help="list model versions; promote or roll back to a version")
    model.add_argument("action", choices=["list", "promote", "rollback"])
    model.add_argument("version", nargs="?", default="")
    model.add_argument("--reason", default="", help="why (logged in gold/model_decisions)")
    model.set_defaults(func=cmd_model)
    simulate = sub.add_parser("simulate", help="profit by score threshold with your own campaign economics")
    simulate.add_argument("--cost-per-contact", type=float, required=True)
    simulate.add_argument("--value", type=float, required=True, help="value of one retained customer")
    simulate.add_argument("--save-rate", type=float, required=True, help="share of contacted churners saved")
    simulate.add_argument("--capacity", type=int, default=0, help="most customers you can contact (0 = no limit)")
    simulate.add_argument("--snapshot", default=None, help="snapshot date (default: newest scored)")
    simulate.set_defaults(func=cmd_simulate)
    scenario = sub.add_parser("scenario", help="replay a drift scenario week by week through monitoring, the "
                              "retraining sensor and the gate; print the timeline")
    scenario.add_argument("--kind", choices=list(DRIFT_KINDS), default="price_level")
    scenario.add_argument("--onset", default="2025-06-02", help="a Monday, YYYY-MM-DD")
    scenario.add_argument("--size", choices=["tiny", "small", "demo"], default="small")
    scenario.add_argument("--pre-weeks", type=int, default=9, help="monitored snapshots before the onset")
    scenario.add_argument("--post-weeks", type=int, default=24, help="monitored snapshots after the onset")
    scenario.add_argument("--horizon-days", type=int, default=28, help="churn label horizon of the replay")
    scenario.add_argument("--train-snapshots", type=int, default=8, help="snapshots a retraining fits on")
    scenario.add_argument("--fold-snapshots", type=int, default=2,
                          help="snapshots in each of the early-stopping, calibration and validation folds")
    scenario.add_argument("--refit-snapshots", type=int, default=4,
                          help="training snapshots from a change on for the post-change refit")
    scenario.add_argument("--tuning-trials", type=int, default=3, help="Optuna trials per retraining")
    scenario.add_argument("--no-monthly", action="store_true", help="leave out the monthly retraining schedule")
    scenario.add_argument("--home", default="", help="scratch ASSAY_HOME (default: $ASSAY_HOME-scenario-<kind>)")
    scenario.set_defaults(func=cmd_scenario)
    check = sub.add_parser("check", help="profile the landing folder against the contract before any run: rows, "
                                         "columns, what would be quarantined, and whether a model can be trained")
    check.add_argument("--until", type=date.fromisoformat, default=None,
                       help="end of the days to check (exclusive); default: ASSAY_END_DATE or after the last day")
    check.set_defaults(func=cmd_check)
    public = sub.add_parser("public-data", help="land a real public transaction log (CDNOW) as a shop's CSV "
                                                "exports, and print the settings that run it")
    public.add_argument("--landing", required=True, type=Path, help="an empty folder for the landing files")
    public.add_argument("--full", action="store_true", help="all 23,570 customers (default: the 1-in-10 sample)")
    public.set_defaults(func=cmd_public_data)
    ui = sub.add_parser("ui", help="the Dagster UI and daemon (dagster dev) on this code location; Ctrl-C or SIGTERM "
                                   "stops every process it started")
    ui.add_argument("--host", default="127.0.0.1", help="address the UI listens on (default: loopback only)")
    ui.add_argument("--port", type=int, default=3000)
    ui.set_defaults(func=cmd_ui)
    drift_ws = sub.add_parser("drift-workspace", help="bring the Evidently workspace up to date with the drift runs "
                                                      "(then `evidently ui --workspace` shows their history)")
    drift_ws.set_defaults(func=cmd_drift_workspace)
    summary = sub.add_parser("summary", help="print what the last run left and where")
    summary.set_defaults(func=cmd_summary)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
