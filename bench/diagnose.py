"""Diagnostics behind the modelling notes, on an existing ASSAY_HOME (after `make demo`). Synthetic data only:
they read the generator's ground truth.

    .venv/bin/python bench/diagnose.py oracle-gap         # where the model loses to the oracle: alive vs dead
    .venv/bin/python bench/diagnose.py feature-ideas      # ratio, decayed and departure features, refit
    .venv/bin/python bench/diagnose.py information-ceiling  # refit told who has left / the true probability
    .venv/bin/python bench/diagnose.py reasons-threads    # TreeSHAP rows/s with 1 and 2 threads
    .venv/bin/python bench/diagnose.py rolling-psi        # per snapshot: feature PSI against 4 weeks earlier
    .venv/bin/python bench/diagnose.py source-shift       # per snapshot: bronze fields past a source-drift limit

`source-shift` needs only bronze and `rolling-psi` only features, so a drift scenario can be checked without
training: with ASSAY_HOME (and ASSAY_LAKE_ROOT etc.) pointing at a scratch home, `assay generate --drift
price_level --drift-onset 2025-09-01` then `assay run --steps ingestion,features`.

Figures print as JSON; nothing is written.
"""

from __future__ import annotations

import json
import os
import sys
import time
from datetime import date

import numpy as np
import polars as pl
from sklearn.metrics import roc_auc_score

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from assets.modeling.pipeline import load_model  # noqa: E402
from assets.modeling.training import SnapshotSplit, default_params, to_model_matrix, train_churn_model  # noqa: E402
from domain.pseudonym import pseudonym_key, with_tokens  # noqa: E402
from domain.settings import AssaySettings  # noqa: E402
from orchestration.definitions import build_resources  # noqa: E402

RESOURCES = build_resources(AssaySettings.from_env())
SETTINGS = AssaySettings.from_env()


def _champion_split():
    """The champion and its split; the newest registered model when none was promoted (e.g. a fairness limit)."""
    registry = RESOURCES["registry"]
    version = registry.champion_version() or registry.rows().get_column("version").item(-1)
    model = load_model(registry, version)
    if model.kind != "lightgbm":
        raise SystemExit(f"{version} is a {model.kind} model: these diagnostics read a LightGBM model's trees")
    split = {k: [date.fromisoformat(d) for d in v] if k != "adapted" else v for k, v in model.card["split"].items()}
    return model, SnapshotSplit(**split)


def _labelled(snapshots: list[date] | None = None) -> pl.DataFrame:
    """Feature rows with their labels, in the trainer's row order: a refit depends on the order of its rows (bagging),
    and a join's output order is not fixed, so an unsorted frame gave figures that moved between runs."""
    lake = RESOURCES["lake"]
    features = lake.scan("gold", "customer_features")
    if snapshots is not None:
        features = features.filter(pl.col("snapshot_date").is_in(snapshots))
    return features.join(lake.scan("gold", "churn_labels").select("customer_id", "snapshot_date", "churned"),
                         on=["customer_id", "snapshot_date"]).sort("customer_id", "snapshot_date").collect()


def _truth() -> pl.LazyFrame:
    """The generator's churn probabilities, keyed by the home's pseudonym tokens like the lake."""
    return with_tokens(pl.scan_parquet(SETTINGS.ground_truth / "churn_probability.parquet"), "customer_id",
                       pseudonym_key(SETTINGS.home))


def oracle_gap() -> dict:
    model, split = _champion_split()
    truth = _truth().collect()
    rows = _labelled(split.validation).join(truth, on=["customer_id", "snapshot_date"])
    y, p, oracle = rows["churned"].to_numpy(), model.pipeline.predict(rows), rows["p_churn"].to_numpy()
    alive = oracle < 1.0  # the generator's p_churn is exactly 1 for customers already gone
    return {
        "rows": len(y), "auc_model": roc_auc_score(y, p), "auc_oracle": roc_auc_score(y, oracle),
        "dead_share": float(1 - alive.mean()),
        "alive_only_auc_model": roc_auc_score(y[alive], p[alive]),
        "alive_only_auc_oracle": roc_auc_score(y[alive], oracle[alive]),
        "dead_vs_alive_auc_of_model_score": roc_auc_score((~alive).astype(int), p),
        "auc_model_given_true_dead_flag": roc_auc_score(y, np.where(alive, p, 1.0)),
    }


def _activity_p_alive(frame: pl.DataFrame, train: list[date]) -> pl.Series:
    """BG/NBD probability alive with any active day (an order or an event) as a transaction, fitted on the training
    snapshots: browsing is denser than ordering, so silence should say more about a departure."""
    from assets.modeling.bgnbd import bgnbd_inputs, fit_bgnbd, p_alive

    x, t_x, big_t = bgnbd_inputs(frame.select(orders_lifetime="active_days", recency_days="days_since_active",
                                              first_order_age_days="first_active_age"))
    fit = frame["snapshot_date"].is_in(train).to_numpy() & (big_t > 0)
    params = fit_bgnbd(x[fit], t_x[fit], big_t[fit])
    return pl.Series("activity_p_alive", np.where(big_t > 0, p_alive(params, x, t_x, np.maximum(big_t, 1e-9)), np.nan))


def feature_ideas() -> dict:
    """Refit the production trainer on the champion's split with extra columns; validation AUC of each."""
    _, split = _champion_split()
    data = _labelled()
    lifetime_daily_orders = pl.col("orders_lifetime") / pl.col("first_order_age_days").clip(30)
    ratios = {
        "order_rate_ratio": pl.col("orders_90d") / 90 / lifetime_daily_orders,
        "weekly_order_rate": lifetime_daily_orders * 7,
        "event_rate_ratio": pl.col("events_90d") / 90 / (pl.col("events_365d") / 365),
        "recency_ratio": pl.col("recency_days") / pl.col("mean_days_between_orders"),
    }
    decay_sums = ", ".join(
        f"sum(a.n_{what} * exp(-(s.snapshot_date - a.activity_date) / {tau})) as {what}_decay_{tau}"
        for tau in (14, 42) for what in ("orders", "events", "support", "opens", "touches"))
    con = __import__("duckdb").connect(str(SETTINGS.warehouse_path), read_only=True)
    decayed = con.sql(f"""
        select s.snapshot_date, a.customer_id, {decay_sums}
        from (select distinct snapshot_date from marts.customer_features) s
        join intermediate.int_customer_daily_activity a
          on a.activity_date < s.snapshot_date and a.activity_date >= s.snapshot_date - 365
        group by all""").pl()
    # A leaver's last trace is often a help-centre visit: the support visit followed by silence
    departure = con.sql("""
        select s.snapshot_date, a.customer_id,
            s.snapshot_date - max(a.activity_date) filter (where a.n_support > 0) as days_since_last_support,
            count(*) filter (where a.n_orders + a.n_events > 0) as active_days,
            s.snapshot_date - min(a.activity_date) filter (where a.n_orders + a.n_events > 0) as first_active_age,
            s.snapshot_date - max(a.activity_date) filter (where a.n_orders + a.n_events > 0) as days_since_active
        from (select distinct snapshot_date from marts.customer_features) s
        join intermediate.int_customer_daily_activity a
          on a.activity_date < s.snapshot_date
        group by s.snapshot_date, a.customer_id""").pl()
    con.close()
    keys = ["snapshot_date", "customer_id"]
    # the BG/NBD fit sees rows in a fixed order, as the refits do
    departure = departure.join(data.select(keys), on=keys).sort("customer_id", "snapshot_date")
    departure = departure.with_columns(_activity_p_alive(departure, split.train))

    def joined(extra: pl.DataFrame) -> pl.DataFrame:  # left joins keep the trainer's row order
        return data.join(extra, on=keys, how="left", maintain_order="left")

    variants = {
        "base": data,
        "with_ratios": data.with_columns(**ratios),
        "with_ratios_and_decay": joined(decayed).with_columns(**ratios),
        "with_days_since_last_support": joined(departure.select(*keys, "days_since_last_support")),
        "with_activity_p_alive": joined(departure.select(*keys, "activity_p_alive")),
    }
    out = {}
    for name, frame in variants.items():
        trained = train_churn_model(frame, split, default_params(7, 1), 600, 50)
        out[name] = {"validation_auc": trained.validation_metrics["auc"], "rounds": trained.best_iteration}
    return out


def information_ceiling() -> dict:
    """How much of the oracle's knowledge the data lets a model recover. The champion's recipe (its split, its
    parameters, its BG/NBD feature) is refitted three times: as it is; given the generator's flag of customers who
    have already left (the oracle's p_churn is exactly 1 for them); given the oracle's probability itself. The
    second bounds what better features of the same data could reach on departures: activity can only suggest a
    departure, never show it. Validation AUC and normalised AUC of each, on the champion's validation rows."""
    from assets.modeling.baselines import with_bgnbd_feature
    from assets.modeling.challenger import ChallengerSettings
    from domain.metrics import normalised_auc

    model, split = _champion_split()
    truth = _truth().select("customer_id", pl.col("snapshot_date").cast(pl.Date), "p_churn").filter(
        pl.col("snapshot_date").is_in(split.all)).collect()
    data = _labelled(split.all)
    if model.pipeline.bgnbd is not None:
        data = with_bgnbd_feature(data, model.pipeline.bgnbd)
    data = data.join(truth, on=["customer_id", "snapshot_date"], how="left", maintain_order="left")
    validation = data.filter(pl.col("snapshot_date").is_in(split.validation))
    oracle = roc_auc_score(validation["churned"].to_numpy(), validation["p_churn"].to_numpy())
    variants = {
        "as_is": data.drop("p_churn"),
        "told_who_has_left": data.with_columns(has_left=(pl.col("p_churn") >= 1.0).cast(pl.Int8)).drop("p_churn"),
        "told_the_true_probability": data.rename({"p_churn": "true_p_churn"}),
    }
    settings = ChallengerSettings()
    params = {k: v for k, v in model.card["params"].items() if k != "num_iterations"}
    out = {"model_version": model.version, "validation_rows": validation.height, "oracle_auc": round(oracle, 4),
           "left_share_of_validation": round(float((validation["p_churn"] >= 1.0).mean()), 4)}
    for name, frame in variants.items():
        trained = train_churn_model(frame, split, params, settings.max_rounds, settings.early_stopping_rounds)
        auc = trained.validation_metrics["auc"]
        out[name] = {"auc": round(auc, 4), "normalised_auc": round(normalised_auc(auc, oracle), 4),
                     "rounds": trained.best_iteration}
    return out


def reasons_threads(rows: int = 4_000) -> dict:
    model, _ = _champion_split()
    features = RESOURCES["lake"].scan("gold", "customer_features")
    newest = features.select(pl.col("snapshot_date").max()).collect().item()
    frame = model.pipeline.prepare(features.filter(pl.col("snapshot_date") == newest).collect().head(rows))
    matrix = to_model_matrix(frame, model.pipeline.features, model.pipeline.categories)
    out = {"model_version": model.version, "trees": model.pipeline.booster.num_trees(), "rows": len(matrix)}
    for threads in (1, 2):
        started = time.perf_counter()
        model.pipeline.booster.predict(matrix, pred_contrib=True, num_threads=threads)
        out[f"rows_per_s_{threads}_thread"] = round(len(matrix) / (time.perf_counter() - started))
    return out


def rolling_psi(lag_weeks: int = 4) -> list[dict]:
    """Each snapshot's features against the snapshot `lag_weeks` earlier: the share of features with PSI over 0.1
    and 0.2, the largest rise in a missing share, and the three largest PSIs. A change in the world shows as a
    step here, whereas the population's slow ageing (which a fixed training reference accumulates) does not."""
    from assets.modeling.training import CATEGORICAL_FEATURES, feature_columns
    from assets.monitoring.metrics import psi_categorical, psi_numeric

    features = RESOURCES["lake"].scan("gold", "customer_features").collect()
    columns = feature_columns(features.columns)
    snapshots = sorted(features.get_column("snapshot_date").unique().to_list())
    out = []
    for i in range(lag_weeks, len(snapshots)):
        current = features.filter(pl.col("snapshot_date") == snapshots[i])
        earlier = features.filter(pl.col("snapshot_date") == snapshots[i - lag_weeks])
        psi = {c: (psi_categorical if c in CATEGORICAL_FEATURES else psi_numeric)(earlier[c], current[c])
               for c in columns}
        values = np.array(list(psi.values()))
        missing_rise = max(current[c].null_count() / current.height - earlier[c].null_count() / earlier.height
                           for c in columns)
        out.append({"snapshot_date": snapshots[i], "share_psi_over_0.1": round(float(np.mean(values > 0.1)), 3),
                    "share_psi_over_0.2": round(float(np.mean(values > 0.2)), 3),
                    "max_missing_share_rise": round(missing_rise, 3),
                    "top_psi": {c: round(v, 3) for c, v in sorted(psi.items(), key=lambda kv: -kv[1])[:3]}})
    return out


def source_shift_by_snapshot() -> list[dict]:
    """monitoring/source_drift's findings for every snapshot of the bronze history, with default limits, without
    writing anything: the number of judged fields past a warn limit, the findings, and the largest judged figure
    relative to its warn limit (how close a quiet week came to a finding)."""
    from datetime import timedelta

    from assets.monitoring.source_drift import SOURCE_SHIFT_METRICS, SourceShiftLimits, shift_findings, source_shift
    from domain.contract import SOURCES

    lake, limits = RESOURCES["lake"], SourceShiftLimits()
    orders = lake.scan("bronze", "orders").select(pl.col("_partition_date").min().alias("first"),
                                                  pl.col("_partition_date").max().alias("last"))
    first, last = orders.collect().row(0)
    snapshot = first + timedelta(days=(-first.weekday()) % 7 + 42)  # a Monday with a full baseline (and gap) behind it
    out = []
    while snapshot <= last + timedelta(days=1):
        shift = pl.concat([source_shift(lake.scan("bronze", name), spec, snapshot)
                           for name, spec in SOURCES.items() if lake.exists("bronze", name)])
        found = shift_findings(shift, limits)
        judged = shift.filter((pl.col("current_rows") >= limits.min_rows)
                              & pl.col("metric").is_in(SOURCE_SHIFT_METRICS)
                              & ~pl.col("column").str.split(".").list.first().is_in(list(limits.unjudged_sources)))
        closest = max(judged.iter_rows(named=True), key=lambda r: abs(r["value"]) / limits.limits(r["metric"])[0],
                      default=None)
        out.append({"snapshot_date": snapshot, "fields_past_warn": found.get_column("column").n_unique(),
                    "findings": [f"{r['column']} {r['metric']} {r['value']:+.3f} ({r['severity']})"
                                 for r in found.iter_rows(named=True)],
                    "closest": f"{closest['column']} {closest['metric']} {closest['value']:+.3f}" if closest else ""})
        snapshot += timedelta(weeks=1)
    return out


if __name__ == "__main__":
    commands = {"oracle-gap": oracle_gap, "feature-ideas": feature_ideas, "information-ceiling": information_ceiling,
                "reasons-threads": reasons_threads,
                "rolling-psi": rolling_psi, "source-shift": source_shift_by_snapshot}
    if len(sys.argv) != 2 or sys.argv[1] not in commands:
        raise SystemExit(f"usage: diagnose.py {{{'|'.join(commands)}}}")
    print(json.dumps(commands[sys.argv[1]](), indent=2, default=str))
